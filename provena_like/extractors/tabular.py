"""Tables: CSV/TSV with the standard :mod:`csv` module, Parquet from its footer (pyarrow).

Two extractors, so that CSV needs nothing installed:

- ``tabular`` (:class:`TabularExtractor`): delimited text (``.csv``, ``.tsv``, ``.tab``, also
  gzip/bzip2/xz-compressed), its dialect sniffed and its column types inferred on a bounded
  sample of rows; rows are counted up to a byte budget, past it the count is estimated.
- ``parquet`` (:class:`ParquetExtractor`, extra ``extract-tabular``): columns, types, row count
  and row groups from the file's footer, without reading the data.

Both report ``columns`` as ``[{"name", "type", ...}]`` and the column names as ``terms``.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO, TextIO

from provena_like.extractors._common import (
    MAX_ITEMS,
    JSONValue,
    Terms,
    bounded_lines,
    capped,
    clean_text,
    compression_of,
    inner_suffix,
    json_value,
    open_binary,
)

__all__ = ["ParquetExtractor", "TabularExtractor"]

_NULLS = frozenset({"", "na", "n/a", "null", "none", "nil", "-"})
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z|[+-]?(nan|inf|infinity)\Z", re.I)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_BOOLS = frozenset({"true", "false"})
# C0 control characters other than tab, newline, form feed and carriage return: not text
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _cell_kind(cell: str) -> str | None:
    """The type a single cell looks like, or None for an empty/NA cell."""
    text = cell.strip()
    low = text.lower()
    if low in _NULLS:
        return None
    if _INT.match(text):
        return "integer"
    if _FLOAT.match(text):
        return "number"
    if low in _BOOLS:
        return "boolean"
    if _DATE.match(text):
        try:
            date.fromisoformat(text)
        except ValueError:
            return "string"
        return "date"
    if len(text) > 10 and text[:4].isdigit() and text[4:5] == "-":
        try:
            datetime.fromisoformat(text)
        except ValueError:
            return "string"
        return "datetime"
    return "string"


def _column_type(kinds: set[str]) -> str:
    """The most specific type every non-empty sampled cell of a column fits."""
    if not kinds:
        return "null"
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds <= {"integer", "number"}:
        return "number"
    if kinds <= {"date", "datetime"}:
        return "datetime"
    return "string"


def _encoding(sample: bytes, complete: bool) -> str:
    """UTF-8 (with or without BOM) or, failing that, Windows-1252; binary data raises."""
    if b"\x00" in sample or _CONTROL.search(sample):
        raise ValueError("binary data (control bytes): not a delimited text file")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=complete)
    except UnicodeDecodeError:
        sample.decode("cp1252")  # raises UnicodeDecodeError for bytes cp1252 leaves undefined
        return "cp1252"
    return "utf-8-sig" if sample.startswith(codecs.BOM_UTF8) else "utf-8"


class TabularExtractor:
    r"""Delimited text tables: dialect, header, columns with inferred types, row count.

    The first ``sample_bytes`` decide the encoding (UTF-8, else Windows-1252; binary data
    raises) and the dialect (:class:`csv.Sniffer` over ``, \t ; |``; ``.tsv``/``.tab`` files
    are tab-separated). The first row is a header when none of its cells looks like a number,
    boolean or date and they are distinct. Column types (``integer``, ``number``,
    ``boolean``, ``date``, ``datetime``, ``string``, ``null``) come from the first
    ``sample_rows`` rows. Rows are counted while at most ``max_scan_bytes`` have been read;
    past that ``row_count`` is None and, for an uncompressed file, ``row_count_estimate``
    extrapolates from the bytes per row so far. Malformed quoting raises :class:`csv.Error`.

    Args:
        sample_bytes: Bytes read to choose the encoding and dialect.
        sample_rows: Rows whose cells decide the column types.
        max_columns: Columns listed at most (``column_count`` is always exact).
        max_scan_bytes: Bytes read at most to count rows (the csv module parses about
            20 MB/s on a slow core: 64 MiB stays within a few seconds).
        max_line_chars: A longer line raises :class:`ValueError` (it is read in pieces, so a
            file that is one huge line never sits in memory whole).

    Example:
        ```python
        from pathlib import Path

        from provena_like.extractors.tabular import TabularExtractor

        Path("reef.csv").write_text("site,depth_m,temperature\nA,1.5,21.4\nB,3,20.9\n")
        meta = TabularExtractor().extract(Path("reef.csv"))
        assert meta["row_count"] == 2
        assert meta["columns"][1] == {"name": "depth_m", "type": "number", "nullable": False}
        assert meta["terms"] == ["site", "depth_m", "temperature"]
        ```
    """

    name = "tabular"
    extensions = frozenset({".csv", ".tsv", ".tab"})
    mime_types = frozenset({"text/csv", "text/tab-separated-values"})
    requires: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        sample_bytes: int = 64 * 1024,
        sample_rows: int = 1000,
        max_columns: int = MAX_ITEMS,
        max_scan_bytes: int = 64 * 1024 * 1024,
        max_line_chars: int = 8 * 1024 * 1024,
    ) -> None:
        self.max_line_chars = max_line_chars
        self.sample_bytes = sample_bytes
        self.sample_rows = sample_rows
        self.max_columns = max_columns
        self.max_scan_bytes = max_scan_bytes

    def extract(self, path: Path) -> dict[str, JSONValue]:
        """Describe the table in ``path`` (see the class)."""
        compression = compression_of(path)
        tabbed = inner_suffix(path) in {".tsv", ".tab"}
        with open_binary(path, compression) as raw:
            sample = raw.read(self.sample_bytes + 1)
        complete = len(sample) <= self.sample_bytes
        sample = sample[: self.sample_bytes]
        encoding = _encoding(sample, complete)
        text = sample.decode(encoding, "replace" if complete else "ignore")
        if not complete and "\n" in text:
            text = text[: text.rindex("\n") + 1]  # whole lines only
        result: dict[str, JSONValue] = {"format": "tsv" if tabbed else "csv", "encoding": encoding}
        if compression:
            result["compression"] = compression
        if not text.strip():
            result.update(columns=[], column_count=0, row_count=0, has_header=False, terms=[])
            return result
        dialect = self._dialect(text, tabbed)
        result["delimiter"] = dialect.delimiter
        with (
            open_binary(path, compression) as raw,
            io.TextIOWrapper(raw, encoding, "replace", newline="") as decoded,
        ):
            result.update(self._scan(raw, decoded, dialect))
        if result["row_count"] is None and not compression:
            scanned = result.pop("bytes_scanned")
            assert isinstance(scanned, int) and isinstance(result["rows_scanned"], int)
            size = path.stat().st_size
            result["row_count_estimate"] = round(result["rows_scanned"] * size / max(scanned, 1))
        result.pop("bytes_scanned", None)
        return result

    @staticmethod
    def _dialect(text: str, tabbed: bool) -> type[csv.Dialect]:
        try:
            return csv.Sniffer().sniff(text, delimiters="\t" if tabbed else ",\t;|")
        except csv.Error:
            return csv.excel_tab if tabbed else csv.excel

    def _scan(
        self, raw: BinaryIO, text: TextIO, dialect: type[csv.Dialect]
    ) -> dict[str, JSONValue]:
        """Read the rows (``text`` decodes ``raw``): header, sampled cells' types, row count."""
        lines = bounded_lines(text, self.max_line_chars)
        reader = (row for row in csv.reader(lines, dialect, strict=True) if row)
        header = next(reader, [])
        has_header = all(_cell_kind(c) == "string" for c in header)
        has_header = has_header and len(set(header)) == len(header)
        kinds: list[set[str]] = []
        nulls: list[bool] = []
        rows = ragged = 0
        exact = True
        width = len(header)
        for row in reader if has_header else itertools.chain([header], reader):
            rows += 1
            if rows <= self.sample_rows:
                while len(kinds) < len(row):
                    kinds.append(set())
                    nulls.append(rows > 1)  # a column missing in earlier rows has gaps
                for i, cell in enumerate(row):
                    kind = _cell_kind(cell)
                    if kind is None:
                        nulls[i] = True
                    else:
                        kinds[i].add(kind)
            if len(row) != width:
                ragged += 1
            if rows % 4096 == 0 and raw.tell() > self.max_scan_bytes:
                exact = False
                break
        count = max(width, len(kinds)) if has_header else len(kinds)
        names = [header[i] if has_header and i < width else f"column_{i + 1}" for i in range(count)]
        listed, more = capped(range(count), self.max_columns)
        columns: list[JSONValue] = [
            {
                "name": clean_text(names[i], 200),
                "type": _column_type(kinds[i]) if i < len(kinds) else "null",
                "nullable": nulls[i] if i < len(nulls) else True,
            }
            for i in listed
        ]
        terms = Terms()
        if has_header:
            terms.add(*(names[i] for i in listed))
        return {
            "has_header": has_header,
            "column_count": count,
            "columns": columns,
            "row_count": rows if exact else None,
            "rows_scanned": rows,
            "bytes_scanned": raw.tell(),
            "sample_rows": min(rows, self.sample_rows),
            "ragged_rows": ragged,
            "truncated": more or not exact,
            "terms": terms.as_json(),
        }


