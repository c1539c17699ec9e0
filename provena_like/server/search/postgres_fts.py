"""PostgreSQL backend: a side table ``search_documents`` with a weighted ``tsvector``.

One row per item (``item_seq`` → ``registry_items.seq``, cascading), holding each field's
text (to highlight) and ``document``, the concatenation of the fields' vectors with weights
A (display name), B (keywords), C (subtype, owner, extracted terms) and D (the rest of the
record), under a
GIN index. Ranking is ``ts_rank_cd`` with weights ``{D 0.1, C 0.2, B 0.4, A 1.0}`` and length
normalisation 1.

Words, not PostgreSQL tokens: the default parser keeps URLs, e-mail addresses and paths
whole and drops text between XML tags, so a word inside ``https://example.org/reef`` could
not be found. Text is therefore reduced to its words (:func:`~.highlight.words_only`) before
``to_tsvector`` and ``phraseto_tsquery``, and matches are marked in Python
(:func:`~.highlight.mark_matches`) instead of by ``ts_headline`` - the same notion of a word
as FTS5's ``unicode61``. The ``provena_search`` configuration made by the migration is a copy
of ``simple`` (no stemming, no stop words) whose words also pass through ``unaccent`` when
that extension can be installed, so ``Café`` matches ``cafe``.

Queries are built from functions over bound parameters - ``phraseto_tsquery`` for words and
phrases, ``to_tsquery`` only for a prefix word made of letters and digits, combined with
``tsquery_and/or/not/phrase`` - so no user text is ever parsed as ``tsquery`` syntax.

A term limited to a field (``extracted:temperature``) is tested on that field's own vector
(``extracted_vector``, the field's words without weights, kept beside ``document``): weight C
is shared by other fields, so a weight-restricted ``tsquery`` could not tell them apart. A
term of a kind of extracted name (``column:temperature``) is tested the same way on its
kind's vector (``column_vector``...); its words are in ``document`` too (as ``extracted``),
so the GIN test of the unscoped query still finds every candidate, and a hit ranks as
``extracted:temperature`` would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Double,
    Executable,
    FromClause,
    Select,
    Text,
    TextClause,
    and_,
    case,
    cast,
    column,
    delete,
    exists,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR, insert
from sqlalchemy.orm import InstrumentedAttribute

from provena_like.server.search.documents import FIELDS, KINDS, SearchDocument
from provena_like.server.search.highlight import mark_matches, words_only
from provena_like.server.search.query import ParsedQuery, Term

__all__ = ["VECTOR_OF", "PostgresFTS", "exact_match", "tsquery"]

VECTOR_OF: dict[str, str] = {
    "extracted": "extracted_vector",
    **{kind: f"{kind}_vector" for kind in KINDS},
}
"""What a term can be limited to (:data:`~.query.SCOPES`) → the column of its own vector."""

DOCS = table(
    "search_documents",
    column("item_seq", BigInteger),
    *(column(name, Text) for name in FIELDS),
    column("document", TSVECTOR),
    *(column(name, TSVECTOR) for name in VECTOR_OF.values()),
)

CONFIG_NAME = "provena_search"
_CONFIG: ColumnElement[Any] = literal_column(f"'{CONFIG_NAME}'::regconfig")
_RANK_WEIGHTS: ColumnElement[Any] = literal_column("'{0.1, 0.2, 0.4, 1.0}'::float4[]")
_WEIGHT_OF = {
    "display_name": "A",
    "keywords": "B",
    "subtype": "C",
    "owner": "C",
    "record": "D",
    "extracted": "C",
}

_VECTOR_COLUMNS = ",\n        ".join(
    f"{column} TSVECTOR NOT NULL DEFAULT ''::tsvector" for column in VECTOR_OF.values()
)

_CREATE = [
    f"""
    CREATE TABLE search_documents (
        item_seq BIGINT PRIMARY KEY REFERENCES registry_items (seq) ON DELETE CASCADE,
        display_name TEXT NOT NULL,
        keywords TEXT NOT NULL,
        record TEXT NOT NULL,
        subtype TEXT NOT NULL,
        owner TEXT NOT NULL,
        extracted TEXT NOT NULL DEFAULT '',
        document TSVECTOR NOT NULL,
        {_VECTOR_COLUMNS}
    )
    """,
    "CREATE INDEX ix_search_documents_document ON search_documents USING GIN (document)",
    # unaccent is a trusted extension (PG 13+); without it search still works, accent-exact.
    """
    DO $$ BEGIN
        CREATE EXTENSION IF NOT EXISTS unaccent;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'unaccent is not available: search will not fold accents';
    END $$
    """,
    f"CREATE TEXT SEARCH CONFIGURATION {CONFIG_NAME} (COPY = pg_catalog.simple)",
    f"""
    DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'unaccent') THEN
            ALTER TEXT SEARCH CONFIGURATION {CONFIG_NAME}
                ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword,
                    hword_part, numword, numhword, hword_numpart WITH unaccent, simple;
        END IF;
    END $$
    """,
]

_DROP = [
    "DROP TABLE IF EXISTS search_documents",
    f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {CONFIG_NAME}",
]

# Short fields are shown whole, long ones as the best fragment (in words).
_WINDOW = {"keywords": 16, "record": 24, "extracted": 16}


def _fn(name: str, *args: Any) -> ColumnElement[Any]:
    return getattr(func, name)(*args, type_=TSQUERY())  # type: ignore[no-any-return]


def _term(term: Term) -> ColumnElement[Any]:
    words = term.words
    if not term.prefix:
        return _fn("phraseto_tsquery", _CONFIG, literal(words_only(term.text), Text))
    # Only letters and digits reach to_tsquery, so the ':*' is the only syntax in it.
    last = _fn("to_tsquery", _CONFIG, literal(words[-1] + ":*", Text))
    if len(words) == 1:
        return last
    head = _fn("phraseto_tsquery", _CONFIG, literal(" ".join(words[:-1]), Text))
    return _fn("tsquery_phrase", head, last)


def _all(name: str, parts: list[ColumnElement[Any]]) -> ColumnElement[Any]:
    result = parts[0]
    for part in parts[1:]:
        result = _fn(name, result, part)
    return result


def tsquery(query: ParsedQuery) -> ColumnElement[Any]:
    """The ``tsquery`` expression of a parsed query (every piece of user text bound)."""
    alternatives = []
    for alternative in query.alternatives:
        parts = [_term(t) for t in alternative if not t.negated]
        parts += [_fn("tsquery_not", _term(t)) for t in alternative if t.negated]
        alternatives.append(_all("tsquery_and", parts))
    return _all("tsquery_or", alternatives)


def _words_vector(value: str) -> ColumnElement[Any]:
    return func.to_tsvector(_CONFIG, literal(words_only(value), Text), type_=TSVECTOR())


def _matches(vector: ColumnElement[Any], term: Term) -> ColumnElement[bool]:
    found: ColumnElement[bool] = vector.op("@@", is_comparison=True)(_term(term))
    return not_(found) if term.negated else found


def exact_match(query: ParsedQuery) -> ColumnElement[bool]:
    """Every term of ``query`` tested on its own: a scoped one on its field's vector.

    Not served by the GIN index on its own: :meth:`PostgresFTS.ranked` puts the indexed
    ``document @@`` test of :meth:`~.query.ParsedQuery.unscoped` beside it.
    """
    alternatives = []
    for alternative in query.alternatives:
        tests = []
        for t in alternative:
            vector = DOCS.c.document if t.field is None else DOCS.c[VECTOR_OF[t.field]]
            tests.append(_matches(vector, t))
        alternatives.append(and_(*tests))
    return or_(*alternatives)


def _vector(doc: SearchDocument) -> ColumnElement[Any]:
    vector: ColumnElement[Any] | None = None
    for name, value in doc.fields().items():
        part = func.setweight(
            _words_vector(value),
            literal_column(f"'{_WEIGHT_OF[name]}'"),  # a constant of type "char"
            type_=TSVECTOR(),
        )
        vector = part if vector is None else vector.op("||", return_type=TSVECTOR())(part)
    assert vector is not None
    return vector


class PostgresFTS:
    """The PostgreSQL full-text search backend."""

    name = "postgresql"

    def create_ddl(self) -> list[TextClause]:
        """The side table, its GIN index and the text search configuration."""
        return [text(stmt) for stmt in _CREATE]

    def drop_ddl(self) -> list[TextClause]:
        """Drop the side table and the configuration (``unaccent`` stays installed)."""
        return [text(stmt) for stmt in _DROP]

    def upsert(self, doc: SearchDocument) -> list[Executable]:
        """``INSERT ... ON CONFLICT (item_seq) DO UPDATE``."""
        texts = {"extracted": doc.extracted, **{kind: doc.kinds.get(kind, "") for kind in KINDS}}
        vectors = {column: _words_vector(texts[scope]) for scope, column in VECTOR_OF.items()}
        fields = doc.fields()
        values = {"item_seq": doc.seq, **fields, "document": _vector(doc), **vectors}
        stmt = insert(DOCS).values(**values)
        update = {name: stmt.excluded[name] for name in [*FIELDS, "document", *vectors]}
        return [stmt.on_conflict_do_update(index_elements=["item_seq"], set_=update)]

    def clear(self) -> list[Executable]:
        """Empty the index."""
        return [delete(DOCS)]

    def ranked(self, query: ParsedQuery) -> FromClause:
        """Matches (``document @@ query``, GIN) with ``ts_rank_cd`` as a double.

        With terms limited to a field, the GIN test is of the query without the limits (a
        superset of the matches) and :func:`exact_match` keeps the rows that match it.
        """
        q = tsquery(query.unscoped())
        rank = func.ts_rank_cd(_RANK_WEIGHTS, DOCS.c.document, q, 1)
        stmt = select(DOCS.c.item_seq.label("seq"), cast(rank, Double()).label("score")).where(
            DOCS.c.document.op("@@", is_comparison=True)(q)
        )
        if query.scoped:
            stmt = stmt.where(exact_match(query))
        return stmt.subquery("search_matches")

    def highlights(self, query: ParsedQuery, seqs: Sequence[int]) -> Select[tuple[object, ...]]:
        """The stored text of each field; :meth:`finish_highlight` marks the matches."""
        del query
        columns = [DOCS.c[name] for name in FIELDS]
        return select(DOCS.c.item_seq.label("seq"), *columns).where(DOCS.c.item_seq.in_(list(seqs)))

    def finish_highlight(self, query: ParsedQuery, name: str, value: str | None) -> str | None:
        """:func:`~.highlight.mark_matches`: whole short fields, a window of long ones."""
        if not value:
            return None
        return mark_matches(value, query.in_field(name), window=_WINDOW.get(name))

    def field_filter(
        self,
        record: ColumnElement[Any] | InstrumentedAttribute[Any],
        path: tuple[str, ...],
        value: str,
    ) -> ColumnElement[bool]:
        """The value at ``path`` (a scalar as a 1-array) unnested; objects never match."""
        target = record[path]
        elements = func.json_array_elements(
            case(
                (func.json_typeof(target) == "array", target),
                else_=func.json_build_array(target),
            )
        ).table_valued("value")
        as_text = elements.c.value.op("#>>")(literal_column("'{}'::text[]"))
        return exists(
            select(literal(1))
            .select_from(elements)
            .where(
                func.json_typeof(elements.c.value).not_in(("object", "array", "null")),
                as_text == value,
            )
        )
