"""What the index holds for one registry item: a few text fields, derived from the item row.

A record is flattened generically, so a new subtype (datasets with their nested collection
metadata included) is searchable without code here: every string (and number) leaf of the
record is text. Leaves under a key in :data:`BOOSTED_KEYS` (``name``, ``title``, ``keywords``,
...) at any depth go to the ``keywords`` field, which ranks above the rest of the record.

Fields, best-ranked first: ``display_name``, ``keywords``, ``extracted`` (the search terms
of a dataset's committed extraction run: column names, attribute names and values, HDF5
dataset names... see :mod:`provena_like.server.extracted`), ``record`` (every other leaf),
``subtype``, ``owner``. Highlights are reported under the same names.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BOOSTED_KEYS",
    "FIELDS",
    "MARK_END",
    "MARK_START",
    "SearchDocument",
    "document_for",
    "render_highlight",
]

FIELDS: tuple[str, ...] = ("display_name", "keywords", "record", "subtype", "owner", "extracted")
"""The indexed fields, in index column order."""

BOOSTED_KEYS = frozenset({"name", "title", "keywords", "keyword", "tags", "tag"})
"""Record keys whose values rank like keywords."""

MARK_START = "\ue000"
"""Private-use character the database puts before a matched word (never indexed text)."""

MARK_END = "\ue001"
"""Private-use character the database puts after a matched word."""

MAX_FIELD_CHARS = 100_000
"""Text beyond this many characters per field is not indexed."""

SEPARATOR = " · "

_UNWANTED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ue000\ue001]")


@dataclass(frozen=True)
class SearchDocument:
    """The indexed text of one item; ``seq`` (the handle number) is the key."""

    seq: int
    display_name: str
    keywords: str
    record: str
    subtype: str
    owner: str
    extracted: str = ""

    def fields(self) -> dict[str, str]:
        """Field name → text, in :data:`FIELDS` order."""
        return {name: getattr(self, name) for name in FIELDS}


def _clean(text: str) -> str:
    return _UNWANTED.sub(" ", text).strip()


def _leaves(value: Any, key: str | None) -> Iterator[tuple[str | None, str]]:
    """``(nearest key, text)`` for every string or number leaf under ``value``."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, str(k))
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _leaves(v, key)
    elif isinstance(value, str):
        text = _clean(value)
        if text:
            yield key, text
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield key, str(value)


def _join(parts: list[str]) -> str:
    return SEPARATOR.join(parts)[:MAX_FIELD_CHARS]


def document_for(
    seq: int,
    display_name: str,
    subtype: str,
    owner: str,
    record: dict[str, Any],
    extracted: str = "",
) -> SearchDocument:
    """The index document of an item.

    ``extracted`` is the text of a dataset's extracted search terms (``""``: none).

    Example:
        ```python
        doc = document_for(7, "Reef survey", "dataset", "alice",
                           {"dataset_info": {"name": "Reef survey", "keywords": ["coral"],
                                             "description": "Transects of the outer reef."}})
        doc.keywords  # 'Reef survey · coral'
        doc.record    # 'Transects of the outer reef.'
        ```
    """
    boosted: list[str] = []
    rest: list[str] = []
    for key, text in _leaves(record, None):
        (boosted if key is not None and key.casefold() in BOOSTED_KEYS else rest).append(text)
    return SearchDocument(
        seq=seq,
        display_name=_clean(display_name)[:MAX_FIELD_CHARS],
        keywords=_join(boosted),
        record=_join(rest),
        subtype=_clean(subtype),
        owner=_clean(owner),
        extracted=_clean(extracted)[:MAX_FIELD_CHARS],
    )


def render_highlight(marked: str | None) -> str | None:
    """HTML for a database highlight: the text escaped, matches in ``<mark>`` elements.

    Returns None when nothing in ``marked`` matched. Escaping first means a record holding
    ``<script>`` comes back as text; the only markup in a highlight is ``<mark>``.
    """
    if not marked or MARK_START not in marked:
        return None
    escaped = html.escape(marked, quote=False)
    return escaped.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")
