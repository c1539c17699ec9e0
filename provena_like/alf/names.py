"""ALF dataset names: ``(_namespace_)object.attribute(_timescale)(.extra…).extension``.

Every part is ASCII. The object runs up to the first period and the extension is after the
last one; the attribute follows the object, and what lies between the attribute and the
extension are the extra parts. A UUID may be the last extra part: that is how a file is named
in a repository that stores one object per registered file (:func:`add_uuid`).
"""

from __future__ import annotations

import functools
import re
import uuid as uuid_module
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import TypeVar

from provena_like.alf.errors import AlfError

PARSE_CACHE_SIZE = 16_384
"""How many parsed names (and relative paths) are kept: parsing is a pure function of the text."""

__all__ = [
    "DatasetName",
    "add_uuid",
    "is_uuid_string",
    "is_valid_dataset_name",
    "parse_dataset_name",
    "remove_uuid",
]

PathT = TypeVar("PathT", str, PurePath)

_SHAPE = "(_namespace_)object.attribute(_timescale)(.extra…).extension"
_NAMESPACE = re.compile(r"[A-Za-z0-9]+")
_OBJECT = re.compile(r"[A-Za-z0-9]\w*", re.ASCII)
# An attribute may end in "_times" or "_intervals" (part of the attribute, not a timescale)
# and may start with a deprecated attribute-level namespace ("_phy_ids").
_ATTRIBUTE = r"(?:_[a-z]+_)?[A-Za-z0-9]+(?:_times|_intervals)?"
_ATTRIBUTE_TIMESCALE = re.compile(rf"(?P<attribute>{_ATTRIBUTE})(?:_(?P<timescale>\w+))?", re.ASCII)
_ATTRIBUTE_ONLY = re.compile(_ATTRIBUTE)
_ATTRIBUTE_BAD_TIMESCALE = re.compile(rf"{_ATTRIBUTE}_(.+)")
_TIMESCALE = re.compile(r"\w+", re.ASCII)
_EXTRA = re.compile(r"[\w-]+", re.ASCII)
_EXTENSION = re.compile(r"\w+", re.ASCII)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

_EXPECTED = {
    "namespace": "letters and digits between two underscores before the object ('_ibl_')",
    "object": "a letter or digit, then letters, digits and underscores ('trials')",
    "attribute": (
        "letters and digits, optionally ending in '_times' or '_intervals' ('goCue_times')"
    ),
    "timescale": "letters, digits and underscores after the attribute ('_bpod')",
    "extra": "letters, digits, underscores and hyphens between periods",
    "extension": "letters, digits and underscores after the last period ('npy')",
}


def is_uuid_string(text: str) -> bool:
    """Whether ``text`` is a UUID in canonical form (lowercase, hyphenated, 36 characters).

    Args:
        text: The text to test.

    Returns:
        True for ``"a976e418-c8b8-4d24-be47-d05120b18341"``, False for anything else
        (upper case, no hyphens, braces).
    """
    return _UUID.fullmatch(text) is not None


