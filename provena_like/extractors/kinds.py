"""Which search terms of a file name a column, an attribute, an HDF5 dataset or a variable.

Search can limit a word to one kind of name (``column:temperature``,
``attribute:units``, ``dataset:frames``, ``variable:sst``). :func:`term_kinds` reads the
kinds from the extractors' metadata of one file - the full metadata when results are
attached, or the compact copy the server keeps (migration ``0017`` uses it for results
attached before kinds existed):

| kind | fed by |
|---|---|
| `column` | `tabular` (CSV/TSV with a header row) and `parquet`: the names in `columns` |
| `attribute` | `hdf5`: the attribute names of every group and dataset |
| `attribute` | `netcdf`: the names of the global, group and variable attributes |
| `attribute` | `json`: every key of the schema sketch at any depth (and `keys`) |
| `attribute` | `image`: the keys of PNG text chunks |
| `dataset` | `hdf5`: the name of every dataset (the last part of its path) |
| `variable` | `netcdf`: the name of every variable, and its CF `standard_name` |

Only words that are among the file's search terms are given a kind (a CSV without a header
has no column names to find). Everything else the extractors found - HDF5 and netCDF group
and dimension names, archive members, EXIF fields - stays searchable with ``extracted:``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["term_kinds"]


def _names(items: Any, key: str = "name") -> Iterator[Any]:
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping):
                yield item.get(key)


def _keys(mapping: Any) -> Iterator[Any]:
    if isinstance(mapping, Mapping):
        yield from mapping


def _last_part(path: Any) -> Any:
    return path.rsplit("/", 1)[-1] if isinstance(path, str) else None


def _attributes_of(objects: Any) -> Iterator[Any]:
    if isinstance(objects, list):
        for obj in objects:
            if isinstance(obj, Mapping):
                yield from _keys(obj.get("attributes"))


def _schema_keys(schema: Any, depth: int = 0) -> Iterator[Any]:
    if not isinstance(schema, Mapping) or depth > 64:
        return
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for name, child in properties.items():
            yield name
            yield from _schema_keys(child, depth + 1)
    yield from _schema_keys(schema.get("items"), depth + 1)


def _candidates(extractor: str, meta: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    if extractor in ("tabular", "parquet"):
        for name in _names(meta.get("columns")):
            yield "column", name
    elif extractor == "hdf5":
        for name in _attributes_of(meta.get("groups")):
            yield "attribute", name
        for name in _attributes_of(meta.get("datasets")):
            yield "attribute", name
        for path in _names(meta.get("datasets"), "path"):
            yield "dataset", _last_part(path)
    elif extractor == "netcdf":
        for name in _keys(meta.get("attributes")):
            yield "attribute", name
        for name in _attributes_of(meta.get("groups")):
            yield "attribute", name
        variables = meta.get("variables")
        for name in _attributes_of(variables):
            yield "attribute", name
        for path in _names(variables, "path"):
            yield "variable", _last_part(path)
        if isinstance(variables, list):
            for var in variables:
                attrs = var.get("attributes") if isinstance(var, Mapping) else None
                if isinstance(attrs, Mapping):
                    yield "variable", attrs.get("standard_name")
    elif extractor == "json":
        keys = meta.get("keys")
        if isinstance(keys, list):
            for name in keys:
                yield "attribute", name
        for name in _schema_keys(meta.get("schema")):
            yield "attribute", name
    elif extractor == "image":
        for name in _keys(meta.get("text")):
            yield "attribute", name


def term_kinds(metadata: Mapping[str, Any], terms: Iterable[str]) -> dict[str, list[str]]:
    """The kinds of a file's search terms: kind → the terms of that kind, in first-seen order.

    Args:
        metadata: Extractor name → that extractor's metadata for the file.
        terms: The file's search terms; only these can be given a kind.

    Example:
        ```python
        meta = {"tabular": {"columns": [{"name": "site"}, {"name": "temperature"}]}}
        assert term_kinds(meta, ["site", "temperature"]) == {"column": ["site", "temperature"]}
        assert term_kinds(meta, ["site"]) == {"column": ["site"]}
        ```
    """
    known = set(terms)
    found: dict[str, dict[str, None]] = {}
    for extractor, meta in metadata.items():
        if not isinstance(meta, Mapping):
            continue
        for kind, name in _candidates(extractor, meta):
            if not isinstance(name, str):
                continue
            term = name.strip()
            if term in known:
                found.setdefault(kind, {})[term] = None
    return {kind: list(names) for kind, names in found.items()}
