"""``S3Repository``: a bucket (or a prefix of one) through the storage engine.

The repository owns one :class:`~provena_like.storage.TransferEngine` for its lifetime, so
every operation shares its connections, its limits, its retry policy and its credentials,
which come from a provider and refresh themselves before they expire
(:class:`~provena_like.storage.RefreshingCredentials`). The same class therefore works with
a dataset's scoped credentials (the datastore's) and with any other provider, such as a
repository's own credentials handed out by the server.

The root ``s3://bucket[/prefix]`` must lie inside what the credentials cover: the same
bucket, and a prefix that starts with the credentials' prefix. An object at ``path`` is the
key ``<root prefix><path>``.

Atomicity is S3's: an object appears only once its single PUT, or its multipart upload, is
complete. The engine runs with ``resume=False`` here, so a multipart upload that fails or is
cancelled is aborted (its parts deleted) instead of being kept open for a resume.

Example:
    ```python
    Path("a.b.npy").write_bytes(b"data")
    creds = await pv.datastore.credentials(dataset_id, "write")
    source = pv.datastore.credentials_cache.source(dataset_id, "write")
    async with S3Repository(f"s3://{creds.bucket}/{creds.prefix}", source) as repo:
        info = await repo.put("a.b.npy", "m1/2024-01-31/001/a.b.npy")
    ```
"""

from __future__ import annotations

import builtins
import os
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Self, cast

import anyio

from provena_like._core.concurrency import each
from provena_like._core.errors import ChecksumMismatch, TransferError, UsageError
from provena_like.repositories.base import (
    ObjectInfo,
    ObjectNotFound,
    Repository,
    RepositoryKind,
    check_path,
    check_prefix,
    paired_digests,
)
from provena_like.storage import (
    CredentialsProvider,
    Digests,
    FileResult,
    ProgressCallback,
    RefreshingCredentials,
    RemoteObject,
    S3Credentials,
    TransferEngine,
)
from provena_like.storage.hashing import etag_md5

__all__ = ["S3Repository", "parse_s3_root"]

MiB = 1024 * 1024

_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})

_LIST_FROM = 8
"""Paths of one folder from which :meth:`S3Repository.confirm_many` lists instead of HEADs."""
_LIST_SLACK = 1000
"""Keys a listing may read beyond those asked for (others' keys in their range)."""


