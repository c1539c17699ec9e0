"""A collection backed by a dataset's storage prefix in the server's object store.

A path ``/a/b.csv`` is the key ``<prefix>a/b.csv``; nothing outside the prefix is ever
named, because the path's segments are checked before (no ``..``, no separators smuggled
in, see :mod:`~provena_like.server.transfer.paths`) and the key is the prefix plus them.

S3 has no directories. Here:

- a **directory** is a key prefix ending in ``/`` that has objects under it, or a
  zero-byte *marker* object whose key ends in ``/`` (what ``mkdir`` writes, as the S3
  consoles do); the dataset's prefix itself is the collection's root and always exists;
- ``ls`` lists one level with the delimiter ``/``: the common prefixes that still hold an
  object are the directories (SeaweedFS also lists a directory emptied by deletes as a
  common prefix, so each is checked), the objects the files; a marker is not
  listed as an entry of its own directory; a key whose name can't be a Globus path segment
  (``..``, empty from ``a//b``, a backslash) is left out of the listing;
- ``mkdir`` needs the parent to exist and writes the marker ``<key>/``;
- ``rename`` copies every object (server-side) to the new name and then deletes the old
  ones: not atomic, a failure in between leaves both (a retry of the same rename completes
  it, since the destination check ignores nothing: retry after deleting the partial copy);
- ``delete`` of a directory deletes every object under it and its marker.

The dataset's ``metadata.json`` (the server writes it) is read-only: writing, renaming or
deleting it is 403 ``EndpointPermissionDenied``. The routes use the server's admin client, so
the datastore's lock and release rules are checked when the collection is opened for
writing (:func:`~provena_like.server.transfer.collections.open_collection`); tasks move
bytes with scoped credentials (:meth:`S3Backend.credentials`), which the store itself
refuses to let write into a frozen dataset.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import anyio
from botocore.exceptions import BotoCoreError, ClientError

from provena_like.models.datastore import METADATA_FILE, AccessLevel
from provena_like.server.datastore import policy, storage
from provena_like.server.datastore.storage import IssuedCredentials, ObjectStore, ObjectStoreError
from provena_like.server.errors import task_group
from provena_like.server.transfer.backend import (
    FileInfo,
    delete_failed,
    mkdir_exists,
    not_a_directory,
    path_not_found,
)
from provena_like.server.transfer.errors import TransferAPIError, permission_denied
from provena_like.server.transfer.paths import ResolvedPath, normalise
from provena_like.storage.credentials import S3Credentials

__all__ = ["S3Backend"]


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _usable(name: str) -> bool:
    try:
        return normalise(name).parts == (name,)
    except TransferAPIError:
        return False


@dataclass(frozen=True)
class S3Backend:
    """One dataset's prefix in the object store.

    Attributes:
        store: the server's object store (admin clients).
        prefix: the dataset's key prefix, ending with ``/``.
        dataset_id: the dataset's handle (for credentials' session names).
    """

    store: ObjectStore
    prefix: str
    dataset_id: str
    kind: Literal["s3"] = "s3"

    @property
    def bucket(self) -> str:
        """The bucket of the dataset."""
        return self.store.bucket

    def key(self, path: ResolvedPath) -> str:
        """The object key of the file ``path``."""
        return self.prefix + "/".join(path.parts)

    def dir_key(self, path: ResolvedPath) -> str:
        """The key prefix of the directory ``path`` (ends with ``/``; the root's is the prefix)."""
        return self.prefix + "".join(f"{p}/" for p in path.parts)

    def check(self, path: ResolvedPath) -> None:
        """Nothing to check beyond the normalised path: keys have no symlinks."""
        del path

    def _protect(self, path: ResolvedPath) -> None:
        if self.key(path) == self.prefix + METADATA_FILE:
            raise permission_denied(
                f"{path.display} is the dataset's metadata file, written by the server only."
            )

    async def credentials(self, username: str, *, access: AccessLevel) -> IssuedCredentials:
        """Scoped credentials for the dataset's prefix (as the datastore issues them).

        For the task executor: ``read`` lists and gets, ``write`` also puts and deletes
        (never ``metadata.json``); the store denies writes while the dataset is frozen.
        """
        return await storage.assume_role(
            self.store,
            session_name=policy.session_name(username, self.dataset_id),
            bucket=self.bucket,
            prefix=self.prefix,
            access=access,
            duration_seconds=None,
        )

    async def engine_credentials(self, username: str, *, access: AccessLevel) -> S3Credentials:
        """:meth:`credentials` in the form a transfer engine takes, for the server's endpoint."""
        issued = await self.credentials(username, access=access)
        return S3Credentials(
            access_key_id=issued.access_key_id,
            secret_access_key=issued.secret_access_key,
            session_token=issued.session_token,
            expiration=issued.expiration,
            endpoint_url=self.store.internal_endpoint_url,
            region=self.store.settings.region,
            bucket=self.bucket,
            prefix=self.prefix,
            access=access,
        )

    # -- object store calls ------------------------------------------------------------------

    async def _head(self, key: str) -> dict[str, Any] | None:
        try:
            response: dict[str, Any] = await self.store.s3.head_object(Bucket=self.bucket, Key=key)  # type: ignore[assignment]
        except (ClientError, BotoCoreError) as err:
            if storage.is_missing(err):
                return None
            raise ObjectStoreError(f"read {key}", err) from err
        return response

    async def _list(
        self, prefix: str, *, delimiter: bool, limit: int | None = None
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Objects and common prefixes under ``prefix`` (one level when ``delimiter``)."""
        objects: list[dict[str, Any]] = []
        prefixes: list[str] = []
        token: str | None = None
        try:
            while True:
                extra: dict[str, Any] = {"ContinuationToken": token} if token else {}
                if delimiter:
                    extra["Delimiter"] = "/"
                if limit is not None:
                    extra["MaxKeys"] = limit
                page = await self.store.s3.list_objects_v2(
                    Bucket=self.bucket, Prefix=prefix, **extra
                )
                objects.extend(page.get("Contents", []))  # type: ignore[arg-type]
                prefixes.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
                token = page.get("NextContinuationToken")
                if limit is not None or not page.get("IsTruncated") or not token:
                    return objects, prefixes
        except (ClientError, BotoCoreError) as err:
            raise ObjectStoreError(f"list {prefix}", err) from err

    async def _kind(self, path: ResolvedPath) -> tuple[str | None, dict[str, Any] | None]:
        """``("file", head)``, ``("dir", marker-or-None)`` or ``(None, None)``."""
        if path.is_root:
            return "dir", None
        head = await self._head(self.key(path))
        if head is not None:
            return "file", head
        if await self._has_objects(self.dir_key(path)):
            return "dir", await self._head(self.dir_key(path))
        return None, None

    async def _has_objects(self, prefix: str) -> bool:
        """Whether any object's key starts with ``prefix`` (only objects make a directory)."""
        objects, _ = await self._list(prefix, delimiter=False, limit=1)
        return bool(objects)

    # -- reading -----------------------------------------------------------------------------

    async def stat(self, path: ResolvedPath) -> FileInfo:
        """What ``path`` is; 404 ``NotFound`` when neither an object nor a prefix."""
        kind, found = await self._kind(path)
        if kind is None:
            raise path_not_found(path, code="NotFound")
        if kind == "file":
            assert found is not None
            return FileInfo(
                name=path.name,
                type="file",
                size=int(found.get("ContentLength", 0)),
                last_modified=_when(found.get("LastModified")),
            )
        when = _when(found.get("LastModified")) if found else None
        return FileInfo(name=path.name, type="dir", last_modified=when, permissions="0755")

    async def list_dir(self, path: ResolvedPath) -> list[FileInfo]:
        """One level under the directory ``path``, by name."""
        base = self.dir_key(path)
        objects, prefixes = await self._list(base, delimiter=True)
        if not objects and not path.is_root and not await self._has_objects(base):
            if await self._head(self.key(path)) is not None:
                raise not_a_directory(path)
            raise path_not_found(path)
        found: dict[str, FileInfo] = {}
        live: set[str] = set()

        limit = anyio.CapacityLimiter(self.store.concurrency)

        async def check(common: str) -> None:
            async with limit:
                if await self._has_objects(common):
                    live.add(common)

        async with task_group() as group:
            for common in prefixes:
                group.start_soon(check, common)
        for common in sorted(live):
            name = common[len(base) :].rstrip("/")
            if _usable(name):
                found[name] = FileInfo(name=name, type="dir", permissions="0755")
        for obj in objects:
            name = str(obj["Key"])[len(base) :]
            if name and _usable(name) and name not in found:
                found[name] = FileInfo(
                    name=name,
                    type="file",
                    size=int(obj.get("Size", 0)),
                    last_modified=_when(obj.get("LastModified")),
                )
        return [found[name] for name in sorted(found)]

    async def walk(
        self,
        path: ResolvedPath,
        listed: Iterable[tuple[str, int, datetime | None]] | None = None,
    ) -> dict[tuple[str, ...], list[FileInfo]]:
        """What :meth:`list_dir` shows of the directory ``path`` and of every directory below.

        From one flat listing of the prefix (a page per 1,000 keys), not a listing per
        directory and a probe per subdirectory: a recursive transfer's expansion of 2,000
        objects in 10 directories took 21 requests. Keyed by the parts below ``path``; a
        directory whose name :meth:`list_dir` would not show is left out with all below it.
        ``listed``: that listing made already (``(full key, size, last modified)`` of every
        object under :meth:`dir_key` of ``path``), e.g. by the task's transfer engine, whose
        listing parses pages in a fraction of botocore's time.
        """
        base = self.dir_key(path)
        if listed is None:
            page, _ = await self._list(base, delimiter=False)
            objects = [
                (str(o["Key"]), int(o.get("Size", 0)), _when(o.get("LastModified"))) for o in page
            ]
        else:
            objects = [(k, size, _when(when)) for k, size, when in listed if k.startswith(base)]
        dirs: dict[tuple[str, ...], dict[str, FileInfo]] = {(): {}}
        files: dict[tuple[str, ...], dict[str, FileInfo]] = {}
        usable: dict[str, bool] = {}
        for key, size, when in objects:
            *folders, name = key[len(base) :].split("/")
            here: tuple[str, ...] = ()
            for folder in folders:
                ok = usable.get(folder)
                if ok is None:
                    ok = usable[folder] = _usable(folder)
                if not ok:
                    break  # list_dir shows no such directory: nothing below it is reached
                dirs[here].setdefault(folder, FileInfo(name=folder, type="dir", permissions="0755"))
                here = (*here, folder)
                dirs.setdefault(here, {})
            else:
                if name and _usable(name):
                    files.setdefault(here, {})[name] = FileInfo(
                        name=name,
                        type="file",
                        size=size,
                        last_modified=when,
                    )
        tree: dict[tuple[str, ...], list[FileInfo]] = {}
        for where, found in dirs.items():
            for name, info in files.get(where, {}).items():
                found.setdefault(name, info)  # a name that is a directory too: the directory
            tree[where] = [found[name] for name in sorted(found)]
        return tree

    # -- writing -----------------------------------------------------------------------------

    async def _require_dir(self, path: ResolvedPath) -> None:
        kind, _ = await self._kind(path)
        if kind is None:
            raise path_not_found(path)
        if kind != "dir":
            raise not_a_directory(path)

    async def mkdir(self, path: ResolvedPath) -> None:
        """Write the marker ``<key>/`` after checking the parent exists and the path doesn't."""
        if path.is_root:
            raise mkdir_exists(path)
        self._protect(path)
        await self._require_dir(path.parent)
        kind, _ = await self._kind(path)
        if kind is not None:
            raise mkdir_exists(path)
        await storage.put_object(self.store, self.dir_key(path), b"")

    async def rename(self, old: ResolvedPath, new: ResolvedPath) -> None:
        """Copy every object of ``old`` to ``new``, then delete the old ones."""
        if old.is_root or new.is_root:
            raise TransferAPIError(
                400, "ClientError.BadRequest", "The root of a collection can't be renamed."
            )
        self._protect(old)
        self._protect(new)
        if new.parts[: len(old.parts)] == old.parts:
            raise TransferAPIError(
                400, "ClientError.BadRequest", f"Can't move {old.display} into itself."
            )
        kind, head = await self._kind(old)
        if kind is None:
            raise path_not_found(old)
        if (await self._kind(new))[0] is not None:
            raise TransferAPIError(
                409, "ExternalError.RenameFailed.Exists", f"Path already exists: {new.display}"
            )
        await self._require_dir(new.parent)
        if kind == "file":
            assert head is not None
            size = int(head.get("ContentLength", 0))
            await storage.copy_object(self.store, self.key(old), self.key(new), size=size)
            await storage.delete_objects(self.store, [self.key(old)])
            return
        source, dest = self.dir_key(old), self.dir_key(new)
        objects, _ = await self._list(source, delimiter=False)
        for obj in objects:
            key = str(obj["Key"])
            target = dest + key[len(source) :]
            if key.endswith("/"):  # a marker: SeaweedFS can't copy one, so write a new one
                await storage.put_object(self.store, target, b"")
            else:
                size = int(obj.get("Size", 0))
                await storage.copy_object(self.store, key, target, size=size)
        await storage.delete_objects(self.store, [str(o["Key"]) for o in objects])

    async def delete(self, path: ResolvedPath, *, recursive: bool) -> None:
        """Delete the object, or every object under the directory (``recursive``)."""
        if path.is_root:
            raise delete_failed(path, "it is the collection's root", detail="IsRoot")
        self._protect(path)
        kind, _ = await self._kind(path)
        if kind is None:
            raise path_not_found(path)
        if kind == "file":
            await storage.delete_objects(self.store, [self.key(path)])
            return
        base = self.dir_key(path)
        objects, _ = await self._list(base, delimiter=False)
        keys = [str(o["Key"]) for o in objects]
        if not recursive and any(k != base for k in keys):
            raise delete_failed(path, "the directory is not empty", detail="NotEmpty")
        await storage.delete_objects(self.store, keys)
