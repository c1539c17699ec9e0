"""Helpers the content extractors share: JSON-safe values, capped lists, search terms.

Private to :mod:`provena_like.extractors`; nothing here imports a heavy library. Every helper
bounds what it returns (items, characters, nesting), so an extractor's result stays small
whatever the file holds.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import math
import numbers
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, AnyStr, BinaryIO, TypeAlias, TypeVar, cast

JSONValue: TypeAlias = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]
"""A JSON-serialisable value (the same shape as the extractor contract's)."""

T = TypeVar("T")

MAX_ITEMS = 1000
"""Default cap on any list an extractor reports (columns, members, datasets, ...)."""
MAX_TERMS = 1000
"""Default cap on the ``terms`` an extractor reports."""
MAX_TERM_CHARS = 200
"""A longer term is left out (it is no word worth indexing)."""
MAX_TEXT_CHARS = 1000
"""Strings in values (attributes, EXIF fields) are cut to this many characters."""
MAX_VALUE_ITEMS = 32
"""Arrays in values (attributes) with more elements are described, not listed."""

_COMPRESSION_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)


def capped(items: Iterable[T], limit: int) -> tuple[list[T], bool]:
    """The first ``limit`` items, and whether there were more (reads at most ``limit + 1``)."""
    out: list[T] = []
    for item in items:
        if len(out) == limit:
            return out, True
        out.append(item)
    return out, False


def clean_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` as valid UTF-8 (undecodable bytes replaced), cut to ``limit`` characters."""
    if len(text) > limit:
        text = text[:limit] + "…"
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def json_value(value: object, *, depth: int = 0) -> JSONValue:
    """A bounded JSON-safe rendering of an attribute value read from a file.

    Handles what h5py, netCDF4 and Pillow hand back: numpy scalars and arrays (through
    their ``tolist``/``shape``/``dtype``), bytes, rationals, tuples and mappings. Arrays of
    more than :data:`MAX_VALUE_ITEMS` elements become ``{"shape", "dtype"}``; NaN and the
    infinities, which JSON lacks, become the strings ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``.
    """
    if value is None or isinstance(value, bool | int | str):
        return clean_text(value) if isinstance(value, str) else value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return clean_text(bytes(value[: MAX_TEXT_CHARS * 4]).decode("utf-8", "replace"))
    if depth >= 4:
        return clean_text(repr(value), 200)
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "tolist") and hasattr(value, "dtype"):
        size = math.prod(int(n) for n in shape)
        if size > MAX_VALUE_ITEMS:
            return {"shape": [int(n) for n in shape], "dtype": str(value.dtype)}
        return json_value(value.tolist(), depth=depth + 1)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _float(float(value))
    if isinstance(value, dict):
        items, _ = capped(value.items(), MAX_VALUE_ITEMS)
        return {clean_text(str(k), 200): json_value(v, depth=depth + 1) for k, v in items}
    if isinstance(value, list | tuple | set | frozenset):
        items_, more = capped(value, MAX_VALUE_ITEMS)
        out: list[JSONValue] = [json_value(v, depth=depth + 1) for v in items_]
        if more:
            out.append("…")
        return out
    return clean_text(str(value))


def _float(value: float) -> JSONValue:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def attributes(obj: Any, limit: int) -> tuple[dict[str, JSONValue], bool]:
    """Up to ``limit`` attributes of an h5py or netCDF4 object, JSON-safe; whether cut.

    An attribute whose value cannot be read (an unsupported type) is reported as
    ``{"unreadable": "<error>"}`` rather than failing the whole file.
    """
    netcdf = hasattr(type(obj), "ncattrs")  # on the type: netCDF4 objects map getattr to attributes
    names, more = capped(obj.ncattrs() if netcdf else obj.attrs, limit)
    out: dict[str, JSONValue] = {}
    for name in names:
        try:
            value = obj.getncattr(name) if netcdf else obj.attrs[name]
        except (OSError, TypeError, ValueError, KeyError) as err:
            out[clean_text(str(name), 200)] = {"unreadable": clean_text(repr(err), 200)}
            continue
        out[clean_text(str(name), 200)] = json_value(value)
    return out, more


class Terms:
    """Words worth indexing for search, de-duplicated in first-seen order and capped.

    Args:
        limit: The most terms kept; more set :attr:`truncated`.
    """

    def __init__(self, limit: int = MAX_TERMS) -> None:
        self._limit = limit
        self._seen: dict[str, None] = {}
        self.truncated = False

    def add(self, *words: object) -> None:
        """Add each of ``words`` that is a non-empty string of at most 200 characters."""
        for word in words:
            if not isinstance(word, str):
                continue
            text = clean_text(word.strip(), MAX_TERM_CHARS + 1)
            if not text or len(text) > MAX_TERM_CHARS or text in self._seen:
                continue
            if len(self._seen) >= self._limit:
                self.truncated = True
                return
            self._seen[text] = None

    def __iter__(self) -> Iterator[str]:
        return iter(self._seen)

    def as_json(self) -> list[JSONValue]:
        """The terms, as the ``"terms"`` value of a result."""
        return list(self._seen)


def compression_of(path: Path) -> str | None:
    """``"gzip"``, ``"bzip2"`` or ``"xz"`` when the file starts with that magic, else None."""
    with path.open("rb") as f:
        head = f.read(6)
    return next((name for magic, name in _COMPRESSION_MAGIC if head.startswith(magic)), None)


def bounded_lines(f: IO[AnyStr], limit: int) -> Iterator[AnyStr]:
    """The lines of ``f``, never holding more than ``limit + 1`` characters in memory.

    Raises:
        ValueError: A line is longer than ``limit`` (a huge line is no table or record
            stream; reading it whole could exhaust memory).
    """
    while line := f.readline(limit + 1):
        if len(line) > limit:
            raise ValueError(f"a line longer than {limit} characters")
        yield line


def inner_suffix(path: Path) -> str:
    """The lower-case suffix under a compression suffix: ``.csv`` for ``a.csv.gz``."""
    if path.suffix.lower() in {".gz", ".bz2", ".xz"}:
        path = path.with_suffix("")
    return path.suffix.lower()


def open_binary(path: Path, compression: str | None) -> BinaryIO:
    """``path`` opened for reading, decompressing a gzip, bzip2 or xz stream on the fly."""
    if compression == "gzip":
        return cast(BinaryIO, gzip.GzipFile(path, "rb"))
    if compression == "bzip2":
        return cast(BinaryIO, bz2.BZ2File(path, "rb"))
    if compression == "xz":
        return cast(BinaryIO, lzma.LZMAFile(path, "rb"))
    return path.open("rb")
