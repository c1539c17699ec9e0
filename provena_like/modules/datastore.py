"""``Datastore``: the dataset workflows (L3), composed from the L2 clients and the storage engine.

Reach it as ``pv.datastore``:

```python
async with ProvenaClient.from_env() as pv:
    ds = await pv.datastore.mint(record)                 # an InteractiveDataset
    result = await ds.upload("./data", progress=print)   # per-file results
    async for hit in pv.datastore.search("ocean temperature"):
        print(hit.item.id, hit.score)
```
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from provena_like._core.sentinels import NOT_GIVEN, NotGiven
from provena_like.clients.datastore import DatastoreClient
from provena_like.clients.review import ReviewClient
from provena_like.clients.search import SearchClient
from provena_like.models.datastore import (
    AccessLevel,
    Dataset,
    DatasetRecord,
    DatasetSortKey,
    PresignedURL,
    ReleaseStatus,
    ScopedCredentials,
    ValidateResponse,
    VersionResponse,
)
from provena_like.models.extracted import ExtractionRun
from provena_like.models.registry import Role, SortOrder
from provena_like.models.search import SearchHit
from provena_like.models.shared import Page
from provena_like.modules.credentials import CredentialsCache
from provena_like.modules.engines import EnginePool
from provena_like.modules.interactive import InteractiveDataset, TransferDefaults
from provena_like.modules.review import Review

if TYPE_CHECKING:
    import aioboto3

    from provena_like.crawler.records import CrawlError, FileRecord, FileResult, Group

    CrawlRecord = FileRecord | CrawlError | Group | FileResult

__all__ = ["Datastore"]

RecordLike = DatasetRecord | Mapping[str, Any]


class Datastore:
    """Mint, find, change, version and open datasets.

    Args:
        client: the datastore's L2 client.
        search_client: the search service's L2 client.
        review_client: the review routes' L2 client (built on ``client``'s HTTP core when
            left out).
        session: deprecated and ignored (a :class:`DeprecationWarning` when given):
            transfers don't use it, each engine gets its botocore session from its
            credentials (see :class:`~provena_like.storage.TransferEngine`).
        transfers: default settings of uploads and downloads.

    Attributes:
        review: reviewers, release requests and decisions
            (:class:`~provena_like.modules.review.Review`).
        credentials_cache: scoped credentials per (caller, dataset, access).
        engines: the transfer engines kept open per (caller, dataset, access), reused by
            every upload, download and sync of an
            :class:`~provena_like.modules.interactive.InteractiveDataset`.
    """

    def __init__(
        self,
        client: DatastoreClient,
        search_client: SearchClient,
        *,
        review_client: ReviewClient | None = None,
        session: aioboto3.Session | None = None,
        transfers: TransferDefaults | None = None,
    ) -> None:
        self.client = client
        self._search = search_client
        if session is not None:
            warnings.warn(
                "Datastore(session=...) is deprecated and ignored: each transfer engine makes "
                "its own botocore session; leave it out",
                DeprecationWarning,
                stacklevel=2,
            )
        self._session = session
        self.transfers = transfers or TransferDefaults()
        self.credentials_cache = CredentialsCache(client)
        self.engines = EnginePool(self.credentials_cache)
        self.review = Review(
            review_client or ReviewClient(client.http_core),  # share the pool
            credentials_cache=self.credentials_cache,
        )

    def scoped(
        self, client: DatastoreClient, search_client: SearchClient, review_client: ReviewClient
    ) -> Datastore:
        """This module for the callers of other L2 clients (a view with its own auth).

        The credentials cache and the open engines are shared with this module, each entry
        keyed by the caller it belongs to (see :meth:`CredentialsCache.scoped
        <provena_like.modules.credentials.CredentialsCache.scoped>`): a view reuses only
        what was issued to its own caller, and nothing is opened to make it.

        Example:
            ```python
            view = pv.as_user(await pv.auth_manager.get_access_token())
            alice = pv.datastore.scoped(
                view.datastore_client, view.search_client, view.review_client
            )
            ```
        """
        copy = object.__new__(Datastore)
        copy.client = client
        copy._search = search_client
        copy._session = self._session
        copy.transfers = self.transfers
        copy.credentials_cache = self.credentials_cache.scoped(client)
        copy.engines = self.engines.scoped(copy.credentials_cache)
        copy.review = Review(review_client, credentials_cache=copy.credentials_cache)
        return copy

    def __repr__(self) -> str:
        return f"Datastore({self.client!r})"

    @property
    def session(self) -> aioboto3.Session | None:
        """Deprecated: the aioboto3 session given at construction, unused (``None`` if none)."""
        warnings.warn(
            "Datastore.session is deprecated: transfers don't use it",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._session

    async def aclose(self) -> None:
        """Close the transfer engines kept open for this client's datasets (idempotent).

        :meth:`ProvenaClient.aclose <provena_like.ProvenaClient.aclose>` calls it. A
        :meth:`scoped` module closes nothing: the engines are its origin's.

        Example:
            ```python
            await pv.datastore.aclose()
            ```
        """
        await self.engines.aclose()

    # ------------------------------------------------------------------ lifecycle

    async def mint(
        self,
        record: RecordLike,
        *,
        display_name: str | None = None,
        general: Sequence[Role] = (),
        groups: Mapping[str, Sequence[Role]] | None = None,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> InteractiveDataset:
        """Register a new dataset (handle, storage location, ``metadata.json``).

        All or nothing: if any step fails on the server, no item and no object remain.

        Example:
            ```python
            ds = await pv.datastore.mint(record, idempotency_key="run-2024-06-01")
            print(ds.id, ds.dataset.storage.prefix)
            ```
        """
        request: dict[str, Any] = {
            "record": _record_json(record),
            "general": list(general),
            "groups": {k: list(v) for k, v in (groups or {}).items()},
        }
        if display_name is not None:
            request["display_name"] = display_name
        minted = await self.client.mint_dataset(request, idempotency_key=idempotency_key)
        return InteractiveDataset(self, minted.dataset)

    async def validate(self, record: RecordLike) -> ValidateResponse:
        """Check a record as :meth:`mint` would, without writing anything.

        Example:
            ```python
            check = await pv.datastore.validate(record)
            for err in check.errors:
                print(err.field, err.message)
            ```
        """
        return await self.client.validate_dataset({"record": _record_json(record)})

    async def fetch(self, dataset_id: str, *, include_history: bool = False) -> Dataset:
        """One dataset, with your effective roles and its lock state.

        Example:
            ```python
            dataset = await pv.datastore.fetch("10378.1/42")
            ```
        """
        return await self.client.get_dataset(dataset_id, include_history=include_history)

    async def update_metadata(
        self,
        dataset_id: str,
        record: RecordLike,
        *,
        reason: str,
        expected_revision: int | None = None,
        display_name: str | None = None,
    ) -> Dataset:
        """Replace a dataset's metadata, recording ``reason`` in its history.

        With ``expected_revision`` a concurrent change makes this fail with
        :class:`~provena_like.PreconditionFailed` instead of being overwritten.

        Example:
            ```python
            ds = await pv.datastore.fetch(dataset_id)
            info = ds.record.dataset_info.model_copy(update={"keywords": ["reef", "2024"]})
            new = ds.record.model_copy(update={"dataset_info": info})
            await pv.datastore.update_metadata(
                dataset_id, new, reason="add keywords", expected_revision=ds.revision
            )
            ```
        """
        update: dict[str, Any] = {"record": _record_json(record), "reason": reason}
        if display_name is not None:
            update["display_name"] = display_name
        return await self.client.update_dataset(dataset_id, update, if_match=expected_revision)

    async def revert_metadata(
        self,
        dataset_id: str,
        history_id: int,
        *,
        reason: str,
        expected_revision: int | None = None,
    ) -> Dataset:
        """Restore the metadata of a history entry (recorded as a new entry).

        Example:
            ```python
            await pv.datastore.revert_metadata(dataset_id, 1, reason="undo the rename")
            ```
        """
        revert: dict[str, Any] = {"history_id": history_id, "reason": reason}
        if expected_revision is not None:
            revert["expected_revision"] = expected_revision
        return await self.client.revert_dataset(dataset_id, revert)

    async def version(
        self, dataset_id: str, *, reason: str, copy_files: bool = False
    ) -> VersionResponse:
        """Create the next version (a new handle linked to this one).

        ``copy_files`` copies the objects server-side; the old version is left untouched.

        Example:
            ```python
            v2 = await pv.datastore.version(dataset_id, reason="2024 recalibration")
            ```
        """
        return await self.client.version_dataset(
            dataset_id, {"reason": reason, "copy_files": copy_files}
        )

    # ------------------------------------------------------------------ finding

    async def list_datasets(
        self,
        *,
        owner: str | None = None,
        keyword: str | None = None,
        release_status: ReleaseStatus | None = None,
        sort: DatasetSortKey = "created",
        order: SortOrder = "asc",
        page_size: int = 100,
        cursor: str | None = None,
    ) -> Page[Dataset]:
        """One page of datasets you can read (``next_cursor`` continues).

        Example:
            ```python
            page = await pv.datastore.list_datasets(keyword="ocean", page_size=20)
            ```
        """
        return await self.client.list_datasets(
            owner=owner,
            keyword=keyword,
            release_status=release_status,
            sort=sort,
            order=order,
            page_size=page_size,
            cursor=cursor,
        )

    async def iter_datasets(
        self,
        *,
        owner: str | None = None,
        keyword: str | None = None,
        release_status: ReleaseStatus | None = None,
        sort: DatasetSortKey = "created",
        order: SortOrder = "asc",
        page_size: int = 100,
        max_items: int | None = None,
    ) -> AsyncIterator[Dataset]:
        """Every dataset you can read, page after page.

        Example:
            ```python
            async for dataset in pv.datastore.iter_datasets(max_items=500):
                print(dataset.id, dataset.display_name)
            ```
        """
        paginator = self.client.iter_datasets(
            owner=owner,
            keyword=keyword,
            release_status=release_status,
            sort=sort,
            order=order,
            page_size=page_size,
            max_items=max_items,
        )
        async for dataset in paginator:
            yield dataset

    async def search(
        self,
        query: str,
        *,
        subtype: str | Sequence[str] | None = "dataset",
        owner: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = 20,
        max_items: int | None = None,
    ) -> AsyncIterator[SearchHit]:
        """Full-text search, best match first; only items you may read.

        ``subtype`` defaults to ``"dataset"``; pass ``None`` to search every kind of item.
        ``query`` is the search guide's query language; ``extracted:temperature`` finds the
        datasets whose files' extracted metadata (a table column, an attribute...) has the
        word, not those whose title or description merely says it; ``column:temperature``
        only those with a table column of that name (likewise ``attribute:``, ``dataset:``
        for HDF5, ``variable:`` for netCDF).

        Example:
            ```python
            async for hit in pv.datastore.search("sea surface temperature", max_items=10):
                print(hit.item.id, hit.score, hit.highlights)
            async for hit in pv.datastore.search("extracted:temperature", max_items=10):
                print(hit.item.id, hit.highlights["extracted"])
            ```
        """
        paginator = self._search.iter_search_items(
            query,
            subtype=subtype,
            owner=owner,
            created_after=created_after,
            created_before=created_before,
            page_size=page_size,
            max_items=max_items,
        )
        async for hit in paginator:
            yield hit

    # ------------------------------------------------------------------ storage access

    async def credentials(
        self, dataset_id: str, access: AccessLevel = "read", *, force: bool = False
    ) -> ScopedCredentials:
        """Short-lived S3 credentials limited to the dataset's prefix (cached until near expiry).

        Write credentials are refused, before anything is asked of the server, while the
        dataset is locked (:class:`~provena_like.Locked`) or ``PENDING`` / ``RELEASED``
        (:class:`~provena_like.ReleaseStateConflict`); they live at most 15 minutes.

        Example:
            ```python
            creds = await pv.datastore.credentials(dataset_id, "write")
            print(creds.bucket, creds.prefix, creds.expiration)
            ```
        """
        return await self.credentials_cache.get(dataset_id, access, force=force)

    async def presigned_url(
        self, dataset_id: str, path: str, *, expires_in: int | None = None
    ) -> PresignedURL:
        """A URL anyone can GET one file with, for ``expires_in`` seconds (1 s to 1 h).

        Left out, the server's default applies (15 min unless configured).

        Example:
            ```python
            link = await pv.datastore.presigned_url(dataset_id, "raw/a.csv", expires_in=600)
            ```
        """
        return await self.client.presign(dataset_id, path, expires_in=expires_in)

    async def attach_extracted(
        self,
        dataset_id: str,
        results: AsyncIterable[CrawlRecord] | Iterable[CrawlRecord],
        *,
        prefix: str | None = None,
    ) -> ExtractionRun:
        """Store extraction results as a dataset's extracted metadata, where search finds them.

        The results (of a crawl of the dataset, or of a local copy of it) go to a new
        extraction run in batches; committing it replaces the dataset's previous extracted
        metadata at once, and search indexes its terms with the dataset (``temperature``
        finds a dataset with a column of that name). Needs ``metadata-write``. See
        :func:`provena_like.crawler.attach_results`.

        Example:
            ```python
            from provena_like.crawler import DatasetSource, ExtractionRunner, crawl
            from provena_like.crawler import extract_dataset

            ds = await pv.datastore.interactive(dataset_id)
            async with ExtractionRunner(workers=1) as runner:
                results = extract_dataset(runner, crawl(DatasetSource(ds)), ds)
                run = await pv.datastore.attach_extracted(ds.id, results)
            ```
        """
        from provena_like.crawler.attach import attach_results

        return await attach_results(self.client, dataset_id, results, prefix=prefix)

    async def interactive(self, dataset_id: str) -> InteractiveDataset:
        """Open a dataset for interactive work (files, metadata, versions).

        Example:
            ```python
            ds = await pv.datastore.interactive("10378.1/42")
            await ds.download("./here", paths=["raw/"])
            ```
        """
        return InteractiveDataset(self, await self.fetch(dataset_id))


def _record_json(record: RecordLike) -> dict[str, Any]:
    if isinstance(record, DatasetRecord):
        return record.model_dump(mode="json", exclude_none=True)
    return dict(record)
