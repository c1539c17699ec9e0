"""The extractor contract and the registry of extractors (entry points).

An extractor reads one local file and returns JSON-serialisable metadata. Extractors are
classes registered as entry points in the group ``provena_like.extractors``
(``[project.entry-points."provena_like.extractors"]`` in ``pyproject.toml``, value
``module:Class``); they are instantiated with no arguments. An extractor declares the file
types it reads (``extensions``, ``mime_types``; both empty: every file) and the top-level
modules it needs (``requires``): when one is missing, files it would read are reported as
skipped (extractor unavailable), never as failed.

Extractors import nothing from the SDK or the server: they are plain code over a local file,
run by :class:`provena_like.crawler.ExtractionRunner` in worker processes.

Example:
    ```python
    from provena_like.extractors import available_extractors

    extractors = available_extractors()
    assert "basic" in extractors
    ```
"""

from __future__ import annotations

import importlib.util
import logging
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

from typing_extensions import TypeAliasType

__all__ = [
    "ENTRY_POINT_GROUP",
    "Extractor",
    "JSONValue",
    "available_extractors",
    "handles",
    "missing_requirements",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "provena_like.extractors"
"""The entry-point group extractors register under."""

JSONValue = TypeAliasType(
    "JSONValue",
    "str | int | float | bool | None | list[JSONValue] | dict[str, JSONValue]",
)
"""A JSON-serialisable value (a named recursive alias: pydantic and mypy both follow it)."""


@runtime_checkable
class Extractor(Protocol):
    """What every extractor is.

    Attributes:
        name: The entry-point name, e.g. ``"tabular"``.
        extensions: Lower-case suffixes with the dot, e.g. ``{".csv", ".tsv"}``.
        mime_types: e.g. ``{"text/csv"}``.
        requires: Top-level modules needed (``("pyarrow",)``); ``()`` if none.
    """

    name: str
    extensions: frozenset[str]
    mime_types: frozenset[str]
    requires: tuple[str, ...]

    def extract(self, path: Path) -> dict[str, JSONValue]:
        """Read ``path`` and return its metadata (JSON-serialisable).

        Raise any exception for an unreadable or corrupt file. The optional key ``"terms"``
        (a list of strings) holds words worth indexing for search (column names,
        dataset/variable names, attribute names).
        """
        ...


def handles(extractor: Extractor, extension: str, mime_type: str | None) -> bool:
    """Whether ``extractor`` reads a file of this extension (or MIME type).

    An extractor that declares neither extensions nor MIME types reads every file.

    Example:
        ```python
        from provena_like.extractors.basic import BasicExtractor

        assert handles(BasicExtractor(), ".anything", None)
        ```
    """
    if not extractor.extensions and not extractor.mime_types:
        return True
    if extension.lower() in extractor.extensions:
        return True
    return mime_type is not None and mime_type in extractor.mime_types


def missing_requirements(extractor: Extractor) -> list[str]:
    """The modules in ``extractor.requires`` that cannot be imported here.

    Example:
        ```python
        from provena_like.extractors.basic import BasicExtractor

        assert missing_requirements(BasicExtractor()) == []
        ```
    """
    return [name for name in extractor.requires if importlib.util.find_spec(name) is None]


def available_extractors() -> dict[str, Extractor]:
    """Every extractor registered as an entry point, by name (sorted).

    An entry point that fails to load is logged and left out; one whose ``requires`` are
    missing is kept (the runner reports its files as skipped).

    Example:
        ```python
        names = sorted(available_extractors())
        ```
    """
    found: dict[str, Extractor] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            cls = ep.load()
            extractor = cls()
        except Exception as err:  # noqa: BLE001 - a broken plug-in must not stop the others
            log.warning("extractor %s could not be loaded: %s", ep.name, err)
            continue
        found[ep.name] = extractor
    return found
