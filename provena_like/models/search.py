"""Wire models of the search service: ranked hits over registry items."""

from __future__ import annotations

from pydantic import Field

from provena_like.models.registry import Item
from provena_like.models.shared import WireModel

__all__ = ["HIGHLIGHT_FIELDS", "ReindexResult", "SearchHit"]

HIGHLIGHT_FIELDS: tuple[str, ...] = ("display_name", "keywords", "record", "subtype", "owner")
"""The indexed fields, best-ranked first; highlights are keyed by these names.

``keywords`` holds the record's ``name``, ``title``, ``keywords`` and ``tags`` values (at any
depth), ``record`` every other text or number in the record.
"""


class SearchHit(WireModel):
    """One search result: the item (with the caller's ``roles``), its score and highlights.

    ``score`` is higher for better matches and only comparable within one search.
    ``highlights`` maps a field (:data:`HIGHLIGHT_FIELDS`) to its text or a fragment of it
    with each match inside ``<mark>…</mark>``; the text is HTML-escaped, so ``<mark>`` is the
    only markup. Fields without a match are left out.
    """

    item: Item
    score: float
    highlights: dict[str, str] = Field(default_factory=dict)


class ReindexResult(WireModel):
    """The outcome of rebuilding the search index (``POST /search/reindex``)."""

    indexed: int = Field(description="items now in the index")
    seconds: float = Field(description="time the rebuild took")
