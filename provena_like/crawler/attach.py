"""Attaching extraction results to a dataset, where search finds them.

:func:`attach_results` turns each :class:`~provena_like.crawler.records.FileResult` into an
:class:`~provena_like.models.extracted.ExtractedFile` (:func:`extracted_file`: its path in
the dataset, the extractors that read it, its search terms, a compact copy of the metadata,
the errors), uploads them to a new extraction run of the dataset in batches, and commits the
run: the dataset's previous extracted metadata is replaced in one transaction and its terms
are indexed by search with the dataset. Results are streamed: memory holds one batch.

A run replaces *all* of the dataset's extracted metadata: attach the results of a crawl of
the whole dataset.

Example:
    ```python
    from provena_like.crawler import DatasetSource, ExtractionRunner, crawl, extract_dataset

    ds = await pv.datastore.interactive(dataset_id)
    async with ExtractionRunner(workers=1) as runner:
        results = extract_dataset(runner, crawl(DatasetSource(ds)), ds)
        run = await attach_results(pv.datastore_client, ds.id, results)
    ```
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Iterable
from typing import TYPE_CHECKING, Any, cast

from provena_like._core.errors import UsageError
from provena_like.crawler.records import CrawlError, FileRecord, FileResult, Group
from provena_like.extractors.kinds import term_kinds
from provena_like.models.extracted import (
    MAX_EXTRACTED_BATCH,
    MAX_EXTRACTED_METADATA_BYTES,
    MAX_EXTRACTED_TERMS,
    MAX_TERM_CHARS,
    ExtractedFile,
    ExtractionRun,
    SearchKind,
)

if TYPE_CHECKING:
    from provena_like.clients.datastore import DatastoreClient

__all__ = ["DEFAULT_BATCH_BYTES", "attach_results", "extracted_file", "search_terms"]

DEFAULT_BATCH_BYTES = 512 * 1024
"""A batch's body is kept below this many bytes (the server's default limit is 1 MiB)."""

_SCALAR_TERMS = {"image": ("mode", "format")}  # e.g. "RGB", "PNG"

Record = FileRecord | CrawlError | Group | FileResult


def search_terms(result: FileResult) -> list[str]:
    """The words search should find the file's dataset by.

    The extractors' ``terms`` (column names, dataset, variable and attribute names, member
    names...) and an image's ``mode`` and ``format``; de-duplicated, at most 1,000.

    Example:
        ```python
        from provena_like.crawler import Extraction

        r = FileResult(record=FileRecord(source="local:/d", path="a.png"), extractions=[
            Extraction(extractor="image", status="ok", metadata={"mode": "RGB", "terms": []})])
        assert search_terms(r) == ["RGB"]
        ```
    """
    seen: dict[str, None] = dict.fromkeys(result.terms)
    for extraction in result.extractions:
        metadata = extraction.metadata or {}
        for key in _SCALAR_TERMS.get(extraction.extractor, ()):
            value = metadata.get(key)
            if isinstance(value, str):
                seen[value] = None
    terms = [t for t in (t.strip() for t in seen) if t and len(t) <= MAX_TERM_CHARS]
    return [t for t in terms if "\x00" not in t][:MAX_EXTRACTED_TERMS]


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _compact(metadata: dict[str, Any]) -> dict[str, Any]:
    """Each extractor's metadata without its terms; cut to scalars, then to nothing, if big."""
    full = {name: {k: v for k, v in m.items() if k != "terms"} for name, m in metadata.items()}
    if _size(full) <= MAX_EXTRACTED_METADATA_BYTES:
        return full
    scalars = {
        name: {k: v for k, v in m.items() if isinstance(v, str | int | float | bool) or v is None}
        for name, m in full.items()
    }
    if _size(scalars) <= MAX_EXTRACTED_METADATA_BYTES:
        return scalars
    return {name: {"truncated": True} for name in full}


