"""The interface of a full-text backend, and the choice of one by SQL dialect.

A backend knows how to create its index objects (DDL run by the ``0002_search`` migration),
write one document, match and rank a parsed query, highlight matches, and filter on a record
path. Everything else - access filtering, other filters, keyset pagination - is plain
SQLAlchemy over ``registry_items`` in :mod:`provena_like.server.search.service`, the same on
every backend.

Backends: :mod:`~provena_like.server.search.sqlite_fts` (SQLite FTS5, the default) and
:mod:`~provena_like.server.search.postgres_fts` (PostgreSQL ``tsvector`` + GIN).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Executable, FromClause, Select, TextClause
from sqlalchemy.orm import InstrumentedAttribute

from provena_like.server.search.documents import SearchDocument
from provena_like.server.search.postgres_fts import PostgresFTS
from provena_like.server.search.query import ParsedQuery
from provena_like.server.search.sqlite_fts import SQLiteFTS

__all__ = ["INDEX_TABLES", "SearchBackend", "backend_for", "is_index_table"]

INDEX_TABLES = frozenset({"search_fts", "search_documents"})
"""Tables of the search index: made by the migration, not declared in the ORM metadata."""


def is_index_table(name: str | None) -> bool:
    """Whether ``name`` is a search index table (FTS5 shadow tables included).

    The migration environment uses it to keep these out of Alembic's drift check.
    """
    if name is None:
        return False
    return name in INDEX_TABLES or name.startswith("search_fts_")


class SearchBackend(Protocol):
    """What the search service needs from a full-text engine."""

    @property
    def name(self) -> str:
        """The SQLAlchemy dialect name this backend serves."""
        ...

    def create_ddl(self) -> list[TextClause]:
        """Statements creating the index objects (constant DDL)."""
        ...

    def drop_ddl(self) -> list[TextClause]:
        """Statements dropping the index objects."""
        ...

    def upsert(self, doc: SearchDocument) -> list[Executable]:
        """Statements replacing the index entry of ``doc.seq`` with ``doc``."""
        ...

    def clear(self) -> list[Executable]:
        """Statements emptying the index."""
        ...

    def ranked(self, query: ParsedQuery) -> FromClause:
        """The matches of ``query``: a selectable with columns ``seq`` and ``score``.

        ``score`` is a float, higher is better, and the same on every evaluation while the
        index doesn't change (keyset pagination compares it exactly).
        """
        ...

    def highlights(self, query: ParsedQuery, seqs: Sequence[int]) -> Select[tuple[object, ...]]:
        """Rows ``(seq, *FIELDS)`` for the items ``seqs``, to pass to :meth:`finish_highlight`.

        Together they give each field's text (or a fragment of it) with every match between
        ``MARK_START`` and ``MARK_END``.
        """
        ...

    def finish_highlight(self, query: ParsedQuery, name: str, value: str | None) -> str | None:
        """Field ``name`` of a :meth:`highlights` row with its matches marked."""
        ...

    def field_filter(
        self,
        record: ColumnElement[Any] | InstrumentedAttribute[Any],
        path: tuple[str, ...],
        value: str,
    ) -> ColumnElement[bool]:
        """Items whose ``record`` (the JSON column) has ``value`` at ``path``.

        The value there may be a scalar or an array, one of whose elements must match.

        The comparison is on the text of the value, exact and case-sensitive.
        """
        ...


def backend_for(dialect: str) -> SearchBackend:
    """The backend for a SQLAlchemy dialect name (``sqlite`` or ``postgresql``).

    Raises:
        RuntimeError: for any other database.
    """
    if dialect == "sqlite":
        return SQLiteFTS()
    if dialect == "postgresql":
        return PostgresFTS()
    raise RuntimeError(f"full-text search supports SQLite and PostgreSQL, not {dialect!r}")
