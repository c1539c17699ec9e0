"""Crawl a folder, a dataset or a transfer collection; group the files; extract metadata.

The pipeline, each step an async iterator of typed records (:mod:`.records`):

1. :func:`crawl` walks a source breadth first — :class:`LocalSource` (a folder),
   :class:`DatasetSource` (a dataset's objects in S3, with scoped credentials),
   :class:`CollectionSource` (a transfer-service / Globus collection) — and yields a
   :class:`FileRecord` per file and a :class:`CrawlError` per directory it could not read;
2. :func:`group` adds :class:`Group` records (``file``, ``directory``, ``extension``,
   ``alf_object`` or a callable);
3. :class:`ExtractionRunner` turns each file into a :class:`FileResult` with one
   :class:`Extraction` per extractor that reads its type (worker processes, per-file
   timeout, memory cap);
4. :func:`write_jsonl` / :func:`read_jsonl` store the records as JSON lines.

A crawl of a dataset is extracted by :func:`extract_dataset` (downloads in bounded
batches to a temp folder, extracts, deletes), and :func:`attach_results` stores the
results as the dataset's extracted metadata, which search indexes. :func:`offload` moves
a results file to a dataset or a collection, deleting it only once the copy is verified.

The names are imported on first access (PEP 562).

Example:
    ```python
    from provena_like.crawler import ExtractionRunner, crawl, group, write_jsonl

    async with ExtractionRunner(timeout=30) as runner:
        n = await write_jsonl(runner.extract(group(crawl("data"), "directory")), Path("out.jsonl"))
    ```
"""

import typing as _typing

from provena_like._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    from provena_like.crawler.attach import attach_results, extracted_file, search_terms
    from provena_like.crawler.groupers import GROUPERS, Grouper, alf_object_key, group
    from provena_like.crawler.offload import OffloadedFile, OffloadResult, offload
    from provena_like.crawler.records import (
        CrawlError,
        CrawlRecord,
        CrawlSummary,
        Extraction,
        FileRecord,
        FileResult,
        Group,
        parse_jsonl,
        read_jsonl,
        to_jsonl,
        write_jsonl,
    )
    from provena_like.crawler.remote import extract_dataset
    from provena_like.crawler.runner import DEFAULT_MEMORY_LIMIT, ExtractionRunner, local_path
    from provena_like.crawler.sources import (
        CollectionSource,
        CrawlFilter,
        DatasetSource,
        LocalSource,
        TreeSource,
        mime_type_of,
    )
    from provena_like.crawler.walk import Crawl, CrawlSource, RateLimiter, crawl

_LAZY = {
    "CollectionSource": "provena_like.crawler.sources",
    "Crawl": "provena_like.crawler.walk",
    "CrawlError": "provena_like.crawler.records",
    "CrawlFilter": "provena_like.crawler.sources",
    "CrawlRecord": "provena_like.crawler.records",
    "CrawlSource": "provena_like.crawler.walk",
    "CrawlSummary": "provena_like.crawler.records",
    "DEFAULT_MEMORY_LIMIT": "provena_like.crawler.runner",
    "DatasetSource": "provena_like.crawler.sources",
    "Extraction": "provena_like.crawler.records",
    "ExtractionRunner": "provena_like.crawler.runner",
    "FileRecord": "provena_like.crawler.records",
    "FileResult": "provena_like.crawler.records",
    "GROUPERS": "provena_like.crawler.groupers",
    "Group": "provena_like.crawler.records",
    "Grouper": "provena_like.crawler.groupers",
    "LocalSource": "provena_like.crawler.sources",
    "OffloadResult": "provena_like.crawler.offload",
    "OffloadedFile": "provena_like.crawler.offload",
    "RateLimiter": "provena_like.crawler.walk",
    "TreeSource": "provena_like.crawler.sources",
    "alf_object_key": "provena_like.crawler.groupers",
    "attach_results": "provena_like.crawler.attach",
    "crawl": "provena_like.crawler.walk",
    "extract_dataset": "provena_like.crawler.remote",
    "extracted_file": "provena_like.crawler.attach",
    "group": "provena_like.crawler.groupers",
    "local_path": "provena_like.crawler.runner",
    "offload": "provena_like.crawler.offload",
    "mime_type_of": "provena_like.crawler.sources",
    "parse_jsonl": "provena_like.crawler.records",
    "read_jsonl": "provena_like.crawler.records",
    "search_terms": "provena_like.crawler.attach",
    "to_jsonl": "provena_like.crawler.records",
    "write_jsonl": "provena_like.crawler.records",
}

__all__ = [
    "CollectionSource",
    "Crawl",
    "CrawlError",
    "CrawlFilter",
    "CrawlRecord",
    "CrawlSource",
    "CrawlSummary",
    "DEFAULT_MEMORY_LIMIT",
    "DatasetSource",
    "Extraction",
    "ExtractionRunner",
    "FileRecord",
    "FileResult",
    "GROUPERS",
    "Group",
    "Grouper",
    "LocalSource",
    "OffloadResult",
    "OffloadedFile",
    "RateLimiter",
    "TreeSource",
    "alf_object_key",
    "attach_results",
    "crawl",
    "extract_dataset",
    "extracted_file",
    "group",
    "local_path",
    "mime_type_of",
    "offload",
    "parse_jsonl",
    "read_jsonl",
    "search_terms",
    "to_jsonl",
    "write_jsonl",
]

__getattr__ = _lazy_exports(__name__, _LAZY, globals())