def parse_s3_root(root: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket[/prefix]``; the prefix is ``""`` or ends with ``/``.

    Raises:
        UsageError: If ``root`` is not an ``s3://`` URL with a bucket, or its prefix is unsafe.

    Example:
        ```python
        assert parse_s3_root("s3://data/labs/x") == ("data", "labs/x/")
        assert parse_s3_root("s3://data") == ("data", "")
        ```
    """
    if not isinstance(root, str) or not root.startswith("s3://"):
        raise UsageError(f"an S3 repository root is 's3://bucket[/prefix]', got {root!r}")
    bucket, _, prefix = root[len("s3://") :].partition("/")
    if not bucket:
        raise UsageError(f"an S3 repository root needs a bucket, got {root!r}")
    prefix = prefix.strip("/")
    prefix = f"{prefix}/" if prefix else ""
    try:
        check_prefix(prefix)
    except UsageError as exc:
        raise UsageError(f"unsafe prefix in the repository root {root!r}: {exc}") from exc
    return bucket, prefix


def _common_folder(paths: builtins.list[str]) -> str:
    """The deepest folder holding every one of ``paths`` (``""``: the root)."""
    first, last = min(paths), max(paths)  # what these share, every path between shares
    shared = os.path.commonprefix([first, last])
    return shared.rpartition("/")[0] if "/" in shared else ""


def _error_code(exc: BaseException | None) -> str | None:
    while exc is not None:
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            return None if code is None else str(code)
        exc = exc.__cause__
    return None


class S3Repository(Repository):
    """A repository under ``s3://bucket[/prefix]``, on the storage engine.

    Args:
        root: ``s3://bucket[/prefix]``; inside the credentials' bucket and prefix.
        credentials: An async callable returning fresh
            :class:`~provena_like.storage.S3Credentials` (called again near expiry), a
            :class:`~provena_like.storage.RefreshingCredentials`, or fixed credentials.
        name: A name for messages and plans (default: ``root``).
        max_concurrency: Requests in flight at once.
        multipart_threshold: Files this large or larger are uploaded in parts.
        part_size: Bytes per part (``None``: the engine's choice, at least 8 MiB).
        memory_limit: Most bytes held in buffers at once.

    Example:
        ```python
        async def provider() -> S3Credentials:
            return to_s3_credentials(await pv.datastore.credentials(dataset_id, "write"))

        async with S3Repository("s3://bucket/datasets/42/", provider, name="primary") as repo:
            async for obj in repo.list():
                print(obj.path, obj.size)
        ```
    """

    kind: RepositoryKind = "s3"

    def __init__(
        self,
        root: str,
        credentials: CredentialsProvider | RefreshingCredentials | S3Credentials,
        *,
        name: str | None = None,
        max_concurrency: int = 16,
        multipart_threshold: int = 16 * MiB,
        part_size: int | None = None,
        memory_limit: int = 64 * MiB,
    ) -> None:
        self.bucket, self.prefix = parse_s3_root(root)
        self.root = f"s3://{self.bucket}/{self.prefix}"
        self.name = name if name is not None else self.root
        if isinstance(credentials, S3Credentials):
            credentials = RefreshingCredentials.fixed(credentials)
        elif not isinstance(credentials, RefreshingCredentials):
            if not callable(credentials):
                raise UsageError(
                    "credentials must be S3Credentials, RefreshingCredentials or an async "
                    "callable returning S3Credentials"
                )
            credentials = RefreshingCredentials(credentials)
        self._credentials = credentials
        self._engine = TransferEngine(
            credentials,
            max_concurrency=max_concurrency,
            multipart_threshold=multipart_threshold,
            part_size=part_size,
            memory_limit=memory_limit,
            resume=False,
        )
        self._max_concurrency = max_concurrency
        self._sub: str | None = None  # the root prefix below the credentials' prefix, once open

    def __repr__(self) -> str:
        return f"S3Repository({self.root!r}, name={self.name!r})"

    async def __aenter__(self) -> Self:
        await self._engine.__aenter__()
        try:
            first = self._credentials.current or await self._credentials.get()
            if first.bucket != self.bucket or not self.prefix.startswith(first.prefix):
                raise UsageError(
                    f"the repository root {self.root} is outside what its credentials cover "
                    f"(s3://{first.bucket}/{first.prefix})"
                )
            self._sub = self.prefix[len(first.prefix) :]
        except BaseException:
            await self._engine.aclose()
            raise
        return self

    async def aclose(self) -> None:
        """Close the engine (idempotent).

        Example:
            ```python
            await repo.aclose()
            ```
        """
        await self._engine.aclose()

    @property
    def engine(self) -> TransferEngine:
        """The repository's open engine (keys relative to the credentials' prefix).

        For storage-level work the contract doesn't cover, e.g.
        :meth:`~provena_like.storage.TransferEngine.list_incomplete_uploads`.
        """
        return self._engine

    def key(self, path: str) -> str:
        """The engine key (relative to the credentials' prefix) of a repository path.

        Example:
            ```python
            assert repo.key("a/b.txt") == "repo/a/b.txt"  # root = credentials' prefix + "repo/"
            ```
        """
        return self._root_key() + check_path(path)

    def _root_key(self) -> str:
        """The root's prefix below the credentials' prefix (known once the repository is open)."""
        if self._sub is None:
            raise UsageError("use the repository inside `async with S3Repository(...) as repo:`")
        return self._sub

    @staticmethod
    def _raise(result: FileResult, what: str) -> None:
        if result.ok:
            return
        error = result.error
        if _error_code(error) in _MISSING:
            raise ObjectNotFound(what) from error
        if isinstance(error, TransferError):
            raise error
        raise TransferError(f"{what}: {result.reason}") from error

    async def put(
        self,
        local_path: Path | str | os.PathLike[str],
        path: str,
        *,
        progress: ProgressCallback | None = None,
    ) -> ObjectInfo:
        """Upload a local file to ``path`` (one verified PUT, or an aborted-on-failure multipart).

        Example:
            ```python
            info = await repo.put("./a.b.npy", "m1/2024-01-31/001/a.b.npy")
            print(info.sha256, info.etag)
            ```
        """
        key = self.key(path)
        result = await self._engine.upload([(Path(local_path), key)], progress=progress)
        (done,) = result.files
        self._raise(done, f"{self.name}: put {path}")
        assert done.size is not None
        return ObjectInfo(path=path, size=done.size, sha256=done.sha256, etag=done.etag)

    async def put_many(
        self,
        items: Iterable[tuple[Path | str | os.PathLike[str], str]],
        *,
        progress: ProgressCallback | None = None,
    ) -> builtins.list[ObjectInfo]:
        """Upload many local files in one engine batch (each object atomically, as :meth:`put`).

        The files go up together (the engine's concurrency); on a failure the others are
        still uploaded and the first failure is raised (the objects stored stay).

        Example:
            ```python
            Path("a.b.npy").write_bytes(b"a")
            Path("c.d.npy").write_bytes(b"c")
            infos = await repo.put_many([("a.b.npy", "s/a.b.npy"), ("c.d.npy", "s/c.d.npy")])
            ```
        """
        pairs = [(Path(local), check_path(path)) for local, path in items]
        keys = [(local, self.key(path)) for local, path in pairs]
        result = await self._engine.upload(keys, progress=progress)
        stored: builtins.list[ObjectInfo] = []
        for (_, path), done in zip(pairs, result.files, strict=True):
            self._raise(done, f"{self.name}: put {path}")
            assert done.size is not None
            stored.append(ObjectInfo(path=path, size=done.size, sha256=done.sha256, etag=done.etag))
        return stored

    async def get(
        self,
        path: str,
        local_path: Path | str | os.PathLike[str],
        *,
        sha256: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> ObjectInfo:
        """Download ``path`` to ``local_path`` (temp file beside it, renamed once checked).

        Checked against ``sha256`` when given, else against the sha256 stored with the object
        at upload when there is one; the size always.

        Example:
            ```python
            await repo.get("m1/2024-01-31/001/a.b.npy", "./a.b.npy", sha256=record.sha256)
            ```
        """
        key = self.key(path)
        local = Path(local_path)
        spec = (key, local.name, sha256.lower() if sha256 else None)
        result = await self._engine.download([spec], local.parent, progress=progress)
        (done,) = result.files
        if not done.ok and isinstance(done.error, ChecksumMismatch):
            raise done.error
        self._raise(done, f"{self.name}: no object at {path!r}")
        assert done.size is not None
        return ObjectInfo(path=path, size=done.size, sha256=done.sha256, etag=done.etag)

    async def stat(self, path: str, *, verify: bool = False) -> ObjectInfo | None:
        """HEAD the object; with ``verify``, read it back (one GET) and hash the bytes.

        Without ``verify`` the sha256 is the one stored with the object at upload
        (``x-amz-meta-sha256``, ``None`` for a multipart upload of a file not hashed before):
        what the uploader said. With ``verify`` it is computed from the stored bytes.

        Example:
            ```python
            info = await repo.stat("m1/2024-01-31/001/a.b.npy", verify=True)
            ```
        """
        key = self.key(path)
        if verify:  # one GET: its headers say what a HEAD would, the bytes are hashed
            seen = await self._engine.read_back(key)
            if seen is None:
                return None
            head, digests = seen
            size, sha256 = digests.size, digests.sha256
        else:
            found = await self._engine.stat(key)
            if found is None:
                return None
            head, size, sha256 = found, found.size, found.sha256
        return ObjectInfo(
            path=path, size=size, sha256=sha256, etag=head.etag, mtime=head.last_modified
        )

    async def stat_many(
        self, paths: Iterable[str], *, verify: bool = False
    ) -> builtins.list[ObjectInfo | None]:
        """:meth:`stat` of many paths, their requests side by side (the engine's concurrency).

        The first error cancels the others and is raised.

        Example:
            ```python
            infos = await repo.stat_many(["m1/a.npy", "m1/b.npy"], verify=True)
            ```
        """
        checked = [check_path(path) for path in paths]
        found: builtins.list[ObjectInfo | None] = [None] * len(checked)

        async def one(index: int) -> None:
            found[index] = await self.stat(checked[index], verify=verify)

        limiter = anyio.CapacityLimiter(self._max_concurrency)
        await each(range(len(checked)), one, limiter=limiter)
        return found

    async def confirm_many(
        self, paths: Iterable[str], expected: Iterable[Digests]
    ) -> builtins.list[ObjectInfo | None]:
        """Whether each object holds the expected bytes, by what the store computed of them.

        A single-part object's ETag is the md5 the store computed over the bytes it
        received: this repository sends no ``Content-MD5`` with its PUTs, so the ETag can't
        be an md5 the client claimed. An object whose ETag is ``expected.md5`` and whose
        size is ``expected.size`` holds those bytes, and so their sha256 (answered as
        ``expected.sha256``). Any other object (no md5 expected, a multipart or encrypted
        object's ETag, a different md5 or size) is read back and hashed, as
        :meth:`stat` with ``verify=True`` does.

        The ETags come from listings: the paths of one folder from one ``ListObjectsV2``
        of the range of keys they span (a page holds 1,000), instead of a HEAD each; a path
        the listing doesn't show (or one past what is worth listing) gets its HEAD.

        Example:
            ```python
            wanted = hash_file("a.b.npy", md5=True)
            (info,) = await repo.confirm_many(["m1/a.b.npy"], [wanted])
            assert info is not None and info.sha256 == wanted.sha256
            ```
        """
        checked = [check_path(path) for path in paths]
        wanted = paired_digests(checked, expected)
        found: builtins.list[ObjectInfo | None] = [None] * len(checked)
        seen = await self._listed(checked)
        unseen = [i for i, path in enumerate(checked) if path not in seen]
        heads = await self.stat_many([checked[i] for i in unseen])
        for index, info in zip(unseen, heads, strict=True):
            if info is not None:
                seen[checked[index]] = info
        unsure: builtins.list[int] = []
        for index, (path, want) in enumerate(zip(checked, wanted, strict=True)):
            info = seen.get(path)
            if info is None:
                continue
            if want.md5 is not None and info.size == want.size and etag_md5(info.etag) == want.md5:
                found[index] = replace(info, sha256=want.sha256)
            else:
                unsure.append(index)
        if unsure:
            again = await self.stat_many([checked[i] for i in unsure], verify=True)
            for index, info in zip(unsure, again, strict=True):
                found[index] = info
        return found

    async def _listed(self, paths: builtins.list[str]) -> dict[str, ObjectInfo]:
        """What listings say of ``paths`` (those listed), folder by folder.

        Only where it saves requests: a folder with at least :data:`_LIST_FROM` of the
        paths, listed from just before the first of them to the last, stopping once it has
        read :data:`_LIST_SLACK` keys more than asked for (the rest get a HEAD each). The
        paths of folders with fewer (a few files in each of many folders, as in a session's
        collections), when at least :data:`_LIST_FROM` in all, are listed the same way
        under their deepest common folder: the range they span, every subfolder's keys in
        it included, in one listing.
        """
        folders: dict[str, builtins.list[str]] = {}
        for path in paths:
            folders.setdefault(path.rpartition("/")[0], []).append(path)
        groups = [(f, group) for f, group in folders.items() if len(group) >= _LIST_FROM]
        scattered = [p for group in folders.values() if len(group) < _LIST_FROM for p in group]
        if len(scattered) >= _LIST_FROM:
            groups.append((_common_folder(scattered), scattered))
        found: dict[str, ObjectInfo] = {}

        async def one(folder: str, group: builtins.list[str]) -> None:
            wanted = {self.key(path): path for path in group}
            first, last = min(wanted), max(wanted)
            prefix = self._root_key() + (folder + "/" if folder else "")
            budget = len(wanted) + _LIST_SLACK
            page = min(1000, len(wanted) + 8)  # the store builds, and we parse, a whole page
            # an async generator: closed at once when left early
            listing = cast(
                AsyncGenerator[RemoteObject, None],
                self._engine.list(prefix, start_after=first[:-1], page_size=page),
            )
            try:
                async for obj in listing:
                    if obj.key > last or budget == 0:
                        break
                    budget -= 1
                    path = wanted.get(obj.key)
                    if path is not None:
                        found[path] = ObjectInfo(
                            path=path, size=obj.size, etag=obj.etag, mtime=obj.last_modified
                        )
            finally:
                await listing.aclose()

        async def listed(index: int) -> None:
            await one(*groups[index])

        await each(range(len(groups)), listed, limiter=anyio.CapacityLimiter(self._max_concurrency))
        return found

    async def delete(self, path: str) -> None:
        """Delete the object (S3 answers success for a missing one).

        Example:
            ```python
            await repo.delete("m1/2024-01-31/001/a.b.npy")
            ```
        """
        (done,) = await self._engine.delete([self.key(path)])
        if not done.ok:
            raise TransferError(f"{self.name}: delete {path}: {done.reason}") from done.error

    async def delete_many(self, paths: Iterable[str]) -> None:
        """Delete the objects, 1,000 per request (S3 answers success for missing ones).

        Example:
            ```python
            await repo.delete_many(["m1/a.npy", "m1/b.npy"])
            ```
        """
        keys = [self.key(p) for p in paths]
        failed = [done for done in await self._engine.delete(keys) if not done.ok]
        if failed:
            first = failed[0]
            raise TransferError(
                f"{self.name}: {len(failed)} of {len(keys)} deletes failed, e.g. "
                f"{first.path}: {first.reason}"
            ) from first.error

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the objects under ``prefix``, in key order (every page).

        Unfinished multipart uploads are not objects (see :attr:`engine` for them).

        Example:
            ```python
            paths = [o.path async for o in repo.list("m1/")]
            ```
        """
        check_prefix(prefix)
        sub = self._root_key()
        skip = len(sub)
        async for obj in self._engine.list(sub + prefix):
            if obj.key.endswith("/"):  # a "directory marker", not an object
                continue
            yield ObjectInfo(
                path=obj.key[skip:], size=obj.size, etag=obj.etag, mtime=obj.last_modified
            )
