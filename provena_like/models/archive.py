"""Wire models of the archive: storage locations, their layouts, and archived-file records.

A ``storage_location`` is a registry subtype (admin-managed, like the vocabulary): where the
files of one archive type (``raw-ephys``, ``raw-video``) go on a transfer collection, and the
**layout** that places a session's files there. An **archived file** is a server record of
one file in a location: which session it belongs to, its path under the location's root,
its size and sha256, and the transfer task that put it there. The SDK writes one only after
the task succeeded and the archive's copy was read back
(``pv.archive.publish`` / ``discover``, see the guide "Archiving raw data").

The layout (:class:`Layout`) is a template of the session's folder, relative to the
location's root, over the session's fields: ``{lab}`` (the lab's name), ``{subject}`` (the
subject's nickname), ``{date}`` (``YYYY-MM-DD``) and ``{number}`` (``{number:03d}`` pads it).
A file's archive path is that folder, then the file's path inside the session's folder.

**Several sessions on one day**: a layout with ``{number}`` places each in its own folder. A
layout without it (``{subject}/{date}``) holds session 1 of each day only: the others are
refused (publish reports them), and a path found in such a layout is session 1's.

Example:
    ```python
    layout = Layout("{lab}/{subject}/{date}/{number:03d}")
    folder = layout.folder(lab="cortexlab", subject="KS023", date="2026-12-06", number=1)
    assert folder == "cortexlab/KS023/2026-12-06/001"
    key, rest = layout.parse("cortexlab/KS023/2026-12-06/001/raw_ephys_data/probe00/a.bin")
    assert key.number == 1 and rest == "raw_ephys_data/probe00/a.bin"
    ```
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from provena_like.models.patching import Handle
from provena_like.models.shared import MAX_WIRE_INT, WireModel

__all__ = [
    "LAYOUT_FIELDS",
    "MAX_ARCHIVED_BATCH",
    "STORAGE_LOCATION",
    "ArchivedFile",
    "ArchivedFileWrite",
    "ArchivedFilesDelete",
    "ArchivedFilesDeleted",
    "ArchivedFilesRequest",
    "ArchivedFilesResult",
    "Layout",
    "LayoutKey",
    "StorageLocationRecord",
]

STORAGE_LOCATION = "storage_location"
"""The registry subtype of storage locations."""

MAX_ARCHIVED_BATCH = 1000
"""The most archived-file records one request writes or deletes."""

LAYOUT_FIELDS: dict[str, str] = {
    "lab": r"[A-Za-z0-9_]+",
    "subject": r"[A-Za-z0-9_.\-]+",
    "date": r"\d{4}-\d{2}-\d{2}",
    "number": r"\d{1,3}",
}
"""The session fields a layout may name, and what each looks like in a path."""

_NUMBER_SPEC = re.compile(r"^(0[1-9])?d$")
_SHA256 = r"^[0-9a-f]{64}$"


@dataclass(frozen=True)
class LayoutKey:
    """The session a path of a layout names (``lab`` is ``None`` when the layout has none).

    Attributes:
        subject: The subject's nickname.
        date: The session's date.
        number: The session's number (1 when the layout has no ``{number}``).
        lab: The lab's name.
    """

    subject: str
    date: date
    number: int
    lab: str | None = None


class Layout:
    """A storage location's layout: the template of a session's folder (see the module).

    Args:
        template: ``/``-separated segments of literal text and fields (``{lab}``,
            ``{subject}``, ``{date}``, ``{number}`` or ``{number:03d}``); ``{subject}`` and
            ``{date}`` are required.

    Raises:
        ValueError: If the template is empty, absolute, holds ``..``, an unknown field, a
            field twice, or lacks ``{subject}`` or ``{date}``.

    Example:
        ```python
        assert Layout("{subject}/{date}").folder(subject="KS023", date="2026-12-06") == (
            "KS023/2026-12-06"
        )
        ```
    """

    def __init__(self, template: str) -> None:
        self.template = template.strip().strip("/")
        if not self.template or template.startswith("/") or "\\" in template:
            raise ValueError("a layout is a relative path template like '{subject}/{date}'")
        segments = self.template.split("/")
        if any(s in ("", ".", "..") for s in segments):
            raise ValueError("a layout's segments may not be empty, '.' or '..'")
        self.fields: list[str] = []
        self._specs: dict[str, str] = {}
        patterns = []
        for segment in segments:
            pattern = ""
            try:
                parsed = list(string.Formatter().parse(segment))
            except ValueError as exc:
                raise ValueError(f"layout segment {segment!r}: {exc}") from None
            for literal, name, spec, conversion in parsed:
                pattern += re.escape(literal)
                if name is None:
                    continue
                if name not in LAYOUT_FIELDS:
                    known = ", ".join("{" + f + "}" for f in LAYOUT_FIELDS)
                    raise ValueError(f"unknown layout field {{{name}}}; known: {known}")
                if name in self.fields:
                    raise ValueError(f"layout field {{{name}}} appears twice")
                if conversion or (spec and not (name == "number" and _NUMBER_SPEC.match(spec))):
                    raise ValueError(f"layout field {{{name}}}: only {{number:0Nd}} takes a format")
                self.fields.append(name)
                self._specs[name] = spec or ""
                pattern += f"(?P<{name}>{LAYOUT_FIELDS[name]})"
            patterns.append(pattern)
        for needed in ("subject", "date"):
            if needed not in self.fields:
                raise ValueError(f"a layout must name {{{needed}}}")
        self.depth = len(segments)
        self._regex = re.compile("/".join(patterns))

    def __repr__(self) -> str:
        return f"Layout({self.template!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and other.template == self.template

    def __hash__(self) -> int:
        return hash(self.template)

    def folder(
        self, *, subject: str, date: date | str, number: int = 1, lab: str | None = None
    ) -> str:
        """The folder of a session, relative to the location's root.

        Raises:
            ValueError: If the layout names ``{lab}`` and none is given, or has no
                ``{number}`` and ``number`` isn't 1 (see the module's rule).
        """
        values: dict[str, Any] = {
            "subject": subject,
            "date": date if isinstance(date, str) else date.isoformat(),
            "number": number,
            "lab": lab,
        }
        if "number" not in self.fields and number != 1:
            raise ValueError(
                f"layout {self.template!r} has no {{number}}: it holds session 1 of a day "
                f"only, not session {number}"
            )
        if "lab" in self.fields and not lab:
            raise ValueError(f"layout {self.template!r} names {{lab}}: give the lab's name")
        text = self.template.format(**values)
        if self._regex.fullmatch(text) is None:
            raise ValueError(f"{text!r} does not fit layout {self.template!r}")
        return text

    def parse(self, path: str) -> tuple[LayoutKey, str] | None:
        """The session a path names and the rest of the path, or ``None`` if it doesn't fit.

        A path fits when its first segments are a session's folder (a valid date, a number
        1-999) and at least one segment follows.
        """
        parts = path.strip("/").split("/")
        if len(parts) <= self.depth:
            return None
        match = self._regex.fullmatch("/".join(parts[: self.depth]))
        if match is None:
            return None
        found = match.groupdict()
        try:
            day = date.fromisoformat(found["date"])
        except ValueError:
            return None
        number = int(found.get("number") or 1)
        spec = self._specs.get("number")
        if not 1 <= number <= 999 or (spec and format(number, spec) != found["number"]):
            return None
        key = LayoutKey(found["subject"], day, number, found.get("lab"))
        return key, "/".join(parts[self.depth :])


class StorageLocationRecord(BaseModel):
    """A storage location: where one archive type's files go, and their layout.

    Attributes:
        name: What the location is called (unique among locations).
        kind: The archive type, e.g. ``raw-ephys`` or ``raw-video``.
        collection: The transfer collection's UUID.
        root: The location's root folder on the collection.
        layout: The template of a session's folder under ``root`` (:class:`Layout`).
        patterns: fnmatch patterns of the files of a session's folder that belong to the
            archive (matched against the path inside the folder).
        description: What is kept there.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[
        str, StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.\-]+$")
    ]
    kind: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    ]
    collection: str = Field(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        description="the transfer collection's UUID",
    )
    root: str = Field(default="/", min_length=1, max_length=1024)
    layout: str = Field(min_length=1, max_length=512, description="e.g. {lab}/{subject}/{date}")
    patterns: list[Annotated[str, StringConstraints(min_length=1, max_length=255)]] = Field(
        default_factory=lambda: ["*"], min_length=1, max_length=100
    )
    description: Annotated[str, StringConstraints(max_length=2000)] = ""

    @field_validator("root")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or "\x00" in value or ".." in value.split("/"):
            raise ValueError("root is an absolute path on the collection, without '..'")
        return value

    @field_validator("layout")
    @classmethod
    def _a_layout(cls, value: str) -> str:
        return Layout(value).template

    def parsed_layout(self) -> Layout:
        """The layout, parsed."""
        return Layout(self.layout)


