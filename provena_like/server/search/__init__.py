"""The search service: full-text search over registry items, ranked and access-filtered.

Modules: ``query`` (the query language, parsed safely), ``documents`` (what is indexed per
item), ``backend`` (the backend interface, chosen by SQL dialect) with ``sqlite_fts`` (FTS5)
and ``postgres_fts`` (``tsvector`` + GIN), ``index`` (writes to the index: a subscriber to
the registry's post-write hooks, :mod:`provena_like.server.registry.events`, run in the
writer's transaction; full rebuilds), ``service`` (the search on a session) and ``routes``
(HTTP, mounted at ``/search``).

Search imports the registry, never the other way round: the app subscribes the index to the
registry's hooks when it is built.
"""
