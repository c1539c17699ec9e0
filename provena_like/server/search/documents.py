"""What the index holds for one registry item: a few text fields, derived from the item row.

A record is flattened generically, so a new subtype (datasets with their nested collection
metadata included) is searchable without code here: every string (and number) leaf of the
record is text. Leaves under a key in :data:`BOOSTED_KEYS` (``name``, ``title``, ``keywords``,
...) at any depth go to the ``keywords`` field, which ranks above the rest of the record.

Fields, best-ranked first: ``display_name``, ``keywords``, ``extracted`` (the search terms
of a dataset's committed extraction run: column names, attribute names and values, HDF5
dataset names... see :mod:`provena_like.server.extracted`), ``record`` (every other leaf),
``subtype``, ``owner``. Highlights are reported under the same names.

Beside them, a dataset's document holds its extracted terms per kind of name (a column, an
attribute, an HDF5 dataset, a netCDF variable: :data:`~provena_like.models.extracted.SearchKind`)
in the fields :data:`KIND_FIELDS`, for ``column:temperature`` and its kin. They are for
matching only: they don't rank and aren't highlighted (a match is marked in ``extracted``),
and every word in them is in ``extracted`` too (:class:`SearchText` makes sure of it).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from provena_like.models.extracted import SEARCH_KINDS

__all__ = [
    "BOOSTED_KEYS",
    "FIELDS",
    "KINDS",
    "KIND_FIELDS",
    "MARK_END",
    "MARK_START",
    "SearchDocument",
    "SearchText",
    "document_for",
    "kind_field",
    "render_highlight",
]

FIELDS: tuple[str, ...] = ("display_name", "keywords", "record", "subtype", "owner", "extracted")
"""The indexed fields, in index column order."""

KINDS: tuple[str, ...] = SEARCH_KINDS
"""The kinds of extracted names a term can be limited to (``column:``, ``attribute:``...)."""


def kind_field(kind: str) -> str:
    """The index field of a kind's terms: ``extracted_column`` for ``column``."""
    return f"extracted_{kind}"


KIND_FIELDS: tuple[str, ...] = tuple(kind_field(kind) for kind in KINDS)
"""The index fields of the kinds, in index column order (after :data:`FIELDS`)."""

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
    kinds: Mapping[str, str] = field(default_factory=dict)

    def fields(self) -> dict[str, str]:
        """Field name → text, in :data:`FIELDS` order."""
        return {name: getattr(self, name) for name in FIELDS}

    def kind_fields(self) -> dict[str, str]:
        """Kind field name → text (``""``: no terms of the kind), in :data:`KIND_FIELDS` order."""
        return {kind_field(kind): self.kinds.get(kind, "") for kind in KINDS}


class SearchText:
    """The search text of an extraction run, built from its files' terms and kinds.

    :attr:`text` is the run's distinct terms joined, at most :data:`MAX_FIELD_CHARS` (a
    term that would pass it is left out); :attr:`kinds` is the same per kind, made only of
    terms in :attr:`text`, so a word of a kind is always a word of ``extracted`` too.

    Example:
        ```python
        text = SearchText()
        text.add(["site", "temperature", "units"], {"column": ["site", "temperature"]})
        text.text    # 'site · temperature · units'
        text.kinds   # {'column': 'site · temperature'}
        ```
    """

    def __init__(self) -> None:
        self._seen: dict[str, None] = {}
        self._length = 0
        self._kinds: dict[str, dict[str, None]] = {kind: {} for kind in KINDS}

    def add(self, terms: Iterable[str], kinds: Mapping[str, Iterable[str]]) -> None:
        """Add one file's terms and its kinds (kind → terms of that kind)."""
        for term in terms:
            if term in self._seen or self._length + len(term) > MAX_FIELD_CHARS:
                continue
            self._seen[term] = None
            self._length += len(term) + len(SEPARATOR)
        for kind, names in kinds.items():
            of_kind = self._kinds.get(kind)
            if of_kind is not None:
                of_kind.update((name, None) for name in names if name in self._seen)

    @property
    def count(self) -> int:
        """How many distinct terms :attr:`text` holds."""
        return len(self._seen)

    @property
    def text(self) -> str:
        """The distinct terms, joined."""
        return SEPARATOR.join(self._seen)

    @property
    def kinds(self) -> dict[str, str]:
        """Kind → its distinct terms, joined (kinds without terms left out)."""
        return {kind: SEPARATOR.join(names) for kind, names in self._kinds.items() if names}


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
    kinds: Mapping[str, str] | None = None,
) -> SearchDocument:
    """The index document of an item.

    ``extracted`` is the text of a dataset's extracted search terms (``""``: none), and
    ``kinds`` the same per kind of name (:attr:`SearchText.kinds`).

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
        kinds={
            kind: _clean(text)[:MAX_FIELD_CHARS]
            for kind, text in (kinds or {}).items()
            if kind in KINDS and text
        },
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
