"""JSON and JSON-lines files: top-level keys and a bounded schema sketch (entry point ``json``).

A ``.json`` file up to ``max_bytes`` is parsed whole (a syntax error raises); a larger one is
not parsed: only its top-level type (from its first character) is reported, with
``parsed: false``. A JSON-lines file (``.jsonl``, ``.ndjson``) has its first ``sample_lines``
records parsed (a bad one raises) and its records counted up to ``max_scan_bytes``. Both may be
gzip/bzip2/xz-compressed.

The schema sketch is JSON-Schema-like: ``{"type": "object", "properties": {...}}``,
``{"type": "array", "items": {...}}``, ``{"type": "integer"}``; a value seen with several
types gets a list (``{"type": ["integer", "null"]}``). It is cut at ``max_depth`` levels and
``max_keys`` properties per object, and array items are sketched from the first
``max_items_sampled`` elements. All property names in the sketch are ``terms``.
"""

from __future__ import annotations

import json
from pathlib import Path

from provena_like.extractors._common import (
    JSONValue,
    Terms,
    bounded_lines,
    capped,
    clean_text,
    compression_of,
    inner_suffix,
    open_binary,
)

__all__ = ["JsonExtractor"]

_LINES_SUFFIXES = frozenset({".jsonl", ".ndjson"})
_FIRST_CHAR = {b"{": "object", b"[": "array", b'"': "string", b"t": "boolean", b"f": "boolean"}
_FIRST_CHAR |= {b"n": "null", b"-": "number"} | {bytes([c]): "number" for c in b"0123456789"}


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


class _Sketch:
    """The merged shape of the values seen at one place of a document."""

    def __init__(self) -> None:
        self.types: set[str] = set()
        self.properties: dict[str, _Sketch] = {}
        self.items: _Sketch | None = None
        self.cut = False  # properties (or deeper levels) left out

    def as_json(self) -> dict[str, JSONValue]:
        types = set(self.types)
        if {"integer", "number"} <= types:
            types.discard("integer")
        names = sorted(types)
        out: dict[str, JSONValue] = {"type": names[0] if len(names) == 1 else list(names)}
        if self.properties:
            out["properties"] = {k: v.as_json() for k, v in self.properties.items()}
        if self.items is not None and self.items.types:
            out["items"] = self.items.as_json()
        if self.cut:
            out["truncated"] = True
        return out


