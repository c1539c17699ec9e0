"""SQLite FTS5 backend: one virtual table ``search_fts`` keyed by the item's handle number.

``search_fts`` has one column per indexed field (:data:`~.documents.FIELDS`) and its
``rowid`` is ``registry_items.seq``. The ``unicode61`` tokenizer with ``remove_diacritics 2``
folds case and accents (``Café`` matches ``cafe``); prefix indexes of 2 and 3 characters
make ``temp*`` cheap. Ranking is ``bm25`` with per-column weights (display name 10,
keywords 5, extracted terms 3, subtype 2, record and owner 1, kinds 0), negated so that higher is
better; ``highlight()`` and ``snippet()`` mark the matches.

The user's query is compiled to an FTS5 query string in which every term is a double-quoted
string (``"`` doubled), so operators and punctuation typed by the user are only ever text;
the string itself is a bound parameter. A term limited to a field (``extracted:temperature``)
gets an FTS5 column filter, ``{extracted} : "temperature"``, whose column name comes from
:data:`~.documents.FIELDS`, never from the user's text.

The kinds of extracted names have columns of their own after those
(:data:`~.documents.KIND_FIELDS`: ``extracted_column``...), weighted 0 so that they never
change a score. A term of a kind, ``column:temperature``, must match in its kind's column
*and* in ``extracted``: ``({extracted_column} : "temperature" AND {extracted} :
"temperature")``. The second test adds nothing to the match (every word of a kind is in
``extracted``) but ranks the hit as ``extracted:temperature`` would and marks the word in
the ``extracted`` highlight.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Double,
    Executable,
    FromClause,
    Integer,
    Select,
    Text,
    TextClause,
    and_,
    cast,
    column,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.orm import InstrumentedAttribute

from provena_like.server.search.documents import (
    FIELDS,
    KIND_FIELDS,
    KINDS,
    MARK_END,
    MARK_START,
    SearchDocument,
    kind_field,
)
from provena_like.server.search.query import ParsedQuery, Term

__all__ = ["SQLiteFTS", "match_expression"]

COLUMNS = (*FIELDS, *KIND_FIELDS)
"""The columns of ``search_fts``, in order."""

FTS = table("search_fts", column("rowid", Integer), *(column(name, Text) for name in COLUMNS))
_FTS: ColumnElement[Any] = literal_column("search_fts")

_WEIGHTS = {
    "display_name": 10.0,
    "keywords": 5.0,
    "record": 1.0,
    "subtype": 2.0,
    "owner": 1.0,
    "extracted": 3.0,
    **dict.fromkeys(KIND_FIELDS, 0.0),
}

_CREATE = f"""
CREATE VIRTUAL TABLE search_fts USING fts5(
    {", ".join(COLUMNS)},
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
)
"""

_CONTAINERS = ("object", "array")

# Short fields are shown whole, long ones as the best fragment (in tokens).
_SNIPPET_TOKENS = {"keywords": 16, "record": 24, "extracted": 16}


def _string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _term(term: Term) -> str:
    phrase = _string(term.text) + ("*" if term.prefix else "")
    if term.field is None:
        return phrase
    if term.field in KINDS:
        kind = f"{{{kind_field(term.field)}}} : {phrase}"
        return kind if term.negated else f"({kind} AND {{extracted}} : {phrase})"
    if term.field not in FIELDS:  # the parser scopes to index fields and kinds only
        raise ValueError(f"not an index field: {term.field!r}")
    return f"{{{term.field}}} : {phrase}"


def match_expression(query: ParsedQuery) -> str:
    """The FTS5 query string for ``query``: every term quoted, operators added here only.

    Example:
        ```python
        match_expression(parse_query('ocean "sea ice" -coral OR reef*'))
        # '(("ocean" AND "sea ice") NOT ("coral")) OR ("reef"*)'
        match_expression(parse_query("extracted:temp* -extracted:kelvin"))
        # '(({extracted} : "temp"*) NOT ({extracted} : "kelvin"))'
        match_expression(parse_query("column:temp -attribute:temp"))
        # '((({extracted_column} : "temp" AND {extracted} : "temp")) NOT
        #   ({extracted_attribute} : "temp"))'
        ```
    """
    alternatives = []
    for alternative in query.alternatives:
        positive = " AND ".join(_term(t) for t in alternative if not t.negated)
        negative = " OR ".join(_term(t) for t in alternative if t.negated)
        clause = f"({positive})"
        if negative:
            clause = f"({clause} NOT ({negative}))"
        alternatives.append(clause)
    return " OR ".join(alternatives)


def _match(query: ParsedQuery) -> ColumnElement[bool]:
    return _FTS.op("MATCH", is_comparison=True)(literal(match_expression(query), Text))


class SQLiteFTS:
    """The SQLite FTS5 search backend."""

    name = "sqlite"

    def create_ddl(self) -> list[TextClause]:
        """The FTS5 virtual table (its shadow tables come with it)."""
        return [text(_CREATE)]

    def drop_ddl(self) -> list[TextClause]:
        """Drop the virtual table and its shadow tables."""
        return [text("DROP TABLE IF EXISTS search_fts")]

    def upsert(self, doc: SearchDocument) -> list[Executable]:
        """``INSERT OR REPLACE`` by rowid (FTS5 has no ``ON CONFLICT`` upsert)."""
        values = {**doc.fields(), **doc.kind_fields()}
        return [insert(FTS).prefix_with("OR REPLACE").values(rowid=doc.seq, **values)]

    def clear(self) -> list[Executable]:
        """Empty the index."""
        return [delete(FTS)]

    def ranked(self, query: ParsedQuery) -> FromClause:
        """Matches with ``score = -bm25(...)``, computed once per query (materialized CTE)."""
        weights: list[ColumnElement[float]] = [
            literal_column(repr(_WEIGHTS[name])) for name in COLUMNS
        ]
        score: ColumnElement[float] = -func.bm25(_FTS, *weights, type_=Double())
        matches = select(FTS.c.rowid.label("seq"), score.label("score")).where(_match(query))
        return matches.cte("search_matches").prefix_with("MATERIALIZED")

    def highlights(self, query: ParsedQuery, seqs: Sequence[int]) -> Select[tuple[object, ...]]:
        """``highlight()`` of the short fields, ``snippet()`` of the long ones."""
        marks = (literal(MARK_START, Text), literal(MARK_END, Text))
        columns: list[ColumnElement[Any]] = []
        for index, name in enumerate(FIELDS):
            position = literal(index, Integer)
            tokens = _SNIPPET_TOKENS.get(name)
            if tokens is None:
                fn = func.highlight(_FTS, position, *marks, type_=Text())
            else:
                ellipsis = literal("…", Text)
                fn = func.snippet(_FTS, position, *marks, ellipsis, tokens, type_=Text())
            columns.append(fn.label(name))
        return select(FTS.c.rowid.label("seq"), *columns).where(
            _match(query), FTS.c.rowid.in_(list(seqs))
        )

    def finish_highlight(self, query: ParsedQuery, name: str, value: str | None) -> str | None:
        """FTS5 marked the matches already."""
        del query, name
        return value

    def field_filter(
        self,
        record: ColumnElement[Any] | InstrumentedAttribute[Any],
        path: tuple[str, ...],
        value: str,
    ) -> ColumnElement[bool]:
        """An array at ``path``: ``json_each`` over it; anything else: ``json_extract``."""
        json_path = literal("$" + "".join(f'."{key}"' for key in path), Text)
        kind = func.json_type(record, json_path)
        each = func.json_each(record, json_path).table_valued("value", "type")
        element = exists(
            select(literal(1))
            .select_from(each)
            .where(each.c.type.not_in(_CONTAINERS), cast(each.c.value, Text) == value)
        )
        scalar = cast(func.json_extract(record, json_path), Text) == value
        return or_(
            and_(kind == "array", element),
            and_(kind.not_in(_CONTAINERS), scalar),
        )
