"""What a crawl produces: typed records per file, per group and per failure, and JSON lines.

Every record carries a ``kind`` (``file``, ``error``, ``group``, ``result``), so a JSON-lines
file of mixed records reads back into the right models (:func:`read_jsonl`). The records name
their ``source`` (``local:/abs/root``, ``dataset:<handle>``, ``collection:<uuid>``) and a path
relative to the crawl's root, so they can be stored and indexed later without the crawl.

Example:
    ```python
    record = FileRecord(source="local:/data", path="raw/a.csv", size=3, extension=".csv")
    line = to_jsonl(record)
    assert parse_jsonl(line) == record
    ```
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from provena_like.crawler.listing import ErrorReason as ErrorReason
from provena_like.extractors.base import JSONValue

__all__ = [
    "CrawlError",
    "CrawlRecord",
    "CrawlSummary",
    "Extraction",
    "FileRecord",
    "FileResult",
    "Group",
    "maker",
    "parse_jsonl",
    "read_jsonl",
    "to_jsonl",
    "trusted",
    "write_jsonl",
]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


R = TypeVar("R", bound=_Record)

_new = object.__new__
# pydantic's documented instance state is four slots of BaseModel; their descriptors set
# them without the attribute lookup of ``object.__setattr__``
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__

_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


def _shared(fields_set: frozenset[str]) -> set[str]:
    """One ``set`` per fields-set, shared by the records made with it.

    pydantic only reads a record's fields-set (``model_copy`` copies it before it adds to
    it), so records that were given the same fields can share one: a set fewer to make, and
    for the garbage collector to walk, per record.
    """
    shared = _FIELDS_SETS.get(fields_set)
    if shared is None:
        shared = _FIELDS_SETS[fields_set] = set(fields_set)
    return shared


def trusted(cls: type[R], values: dict[str, Any], fields_set: frozenset[str]) -> R:
    """A record built from values the crawler made itself, without validating them again.

    What :meth:`~pydantic.BaseModel.model_construct` does (the state pydantic documents on
    :class:`~pydantic.BaseModel`: ``__dict__``, ``__pydantic_fields_set__``,
    ``__pydantic_extra__``, ``__pydantic_private__``), without its per-field Python loop:
    a third of the cost of validation, which is most of a crawl's time per file. Records
    made with the same ``fields_set`` share one (read-only) ``model_fields_set``.

    Args:
        cls: The record type.
        values: Every field of ``cls``, in declaration order, already of its type.
        fields_set: The fields a validating constructor call would have been given.

    Example:
        ```python
        values = {"kind": "error", "source": "local:/d", "path": "x", "reason": "failed",
                  "message": "m"}
        error = trusted(CrawlError, values, frozenset(values) - {"kind"})
        assert error == CrawlError(source="local:/d", path="x", reason="failed", message="m")
        ```
    """
    return maker(cls, fields_set)(values)


def maker(cls: type[R], fields_set: frozenset[str]) -> Callable[[dict[str, Any]], R]:
    """:func:`trusted` for many records of one type and fields-set: ``make(values)``.

    Example:
        ```python
        make = maker(FileRecord, frozenset(("source", "path")))
        values = {"kind": "file", "source": "local:/d", "path": "a", "size": None,
                  "mtime": None, "extension": "", "mime_type": None, "depth": 0,
                  "sha256": None, "md5": None, "etag": None}
        assert make(values) == FileRecord(source="local:/d", path="a")
        ```
    """
    shared = _shared(fields_set)

    def make(values: dict[str, Any]) -> R:
        record = _new(cls)
        _set_dict(record, values)
        _set_fields_set(record, shared)
        _set_extra(record, None)
        _set_private(record, None)
        return record

    return make


class FileRecord(_Record):
    """One file found by a crawl (what the listing and ``stat`` say).

    Attributes:
        source: Where the crawl ran (``local:/abs/root``, ``dataset:<handle>``,
            ``collection:<uuid>``).
        path: POSIX path relative to the crawl's root.
        size: Bytes (``None`` when the source doesn't say).
        mtime: Last modification time (UTC for remote sources), when known.
        extension: Lower-case suffix with its dot (``".csv"``; ``""`` for none; ``".nii.gz"``
            is ``".gz"``).
        mime_type: As :mod:`mimetypes` guesses it from the name, or ``None``.
        depth: Directory levels below the root (``0``: a file in the root).
        sha256: Computed when the crawl was asked for checksums (local files).
        md5: Likewise.
        etag: The object's ETag (S3 sources).
    """

    kind: Literal["file"] = "file"
    source: str
    path: str
    size: int | None = None
    mtime: datetime | None = None
    extension: str = ""
    mime_type: str | None = None
    depth: int = 0
    sha256: str | None = None
    md5: str | None = None
    etag: str | None = None


class CrawlError(_Record):
    """A directory (or file) the crawl could not read; the crawl went on without it.

    Attributes:
        source: As for :class:`FileRecord`.
        path: POSIX path relative to the root (``""``: the root itself).
        reason: ``unreadable`` (permissions, I/O), ``symlink_loop`` (a followed link leads
            back to a directory already crawled), ``not_found``, ``not_a_directory``, or
            ``failed`` (anything else, e.g. a service error).
        message: What went wrong.
    """

    kind: Literal["error"] = "error"
    source: str
    path: str
    reason: ErrorReason
    message: str


class Group(_Record):
    """Files that belong together (see :mod:`provena_like.crawler.groupers`).

    Attributes:
        grouper: The grouper's name (``file``, ``directory``, ``extension``, ``alf_object``,
            or a callable's name).
        key: What the files share (a directory, an extension, an ALF object path...).
        group_id: A stable id: the same source, grouper and key give the same id.
        source: As for :class:`FileRecord`.
        files: The files' paths, in the order found.
        size: Their total size in bytes (sizes the source didn't give count as 0).
    """

    kind: Literal["group"] = "group"
    grouper: str
    key: str
    group_id: str
    source: str
    files: list[str]
    size: int = 0

    @staticmethod
    def make_id(source: str, grouper: str, key: str) -> str:
        """The stable id of a group (a sha256 prefix of source, grouper and key).

        Example:
            ```python
            assert len(Group.make_id("local:/d", "directory", "raw")) == 24
            ```
        """
        text = "\x00".join((source, grouper, key))
        return hashlib.sha256(text.encode()).hexdigest()[:24]


class Extraction(_Record):
    """One extractor's outcome on one file.

    Attributes:
        extractor: The extractor's name.
        status: ``ok``; ``failed`` (it raised, crashed its worker, ran out of memory or
            time); ``skipped`` (``error`` says why, e.g. the extractor is unavailable).
        metadata: What it extracted (``ok`` only).
        error: Why it failed or was skipped.
        seconds: Time spent (``0`` when skipped).
    """

    extractor: str
    status: Literal["ok", "failed", "skipped"]
    metadata: dict[str, JSONValue] | None = None
    error: str | None = None
    seconds: float = 0.0


class FileResult(_Record):
    """A file and what every extractor that reads its type made of it.

    Attributes:
        record: The crawl's record of the file.
        extractions: One per extractor that handles the file's type (none: no extractor
            reads this type).
    """

    kind: Literal["result"] = "result"
    record: FileRecord
    extractions: list[Extraction] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether no extractor failed on the file (skipped ones don't count)."""
        return all(e.status != "failed" for e in self.extractions)

    @property
    def terms(self) -> list[str]:
        """The search terms the extractors found (``"terms"``), de-duplicated, in order."""
        seen: dict[str, None] = {}
        for extraction in self.extractions:
            terms = (extraction.metadata or {}).get("terms")
            if isinstance(terms, list):
                seen.update((str(t), None) for t in terms if isinstance(t, str))
        return list(seen)


class CrawlSummary(_Record):
    """Counters of a crawl (or of a crawl and its extraction).

    Attributes:
        files: Files found.
        bytes: Their total size.
        errors: Directories and files that could not be read.
        groups: Groups made.
        extracted: Files with every extractor ``ok`` or ``skipped``.
        failed: Files with at least one failed extractor.
    """

    files: int = 0
    bytes: int = 0
    errors: int = 0
    groups: int = 0
    extracted: int = 0
    failed: int = 0


CrawlRecord = Annotated[FileRecord | CrawlError | Group | FileResult, Field(discriminator="kind")]
"""Any record a crawl writes to JSON lines."""

_ADAPTER: TypeAdapter[FileRecord | CrawlError | Group | FileResult] = TypeAdapter(CrawlRecord)


def to_jsonl(record: FileRecord | CrawlError | Group | FileResult) -> str:
    """One record as one JSON line (no trailing newline)."""
    return record.model_dump_json(exclude_none=True)


def parse_jsonl(line: str) -> FileRecord | CrawlError | Group | FileResult:
    """Read one JSON line back into its record type (by ``kind``)."""
    return _ADAPTER.validate_json(line)


async def write_jsonl(
    records: AsyncIterable[FileRecord | CrawlError | Group | FileResult]
    | Iterable[FileRecord | CrawlError | Group | FileResult],
    path: Path,
) -> int:
    """Write records as JSON lines (streamed: one line at a time); returns how many.

    Example:
        ```python
        from provena_like.crawler import crawl

        n = await write_jsonl(crawl(Path("data")), Path("crawl.jsonl"))
        ```
    """
    import anyio

    count = 0
    async with await anyio.open_file(path, "w", encoding="utf-8") as fh:
        if isinstance(records, AsyncIterable):
            async for record in records:
                await fh.write(to_jsonl(record) + "\n")
                count += 1
        else:
            for record in records:
                await fh.write(to_jsonl(record) + "\n")
                count += 1
    return count


def read_jsonl(path: Path) -> Iterator[FileRecord | CrawlError | Group | FileResult]:
    """Read a JSON-lines file of records back, one at a time (blank lines skipped).

    Example:
        ```python
        await write_jsonl([FileRecord(source="local:/d", path="a.csv")], Path("crawl.jsonl"))
        files = [r for r in read_jsonl(Path("crawl.jsonl")) if isinstance(r, FileRecord)]
        ```
    """
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield parse_jsonl(line)