class JsonExtractor:
    """JSON documents and JSON-lines files: top-level keys, counts and a schema sketch.

    Args:
        max_bytes: A ``.json`` file larger than this (after decompression) is not parsed; a
            JSON-lines line longer than this raises :class:`ValueError`.
        sample_lines: JSON-lines records parsed for the sketch.
        max_scan_bytes: Bytes of a JSON-lines file read at most to count its records.
        max_keys: Properties sketched per object (and top-level keys listed).
        max_depth: Levels of nesting sketched.
        max_items_sampled: Elements of each array sketched.

    Example:
        ```python
        import json
        from pathlib import Path

        from provena_like.extractors.jsonfile import JsonExtractor

        Path("site.json").write_text(json.dumps({"site": "A", "depths": [1.5, 3]}))
        meta = JsonExtractor().extract(Path("site.json"))
        assert meta["keys"] == ["site", "depths"]
        assert meta["schema"]["properties"]["depths"] == {
            "type": "array",
            "items": {"type": "number"},
        }
        ```
    """

    name = "json"
    extensions = frozenset({".json", ".geojson", *_LINES_SUFFIXES})
    mime_types = frozenset(
        {"application/json", "application/geo+json", "application/x-ndjson", "application/jsonl"}
    )
    requires: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        max_bytes: int = 32 * 1024 * 1024,
        sample_lines: int = 1000,
        max_scan_bytes: int = 256 * 1024 * 1024,
        max_keys: int = 200,
        max_depth: int = 6,
        max_items_sampled: int = 50,
    ) -> None:
        self.max_bytes = max_bytes
        self.sample_lines = sample_lines
        self.max_scan_bytes = max_scan_bytes
        self.max_keys = max_keys
        self.max_depth = max_depth
        self.max_items_sampled = max_items_sampled

    def extract(self, path: Path) -> dict[str, JSONValue]:
        """Describe the JSON or JSON-lines file at ``path`` (see the module)."""
        compression = compression_of(path)
        lines = inner_suffix(path) in _LINES_SUFFIXES
        result = self._lines(path, compression) if lines else self._document(path, compression)
        if compression:
            result["compression"] = compression
        return result

    def _document(self, path: Path, compression: str | None) -> dict[str, JSONValue]:
        with open_binary(path, compression) as f:
            data = f.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            top = _FIRST_CHAR.get(data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")[:1])
            if top is None:
                raise ValueError("not JSON: unexpected first character")
            return {"format": "json", "parsed": False, "top_level": top, "truncated": True}
        value = json.loads(data)
        sketch = _Sketch()
        self._add(sketch, value, 0)
        result: dict[str, JSONValue] = {
            "format": "json",
            "parsed": True,
            "top_level": _type_name(value),
        }
        if isinstance(value, dict):
            keys, _ = capped(value, self.max_keys)
            result["key_count"] = len(value)
            result["keys"] = [clean_text(k, 200) for k in keys]
        elif isinstance(value, list):
            result["length"] = len(value)
        return self._finish(result, sketch)

    def _lines(self, path: Path, compression: str | None) -> dict[str, JSONValue]:
        sketch = _Sketch()
        keys: dict[str, None] = {}
        records = 0
        exact = True
        with open_binary(path, compression) as f:
            for number, line in enumerate(bounded_lines(f, self.max_bytes), 1):
                if not line.strip():
                    continue
                records += 1
                if records <= self.sample_lines:
                    try:
                        value = json.loads(line)
                    except ValueError as err:
                        raise ValueError(f"line {number}: not JSON ({err})") from err
                    self._add(sketch, value, 0)
                    if isinstance(value, dict):
                        keys.update(dict.fromkeys(value))
                elif records % 4096 == 0 and f.tell() > self.max_scan_bytes:
                    exact = False
                    break
        listed, more = capped(keys, self.max_keys)
        result: dict[str, JSONValue] = {
            "format": "jsonl",
            "record_count": records if exact else None,
            "records_scanned": records,
            "sample_records": min(records, self.sample_lines),
            "keys": [clean_text(k, 200) for k in listed],
        }
        return self._finish(result, sketch, truncated=more or not exact)

    def _finish(
        self, result: dict[str, JSONValue], sketch: _Sketch, *, truncated: bool = False
    ) -> dict[str, JSONValue]:
        terms = Terms()
        cut = self._terms(sketch, terms)
        result["schema"] = sketch.as_json() if sketch.types else None
        result["truncated"] = truncated or cut or terms.truncated
        result["terms"] = terms.as_json()
        return result

    def _terms(self, sketch: _Sketch, terms: Terms) -> bool:
        """Add every property name in ``sketch`` to ``terms``; whether any level was cut."""
        terms.add(*sketch.properties)
        cut = sketch.cut
        for child in (*sketch.properties.values(), sketch.items):
            if child is not None:
                cut = self._terms(child, terms) or cut
        return cut

    def _add(self, sketch: _Sketch, value: object, depth: int) -> None:
        """Merge the shape of ``value`` into ``sketch`` (bounded by depth, keys and items)."""
        sketch.types.add(_type_name(value))
        if not isinstance(value, dict | list):
            return
        if depth >= self.max_depth:
            sketch.cut = sketch.cut or bool(value)
            return
        if isinstance(value, list):
            if sketch.items is None:
                sketch.items = _Sketch()
            for item in value[: self.max_items_sampled]:
                self._add(sketch.items, item, depth + 1)
            return
        for key, child in value.items():
            name = clean_text(str(key), 200)
            if name not in sketch.properties:
                if len(sketch.properties) >= self.max_keys:
                    sketch.cut = True
                    continue
                sketch.properties[name] = _Sketch()
            self._add(sketch.properties[name], child, depth + 1)