class ParquetExtractor:
    """Parquet files: schema, row count and row groups from the footer (no data is read).

    Needs the ``extract-tabular`` extra (pyarrow). Reports ``columns`` (top-level fields with
    their Arrow type and nullability), ``row_count``, ``row_group_count``, ``created_by`` and
    the keys of the file's key-value metadata. A file whose footer is missing or damaged
    raises (pyarrow's :class:`pyarrow.ArrowInvalid`).

    Args:
        max_columns: Columns listed at most (``column_count`` is always exact).
    """

    name = "parquet"
    extensions = frozenset({".parquet", ".pq", ".parq"})
    mime_types = frozenset({"application/vnd.apache.parquet", "application/x-parquet"})
    requires: tuple[str, ...] = ("pyarrow",)

    def __init__(self, *, max_columns: int = MAX_ITEMS) -> None:
        self.max_columns = max_columns

    def extract(self, path: Path) -> dict[str, JSONValue]:
        """Describe the Parquet file at ``path`` (see the class)."""
        import pyarrow.parquet as pq

        with pq.ParquetFile(path) as pf:
            meta = pf.metadata
            schema = pf.schema_arrow
            fields, more = capped(iter(schema), self.max_columns)
            columns: list[JSONValue] = [
                {
                    "name": clean_text(str(f.name), 200),
                    "type": clean_text(str(f.type), 200),
                    "nullable": bool(f.nullable),
                }
                for f in fields
            ]
            terms = Terms()
            terms.add(*(str(f.name) for f in fields))
            keys = [clean_text(k.decode("utf-8", "replace"), 200) for k in meta.metadata or {}]
            return {
                "format": "parquet",
                "column_count": len(schema),
                "columns": columns,
                "row_count": int(meta.num_rows),
                "row_group_count": int(meta.num_row_groups),
                "format_version": str(meta.format_version),
                "created_by": json_value(meta.created_by),
                "metadata_keys": json_value(keys),
                "truncated": more or terms.truncated,
                "terms": terms.as_json(),
            }