_C = r"[^/\\\x00]"  # a character of a segment
_D = r"[^/\\\x00.]"  # one that is not a dot
_SEGMENT = rf"(?:{_D}|{_D}{_C}|\.{_D}|{_C}{_C}{_C}+)"  # anything but "." and ".."
RelativePath = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1024, pattern=rf"^{_SEGMENT}(?:/{_SEGMENT})*$"),
]
"""A path relative to a location's root: no leading ``/``, empty, ``.`` or ``..`` segments,
backslashes or NUL bytes."""


class ArchivedFileWrite(WireModel):
    """One archived file to record (``POST .../archived-files``).

    Attributes:
        session: The session's handle.
        path: The file's path under the location's root.
        size: Its size in bytes, as read back from the archive.
        sha256: Its sha256.
        task_id: The transfer task that archived it (``None`` when rebuilt by discover).
        source: Where it was sent from (``<collection>:<path>``), if known.
        archived_at: When (default: now).
    """

    session: Handle
    path: RelativePath
    size: int = Field(ge=0, le=MAX_WIRE_INT)
    sha256: str = Field(pattern=_SHA256)
    task_id: str | None = Field(default=None, max_length=64)
    source: str | None = Field(default=None, max_length=2048)
    archived_at: datetime | None = None


class ArchivedFilesRequest(WireModel):
    """Record archived files of one location: each path is written, or replaced, as given."""

    files: list[ArchivedFileWrite] = Field(min_length=1, max_length=MAX_ARCHIVED_BATCH)


class ArchivedFile(ArchivedFileWrite):
    """An archived-file record.

    Attributes:
        location: The storage location's handle.
        archived_at: When the file was archived (recorded).
        recorded_by: Who recorded it.
    """

    location: Handle
    archived_at: datetime
    recorded_by: str


class ArchivedFilesResult(WireModel):
    """What a write recorded: the records, in the order sent, and how many changed."""

    files: list[ArchivedFile]
    changed: int


class ArchivedFilesDelete(WireModel):
    """Delete archived-file records of a location: these paths, a session's, or both (and).

    At least one of ``paths`` and ``session`` is given.
    """

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["paths"]}, {"required": ["session"]}]},
    )

    paths: list[RelativePath] = Field(default_factory=list, max_length=MAX_ARCHIVED_BATCH)
    session: Handle | None = None


class ArchivedFilesDeleted(WireModel):
    """How many records a delete removed."""

    deleted: int
