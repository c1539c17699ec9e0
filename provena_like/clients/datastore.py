"""``DatastoreClient``: the L2 client of the datastore service.

One method per route, one HTTP call per method. Dataset ids are handles (``10378.1/42``);
file paths are relative to the dataset and checked before anything is sent. Listing methods
return one :class:`~provena_like.models.shared.Page`; the ``iter_*`` methods return an
:class:`~provena_like.AsyncPaginator` that does the looping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_jsonable_python

from provena_like._core.errors import Unprocessable, UsageError
from provena_like._core.http import HTTPCore
from provena_like._core.pagination import AsyncPaginator
from provena_like._core.sentinels import NOT_GIVEN, NotGiven
from provena_like.clients._base import ServiceClient
from provena_like.clients._encoding import encode_body, item_path
from provena_like.clients._list_route import ListRoute
from provena_like.models.datastore import (
    AccessLevel,
    CredentialsRequest,
    Dataset,
    DatasetSortKey,
    DatasetUpdate,
    FieldError,
    FileRegistration,
    ManifestEntry,
    MintRequest,
    MintResponse,
    PresignedURL,
    PresignRequest,
    RegisterFilesRequest,
    RegisterFilesResponse,
    ReleaseStatus,
    RemoveFilesRequest,
    RemoveFilesResponse,
    RevertRequest,
    ScopedCredentials,
    SortOrder,
    ValidateResponse,
    VersionRequest,
    VersionResponse,
    check_object_path,
)
from provena_like.models.extracted import (
    ExtractedFile,
    ExtractedFilesAdded,
    ExtractedFilesBatch,
    ExtractionRun,
)
from provena_like.models.shared import Page

__all__ = ["DatastoreClient", "dataset_path"]

_SCHEMA = TypeAdapter(dict[str, Any])
_COUNTS = TypeAdapter(dict[str, int])


def dataset_path(dataset_id: str) -> str:
    """``/datasets/<handle>``, after checking the handle has the ``prefix/suffix`` shape."""
    return "/datasets" + item_path(dataset_id).removeprefix("/items")


def _file_path(path: str) -> str:
    try:
        check_object_path(path)
    except ValueError as err:
        raise UsageError(f"invalid file path {path!r}: {err}") from None
    return "/".join(quote(segment, safe="") for segment in path.split("/"))


class DatastoreClient(ServiceClient):
    """Typed calls to the datastore service.

    Args:
        core: the shared HTTP core (normally ``ProvenaClient.datastore_client`` builds this).

    Example:
        ```python
        async with ProvenaClient.from_env() as pv:
            ds = await pv.datastore_client.get_dataset("10378.1/42")
        ```
    """

    _service = "datastore"

    def __init__(self, core: HTTPCore) -> None:
        super().__init__(core)
        self._datasets = self._list_route("/datasets", Page[Dataset])

    @property
    def http_core(self) -> HTTPCore:
        """The HTTP core this client calls through (its pool, auth and retries).

        L3 modules build their other clients on it (a ``ReviewClient``, the identity probe
        of the credentials cache) so that they share one connection pool.
        """
        return self._core

    # -- schema and validation -----------------------------------------------------------

    async def get_schema(self) -> dict[str, Any]:
        """The JSON Schema of a dataset record (``GET /schema``).

        Example:
            ```python
            schema = await pv.datastore_client.get_schema()
            schema["properties"].keys()
            ```
        """
        return await self._core.request("GET", "datastore", "/schema", cast_to=_SCHEMA)

    async def validate_dataset(self, request: MintRequest | Mapping[str, Any]) -> ValidateResponse:
        """Check a mint request without minting (``POST /datasets/validate``).

        The request is sent as given (a mapping is not validated locally), so that every
        problem - record fields and referenced handles - comes back from the server.

        Returns:
            ``valid=True``, or ``valid=False`` with ``errors`` naming each field.

        Raises:
            UsageError: ``request`` is neither a MintRequest nor a mapping.

        Example:
            ```python
            result = await pv.datastore_client.validate_dataset({"record": record})
            [e.field for e in result.errors]
            ```
        """
        if isinstance(request, BaseModel):
            body = request.model_dump(mode="json", exclude_unset=True)
        elif isinstance(request, Mapping):
            body = to_jsonable_python(dict(request))
        else:
            raise UsageError(f"request must be a MintRequest or a dict, got {type(request)}")
        try:
            return await self._core.request(
                "POST",
                "datastore",
                "/datasets/validate",
                json=body,
                cast_to=ValidateResponse,
            )
        except Unprocessable as err:
            details = err.details if isinstance(err.details, list) else []
            errors = [FieldError.model_validate(d) for d in details if isinstance(d, dict)]
            if not errors:
                errors = [FieldError(field="", message=str(err))]
            return ValidateResponse(valid=False, errors=errors)

    # -- datasets ------------------------------------------------------------------------

    async def mint_dataset(
        self,
        request: MintRequest | Mapping[str, Any],
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> MintResponse:
        """Mint a dataset: handle, storage prefix and ``metadata.json`` (``POST /datasets``).

        Args:
            request: the record and initial access (``{"record": {...}}``).
            idempotency_key: replays the first result when the same key is sent again;
                left out, a fresh key protects this call's own retries; ``None`` sends none.

        Raises:
            UsageError: ``request`` doesn't validate as a :class:`MintRequest`.
            Unprocessable: a referenced handle is missing, unreadable or of the wrong kind.

        Example:
            ```python
            minted = await pv.datastore_client.mint_dataset({"record": record})
            minted.id, minted.storage.prefix
            ```
        """
        return await self._core.request(
            "POST",
            "datastore",
            "/datasets",
            json=encode_body(MintRequest, request, "mint request"),
            idempotency_key=idempotency_key,
            cast_to=MintResponse,
            expected=(200, 201),
        )

    async def get_dataset(self, dataset_id: str, *, include_history: bool = False) -> Dataset:
        """Fetch one dataset (``GET /datasets/{id}``).

        Example:
            ```python
            ds = await pv.datastore_client.get_dataset("10378.1/42", include_history=True)
            ```
        """
        params = {"include_history": "true"} if include_history else None
        return await self._core.request(
            "GET", "datastore", dataset_path(dataset_id), params=params, cast_to=Dataset
        )

    async def update_dataset(
        self,
        dataset_id: str,
        update: DatasetUpdate | Mapping[str, Any],
        *,
        if_match: int | None = None,
    ) -> Dataset:
        """Replace a dataset's record (``PUT /datasets/{id}``); rewrites ``metadata.json``.

        Args:
            dataset_id: the handle.
            update: the new record and the reason for the change.
            if_match: the revision the change is based on; a stale one is a 412.

        Raises:
            Conflict: the dataset is locked.
            PreconditionFailed: the dataset changed since ``if_match``.

        Example:
            ```python
            ds = await pv.datastore_client.update_dataset(
                ds.id, {"record": new_record, "reason": "fix title"}, if_match=ds.revision)
            ```
        """
        headers = {"If-Match": f'"{if_match}"'} if if_match is not None else None
        return await self._core.request(
            "PUT",
            "datastore",
            dataset_path(dataset_id),
            json=encode_body(DatasetUpdate, update, "dataset update", exclude_unset=False),
            headers=headers,
            cast_to=Dataset,
        )

    async def revert_dataset(
        self,
        dataset_id: str,
        revert: RevertRequest | Mapping[str, Any],
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> Dataset:
        """Restore the record of a history entry (``POST /datasets/{id}/revert``).

        Example:
            ```python
            ds = await pv.datastore_client.revert_dataset(
                "10378.1/42", {"history_id": 3, "reason": "undo bad edit"})
            ```
        """
        return await self._core.request(
            "POST",
            "datastore",
            dataset_path(dataset_id) + "/revert",
            json=encode_body(RevertRequest, revert, "revert request"),
            idempotency_key=idempotency_key,
            cast_to=Dataset,
        )

    async def version_dataset(
        self,
        dataset_id: str,
        request: VersionRequest | Mapping[str, Any],
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> VersionResponse:
        """Create the next version of a dataset (``POST /datasets/{id}/version``).

        Example:
            ```python
            new = await pv.datastore_client.version_dataset(
                "10378.1/42", {"reason": "recalibrated", "copy_files": True})
            new.id, new.version, new.copied_files
            ```
        """
        return await self._core.request(
            "POST",
            "datastore",
            dataset_path(dataset_id) + "/version",
            json=encode_body(VersionRequest, request, "version request"),
            idempotency_key=idempotency_key,
            cast_to=VersionResponse,
            expected=(200, 201),
        )

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
        """Fetch one page of the datasets the caller may read (``GET /datasets``).

        Args:
            owner: only datasets owned by this user.
            keyword: only datasets with exactly this keyword.
            release_status: only datasets in this release status.
            sort: ``created``, ``updated``, ``name`` or ``release_time``.
            order: ``asc`` or ``desc``.
            page_size: datasets per page.
            cursor: the ``next_cursor`` of the previous page.

        Example:
            ```python
            page = await pv.datastore_client.list_datasets(keyword="reef")
            ```
        """
        params = _dataset_params(owner, keyword, release_status, sort, order)
        return await self._datasets.page(params, page_size=page_size, cursor=cursor)

    def iter_datasets(
        self,
        *,
        owner: str | None = None,
        keyword: str | None = None,
        release_status: ReleaseStatus | None = None,
        sort: DatasetSortKey = "created",
        order: SortOrder = "asc",
        page_size: int = 100,
        cursor: str | None = None,
        max_items: int | None = None,
    ) -> AsyncPaginator[Dataset]:
        """Every dataset the caller may read, fetched page by page.

        Same filters as :meth:`list_datasets`; ``max_items`` stops early.

        Example:
            ```python
            async for ds in pv.datastore_client.iter_datasets(owner="alice"):
                print(ds.id, ds.display_name)
            ```
        """
        params = _dataset_params(owner, keyword, release_status, sort, order)
        return self._datasets.iterate(
            params, page_size=page_size, cursor=cursor, max_items=max_items
        )

    # -- data access ---------------------------------------------------------------------

    async def get_credentials(
        self,
        dataset_id: str,
        access: AccessLevel = "read",
        *,
        duration_seconds: int | None = None,
    ) -> ScopedCredentials:
        """S3 credentials limited to the dataset's prefix (``POST /datasets/{id}/credentials``).

        Args:
            dataset_id: the handle.
            access: ``read`` (get, list) or ``write`` (also put, delete, multipart).
            duration_seconds: the lifetime to ask for, at most 3,600 (servers may allow
                less); ``None``: the server's default (15 min unless configured). Trust the
                answer's ``expiration``.

        Raises:
            Forbidden: the caller lacks ``data-read`` / ``data-write``.
            Conflict: write access to a locked or released dataset.

        Example:
            ```python
            creds = await pv.datastore_client.get_credentials("10378.1/42", "write")
            creds.bucket, creds.prefix, creds.expiration
            ```
        """
        body = encode_body(
            CredentialsRequest,
            {"access": access, "duration_seconds": duration_seconds},
            "credentials request",
        )
        return await self._core.request(
            "POST",
            "datastore",
            dataset_path(dataset_id) + "/credentials",
            json=body,
            cast_to=ScopedCredentials,
        )

    async def presign(
        self, dataset_id: str, path: str, *, expires_in: int | None = None
    ) -> PresignedURL:
        """A presigned download URL of one file (``POST /datasets/{id}/presign``).

        Args:
            dataset_id: the handle.
            path: the file's path relative to the dataset.
            expires_in: seconds the URL stays valid, 1 to 3,600 (servers may allow less);
                ``None``: the server's default (15 min unless configured).

        Raises:
            UsageError: an unsafe path or a lifetime out of range.
            NotFound: there is no such object.

        Example:
            ```python
            url = await pv.datastore_client.presign("10378.1/42", "data/a.csv")
            ```
        """
        body = encode_body(
            PresignRequest, {"path": path, "expires_in": expires_in}, "presign request"
        )
        return await self._core.request(
            "POST",
            "datastore",
            dataset_path(dataset_id) + "/presign",
            json=body,
            cast_to=PresignedURL,
        )

    # -- manifest ------------------------------------------------------------------------

    async def register_files(
        self,
        dataset_id: str,
        files: RegisterFilesRequest | list[FileRegistration] | list[Mapping[str, Any]],
    ) -> RegisterFilesResponse:
        """Record uploaded files in the manifest (``POST /datasets/{id}/files``).

        Registering the same content again is harmless: it is reported as ``unchanged``.

        Raises:
            Unprocessable: a file is missing from the store or has another size.

        Example:
            ```python
            await pv.datastore_client.register_files(
                "10378.1/42", [{"path": "a.csv", "size": 12, "sha256": digest}])
            ```
        """
        request: RegisterFilesRequest | Mapping[str, Any]
        if isinstance(files, RegisterFilesRequest):
            request = files
        elif isinstance(files, list):
            request = {"files": files}
        else:
            raise UsageError(f"files must be a list or a RegisterFilesRequest, got {type(files)}")
        return await self._core.request(
            "POST",
            "datastore",
            dataset_path(dataset_id) + "/files",
            json=encode_body(RegisterFilesRequest, request, "file registration"),
            cast_to=RegisterFilesResponse,
        )

    async def remove_files(
        self, dataset_id: str, paths: RemoveFilesRequest | Sequence[str]
    ) -> RemoveFilesResponse:
        """Remove registered files: manifest entries, then objects (``POST .../files/remove``).

        At most 1,000 paths a call, each once; the entries go in one transaction, then the
        server deletes the objects. Paths that aren't registered come back in
        ``not_registered``: removing again is harmless (a retried call reports the files
        the first attempt removed as ``not_registered``).

        Raises:
            UsageError: a path is unsafe (``../x``), listed twice, or there are none or too many.
            Unprocessable: a path is ``metadata.json``.
            Conflict: the dataset is locked, in review or released.

        Example:
            ```python
            result = await pv.datastore_client.remove_files("10378.1/42", ["raw/old.csv"])
            result.removed, result.not_registered
            ```
        """
        request: RemoveFilesRequest | Mapping[str, Any]
        if isinstance(paths, RemoveFilesRequest):
            request = paths
        elif isinstance(paths, Sequence) and not isinstance(paths, str):
            request = {"paths": list(paths)}
        else:
            raise UsageError(
                f"paths must be a list of paths or a RemoveFilesRequest, got {type(paths)}"
            )
        return await self._core.request(
            "POST",
            "datastore",
            dataset_path(dataset_id) + "/files/remove",
            json=encode_body(RemoveFilesRequest, request, "file removal"),
            cast_to=RemoveFilesResponse,
        )

    async def list_files(
        self,
        dataset_id: str,
        *,
        prefix: str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
    ) -> Page[ManifestEntry]:
        """Fetch one page of a dataset's manifest, in path order (``GET /datasets/{id}/files``).

        Example:
            ```python
            page = await pv.datastore_client.list_files("10378.1/42", prefix="raw/")
            ```
        """
        files = self._files(dataset_id)
        return await files.page({"prefix": prefix}, page_size=page_size, cursor=cursor)

    def iter_files(
        self,
        dataset_id: str,
        *,
        prefix: str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        max_items: int | None = None,
    ) -> AsyncPaginator[ManifestEntry]:
        """Every manifest entry of a dataset, fetched page by page.

        Example:
            ```python
            async for entry in pv.datastore_client.iter_files("10378.1/42"):
                print(entry.path, entry.size)
            ```
        """
        params = {"prefix": prefix} if prefix is not None else None
        return self._files(dataset_id).iterate(
            params, page_size=page_size, cursor=cursor, max_items=max_items
        )

    def _files(self, dataset_id: str) -> ListRoute[ManifestEntry]:
        return self._list_route(dataset_path(dataset_id) + "/files", Page[ManifestEntry])

    async def get_file(self, dataset_id: str, path: str) -> ManifestEntry:
        """One file's manifest entry (``GET /datasets/{id}/files/{path}``).

        Raises:
            UsageError: an unsafe path.
            NotFound: the file isn't registered.

        Example:
            ```python
            entry = await pv.datastore_client.get_file("10378.1/42", "raw/a.csv")
            ```
        """
        return await self._core.request(
            "GET",
            "datastore",
            f"{dataset_path(dataset_id)}/files/{_file_path(path)}",
            cast_to=ManifestEntry,
        )

    # -- extracted metadata ----------------------------------------------------------------

    def _extracted(self, dataset_id: str) -> str:
        return dataset_path(dataset_id) + "/extracted-metadata"

    async def start_extraction_run(
        self, dataset_id: str, *, source: str | None = None
    ) -> ExtractionRun:
        """Open an extraction run of a dataset (``POST /datasets/{id}/extracted-metadata/runs``).

        Needs ``metadata-write``. Add files with :meth:`add_extracted_files`, then
        :meth:`commit_extraction_run`.

        Example:
            ```python
            run = await pv.datastore_client.start_extraction_run("10378.1/42")
            ```
        """
        return await self._core.request(
            "POST",
            "datastore",
            self._extracted(dataset_id) + "/runs",
            json={"source": source},
            cast_to=ExtractionRun,
        )

    async def add_extracted_files(
        self,
        dataset_id: str,
        run_id: str,
        files: ExtractedFilesBatch | Sequence[ExtractedFile] | Sequence[Mapping[str, Any]],
    ) -> ExtractedFilesAdded:
        """Add up to 1,000 files to an open run (``POST .../runs/{run_id}/files``).

        A path already in the run is replaced, so sending a batch again changes nothing.

        Raises:
            Conflict: the run is committed.
            NotFound: no such run of this dataset.

        Example:
            ```python
            run = await pv.datastore_client.start_extraction_run("10378.1/42")
            await pv.datastore_client.add_extracted_files(
                "10378.1/42", run.run_id, [{"path": "a.csv", "terms": ["temperature"]}])
            ```
        """
        request: ExtractedFilesBatch | Mapping[str, Any]
        if isinstance(files, ExtractedFilesBatch):
            request = files
        else:
            request = {"files": list(files)}
        return await self._core.request(
            "POST",
            "datastore",
            f"{self._extracted(dataset_id)}/runs/{quote(run_id, safe='')}/files",
            json=encode_body(ExtractedFilesBatch, request, "extracted files"),
            cast_to=ExtractedFilesAdded,
        )

    async def commit_extraction_run(self, dataset_id: str, run_id: str) -> ExtractionRun:
        """Make a run the dataset's extracted metadata (``POST .../runs/{run_id}/commit``).

        The previous run is replaced and the dataset reindexed for search, atomically.
        Committing again changes nothing.

        Example:
            ```python
            run = await pv.datastore_client.start_extraction_run("10378.1/42")
            done = await pv.datastore_client.commit_extraction_run("10378.1/42", run.run_id)
            ```
        """
        return await self._core.request(
            "POST",
            "datastore",
            f"{self._extracted(dataset_id)}/runs/{quote(run_id, safe='')}/commit",
            cast_to=ExtractionRun,
        )

    async def clear_extracted(self, dataset_id: str) -> int:
        """Delete a dataset's extracted metadata (``DELETE /datasets/{id}/extracted-metadata``).

        Returns:
            How many file records were deleted.

        Example:
            ```python
            deleted = await pv.datastore_client.clear_extracted("10378.1/42")
            ```
        """
        answer = await self._core.request(
            "DELETE", "datastore", self._extracted(dataset_id), cast_to=_COUNTS
        )
        return answer["deleted"]

    async def list_extracted(
        self,
        dataset_id: str,
        *,
        prefix: str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
    ) -> Page[ExtractedFile]:
        """One page of a dataset's extracted metadata, by path (``GET .../extracted-metadata``).

        Example:
            ```python
            page = await pv.datastore_client.list_extracted("10378.1/42", prefix="raw/")
            ```
        """
        route = self._extracted_route(dataset_id)
        return await route.page({"prefix": prefix}, page_size=page_size, cursor=cursor)

    def iter_extracted(
        self,
        dataset_id: str,
        *,
        prefix: str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        max_items: int | None = None,
    ) -> AsyncPaginator[ExtractedFile]:
        """Every file of a dataset's extracted metadata, page by page.

        Example:
            ```python
            async for f in pv.datastore_client.iter_extracted("10378.1/42"):
                print(f.path, f.terms)
            ```
        """
        params = {"prefix": prefix} if prefix is not None else None
        return self._extracted_route(dataset_id).iterate(
            params, page_size=page_size, cursor=cursor, max_items=max_items
        )

    def _extracted_route(self, dataset_id: str) -> ListRoute[ExtractedFile]:
        return self._list_route(self._extracted(dataset_id), Page[ExtractedFile])


def _dataset_params(
    owner: str | None,
    keyword: str | None,
    release_status: str | None,
    sort: str,
    order: str,
) -> dict[str, Any]:
    filters = {"owner": owner, "keyword": keyword, "release_status": release_status}
    return {"sort": sort, "order": order, **{k: v for k, v in filters.items() if v is not None}}