@dataclass(frozen=True)
class DatasetName:
    """The parts of an ALF dataset name; constructing one validates it.

    ``str(name)`` builds the file name. A name whose parts would not read back as the same
    parts (an attribute ``"a"`` with a timescale ``"times"`` reads back as the attribute
    ``"a_times"``) is refused.

    Attributes:
        object: The ALF object (``"trials"``).
        attribute: The attribute (``"goCue_times"``).
        extension: The file extension, without its period (``"npy"``).
        namespace: The namespace without its underscores (``"ibl"``), or None.
        timescale: The timescale without its underscore (``"bpod"``), or None.
        extra: The extra parts between the attribute and the extension, in order.

    Raises:
        AlfError: A part breaks the rules; ``.part`` names it.

    Example:
        ```python
        from provena_like.alf import DatasetName

        name = DatasetName("trials", "goCue_times", "npy", namespace="ibl", timescale="bpod")
        assert str(name) == "_ibl_trials.goCue_times_bpod.npy"
        assert name.object_attribute == "trials.goCue_times"
        ```
    """

    object: str
    attribute: str
    extension: str
    namespace: str | None = None
    timescale: str | None = None
    extra: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        """Validate every part and that the built name reads back as the same parts."""
        if isinstance(self.extra, str):
            raise AlfError("extra", self.extra, "a tuple of extra parts, such as ('raw', 'v12')")
        if not isinstance(self.extra, tuple):
            object.__setattr__(self, "extra", tuple(self.extra))
        checks: list[tuple[str, str | None, re.Pattern[str]]] = [
            ("namespace", self.namespace, _NAMESPACE),
            ("object", self.object, _OBJECT),
            ("attribute", self.attribute, _ATTRIBUTE_ONLY),
            ("timescale", self.timescale, _TIMESCALE),
            ("extension", self.extension, _EXTENSION),
        ]
        checks.extend(("extra", extra, _EXTRA) for extra in self.extra)
        for part, value, pattern in checks:
            if value is not None and (
                not isinstance(value, str) or pattern.fullmatch(value) is None
            ):
                raise AlfError(part, str(value), _EXPECTED[part])
        built = str(self)
        parts = _split(built)
        if parts != self._parts():
            got = dict(zip(_PART_NAMES, parts, strict=True))
            part = next(
                p for p, mine in zip(_PART_NAMES, self._parts(), strict=True) if got[p] != mine
            )
            raise AlfError(
                part,
                str(getattr(self, part)),
                "parts that read back unchanged from the built name",
                path=built,
                reason=f"is ambiguous: {built!r} reads back with {part} {got[part]!r}",
            )

    def _parts(self) -> tuple[str | None, str, str, str | None, tuple[str, ...], str]:
        return (
            self.namespace,
            self.object,
            self.attribute,
            self.timescale,
            self.extra,
            self.extension,
        )

    def __str__(self) -> str:
        """The file name built from the parts."""
        return self._text

    @functools.cached_property
    def _text(self) -> str:
        # built once: the parts are frozen (and validating builds it already)
        head = f"_{self.namespace}_{self.object}" if self.namespace else self.object
        attribute = f"{self.attribute}_{self.timescale}" if self.timescale else self.attribute
        return ".".join((head, attribute, *self.extra, self.extension))

    @property
    def object_attribute(self) -> str:
        """``object.attribute``: what a dataset type with an empty pattern is named after."""
        return f"{self.object}.{self.attribute}"

    @property
    def uuid(self) -> uuid_module.UUID | None:
        """The UUID in the last extra part (a stored name), or None."""
        if self.extra and is_uuid_string(self.extra[-1]):
            return uuid_module.UUID(self.extra[-1])
        return None

    def with_uuid(self, value: uuid_module.UUID | str) -> DatasetName:
        """This name with ``value`` as its last extra part, replacing a UUID already there.

        Args:
            value: The UUID (a canonical string or a ``uuid.UUID``).

        Returns:
            The stored name's parts.

        Raises:
            AlfError: ``value`` is not a canonical UUID string (``.part == "uuid"``).
        """
        text = _uuid_text(value)
        kept = self.extra[:-1] if self.uuid is not None else self.extra
        return replace(self, extra=(*kept, text))

    def without_uuid(self) -> DatasetName:
        """This name without a UUID as its last extra part (unchanged if it has none)."""
        return self if self.uuid is None else replace(self, extra=self.extra[:-1])


_PART_NAMES = ("namespace", "object", "attribute", "timescale", "extra", "extension")


def _split(name: str) -> tuple[str | None, str, str, str | None, tuple[str, ...], str]:
    """The raw parts of a dataset name, or AlfError naming the first part that is wrong."""
    pieces = name.split(".")
    if len(pieces) < 3:
        raise AlfError(
            "dataset_name",
            name,
            _SHAPE,
            reason="has no attribute" if len(pieces) == 2 else "has no extension",
        )
    head, attribute_timescale, *extra, extension = pieces
    namespace: str | None = None
    obj = head
    if head.startswith("_"):
        closing = head.find("_", 1)
        namespace = head[1:closing] if closing > 0 else head[1:]
        if closing < 0 or _NAMESPACE.fullmatch(namespace) is None:
            raise AlfError(
                "namespace",
                namespace,
                _EXPECTED["namespace"],
                path=name,
                reason="is not closed by an underscore" if closing < 0 else "is invalid",
            )
        obj = head[closing + 1 :]
    if _OBJECT.fullmatch(obj) is None:
        raise AlfError("object", obj, _EXPECTED["object"], path=name)
    match = _ATTRIBUTE_TIMESCALE.fullmatch(attribute_timescale)
    if match is None:
        bad_timescale = _ATTRIBUTE_BAD_TIMESCALE.fullmatch(attribute_timescale)
        if bad_timescale is not None:
            raise AlfError("timescale", bad_timescale[1], _EXPECTED["timescale"], path=name)
        raise AlfError("attribute", attribute_timescale, _EXPECTED["attribute"], path=name)
    for part in extra:
        if _EXTRA.fullmatch(part) is None:
            raise AlfError("extra", part, _EXPECTED["extra"], path=name)
    if _EXTENSION.fullmatch(extension) is None:
        raise AlfError("extension", extension, _EXPECTED["extension"], path=name)
    return (
        namespace,
        obj,
        match["attribute"],
        match["timescale"],
        tuple(extra),
        extension,
    )


