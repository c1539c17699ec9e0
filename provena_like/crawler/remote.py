"""Extracting the files of a dataset: download a batch to a temp folder, extract, delete.

Extractors read local files; a crawl of a dataset (:class:`~.sources.DatasetSource`) lists
objects in S3. :func:`extract_dataset` takes such a crawl and, a batch at a time, downloads
the files some extractor reads through the SDK's transfer engine (bounded concurrency,
each file verified before it appears), runs the extractors on the copies with an
:class:`~.runner.ExtractionRunner`, and deletes the copies before the next batch: the temp
space in use stays below ``batch_bytes`` (a single larger file is fetched alone). Each
result carries the crawl's record of the file (its path in the dataset, its ETag). A file
whose download failed gets a ``failed`` extraction per extractor that would have read it,
with the reason; the others go on.

Example:
    ```python
    from provena_like.crawler import DatasetSource, ExtractionRunner, crawl

    ds = await pv.datastore.interactive(dataset_id)
    async with ExtractionRunner(workers=1) as runner:
        async for result in extract_dataset(runner, crawl(DatasetSource(ds)), ds):
            print(result)
    ```
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread

from provena_like._core.errors import UsageError
from provena_like.crawler.records import CrawlError, Extraction, FileRecord, FileResult, Group
from provena_like.crawler.runner import ExtractionRunner
from provena_like.extractors.base import handles

if TYPE_CHECKING:
    from provena_like.modules.interactive import InteractiveDataset

__all__ = ["DEFAULT_BATCH_BYTES", "DEFAULT_BATCH_FILES", "extract_dataset"]

DEFAULT_BATCH_FILES = 64
"""Files downloaded (and extracted) per batch unless told otherwise."""

DEFAULT_BATCH_BYTES = 256 * 1024**2
"""Temp space a batch may use unless told otherwise (bytes)."""


def _key_prefix(record: FileRecord, dataset_id: str) -> str:
    """The folder of the dataset a record's crawl ran in (``""`` or ``raw/``)."""
    crawled = record.source[len("dataset:") :]
    if crawled != dataset_id and not crawled.startswith(dataset_id + "/"):
        raise UsageError(f"{record.path} was crawled in {record.source}, not in {dataset_id}")
    return crawled[len(dataset_id) + 1 :]


async def _extract_batch(
    runner: ExtractionRunner,
    dataset: InteractiveDataset,
    batch: list[FileRecord],
    temp_root: Path | None,
    concurrency: int | None,
) -> list[FileResult]:
    folder = Path(
        await anyio.to_thread.run_sync(
            lambda: tempfile.mkdtemp(prefix="provena-extract-", dir=temp_root)
        )
    )
    try:
        specs = [(_key_prefix(r, dataset.id) + r.path, r.path, None, r.size) for r in batch]
        fetched = await dataset.download_objects(specs, folder, concurrency=concurrency)
        outcome = {f.path: f for f in fetched}
        local_source = f"local:{folder.as_posix()}"
        ready: dict[str, FileRecord] = {}
        results: list[FileResult] = []
        for record, spec in zip(batch, specs, strict=True):
            got = outcome.get(spec[0])
            if got is not None and got.ok:
                ready[record.path] = record
                continue
            reason = "not downloaded" if got is None else (got.reason or got.status)
            results.append(_failed(runner, record, f"download failed: {reason}"))

        async def local_records() -> AsyncIterator[FileRecord]:
            for record in ready.values():
                yield record.model_copy(update={"source": local_source})

        async for result in runner.extract(local_records()):
            if isinstance(result, FileResult):
                original = ready[result.record.path]
                results.append(FileResult(record=original, extractions=result.extractions))
        return results
    finally:
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(folder, ignore_errors=True))


def _readers(runner: ExtractionRunner, record: FileRecord) -> list[str]:
    return [e.name for e in runner.extractors if handles(e, record.extension, record.mime_type)]


def _failed(runner: ExtractionRunner, record: FileRecord, error: str) -> FileResult:
    return FileResult(
        record=record,
        extractions=[
            Extraction(extractor=name, status="failed", error=error)
            for name in _readers(runner, record)
        ],
    )


async def extract_dataset(
    runner: ExtractionRunner,
    records: AsyncIterable[FileRecord | CrawlError | Group],
    dataset: InteractiveDataset,
    *,
    batch_files: int = DEFAULT_BATCH_FILES,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    concurrency: int | None = None,
    temp_dir: Path | str | None = None,
) -> AsyncIterator[FileResult | CrawlError | Group]:
    """A :class:`FileResult` per file of a crawl of ``dataset``; other records pass through.

    Args:
        runner: Runs the extractors.
        records: A crawl of the dataset (``crawl(DatasetSource(dataset))``); local records
            are extracted where they are.
        dataset: The dataset the crawl ran over (read access to its objects).
        batch_files: Files per batch.
        batch_bytes: Temp space a batch may use (its files' sizes).
        concurrency: Downloads in flight (default: the datastore's transfer setting).
        temp_dir: Where the batches' temp folders go (default: the system's).

    Raises:
        UsageError: A batch limit is below 1, or a record is of another dataset.

    Example:
        ```python
        from provena_like.crawler import DatasetSource, ExtractionRunner, crawl

        async with ExtractionRunner(workers=1) as runner:
            results = [r async for r in extract_dataset(runner, crawl(DatasetSource(ds)), ds)]
        ```
    """
    if batch_files < 1 or batch_bytes < 1:
        raise UsageError("batch_files and batch_bytes must be at least 1")
    temp_root = None if temp_dir is None else Path(temp_dir)
    batch: list[FileRecord] = []
    size = 0
    async for record in records:
        if not isinstance(record, FileRecord):
            yield record
            continue
        if not record.source.startswith("dataset:"):
            async for result in runner.extract(_one(record)):
                yield result
            continue
        if not _readers(runner, record):
            yield FileResult(record=record)  # no extractor reads this type: nothing to fetch
            continue
        one = record.size or 0
        if batch and (len(batch) >= batch_files or size + one > batch_bytes):
            for result in await _extract_batch(runner, dataset, batch, temp_root, concurrency):
                yield result
            batch, size = [], 0
        batch.append(record)
        size += one
    if batch:
        for result in await _extract_batch(runner, dataset, batch, temp_root, concurrency):
            yield result


async def _one(record: FileRecord) -> AsyncIterator[FileRecord]:
    yield record
