"""The transfer engine: concurrent, verified upload and download of a dataset's files.

One :class:`TransferEngine` owns, for its lifetime, one S3 transport
(:class:`~provena_like.storage._requests.S3Requests`: an aiobotocore client and a pooled
``aiohttp`` session for whole-object requests, both signing with the engine's
:class:`~provena_like.storage.credentials.RefreshingCredentials` and retried by its one
:class:`~provena_like.storage.retry.S3RetryPolicy`). Each batch runs in one anyio task
group with three limits: requests in flight (``max_concurrency``), bytes held in buffers
(``memory_limit``) and worker threads for file I/O and hashing. Every file gets a result;
nothing raises halfway through a batch.

Example:
    ```python
    async with TransferEngine(creds, max_concurrency=16) as engine:
        up = await engine.upload(Path("./run-42"), prefix="raw/", exclude=["*.tmp"])
        manifest = {f.path: f.sha256 for f in up.ok}
        down = await engine.download(
            [(path, path, sha) for path, sha in manifest.items()], Path("./copy")
        )
        down.raise_for_failures()
    ```
"""

from __future__ import annotations

import builtins
import logging
import os
import threading
import warnings
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal, Self

import aioboto3
import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from provena_like._core.errors import UsageError
from provena_like._core.lifecycle import AsyncCloseable
from provena_like._redaction import install_log_redaction
from provena_like.storage import _sync
from provena_like.storage._batch import BatchContext, TransferSettings, run_batch
from provena_like.storage._budget import ByteBudget
from provena_like.storage._direct import DirectS3, bucket_base_url
from provena_like.storage._download import download_file
from provena_like.storage._md5 import register_content_md5
from provena_like.storage._objects import (
    delete_objects,
    digest_object,
    first_part_size,
    head_object,
    read_back_object,
    stored_hashes,
)
from provena_like.storage._plan import (
    MIN_PART_SIZE,
    DownloadItem,
    UploadItem,
    plan_downloads,
    plan_uploads,
)
from provena_like.storage._requests import S3Requests, error_code, to_transfer_error
from provena_like.storage._resume import remove_upload_state
from provena_like.storage._sync import SyncContext
from provena_like.storage._upload import upload_file
from provena_like.storage.cache import HashCache, default_cache_dir
from provena_like.storage.credentials import (
    RefreshingCredentials,
    S3Credentials,
    botocore_session,
)
from provena_like.storage.events import ProgressCallback, ProgressReporter
from provena_like.storage.hashing import Digests
from provena_like.storage.keys import validate_prefix, validate_relative_key
from provena_like.storage.listing import (
    IncompleteUpload,
    RemoteObject,
    iter_objects,
    iter_uploads,
)
from provena_like.storage.results import FileResult, TransferResult, VerifyResult
from provena_like.storage.retry import S3RetryPolicy
from provena_like.storage.selection import DownloadSpec, download_entry

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

__all__ = ["DownloadSpec", "TransferEngine"]

log = logging.getLogger(__name__)

MiB = 1024 * 1024

_State = Literal["new", "open", "closed"]
_CONNECT_TIMEOUT = 10.0
_READ_TIMEOUT = 60.0


_thread_state = threading.local()

# botocore logs signed headers, signatures and session tokens at DEBUG: redact them.
install_log_redaction()


def _shared_models() -> AioSession:
    """One aiobotocore session per thread whose loaded models every engine's session shares.

    Creating a client from a fresh session loads botocore's JSON models on the event loop
    (75-150 ms, measured); sharing a session's data loader, about 10 ms.
    """
    session: AioSession | None = getattr(_thread_state, "models", None)
    if session is None:
        session = _thread_state.models = AioSession()
    return session


def _default_io_threads() -> int:
    return min(32, (os.cpu_count() or 1) + 4)


def _pairs_root(pairs: Sequence[tuple[Path, str]]) -> Path:
    """The folder upload pairs' keys are relative to, else the folder that holds them all.

    ``(root/a/b.csv, "a/b.csv")`` has ``root``: the pairs :meth:`TransferEngine.sync_up`
    uploads all share its local folder, so uploads and syncs share its hash cache.

    Example:
        ```python
        pairs = [(Path("/data/run/a.csv"), "run/a.csv"), (Path("/data/b.csv"), "b.csv")]
        assert _pairs_root(pairs) == Path("/data")
        assert _pairs_root([(Path("/x/a.csv"), "renamed.csv")]) == Path("/x")
        ```
    """
    roots: set[str] = set()
    for local, relative in pairs:
        where = Path(os.path.abspath(local)).parts
        key = PurePosixPath(relative).parts
        if key and len(where) > len(key) and where[-len(key) :] == key:
            roots.add(os.path.join(*where[: -len(key)]))
        else:
            roots.add(os.path.dirname(os.path.abspath(local)))
    return Path(roots.pop() if len(roots) == 1 else os.path.commonpath(sorted(roots)))


