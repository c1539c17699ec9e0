"""The search service: full-text search over registry items, ranked and access-filtered.

Modules: ``query`` (the query language, parsed safely), ``documents`` (what is indexed per
item), ``backend`` (the backend interface, chosen by SQL dialect) with ``sqlite_fts`` (FTS5)
and ``postgres_fts`` (``tsvector`` + GIN), ``index`` (writes to the index, called by the
registry service in the writer's transaction; full rebuilds), ``service`` (the search on a
session) and ``routes`` (HTTP, mounted at ``/search``).

This package imports nothing eagerly: the registry service imports ``index`` and the app
imports ``routes`` (which imports the registry service) without a cycle.
"""
