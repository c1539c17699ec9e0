"""Extracted metadata of datasets: the results of a crawl's extractors, stored and searchable.

Modules: ``tables`` (extraction runs and their files), ``service`` (start a run, add
batches, commit it in place of the previous one, list the committed files, the search text
of a dataset) and ``routes`` (HTTP, mounted at ``/datastore``). Search reads the committed
terms through :func:`provena_like.server.extracted.service.search_text` when it indexes a
dataset; a commit reindexes the dataset in its own transaction.
"""