class TransferEngine(AsyncCloseable):
    """Moves a dataset's files to and from its S3 prefix.

    Args:
        credentials: Scoped credentials; a :class:`RefreshingCredentials` keeps long
            transfers going past their expiry.
        max_concurrency: Requests in flight at once (across files and parts).
        multipart_threshold: Files this large or larger are uploaded in parts.
        part_size: Bytes per part (upload) and per ranged GET (download); ``None`` picks
            8 MiB for uploads, and for downloads about a 32nd of the object, from 8 to
            32 MiB (fewer, larger GETs: less CPU on both sides); raised so that a file
            fits in 10,000 parts. At least 5 MiB.
        checksum: Compute sha256 of every file (sent to S3 as ``x-amz-checksum-sha256``
            and ``x-amz-meta-sha256``; a multipart file's is computed in a pass before its
            upload, or taken from the hash cache, and stored as ``x-amz-meta-sha256``, each
            part sent with its CRC32) and verify downloads against the expected or stored
            sha256 (else an object's ``md5chksum``, else its ETag). Off: nothing is hashed
            or verified.
        md5: Compute md5 too: sent as ``Content-MD5`` for single PUTs, and stored for a
            multipart one as rclone stores it (``x-amz-meta-md5chksum``, base64), so that
            ``rclone copy`` checks its downloads (with ``checksum`` on: the md5 must be
            known before the upload).
        memory_limit: Most bytes the engine holds in buffers at once (file contents read
            for upload, parts waiting to be written). Python 3.11's asyncio copies the unsent
            rest of a request body, so peak memory for uploads can reach about twice this.
            The default keeps 8 parts of 8 MiB in flight; on loopback 32 to 128 MiB measured
            the same speed.
        ranged_get_threshold: Objects of known size (listed, or sized in the manifest) at
            least this large are downloaded with concurrent ranged GETs of ``part_size``
            (at most 4 of one object at once), each written at its offset as it arrives
            while the written prefix is hashed;
            smaller ones (or of unknown size) with one streamed GET. ``None``: always one
            streamed GET. With the default, 16 MiB, a 1 GiB object took 1.8-2.7 s against
            2.5-4.0 s with one GET on a loaded 2-core loopback machine (the server streams
            the ranges on several cores).
        io_threads: Worker threads for file I/O and hashing.
        session: An aiobotocore ``AioSession`` whose loaded botocore models the engine's
            own session shares (default: one shared by the engines of the current thread).
            Its credentials and configuration are not used: the engine's credentials sign
            every request. An ``aioboto3.Session`` is ignored (deprecated, with a warning).
        resume: Let interrupted transfers continue: a multipart upload that fails or is
            cancelled stays open (recorded with the file's sha256 under ``cache_dir``) and the
            next upload of the unchanged file sends only the missing parts; a large download
            keeps ``.<name>.provena-partial`` and its ``.json`` sidecar and continues from
            there if the object's ETag is unchanged. Off: interrupted uploads are aborted and
            partial downloads removed. Uploads resume only with ``checksum`` on (the file's
            size and mtime and each part's CRC32 tie an open upload to the file's bytes).
            See :meth:`abort_incomplete_uploads` for leftovers.
        cache_dir: Where upload records and local file hashes (for :meth:`sync_up` and
            multipart uploads) are kept (default: ``$PROVENA_CACHE_DIR`` or
            ``~/.cache/provena_like``).
        retry_policy: How every S3 request is retried, whichever path it takes (default:
            4 attempts, full-jitter exponential backoff from 0.5 s, capped at 20 s).

    Raises:
        UsageError: For invalid settings.

    Example:
        ```python
        async with TransferEngine(creds) as engine:
            result = await engine.upload(Path("./data"))
            print(len(result.ok), "files,", result.bytes, "bytes")
        ```
    """

    def __init__(
        self,
        credentials: RefreshingCredentials | S3Credentials,
        *,
        max_concurrency: int = 16,
        multipart_threshold: int = 16 * MiB,
        part_size: int | None = None,
        checksum: bool = True,
        md5: bool = False,
        memory_limit: int = 64 * MiB,
        ranged_get_threshold: int | None = 16 * MiB,
        io_threads: int | None = None,
        session: AioSession | aioboto3.Session | None = None,
        resume: bool = True,
        cache_dir: Path | str | None = None,
        retry_policy: S3RetryPolicy | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise UsageError("max_concurrency must be at least 1")
        if multipart_threshold < 1:
            raise UsageError("multipart_threshold must be positive")
        if part_size is not None and part_size < MIN_PART_SIZE:
            raise UsageError(f"part_size must be at least 5 MiB ({MIN_PART_SIZE}), got {part_size}")
        if memory_limit < MIN_PART_SIZE:
            raise UsageError("memory_limit must be at least 5 MiB")
        if ranged_get_threshold is not None and ranged_get_threshold < 1:
            raise UsageError("ranged_get_threshold must be positive (or None)")
        if io_threads is not None and io_threads < 1:
            raise UsageError("io_threads must be at least 1")
        if isinstance(credentials, RefreshingCredentials):
            self._refresher: RefreshingCredentials | None = credentials
            self._credentials = credentials
        elif isinstance(credentials, S3Credentials):
            self._refresher = None  # static keys: nothing to refresh after an expiry error
            self._credentials = RefreshingCredentials.fixed(credentials)
        else:
            raise UsageError("credentials must be S3Credentials or RefreshingCredentials")
        if isinstance(session, aioboto3.Session):
            warnings.warn(
                "TransferEngine(session=aioboto3.Session) is ignored: the engine makes its own "
                "botocore session (its credentials sign every request); pass an aiobotocore "
                "AioSession to share its loaded models, or nothing",
                DeprecationWarning,
                stacklevel=2,
            )
            session = None
        self._models = session if session is not None else _shared_models()
        self._retry_policy = retry_policy if retry_policy is not None else S3RetryPolicy()
        self._max_concurrency = max_concurrency
        self._settings = TransferSettings(
            multipart_threshold=multipart_threshold,
            part_size=part_size,
            checksum=checksum,
            md5=md5,
            ranged_get_threshold=ranged_get_threshold,
            resume=resume,
            cache_dir=Path(cache_dir) if cache_dir is not None else default_cache_dir(),
        )
        self._memory_limit = memory_limit
        self._io_threads = io_threads or _default_io_threads()
        self._state: _State = "new"
        self._stack: AsyncExitStack | None = None
        self._requests: S3Requests | None = None
        self._location: S3Credentials | None = None
        self._budget = ByteBudget(memory_limit)
        self._io_limiter = anyio.CapacityLimiter(self._io_threads)
        self._request_limiter = anyio.CapacityLimiter(max_concurrency)

    def __repr__(self) -> str:
        where = f"{self._location.bucket}/{self._location.prefix}" if self._location else "unopened"
        return (
            f"TransferEngine({where!r}, state={self._state!r}, "
            f"max_concurrency={self._max_concurrency})"
        )

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise UsageError(f"a TransferEngine can be opened once; this one is {self._state}")
        stack = AsyncExitStack()
        try:
            await self._open(stack)
        except BaseException:
            await stack.aclose()
            self._state = "closed"
            raise
        self._stack = stack
        self._state = "open"
        return self

    async def aclose(self) -> None:
        """Close the S3 client (idempotent). The engine can't be reopened.

        Example:
            ```python
            engine = TransferEngine(creds)
            await engine.__aenter__()
            await engine.aclose()
            ```
        """
        stack, self._stack = self._stack, None
        self._state = "closed"
        self._requests = None
        if stack is not None:
            await stack.aclose()

    async def _open(self, stack: AsyncExitStack) -> None:
        first = await self._credentials.get()
        self._location = first
        session = await botocore_session(self._credentials, models_from=self._models)
        config = AioConfig(
            max_pool_connections=self._max_concurrency + 4,
            # path-style for S3-compatible servers (no wildcard DNS); AWS picks its own
            s3={
                "addressing_style": "path" if first.endpoint_url else "auto",
                # the body is covered by x-amz-checksum-* headers, which are signed
                "payload_signing_enabled": False,
            },
            # we send our own checksums; botocore must not hash bodies again on the loop
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            # one attempt per call: the transport (S3Requests) retries both request paths
            # under the engine's one S3RetryPolicy
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=_CONNECT_TIMEOUT,
            read_timeout=_READ_TIMEOUT,
        )
        client: S3Client = await stack.enter_async_context(
            session.create_client(
                "s3", endpoint_url=first.endpoint_url, region_name=first.region, config=config
            )
        )
        register_content_md5(client)
        install_log_redaction()  # loggers botocore created while making the client
        probe = "provena-like-probe"
        presigned = await client.generate_presigned_url(
            "get_object", Params={"Bucket": first.bucket, "Key": probe}, ExpiresIn=60
        )
        direct = DirectS3(
            bucket_base_url(presigned, probe),
            client.meta.region_name,
            self._credentials.frozen,
            max_connections=self._max_concurrency + 4,
            connect_timeout=_CONNECT_TIMEOUT,
            read_timeout=_READ_TIMEOUT,
        )
        stack.push_async_callback(direct.aclose)
        self._requests = S3Requests(
            client, direct, self._request_limiter, self._refresher, self._retry_policy
        )

    def _open_requests(self) -> tuple[S3Requests, S3Credentials]:
        if self._state != "open" or self._requests is None or self._location is None:
            raise UsageError("use the engine inside `async with TransferEngine(...) as engine:`")
        return self._requests, self._location

    def _context(self, progress: ProgressReporter) -> BatchContext:
        requests, location = self._open_requests()
        return BatchContext(
            requests=requests,
            bucket=location.bucket,
            prefix=location.prefix,
            settings=self._settings,
            budget=self._budget,
            io_limiter=self._io_limiter,
            progress=progress,
            endpoint=location.endpoint_url or "aws",
        )

    @property
    def files_in_flight(self) -> int:
        """Files a batch works on at once (twice the request limit keeps the pipe full)."""
        return max(2 * self._max_concurrency, 4)

    def sync_context(self) -> SyncContext:
        """What sync and verify plan with: this engine's listing, HEAD, transfers and limits.

        Returns:
            A :class:`~provena_like.storage._sync.SyncContext` bound to this open engine.

        Raises:
            UsageError: If the engine isn't open.
        """
        requests, location = self._open_requests()
        cache_dir = self._settings.cache_dir
        if cache_dir is None:  # pragma: no cover - the engine always sets one
            raise UsageError("sync needs a cache directory")

        without_sha256: dict[str, str | None] = {}  # key → md5chksum, till the planner asks

        async def head(key: str) -> str | None:
            stored = await stored_hashes(requests, location.prefix, key)
            if stored.sha256 is None:  # the planner asks for the md5 next: no second HEAD
                without_sha256[key] = stored.md5
            return stored.sha256

        async def md5chksum(key: str) -> str | None:
            if key in without_sha256:
                return without_sha256.pop(key)
            return (await stored_hashes(requests, location.prefix, key)).md5

        async def delete(keys: Sequence[str]) -> builtins.list[FileResult]:
            return await delete_objects(requests, location.bucket, location.prefix, keys)

        async def part_one(key: str) -> int | None:
            return await first_part_size(requests, location.bucket, location.prefix, key)

        return SyncContext(
            list_objects=self.list,
            stored_sha256=head,
            upload=self.upload,
            download=self.download,
            delete=delete,
            cache_dir=cache_dir,
            io_limiter=self._io_limiter,
            files_in_flight=self.files_in_flight,
            first_part_size=part_one,
            part_size=self._settings.part_size,
            stored_md5=md5chksum,
        )

    # ------------------------------------------------------------------ listing

    async def list(
        self, prefix: str = "", *, start_after: str | None = None, page_size: int = 1000
    ) -> AsyncIterator[RemoteObject]:
        """Yield the dataset's objects under ``prefix`` (relative to the dataset root).

        Args:
            prefix: ``""`` for everything, ``"raw/"`` for a folder, ``"raw/2024-"`` for
                keys starting so.
            start_after: Only the keys after this one (relative to the dataset root;
                S3's ``StartAfter``).
            page_size: Keys asked for per request (S3 answers at most 1,000).

        Yields:
            One :class:`RemoteObject` per object, in key order, every page.

        Example:
            ```python
            async for obj in engine.list("raw/"):
                print(obj.key, obj.size)
            ```
        """
        validate_prefix(prefix)
        if not 1 <= page_size <= 1000:
            raise UsageError(f"page_size is 1 to 1,000 keys, got {page_size}")
        requests, location = self._open_requests()
        listed = iter_objects(
            requests, location.prefix, prefix, page_size=page_size, start_after=start_after
        )
        async for obj in listed:
            yield obj

    # ------------------------------------------------------------------ single objects

    async def stat(self, key: str) -> RemoteObject | None:
        """HEAD one object: size, ETag, time and the sha256 stored with it; ``None`` if missing.

        The sha256 is the ``x-amz-meta-sha256`` written at upload (``None`` for a multipart
        object uploaded without a cached hash): what the uploader said, not recomputed. Use
        :meth:`digest` for the hash of the bytes the store holds.

        Args:
            key: The key relative to the dataset root.

        Raises:
            UnsafePath: If the key is unsafe.
            TransferError: If the HEAD failed otherwise (access denied, unreachable).

        Example:
            ```python
            obj = await engine.stat("raw/a.csv")
            if obj is not None:
                print(obj.size, obj.sha256)
            ```
        """
        validate_relative_key(key)
        requests, location = self._open_requests()
        try:
            return await head_object(requests, location.prefix, key)
        except Exception as exc:
            raise to_transfer_error(exc, f"stat {key}") from exc

    async def digest(self, key: str) -> Digests:
        """Read one object back from the store and hash the bytes received (sha256).

        Nothing is written locally; the object streams through a hasher in worker threads.

        Args:
            key: The key relative to the dataset root.

        Returns:
            The sha256 and size of the stored bytes.

        Raises:
            UnsafePath: If the key is unsafe.
            TransferError: If the object is missing (its ``__cause__`` has S3's ``NoSuchKey``)
                or could not be read whole.

        Example:
            ```python
            stored = await engine.digest("raw/a.csv")
            assert stored.sha256 == manifest["raw/a.csv"]
            ```
        """
        validate_relative_key(key)
        requests, location = self._open_requests()
        try:
            return await digest_object(requests, location.prefix, key, self._io_limiter)
        except Exception as exc:
            raise to_transfer_error(exc, f"read back {key}") from exc

    async def read_back(self, key: str) -> tuple[RemoteObject, Digests] | None:
        """Read one object back (one GET, no HEAD): what the store says of it and its digests.

        The :class:`RemoteObject` is what the GET's headers say (size, ETag, time, the sha256
        stored at upload); the :class:`~provena_like.storage.hashing.Digests` are computed
        from the bytes received, streaming through a hasher in worker threads.

        Args:
            key: The key relative to the dataset root.

        Returns:
            Both, or ``None`` if there is no such object.

        Raises:
            UnsafePath: If the key is unsafe.
            TransferError: If the object could not be read whole (access denied,
                unreachable, a body that broke off).

        Example:
            ```python
            seen = await engine.read_back("raw/a.csv")
            assert seen is not None and seen[1].sha256 == manifest["raw/a.csv"]
            ```
        """
        validate_relative_key(key)
        requests, location = self._open_requests()
        try:
            return await read_back_object(requests, location.prefix, key, self._io_limiter)
        except Exception as exc:
            raise to_transfer_error(exc, f"read back {key}") from exc

    async def delete(self, keys: Iterable[str]) -> builtins.list[FileResult]:
        """Delete objects (keys relative to the dataset root), 1,000 per request.

        A missing object counts as deleted (S3 answers so).

        Args:
            keys: The keys to delete.

        Returns:
            One result per key: ``ok`` (reason ``deleted``) or ``failed`` (with why).

        Raises:
            UnsafePath: If a key is unsafe (before anything is deleted).

        Example:
            ```python
            results = await engine.delete(["raw/old.csv"])
            assert all(r.ok for r in results)
            ```
        """
        wanted = [validate_relative_key(key) for key in keys]
        requests, location = self._open_requests()
        return await delete_objects(requests, location.bucket, location.prefix, wanted)

    # ------------------------------------------------------------------ incomplete uploads

    async def list_incomplete_uploads(self, prefix: str = "") -> builtins.list[IncompleteUpload]:
        """The dataset's multipart uploads that were started but never completed or aborted.

        Interrupted uploads stay open so that they can resume (see ``resume``); ones that
        never will take storage until aborted.

        Args:
            prefix: Only under this prefix (relative to the dataset root).

        Returns:
            One entry per open upload, in key order.

        Example:
            ```python
            for up in await engine.list_incomplete_uploads():
                print(up.key, up.initiated)
            ```
        """
        validate_prefix(prefix)
        requests, location = self._open_requests()
        return [u async for u in iter_uploads(requests, location.bucket, location.prefix, prefix)]

    async def abort_incomplete_uploads(
        self, older_than: timedelta | None = None, *, prefix: str = ""
    ) -> builtins.list[IncompleteUpload]:
        """Abort the dataset's open multipart uploads (their parts are deleted).

        Args:
            older_than: Only uploads started at least this long ago (``None``: all; an
                upload running elsewhere right now would fail).
            prefix: Only under this prefix (relative to the dataset root).

        Returns:
            The uploads aborted.

        Example:
            ```python
            gone = await engine.abort_incomplete_uploads(timedelta(days=1))
            ```
        """
        requests, location = self._open_requests()
        cutoff = None if older_than is None else datetime.now(UTC) - older_than
        aborted: builtins.list[IncompleteUpload] = []
        for upload in await self.list_incomplete_uploads(prefix):
            if cutoff is not None and (upload.initiated is None or upload.initiated > cutoff):
                continue
            key = location.prefix + upload.key
            try:
                await requests.call(
                    requests.client.abort_multipart_upload,
                    Bucket=location.bucket,
                    Key=key,
                    UploadId=upload.upload_id,
                )
            except Exception as exc:
                if error_code(exc) != "NoSuchUpload":
                    raise to_transfer_error(exc, f"abort the upload of {upload.key}") from exc
            aborted.append(upload)
            settings = self._settings
            if settings.cache_dir is not None:
                endpoint = location.endpoint_url or "aws"
                await anyio.to_thread.run_sync(
                    remove_upload_state, settings.cache_dir, endpoint, location.bucket, key
                )
        return aborted

    # ------------------------------------------------------------------ upload

    async def upload(
        self,
        files: Path | str | Iterable[tuple[Path, str]],
        *,
        prefix: str = "",
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: ProgressCallback | None = None,
        fail_fast: bool = False,
    ) -> TransferResult:
        """Upload a directory, or ``(local file, relative key)`` pairs.

        Keys are ``prefix + relative path`` under the dataset root; unsafe keys and the
        reserved ``metadata.json`` fail their file. Directory uploads include every regular
        file (symlinked files followed, symlinked directories not).

        Args:
            files: A directory, or pairs of a local file and its key relative to ``prefix``.
            prefix: Put before every key (a ``/`` is added if missing).
            include: Glob patterns (:func:`fnmatch.fnmatchcase` on the relative POSIX path;
                ``*`` also matches ``/``); if any, a file must match one.
            exclude: Glob patterns; a file matching one is left out.
            progress: Receives :mod:`~provena_like.storage.events` events.
            fail_fast: Stop at the first failure (the rest is reported as skipped).

        Returns:
            One result per file, with size, sha256 (md5) and ETag for the manifest.

        Raises:
            UsageError: If the credentials are read-only, a prefix is unsafe or ``files``
                is not a directory.

        Example:
            ```python
            result = await engine.upload(Path("./data"), include=["*.csv"])
            result.raise_for_failures()
            ```
        """
        _, location = self._open_requests()
        current = self._refresher.current if self._refresher is not None else location
        if current is not None and current.access != "write":
            raise UsageError("these credentials are read-only; ask for write access to upload")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        validate_prefix(prefix)
        source: Path | Iterable[tuple[Path, str]]
        if isinstance(files, str | os.PathLike):
            source = Path(files)
        else:
            source = list(files)
        items = await anyio.to_thread.run_sync(
            lambda: plan_uploads(source, prefix=prefix, include=include, exclude=exclude),
            limiter=self._io_limiter,
        )
        sizes = [item.size or 0 for item in items if item.error is None]
        reporter = ProgressReporter(progress, files_total=len(items), bytes_total=sum(sizes))
        ctx = self._context(reporter)
        ctx.hashes = await self._upload_hashes(source, items)

        async def work(item: UploadItem) -> FileResult:
            return await upload_file(ctx, item)

        result = await run_batch(
            items,
            work,
            files_in_flight=self.files_in_flight,
            fail_fast=fail_fast,
            progress=reporter,
            action="upload",
        )
        if ctx.hashes is not None:  # the sha256 of the files hashed on the way
            await anyio.to_thread.run_sync(ctx.hashes.save, limiter=self._io_limiter)
        return result

    async def _upload_hashes(
        self, source: Path | builtins.list[tuple[Path, str]], items: Sequence[UploadItem]
    ) -> HashCache | None:
        """The hash cache multipart uploads read and fill (``None``: no file is that large).

        It is the one :meth:`sync_up` keeps for the uploaded folder (for pairs: the folder
        their keys are relative to, see :func:`_pairs_root`), so a file a sync has hashed is
        not hashed again.
        """
        settings = self._settings
        big = [
            item
            for item in items
            if item.error is None and (item.size or 0) >= settings.multipart_threshold
        ]
        if not big or not settings.checksum or settings.cache_dir is None:
            return None
        cache_dir = settings.cache_dir
        root = source if isinstance(source, Path) else _pairs_root(source)
        return await anyio.to_thread.run_sync(
            HashCache.for_root, cache_dir, root, limiter=self._io_limiter
        )

    # ------------------------------------------------------------------ download

    async def download(
        self,
        objects: str | Iterable[DownloadSpec],
        dest: Path | str,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: ProgressCallback | None = None,
        fail_fast: bool = False,
    ) -> TransferResult:
        """Download objects into ``dest``, each verified before it appears there.

        Every key and local path is checked before anything touches the disk; an unsafe
        one fails its file. Each object is written to a temp file beside its target and
        renamed into place only once its sha256 matches the expected one (from ``objects``,
        else the ``x-amz-meta-sha256`` stored at upload; a multipart object the engine hashed
        while uploading has none, so pass the upload's sha256). Existing files are replaced.

        Args:
            objects: ``(key, local relative path, expected sha256 or None[, size])``
                tuples, or a prefix (``""`` for the whole dataset) whose every object is
                downloaded to its path relative to the prefix's last ``/``.
            dest: The destination directory (created if missing).
            include: Glob patterns on the key; if any, a key must match one.
            exclude: Glob patterns on the key; a key matching one is left out.
            progress: Receives :mod:`~provena_like.storage.events` events.
            fail_fast: Stop at the first failure (the rest is reported as skipped).

        Returns:
            One result per object.

        Example:
            ```python
            result = await engine.download("raw/", Path("./raw"))
            assert [f.path for f in result.failed] == []
            ```
        """
        self._open_requests()
        dest = Path(dest)
        entries: list[tuple[str, str, str | None, int | None]]
        if isinstance(objects, str):
            base = validate_prefix(objects)[: objects.rfind("/") + 1]
            entries = [
                (obj.key, obj.key[len(base) :], None, obj.size)
                async for obj in self.list(objects)
                if not obj.key.endswith("/")  # a "directory marker", not a file
            ]
        else:
            entries = [download_entry(spec) for spec in objects]
        items = plan_downloads(entries, dest, include=include, exclude=exclude)
        sizes = [item.size for item in items if item.error is None]
        known = None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)
        reporter = ProgressReporter(progress, files_total=len(items), bytes_total=known)
        ctx = self._context(reporter)

        async def work(item: DownloadItem) -> FileResult:
            return await download_file(ctx, dest, item)

        return await run_batch(
            items,
            work,
            files_in_flight=self.files_in_flight,
            fail_fast=fail_fast,
            progress=reporter,
            action="download",
        )

    # ------------------------------------------------------------------ sync

    async def sync_up(
        self,
        local_dir: Path | str,
        *,
        prefix: str = "",
        delete: bool = False,
        dry_run: bool = False,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        remote_sha256: Mapping[str, str] | None = None,
        remote_etags: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
        fail_fast: bool = False,
    ) -> TransferResult:
        """Upload the files of ``local_dir`` that differ from the dataset's copy under ``prefix``.

        A file is skipped (``reason="unchanged"``) only when its size matches the listed
        object's and its content is shown equal: by the known sha256 (``remote_sha256``, while
        the object keeps the ETag in ``remote_etags``), else by the md5 a single-part object's
        ETag is, else by the object's stored sha256 (one HEAD). Local hashes are cached by
        (path, size, mtime_ns) under ``cache_dir``, so unchanged files aren't read again, and
        same-size edits are caught.

        Args:
            local_dir: The local folder.
            prefix: The folder inside the dataset that mirrors ``local_dir``.
            delete: Also delete remote objects under ``prefix`` that ``local_dir`` lacks
                (only those passing ``include``/``exclude``; ``metadata.json`` never).
            dry_run: Send no writing request: return the plan as ``skipped`` results with
                reasons ``would upload`` / ``would delete``.
            include: Glob patterns on the relative path; if any, a file must match one.
            exclude: Glob patterns; matching files are left out.
            remote_sha256: Known sha256 per key relative to the dataset root (a manifest).
            remote_etags: The ETag each known sha256 was recorded for (a manifest's): where
                given, the sha256 counts only while the listed object has that ETag.
            progress: Receives progress events: the hashing of the files to compare
                (:class:`~provena_like.storage.events.HashingProgress`), then the uploads.
            fail_fast: Stop the uploads at the first failure.

        Returns:
            Uploads (``ok``/``failed``), unchanged files (``skipped``) and deletions
            (``ok`` with reason ``deleted``).

        Example:
            ```python
            plan = await engine.sync_up("./data", delete=True, dry_run=True)
            [(f.path, f.reason) for f in plan.skipped]
            # [('new.csv', 'would upload'), ('gone.csv', 'would delete')]
            ```
        """
        _, location = self._open_requests()
        current = self._refresher.current if self._refresher is not None else location
        if not dry_run and current is not None and current.access != "write":
            raise UsageError("these credentials are read-only; ask for write access to sync")
        root = Path(local_dir)
        if not root.is_dir():
            raise UsageError(f"{root} is not a directory")
        return await _sync.sync_up(
            self.sync_context(),
            root,
            prefix=prefix,
            delete=delete,
            dry_run=dry_run,
            include=include,
            exclude=exclude,
            remote_sha256=remote_sha256,
            remote_etags=remote_etags,
            progress=progress,
            fail_fast=fail_fast,
        )

    async def sync_down(
        self,
        dest: Path | str,
        objects: str | Iterable[DownloadSpec] = "",
        *,
        delete: bool = False,
        dry_run: bool = False,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: ProgressCallback | None = None,
        fail_fast: bool = False,
    ) -> TransferResult:
        """Download the objects that differ from the local copy in ``dest``.

        Args:
            dest: The local folder (created if missing).
            objects: A prefix (``""``: the whole dataset) or ``(key, local relative path,
                sha256[, size])`` specs, as for :meth:`download`; a spec's sha256 is the
                remote truth; else a listed single-part object's ETag (its md5) is compared
                with the local file's md5; else the object's ``x-amz-meta-sha256`` (one HEAD).
            delete: Also delete local files under ``dest`` that aren't among ``objects``
                (only those passing ``include``/``exclude``).
            dry_run: Write nothing locally: return the plan as ``skipped`` results with
                reasons ``would download`` / ``would delete``.
            include: Glob patterns; if any, a file must match one.
            exclude: Glob patterns; matching files are left out.
            progress: Receives progress events: the hashing of the local files to compare
                (:class:`~provena_like.storage.events.HashingProgress`), then the downloads.
            fail_fast: Stop the downloads at the first failure.

        Returns:
            Downloads, unchanged files (``skipped``) and deletions (``ok``, ``deleted``).

        Example:
            ```python
            result = await engine.sync_down("./copy", "raw/", delete=True)
            ```
        """
        return await _sync.sync_down(
            self.sync_context(),
            objects,
            Path(dest),
            delete=delete,
            dry_run=dry_run,
            include=include,
            exclude=exclude,
            progress=progress,
            fail_fast=fail_fast,
        )

    # ------------------------------------------------------------------ verify

    async def verify(
        self,
        dest: Path | str,
        objects: str | Iterable[DownloadSpec] = "",
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: ProgressCallback | None = None,
    ) -> VerifyResult:
        """Compare a local copy with the objects, by size and sha256, as :meth:`sync_down` does.

        Nothing is transferred or written (but the local hash cache): every local file is read
        again and hashed, and compared with the spec's sha256, else the object's stored
        ``x-amz-meta-sha256`` (one HEAD each). Partial downloads in ``dest`` are not files.

        Args:
            dest: The local copy.
            objects: A prefix (``""``: the whole dataset) or specs, as for :meth:`download`.
            include: Glob patterns; if any, a file must match one.
            exclude: Glob patterns; matching files are left out.
            progress: Receives :class:`~provena_like.storage.events.HashingProgress` events
                while the local files are hashed.

        Returns:
            One check per object (``ok``, ``mismatch`` or ``missing-local``), then the local
            files no object maps to (``missing-remote``).

        Example:
            ```python
            result = await engine.verify("./copy", "raw/")
            for check in result.differences:
                print(check.path, check.status, check.reason)
            ```
        """
        return await _sync.verify(
            self.sync_context(),
            objects,
            Path(dest),
            include=include,
            exclude=exclude,
            progress=progress,
        )
