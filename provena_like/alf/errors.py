"""The errors of the ALF conventions: one class, naming the part that is wrong.

```
ValueError
└── AlfError (.part .value .expected .path)
    └── DatasetTypeError (.filename .candidates)
```
"""

from __future__ import annotations

from collections.abc import Sequence


class AlfError(ValueError):
    """A path, name or revision that breaks the ALF conventions.

    Attributes:
        part: Which part is wrong: ``"lab"``, ``"subject"``, ``"date"``, ``"number"``,
            ``"session"``, ``"collection"``, ``"revision"``, ``"namespace"``, ``"object"``,
            ``"attribute"``, ``"timescale"``, ``"extra"``, ``"extension"``, ``"uuid"``,
            ``"dataset_name"`` (a name without the ``object.attribute.extension`` shape),
            ``"path"`` (a path without the expected folders) or ``"dataset_type"``.
        value: The offending text (the part as found, or the whole input).
        expected: What that part should look like, in words.
        path: The whole input the part came from, when there is one.
        reason: What is wrong, when the message says more than "is invalid" (else ``""``).

    Example:
        ```python
        from provena_like.alf import AlfError, parse_session_path

        try:
            parse_session_path("mouse1/2024-02-30/001")
        except AlfError as err:
            assert err.part == "date"
            assert "YYYY-MM-DD" in str(err)
        ```
    """

    def __init__(
        self, part: str, value: str, expected: str, *, path: str | None = None, reason: str = ""
    ) -> None:
        """Name the wrong part, its value and what was expected.

        Args:
            part: Which part is wrong (see the class attributes).
            value: The offending text.
            expected: What the part should look like, in words.
            path: The whole input, when the part is only a piece of it.
            reason: What is wrong, when "is invalid" would not say enough.
        """
        self.part = part
        self.value = value
        self.expected = expected
        self.path = path
        self.reason = reason
        where = f"in {path!r}: " if path is not None and path != value else ""
        what = reason or "is invalid"
        super().__init__(f"{where}{part} {value!r} {what}; expected {expected}")


class DatasetTypeError(AlfError):
    """No dataset type, or several, match a file name.

    Attributes:
        filename: The file name that was matched.
        candidates: The names of the dataset types that matched (empty when none did).
    """

    def __init__(self, filename: str, candidates: Sequence[str]) -> None:
        """Say that ``filename`` matched none or several of the dataset types.

        Args:
            filename: The file name that was matched.
            candidates: The names of the types that matched it.
        """
        self.filename = filename
        self.candidates = tuple(candidates)
        if self.candidates:
            reason = "matches several dataset types: " + ", ".join(repr(c) for c in self.candidates)
        else:
            reason = "matches no dataset type"
        super().__init__(
            "dataset_type",
            filename,
            "exactly one dataset type whose filename pattern matches the file name",
            reason=reason,
        )
