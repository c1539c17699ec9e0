"""``TransferClient``: the Globus Transfer API (v0.10), async, over globus-sdk in worker threads.

globus-sdk is synchronous and its clients are not thread safe. Every call here runs in a worker
thread (``anyio.to_thread.run_sync``) under a :class:`anyio.CapacityLimiter`, and each worker
thread has its own ``globus_sdk.TransferClient`` (and ``requests`` session), created on first
use and closed by :meth:`TransferClient.aclose`. A small ``http_timeout`` bounds how long a
cancelled call can keep its thread.

The same client talks to our reference server's transfer service (``base_url=<server>/``,
signed by our L1 auth) and to real Globus (the default URL, signed by a
:class:`~provena_like.clients.transfer.auth.GlobusNativeLogin` or any globus-sdk authorizer).

One method, one route (``transfer``/``delete`` first fetch a submission id); lists come as one
page (``list_*``) or as an :class:`~provena_like._core.pagination.AsyncPaginator`
(``iter_*``); :meth:`TransferClient.walk` is the breadth-first recursive listing Globus has no
route for. Errors are the SDK's typed errors (:mod:`provena_like._core.errors`) with the Globus
``code``, message, request id and HTTP status kept.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import (
    AsyncIterator,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from datetime import datetime
from typing import Any, Literal, TypeVar

import anyio
import anyio.to_thread
import globus_sdk
import httpx
from globus_sdk.authorizers import GlobusAuthorizer
from globus_sdk.transport import RequestsTransport, RetryConfig

from provena_like._core.errors import (
    APIError,
    ServerError,
    UsageError,
)
from provena_like._core.lifecycle import AsyncCloseable
from provena_like._core.pagination import AsyncPaginator
from provena_like.clients.transfer._errors import map_globus_error, parsing
from provena_like.clients.transfer._pages import (
    MAX_OFFSET_PAGE,
    next_marker,
    next_offset,
    offset_of,
    paginator,
)
from provena_like.clients.transfer.auth import AuthorizerSource, L1Authorizer, LockedAuthorizer
from provena_like.clients.transfer.locations import Location, LocationLike, Locations
from provena_like.clients.transfer.models import (
    Endpoint,
    FileEntry,
    FilterRule,
    Listing,
    SkippedError,
    SuccessfulTransfer,
    SyncLevel,
    Task,
    TaskEvent,
    TransferItem,
)
from provena_like.clients.transfer.task import TaskHandle, TaskPoll
from provena_like.models.shared import Page

__all__ = ["TransferAuth", "TransferClient"]

log = logging.getLogger(__name__)

R = TypeVar("R")
M = TypeVar("M")

TransferAuth = httpx.Auth | GlobusAuthorizer | AuthorizerSource
"""What signs the requests: our L1 auth (an :class:`httpx.Auth`), a globus-sdk authorizer, or
a source of one such as :class:`~provena_like.clients.transfer.auth.GlobusNativeLogin`."""

ENDPOINT_SEARCH_PAGE = 100
"""The largest ``limit`` of ``endpoint_search``."""

MKDIR_EXISTS = "ExternalError.MkdirFailed.Exists"
"""The Globus code of a ``mkdir`` on a path that exists (HTTP 502)."""

ItemSpec = TransferItem | tuple[str, str] | str
"""A transfer item: a :class:`TransferItem`, a ``(source, destination)`` pair of relative
paths, or one relative path used on both sides."""


class TransferClient(AsyncCloseable):
    """Async Globus Transfer client (our transfer service or real Globus).

    Args:
        base_url: the service root, under which the SDK adds ``/v0.10/`` (our server:
            ``http://host:port/``); ``None``: real Globus (or ``GLOBUS_SDK_SERVICE_URL_TRANSFER``).
        auth: what signs requests (see :data:`TransferAuth`); ``None`` sends no
            ``Authorization`` header.
        locations: labelled collection roots (``{"lab": ("<uuid>", "/data/")}``), so methods
            take ``"lab:raw/x"`` as well as ``globus://<uuid>/path``.
        max_concurrency: calls in flight at once (= worker threads = SDK clients).
        http_timeout: seconds the SDK waits for a response.
        max_retries: retries of the SDK's transport (connection errors, 429, 5xx) per call.
        max_retry_sleep: the longest sleep between those retries.

    Example:
        ```python
        async with TransferClient(base_url="http://127.0.0.1:8000/", auth=pv.auth_manager) as tc:
            listing = await tc.ls("globus://6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e/data/")
            handle = await tc.transfer(src, dst, ["raw/a.bin"], verify_checksum=True)
            result = await handle.wait(timeout=600)
        ```
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        auth: TransferAuth | None = None,
        locations: Locations | Mapping[str, tuple[str, str] | Location] | None = None,
        max_concurrency: int = 4,
        http_timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_sleep: float = 10.0,
    ) -> None:
        if max_concurrency < 1:
            raise UsageError("max_concurrency must be at least 1")
        if http_timeout <= 0:
            raise UsageError("http_timeout must be above 0 seconds")
        if max_retries < 0 or max_retry_sleep < 0:
            raise UsageError("max_retries and max_retry_sleep must not be negative")
        self.base_url = base_url
        self.locations = locations if isinstance(locations, Locations) else Locations(locations)
        self.http_timeout = http_timeout
        self.max_retries = max_retries
        self.max_retry_sleep = max_retry_sleep
        self._auth = auth
        self._authorizer: GlobusAuthorizer | None = None
        self._authorizer_lock = anyio.Lock()
        self._limiter = anyio.CapacityLimiter(max_concurrency)
        self._local = threading.local()
        self._clients: dict[int, globus_sdk.TransferClient] = {}
        self._clients_lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        url = self.base_url or "Globus"
        return f"TransferClient(base_url={url!r}, max_concurrency={self._limiter.total_tokens})"

    # -- plumbing ----------------------------------------------------------------------------

    async def _get_authorizer(self) -> GlobusAuthorizer | None:
        if self._authorizer is not None or self._auth is None:
            return self._authorizer
        async with self._authorizer_lock:
            if self._authorizer is None:
                auth = self._auth
                if isinstance(auth, httpx.Auth):
                    url = self.base_url or "https://transfer.api.globus.org/"
                    self._authorizer = L1Authorizer(auth, url)
                elif isinstance(auth, LockedAuthorizer | L1Authorizer):
                    self._authorizer = auth
                elif isinstance(auth, GlobusAuthorizer):
                    self._authorizer = LockedAuthorizer(auth)
                else:
                    self._authorizer = await auth.authorizer()
            return self._authorizer

    def _thread_client(self, authorizer: GlobusAuthorizer | None) -> globus_sdk.TransferClient:
        """This worker thread's SDK client (created on first use in the thread)."""
        client: globus_sdk.TransferClient | None = getattr(self._local, "client", None)
        if client is None:
            client = globus_sdk.TransferClient(
                base_url=self.base_url,
                authorizer=authorizer,
                transport=RequestsTransport(http_timeout=self.http_timeout),
                retry_config=RetryConfig(
                    max_retries=self.max_retries, max_sleep=self.max_retry_sleep
                ),
            )
            self._local.client = client
            with self._clients_lock:
                # An ident is reused only after its thread ended: close that thread's client.
                stale = self._clients.get(threading.get_ident())
                self._clients[threading.get_ident()] = client
            if stale is not None:
                _close_sdk_client(stale)
        return client

    async def _call(
        self, fn: Callable[[globus_sdk.TransferClient], R], *, abandon_on_cancel: bool = False
    ) -> R:
        """Run ``fn`` with this thread's SDK client in a worker thread; map its errors.

        ``abandon_on_cancel``: a cancelled caller returns at once and leaves the thread to
        finish the call alone (for calls the server may hold, :meth:`poll_task`).
        """
        if self._closed:
            raise UsageError("the TransferClient is closed; create a new one")
        authorizer = await self._get_authorizer()

        def run() -> R:
            client = self._thread_client(authorizer)
            try:
                return fn(client)
            except globus_sdk.GlobusError as err:
                mapped = map_globus_error(err)
                if mapped is None:
                    raise
                raise mapped from err

        return await anyio.to_thread.run_sync(
            run, limiter=self._limiter, abandon_on_cancel=abandon_on_cancel
        )

    async def aclose(self) -> None:
        """Close every worker thread's SDK client (their HTTP sessions); harmless twice.

        An authorizer source passed in (a login) is left open: close what you created.
        """
        self._closed = True
        with self._clients_lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            _close_sdk_client(client)

    # -- operations on paths ----------------------------------------------------------------

    async def ls(
        self,
        location: LocationLike,
        path: str | None = None,
        *,
        show_hidden: bool = True,
        filter: str | Mapping[str, str | list[str]] | None = None,  # noqa: A002
        orderby: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> Listing:
        """List a directory (``operation_ls``; Globus lists a whole directory at once).

        Args:
            location: the directory (``globus://<uuid>/path``, ``label:path``, a
                :class:`Location`), or a collection UUID / label with ``path``.
            path: a path below ``location``.
            show_hidden: include names starting with a dot.
            filter: Globus filter clauses, e.g. ``"name:~*.bin"`` or
                ``{"type": "file", "name": ["~*.bin"]}``.
            orderby: e.g. ``"name ASC"``.
            limit: at most this many entries.
            offset: skip this many entries.

        Raises:
            NotFound: no such path (``ClientError.NotFound``).
            Forbidden: no access (``EndpointPermissionDenied``).
            ServerError: 502 ``ExternalError.DirListingFailed.NotDirectory`` for a file, ...

        Example:
            ```python
            listing = await tc.ls("lab:subjects", filter={"type": "dir"})
            names = [e.name for e in listing.entries]
            ```
        """
        loc = self.locations.resolve(location, path)
        options: dict[str, Any] = {"show_hidden": show_hidden}
        if filter is not None:
            options["filter"] = dict(filter) if isinstance(filter, Mapping) else filter
        options.update(_given(orderby=orderby, limit=limit, offset=offset))
        doc = await self._call(
            lambda tc: tc.operation_ls(loc.collection, path=loc.dir_path, **options).data
        )
        return self._listing(loc, doc)

    @staticmethod
    def _listing(loc: Location, doc: Mapping[str, Any]) -> Listing:
        listed = doc.get("path")
        base = listed if isinstance(listed, str) and listed else loc.dir_path
        if not base.endswith("/"):
            base += "/"
        with parsing("file_list"):
            entries = [
                FileEntry.model_validate({**entry, "path": base + str(entry.get("name", ""))})
                for entry in doc.get("DATA", [])
            ]
        total = doc.get("total")
        return Listing(
            collection=loc.collection,
            path=base,
            entries=entries,
            total=total if isinstance(total, int) else None,
        )

    async def walk(
        self,
        location: LocationLike,
        path: str | None = None,
        *,
        max_depth: int | None = None,
        rate_limit: float | None = 10.0,
        show_hidden: bool = True,
        on_error: Callable[[Location, APIError], None] | None = None,
    ) -> AsyncIterator[FileEntry]:
        """Every entry below a directory, breadth first (one ``ls`` per directory).

        Args:
            location: the top directory (as for :meth:`ls`).
            path: a path below ``location``.
            max_depth: how many levels below the top directory to descend (``0``: only the
                top directory's entries; ``None``: no limit).
            rate_limit: at most this many ``ls`` calls per second (``None``: no limit);
                Globus endpoints throttle clients that list too fast.
            show_hidden: include names starting with a dot.
            on_error: called with a subdirectory that could not be listed and the error,
                then the walk goes on; ``None`` raises the error. The top directory's errors
                are always raised.

        Example:
            ```python
            async for entry in tc.walk("lab:subjects", max_depth=3):
                if not entry.is_dir:
                    print(entry.path, entry.size)
            ```
        """
        if max_depth is not None and max_depth < 0:
            raise UsageError("max_depth must not be negative")
        if rate_limit is not None and rate_limit <= 0:
            raise UsageError("rate_limit must be above 0 (or None)")
        top = self.locations.resolve(location, path)
        interval = 0.0 if rate_limit is None else 1.0 / rate_limit
        queue: deque[tuple[Location, int]] = deque([(top, 0)])
        last_call: float | None = None
        while queue:
            directory, depth = queue.popleft()
            if last_call is not None and interval:
                wait = last_call + interval - anyio.current_time()
                if wait > 0:
                    await anyio.sleep(wait)
            last_call = anyio.current_time()
            try:
                listing = await self.ls(directory, show_hidden=show_hidden)
            except APIError as err:
                if on_error is None or directory is top:
                    raise
                on_error(directory, err)
                continue
            for entry in listing.entries:
                yield entry
                if entry.is_dir and (max_depth is None or depth < max_depth):
                    queue.append((Location(top.collection, entry.path), depth + 1))

    async def stat(self, location: LocationLike, path: str | None = None) -> FileEntry:
        """One file's or directory's entry (``operation_stat``).

        Raises:
            NotFound: no such path.
            Forbidden: no access.

        Example:
            ```python
            entry = await tc.stat("lab:raw/a.bin")
            assert entry.size == 4096
            ```
        """
        loc = self.locations.resolve(location, path)
        doc = await self._call(lambda tc: tc.operation_stat(loc.collection, loc.path).data)
        with parsing("file"):
            return FileEntry.model_validate({**doc, "path": loc.path})

    async def mkdir(
        self, location: LocationLike, path: str | None = None, *, exist_ok: bool = True
    ) -> bool:
        """Create a directory (``operation_mkdir``); returns whether it was created.

        Args:
            location: the directory to create (as for :meth:`ls`).
            path: a path below ``location``.
            exist_ok: a directory that exists already (502
                ``ExternalError.MkdirFailed.Exists``) is fine: ``False`` is returned.

        Raises:
            ServerError: ``ExternalError.MkdirFailed.Exists`` with ``exist_ok=False``.

        Example:
            ```python
            created = await tc.mkdir("archive:2026-12-06")
            ```
        """
        loc = self.locations.resolve(location, path)
        try:
            await self._call(lambda tc: tc.operation_mkdir(loc.collection, loc.path))
        except ServerError as err:
            if exist_ok and err.code == MKDIR_EXISTS:
                return False
            raise
        return True

    async def rename(self, source: LocationLike, destination: LocationLike) -> None:
        """Rename (move) a path within one collection (``operation_rename``).

        Args:
            source: the path to rename.
            destination: its new name: a location on the same collection, or an absolute
                path (``/data/new``) on it.

        Raises:
            UsageError: the two are on different collections (use :meth:`transfer`).

        Example:
            ```python
            await tc.rename("lab:raw/a.tmp", "lab:raw/a.bin")
            ```
        """
        src = self.locations.resolve(source)
        if isinstance(destination, str) and destination.startswith("/"):
            dst = Location(src.collection, destination)
        else:
            dst = self.locations.resolve(destination)
        if dst.collection != src.collection:
            raise UsageError("rename works within one collection; use transfer() across them")
        await self._call(lambda tc: tc.operation_rename(src.collection, src.path, dst.path))

    # -- collections -------------------------------------------------------------------------

    async def get_endpoint(self, collection: LocationLike) -> Endpoint:
        """A collection's endpoint document (``GET /endpoint/{id}``).

        Args:
            collection: the collection UUID, a label, or any location on it.

        Raises:
            NotFound: no such collection.
            Forbidden: no access (``EndpointPermissionDenied``).

        Example:
            ```python
            endpoint = await tc.get_endpoint("lab")
            print(endpoint.display_name)
            ```
        """
        cid = self.locations.resolve(collection).collection
        doc = await self._call(lambda tc: tc.get_endpoint(cid).data)
        with parsing("endpoint"):
            return Endpoint.model_validate(doc)

    async def search_endpoints(
        self,
        text: str | None = None,
        *,
        scope: str | None = None,
        owner_id: str | None = None,
        entity_type: str | None = None,
        page_size: int = 25,
        cursor: str | None = None,
    ) -> Page[Endpoint]:
        """One page of the collections you can find (``GET /endpoint_search``).

        Args:
            text: words to match in names, owners and descriptions (``filter_fulltext``).
            scope: ``all``, ``my-endpoints``, ``administered-by-me``, ``shared-with-me``, ...
                (``filter_scope``; real Globus knows more).
            owner_id: only collections of this owner (``filter_owner_id``).
            entity_type: e.g. ``GCSv5_mapped_collection`` (``filter_entity_type``).
            page_size: results per page (at most 100).
            cursor: where to start (a page's ``next_cursor``).

        Example:
            ```python
            page = await tc.search_endpoints("scratch", scope="shared-with-me")
            ids = [e.id for e in page.items]
            ```
        """
        options = _given(
            filter_fulltext=text,
            filter_scope=scope,
            filter_owner_id=owner_id,
            filter_entity_type=entity_type,
        )
        return await self._offset_page(
            lambda tc, limit, offset: (
                tc.endpoint_search(limit=limit, offset=offset, **options).data
            ),
            Endpoint.model_validate,
            page_size,
            cursor,
            max_page=ENDPOINT_SEARCH_PAGE,
        )

    def iter_endpoints(
        self,
        text: str | None = None,
        *,
        scope: str | None = None,
        owner_id: str | None = None,
        entity_type: str | None = None,
        page_size: int = 25,
        max_items: int | None = None,
    ) -> AsyncPaginator[Endpoint]:
        """Every collection a search finds, page after page (``async for``).

        Example:
            ```python
            async for endpoint in tc.iter_endpoints(scope="my-endpoints"):
                print(endpoint.id, endpoint.display_name)
            ```
        """
        return paginator(
            lambda size, at: self.search_endpoints(
                text,
                scope=scope,
                owner_id=owner_id,
                entity_type=entity_type,
                page_size=size,
                cursor=at,
            ),
            page_size=page_size,
            max_items=max_items,
        )

    # -- tasks -------------------------------------------------------------------------------

    async def submission_id(self) -> str:
        """A new submission id (``GET /submission_id``), for a submit you may have to repeat.

        Pass it as ``submission_id=`` to :meth:`transfer` or :meth:`delete`: submitting again
        with it (after a lost answer, in another process, ...) returns the first task
        (``Duplicate``) instead of starting a second one.

        Example:
            ```python
            sid = await tc.submission_id()
            handle = await tc.transfer(src, dst, items, submission_id=sid)
            ```
        """
        doc = await self._call(lambda tc: tc.get_submission_id().data)
        return str(doc["value"])

    async def _submit(
        self,
        kind: Literal["TRANSFER", "DELETE"],
        build: Callable[[str], globus_sdk.TransferData | globus_sdk.DeleteData],
        submission_id: str | None,
    ) -> TaskHandle:
        sid = submission_id if submission_id is not None else await self.submission_id()
        document = build(sid)

        def submit(tc: globus_sdk.TransferClient) -> dict[str, Any]:
            if isinstance(document, globus_sdk.TransferData):
                answer = tc.submit_transfer(document)
            else:
                answer = tc.submit_delete(document)
            return dict(answer.data)

        try:
            doc = await self._call(submit)
        except APIError as err:
            err.add_note(
                f"submission id {sid}: submit again with submission_id={sid!r} to get the "
                "same task if it was created after all"
            )
            raise
        log.debug("submitted %s task %s (%s)", kind, doc.get("task_id"), doc.get("code"))
        return TaskHandle(
            self, str(doc["task_id"]), submission_id=sid, type=kind, code=doc.get("code")
        )

    async def transfer(
        self,
        source: LocationLike,
        destination: LocationLike,
        items: Iterable[ItemSpec] | None = None,
        *,
        recursive: bool = False,
        sync_level: SyncLevel | None = None,
        verify_checksum: bool | None = True,
        preserve_timestamp: bool | None = None,
        delete_destination_extra: bool | None = None,
        filter_rules: Sequence[FilterRule] = (),
        deadline: datetime | str | None = None,
        label: str | None = None,
        skip_source_errors: bool | None = None,
        submission_id: str | None = None,
    ) -> TaskHandle:
        """Submit a transfer task; returns its handle at once (see :meth:`TaskHandle.wait`).

        The submission id is fetched first and sent with the document, so a submit that is
        retried (by the SDK after a lost connection, or by you with ``submission_id=``) can
        never create two tasks.

        Args:
            source: the source directory (or file, without ``items``).
            destination: the destination directory (or file path, without ``items``).
            items: what to copy, relative to ``source`` and ``destination``:
                :class:`TransferItem` objects, ``(source, destination)`` pairs or paths used
                on both sides; ``None`` copies ``source`` to ``destination`` as one item.
            recursive: copy directories recursively (for items given as paths or pairs,
                and for the single item).
            sync_level: skip files already at the destination: ``exists``, ``size``,
                ``mtime`` or ``checksum`` (the only safe level to resume a failed transfer).
            verify_checksum: compare checksums after each file (default: yes; ``None``
                sends nothing, leaving it to the service, whose default is no, as Globus's:
                files are then checked by size only).
            preserve_timestamp: keep modification times.
            delete_destination_extra: delete destination files not in the source
                (recursive items only).
            filter_rules: include/exclude rules for recursive items (first match wins).
            deadline: the task fails if not done by then.
            label: a label for the task.
            skip_source_errors: skip unreadable source paths instead of retrying them.
            submission_id: a submission id from :meth:`submission_id` (default: a new one).

        Raises:
            BadRequest: e.g. ``ClientError.BadRequest.NoTransferItems``.
            Conflict: a transfer with identical paths is still active.
            UsageError: an empty ``items``.

        Example:
            ```python
            handle = await tc.transfer(
                "lab:subjects/ZM_1", "archive:ZM_1", recursive=True,
                sync_level="checksum", verify_checksum=True, label="archive ZM_1",
            )
            ```
        """
        src = self.locations.resolve(source)
        dst = self.locations.resolve(destination)
        pairs: list[tuple[str, str, bool, TransferItem | None]] = []
        if items is None:
            pairs.append((src.path, dst.path, recursive, None))
        else:
            for spec in items:
                if isinstance(spec, TransferItem):
                    target = spec.destination if spec.destination is not None else spec.source
                    pairs.append(
                        (
                            src.joinpath(spec.source).path,
                            dst.joinpath(target).path,
                            spec.recursive,
                            spec,
                        )
                    )
                elif isinstance(spec, tuple):
                    pairs.append(
                        (src.joinpath(spec[0]).path, dst.joinpath(spec[1]).path, recursive, None)
                    )
                else:
                    pairs.append(
                        (src.joinpath(spec).path, dst.joinpath(spec).path, recursive, None)
                    )
            if not pairs:
                raise UsageError("transfer() got no items")

        def build(sid: str) -> globus_sdk.TransferData:
            data = globus_sdk.TransferData(
                src.collection,
                dst.collection,
                submission_id=sid,
                **_given(
                    label=label,
                    sync_level=sync_level,
                    verify_checksum=verify_checksum,
                    preserve_timestamp=preserve_timestamp,
                    delete_destination_extra=delete_destination_extra,
                    deadline=deadline,
                    skip_source_errors=skip_source_errors,
                ),
            )
            for source_path, destination_path, item_recursive, item in pairs:
                extra = {}
                if item is not None:
                    extra = _given(
                        external_checksum=item.external_checksum,
                        checksum_algorithm=item.checksum_algorithm,
                    )
                data.add_item(source_path, destination_path, recursive=item_recursive, **extra)
            for rule in filter_rules:
                data.add_filter_rule(rule.name, method=rule.method, **_given(type=rule.type))
            return data

        return await self._submit("TRANSFER", build, submission_id)

    async def delete(
        self,
        location: LocationLike,
        items: Iterable[str] | None = None,
        *,
        recursive: bool = False,
        ignore_missing: bool | None = None,
        interpret_globs: bool | None = None,
        deadline: datetime | str | None = None,
        label: str | None = None,
        submission_id: str | None = None,
    ) -> TaskHandle:
        """Submit a delete task; returns its handle at once.

        Args:
            location: the path to delete, or the directory ``items`` are relative to.
            items: paths below ``location``; ``None`` deletes ``location`` itself.
            recursive: delete directories with everything in them.
            ignore_missing: a missing path is not an error.
            interpret_globs: treat ``*``, ``?`` and ``[`` in the last path segment as globs.
            deadline: the task fails if not done by then.
            label: a label for the task.
            submission_id: a submission id from :meth:`submission_id` (default: a new one).

        Example:
            ```python
            handle = await tc.delete("lab:tmp", ["a.bin", "b.bin"], ignore_missing=True)
            (await handle.wait(timeout=300)).raise_for_status()
            ```
        """
        loc = self.locations.resolve(location)
        paths = [loc.path] if items is None else [loc.joinpath(p).path for p in items]
        if not paths:
            raise UsageError("delete() got no items")

        def build(sid: str) -> globus_sdk.DeleteData:
            data = globus_sdk.DeleteData(
                loc.collection,
                submission_id=sid,
                recursive=recursive,
                **_given(
                    ignore_missing=ignore_missing,
                    interpret_globs=interpret_globs,
                    deadline=deadline,
                    label=label,
                ),
            )
            for p in paths:
                data.add_item(p)
            return data

        return await self._submit("DELETE", build, submission_id)

    def task(self, task_id: str) -> TaskHandle:
        """A handle on an existing task (to wait for it, page its results, cancel it)."""
        return TaskHandle(self, str(task_id))

    async def cancel(self, task_id: str) -> str:
        """Cancel a task (``POST /task/{id}/cancel``); returns the answer's code (``Canceled``).

        Example:
            ```python
            await tc.cancel(handle.task_id)
            ```
        """
        doc = await self._call(lambda tc: tc.cancel_task(task_id).data)
        return str(doc.get("code", ""))

    async def get_task(self, task_id: str) -> Task:
        """A task document (``GET /task/{id}``).

        Raises:
            NotFound: no such task (or not yours).

        Example:
            ```python
            task = await tc.get_task(handle.task_id)
            print(task.status, task.files_transferred)
            ```
        """
        doc = await self._call(lambda tc: tc.get_task(task_id).data)
        with parsing("task"):
            return Task.from_document(doc)

    async def poll_task(
        self, task_id: str, *, etag: str | None = None, wait: float = 0.0
    ) -> TaskPoll:
        """One poll of a task that our service may hold until the task changes.

        Sends ``Prefer: wait=<wait>`` and, with ``etag`` (the tag of the last answer),
        ``If-None-Match``: our transfer service then answers when the task's state changes
        or ``wait`` seconds pass (at most 10; ``304``, :attr:`TaskPoll.task` ``None``), and
        says so (:attr:`TaskPoll.held`). Real Globus ignores both headers and answers at
        once, as ``get_task`` does. :meth:`TaskHandle.wait` polls with this.

        Raises:
            NotFound: no such task (or not yours).

        Example:
            ```python
            first = await tc.poll_task(handle.task_id)
            later = await tc.poll_task(handle.task_id, etag=first.etag, wait=5)
            task = later.task or first.task  # None: unchanged after 5 s
            ```
        """
        hold = max(0.0, min(wait, self.http_timeout / 2))  # answered well before the timeout
        headers = {"Prefer": f"wait={hold:.3f}"}
        if etag is not None:
            headers["If-None-Match"] = etag

        def get(tc: globus_sdk.TransferClient) -> tuple[int, Any, str | None, bool]:
            answer = tc.get(f"/v0.10/task/{task_id}", headers=headers)
            status, tag = answer.http_status, answer.headers.get("ETag")
            applied = "wait=" in answer.headers.get("Preference-Applied", "")
            return status, answer.data if status != 304 else None, tag, applied

        status, doc, tag, held = await self._call(get, abandon_on_cancel=True)
        if status == 304:
            return TaskPoll(None, tag or etag, held)
        with parsing("task"):
            return TaskPoll(Task.from_document(doc), tag, held)

    async def list_tasks(
        self,
        *,
        filter: str | Mapping[str, str | list[str]] | None = None,  # noqa: A002
        orderby: str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
    ) -> Page[Task]:
        """One page of your tasks (``GET /task_list``, limit/offset).

        Args:
            filter: e.g. ``{"type": "TRANSFER", "status": ["ACTIVE", "INACTIVE"]}`` or
                ``"type:TRANSFER/status:ACTIVE"``.
            orderby: e.g. ``"request_time DESC"``.
            page_size: tasks per page (at most 1000).
            cursor: where to start (a page's ``next_cursor``).

        Example:
            ```python
            page = await tc.list_tasks(filter={"status": "ACTIVE"}, page_size=50)
            ```
        """
        options: dict[str, Any] = _given(orderby=orderby)
        if filter is not None:
            options["filter"] = dict(filter) if isinstance(filter, Mapping) else filter
        return await self._offset_page(
            lambda tc, limit, offset: tc.task_list(limit=limit, offset=offset, **options).data,
            Task.from_document,
            page_size,
            cursor,
        )

    def iter_tasks(
        self,
        *,
        filter: str | Mapping[str, str | list[str]] | None = None,  # noqa: A002
        orderby: str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        max_items: int | None = None,
    ) -> AsyncPaginator[Task]:
        """Every task (of ``filter``), page after page (``async for``).

        Example:
            ```python
            async for task in tc.iter_tasks(filter={"status": "ACTIVE"}):
                print(task)
            ```
        """
        return paginator(
            lambda size, at: self.list_tasks(
                filter=filter, orderby=orderby, page_size=size, cursor=at
            ),
            page_size=page_size,
            cursor=cursor,
            max_items=max_items,
        )

    async def list_task_events(
        self, task_id: str, *, page_size: int = 100, cursor: str | None = None
    ) -> Page[TaskEvent]:
        """One page of a task's events, newest first (``GET /task/{id}/event_list``).

        Example:
            ```python
            latest = (await tc.list_task_events(task_id, page_size=5)).items
            ```
        """
        return await self._offset_page(
            lambda tc, limit, offset: tc.task_event_list(task_id, limit=limit, offset=offset).data,
            TaskEvent.model_validate,
            page_size,
            cursor,
        )

    def iter_task_events(
        self, task_id: str, *, page_size: int = 100, max_items: int | None = None
    ) -> AsyncPaginator[TaskEvent]:
        """Every event of a task, newest first (``async for``)."""
        return paginator(
            lambda size, at: self.list_task_events(task_id, page_size=size, cursor=at),
            page_size=page_size,
            max_items=max_items,
        )

    async def list_successful_transfers(
        self, task_id: str, *, cursor: str | None = None
    ) -> Page[SuccessfulTransfer]:
        """One page of the files a task moved (``successful_transfers``, marker paging).

        Example:
            ```python
            page = await tc.list_successful_transfers(task_id)
            ```
        """
        return await self._marker_page(
            lambda tc, marker: tc.task_successful_transfers(task_id, marker=marker).data,
            SuccessfulTransfer.model_validate,
            cursor,
        )

    def iter_successful_transfers(
        self, task_id: str, *, max_items: int | None = None
    ) -> AsyncPaginator[SuccessfulTransfer]:
        """Every file a task moved, page after page (``async for``)."""
        return paginator(
            lambda _, at: self.list_successful_transfers(task_id, cursor=at), max_items=max_items
        )

    async def list_skipped_errors(
        self, task_id: str, *, cursor: str | None = None
    ) -> Page[SkippedError]:
        """One page of the paths a task skipped after errors (``skipped_errors``).

        Example:
            ```python
            page = await tc.list_skipped_errors(task_id)
            ```
        """
        return await self._marker_page(
            lambda tc, marker: tc.task_skipped_errors(task_id, marker=marker).data,
            SkippedError.model_validate,
            cursor,
        )

    def iter_skipped_errors(
        self, task_id: str, *, max_items: int | None = None
    ) -> AsyncPaginator[SkippedError]:
        """Every path a task skipped after errors, page after page (``async for``)."""
        return paginator(
            lambda _, at: self.list_skipped_errors(task_id, cursor=at), max_items=max_items
        )

    async def _offset_page(
        self,
        call: Callable[[globus_sdk.TransferClient, int, int], dict[str, Any]],
        parse: Callable[[Any], M],
        page_size: int,
        cursor: str | None,
        *,
        max_page: int = MAX_OFFSET_PAGE,
    ) -> Page[M]:
        """One limit/offset page (task list, events, endpoint search); cursor = offset."""
        offset = offset_of(cursor)
        limit = min(page_size, max_page)
        doc = await self._call(lambda tc: call(tc, limit, offset))
        with parsing(str(doc.get("DATA_TYPE", "list"))):
            items = [parse(d) for d in doc.get("DATA", [])]
        return Page(items=items, next_cursor=next_offset(doc, offset, len(items)))

    async def _marker_page(
        self,
        call: Callable[[globus_sdk.TransferClient, str | globus_sdk.MissingType], dict[str, Any]],
        parse: Callable[[Any], M],
        cursor: str | None,
    ) -> Page[M]:
        """One marker page (``successful_transfers``, ``skipped_errors``); cursor = marker."""
        marker = globus_sdk.MISSING if cursor is None else cursor
        doc = await self._call(lambda tc: call(tc, marker))
        with parsing(str(doc.get("DATA_TYPE", "list"))):
            items = [parse(d) for d in doc.get("DATA", [])]
        return Page(items=items, next_cursor=next_marker(doc))


def _close_sdk_client(client: globus_sdk.TransferClient) -> None:
    """Close an SDK client and the transport (``requests`` session) it was given."""
    client.transport.close()
    client.close()


def _given(**values: Any) -> dict[str, Any]:
    """The keyword arguments that were given (not ``None``): globus-sdk sends only those."""
    return {name: value for name, value in values.items() if value is not None}