def extracted_file(result: FileResult, prefix: str = "") -> ExtractedFile:
    """The wire form of one file's results; its path is ``prefix`` + the record's path.

    Its ``kinds`` say which terms name a column, an attribute, an HDF5 dataset or a netCDF
    variable (:func:`~provena_like.extractors.kinds.term_kinds`, from the full metadata).

    Example:
        ```python
        from provena_like.crawler import Extraction

        r = FileResult(record=FileRecord(source="local:/d", path="a.csv", size=3), extractions=[
            Extraction(extractor="tabular", status="ok", metadata={"terms": ["temperature"]})])
        f = extracted_file(r, "raw/")
        assert (f.path, f.terms, f.extractors) == ("raw/a.csv", ["temperature"], ["tabular"])
        ```
    """
    ok = [e for e in result.extractions if e.status == "ok"]
    terms = search_terms(result)
    kinds = term_kinds({e.extractor: e.metadata or {} for e in ok}, terms)
    return ExtractedFile(
        path=prefix + result.record.path,
        size=result.record.size,
        extractors=[e.extractor for e in ok],
        terms=terms,
        kinds=cast("dict[SearchKind, list[str]]", kinds),  # term_kinds names SearchKinds only
        metadata=_compact({e.extractor: dict(e.metadata or {}) for e in ok}),
        errors={
            e.extractor: (e.error or e.status)[:1000]
            for e in result.extractions
            if e.status != "ok"
        },
    )


def _prefix_of(record: FileRecord, dataset_id: str, prefix: str | None) -> str:
    """Where a record's path sits in the dataset: a dataset crawl says so in its source."""
    if record.source.startswith("dataset:"):
        crawled = record.source[len("dataset:") :]
        if crawled != dataset_id and not crawled.startswith(dataset_id + "/"):
            raise UsageError(
                f"{record.path} was crawled in {record.source}, not in dataset {dataset_id}"
            )
        inner = crawled[len(dataset_id) + 1 :]
        return inner if prefix is None else prefix
    return prefix or ""


async def _each(records: AsyncIterable[Record] | Iterable[Record]) -> AsyncIterable[Record]:
    if isinstance(records, AsyncIterable):
        async for record in records:
            yield record
    else:
        for record in records:
            yield record


async def attach_results(
    client: DatastoreClient,
    dataset_id: str,
    results: AsyncIterable[Record] | Iterable[Record],
    *,
    prefix: str | None = None,
    source: str | None = None,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
) -> ExtractionRun:
    """Upload extraction results as the dataset's extracted metadata, and commit them.

    Records other than :class:`FileResult` are ignored, so a whole extraction stream can be
    passed. Nothing changes for readers and search until the commit, which replaces the
    previous run; a failure before it leaves the previous metadata in place (the open run
    is deleted by the server a day later).

    Args:
        client: The datastore's L2 client (``pv.datastore_client``).
        dataset_id: The dataset.
        results: The results (of a crawl of the dataset, or of a local copy of it).
        prefix: Put before each result's path (default: the folder a dataset crawl ran
            in, ``""`` for a local crawl).
        source: Where the crawl ran, stored with the run (default: the first result's).
        batch_bytes: Keep each upload below this many bytes.

    Returns:
        The committed run.

    Raises:
        UsageError: A result comes from a crawl of another dataset.
        Forbidden: The caller lacks ``metadata-write`` on the dataset.

    Example:
        ```python
        from provena_like.crawler import ExtractionRunner, crawl

        async with ExtractionRunner(workers=1) as runner:
            run = await attach_results(pv.datastore_client, dataset_id,
                                       runner.extract(crawl("data")))
        ```
    """
    run: ExtractionRun | None = None
    batch: dict[str, dict[str, Any]] = {}  # by path: a path given twice keeps the last
    size = 0

    async def flush() -> None:
        nonlocal batch, size
        if batch:
            assert run is not None
            await client.add_extracted_files(dataset_id, run.run_id, list(batch.values()))
            batch, size = {}, 0

    async for record in _each(results):
        if not isinstance(record, FileResult):
            continue
        if run is None:
            run = await client.start_extraction_run(
                dataset_id, source=source or record.record.source[:2048]
            )
        wire = extracted_file(record, _prefix_of(record.record, dataset_id, prefix))
        body = wire.model_dump(mode="json", exclude_defaults=True)
        body.setdefault("path", wire.path)
        one = _size(body) + 1
        if batch and (size + one > batch_bytes or len(batch) >= MAX_EXTRACTED_BATCH):
            await flush()
        batch[wire.path] = body
        size += one
    if run is None:  # no file at all: an empty run still replaces the previous one
        run = await client.start_extraction_run(dataset_id, source=source)
    await flush()
    return await client.commit_extraction_run(dataset_id, run.run_id)