def parse_dataset_name(name: str) -> DatasetName:
    """Parse an ALF dataset (file) name into its parts.

    Args:
        name: The file name, without folders.

    Returns:
        The parts.

    Raises:
        AlfError: The name breaks the rules; ``.part`` says which part.

    Example:
        ```python
        from provena_like.alf import parse_dataset_name

        name = parse_dataset_name("_spikeglx_ephysData_g0_t0.imec0.lf.bin")
        assert (name.namespace, name.object) == ("spikeglx", "ephysData_g0_t0")
        assert name.attribute == "imec0"
        assert (name.extra, name.extension) == (("lf",), "bin")
        ```
    """
    return _parse_dataset_name(name)


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse_dataset_name(name: str) -> DatasetName:
    # a pure function of the name, and DatasetName is frozen: the same names come back in
    # every session (and on every re-registration), so they are parsed once
    if "/" in name:
        raise AlfError("dataset_name", name, "a file name without folders")
    namespace, obj, attribute, timescale, extra, extension = _split(name)
    return DatasetName(
        obj, attribute, extension, namespace=namespace, timescale=timescale, extra=extra
    )


def is_valid_dataset_name(name: str) -> bool:
    """Whether ``name`` is a valid ALF dataset name (see :func:`parse_dataset_name`).

    Args:
        name: The file name.

    Returns:
        True when it parses.
    """
    try:
        parse_dataset_name(name)
    except AlfError:
        return False
    return True


def _uuid_text(value: uuid_module.UUID | str) -> str:
    text = str(value)
    if not is_uuid_string(text):
        raise AlfError("uuid", text, "a UUID in canonical form ('a976e418-c8b8-4d24-be47-…')")
    return text


def _with_name(path: PathT, name: str) -> PathT:
    if isinstance(path, PurePath):
        return path.with_name(name)
    head, sep, _ = path.rpartition("/")
    return f"{head}{sep}{name}"


def _name_of(path: str | PurePath) -> str:
    return path.name if isinstance(path, PurePath) else path.rpartition("/")[2]


def add_uuid(path: PathT, value: uuid_module.UUID | str) -> PathT:
    """Put a UUID before the extension of a file name, replacing a UUID already there.

    Works on any file name with an extension (``"tata.json"`` too), as stored names do.

    Args:
        path: A file name or path (``str`` with ``/`` separators, or a ``PurePath``).
        value: The UUID.

    Returns:
        The same kind of path, with ``name.<uuid>.ext`` as its name.

    Raises:
        AlfError: ``value`` is not a canonical UUID (``.part == "uuid"``) or the name has no
            extension (``.part == "extension"``).

    Example:
        ```python
        from provena_like.alf import add_uuid, remove_uuid

        stored = add_uuid("alf/trials.intervals.npy", "a976e418-c8b8-4d24-be47-d05120b18341")
        assert stored == "alf/trials.intervals.a976e418-c8b8-4d24-be47-d05120b18341.npy"
        assert remove_uuid(stored) == "alf/trials.intervals.npy"
        ```
    """
    text = _uuid_text(value)
    name = _name_of(path)
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or not extension:
        raise AlfError("extension", name, "a file name with an extension ('name.ext')")
    pieces: list[str] = stem.split(".")
    if is_uuid_string(pieces[-1]):
        pieces.pop()
    return _with_name(path, ".".join((*pieces, text, extension)))


def remove_uuid(path: PathT) -> PathT:
    """Remove a UUID standing just before the extension of a file name.

    Args:
        path: A file name or path (``str`` with ``/`` separators, or a ``PurePath``).

    Returns:
        The same kind of path without the UUID (unchanged when there is none).
    """
    name = _name_of(path)
    stem, dot, extension = name.rpartition(".")
    pieces: list[str] = stem.split(".")
    if not dot or len(pieces) < 2 or not is_uuid_string(pieces[-1]):
        return path
    return _with_name(path, ".".join((*pieces[:-1], extension)))
