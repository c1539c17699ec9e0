"""Collections: what the transfer service reads and writes, and who may use them.

A **collection** has a UUID, a display name and a backend:

- every **dataset** of the datastore is an ``s3`` collection: its storage prefix in the
  server's object store (:class:`~provena_like.server.transfer.s3.S3Backend`), id
  :func:`~provena_like.server.transfer.index.collection_id` of its handle;
- a **transfer collection** (registry subtype ``transfer_collection``, registered by a system
  admin) is a ``posix`` collection: a directory tree of the server
  (:class:`~provena_like.server.transfer.posix.PosixBackend`) whose root must lie under one of
  the server's ``transfer_roots`` (default ``<data_dir>/collections``), checked each time it
  is opened.

**Access** is the item's, through the one evaluator :mod:`provena_like.server.access`:
``data-read`` lists, stats and reads (a transfer's source); ``data-write`` also makes
directories, renames, deletes and writes (a transfer's destination). Without the role: 403
``EndpointPermissionDenied``. Writing to a dataset also needs it to be open for data writes
(the datastore's own check: unlocked, not in review, not released: else 409
``ClientError.Conflict.Locked``, ``...UnderReview``, ``...Released``); a locked transfer
collection refuses writes the same way.

:func:`open_collection` is the one entry point, for the routes and the task executor alike;
:meth:`Collection.resolve` turns a Globus path into a :class:`~provena_like.server.transfer.
paths.ResolvedPath` that can't leave the collection's root.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from provena_like.models.registry import Role
from provena_like.models.transfer_collections import TransferCollectionRecord
from provena_like.server import access
from provena_like.server.datastore import service as datastore
from provena_like.server.datastore.storage import ObjectStore
from provena_like.server.errors import ServiceError
from provena_like.server.registry.tables import ItemRow
from provena_like.server.security import Principal
from provena_like.server.settings import ServerSettings
from provena_like.server.transfer.errors import (
    TransferAPIError,
    from_service_error,
    not_found,
    permission_denied,
)
from provena_like.server.transfer.paths import ResolvedPath, normalise
from provena_like.server.transfer.posix import PosixBackend
from provena_like.server.transfer.s3 import S3Backend
from provena_like.server.transfer.tables import CollectionRow

__all__ = ["Collection", "CollectionKind", "allowed_root", "describe", "open_collection"]

CollectionKind = Literal["posix", "s3"]


@dataclass(frozen=True)
class Collection:
    """An opened collection: who it is, what the caller may do, and its storage.

    Attributes:
        id: the collection's UUID.
        item_id: the handle of the registry item it is (a dataset or a transfer collection).
        display_name: the item's display name.
        owner: the item's owner.
        description: what is in it.
        roles: the caller's effective roles on the item.
        writable: whether it was opened for writing (the checks for writes passed).
        backend: its storage.
    """

    id: str
    item_id: str
    display_name: str
    owner: str
    description: str
    roles: list[Role]
    writable: bool
    backend: PosixBackend | S3Backend

    @property
    def kind(self) -> CollectionKind:
        """``posix`` or ``s3``."""
        return self.backend.kind

    def resolve(self, path: str | None) -> ResolvedPath:
        """Normalise the Globus ``path``; refuse one that leaves the root (as things are now).

        ``None``, ``""``, ``/``, ``~`` and ``/~/`` are the root; every path is relative to it
        (``/etc/passwd`` is ``<root>/etc/passwd``). The backends check again at each access.

        Raises:
            TransferAPIError: 400 ``ClientError.BadRequest.InvalidPath`` (``..``, NUL,
                backslash, encoded separators), 403 ``EndpointPermissionDenied`` (a symlink
                of a POSIX collection leading outside).

        Example:
            ```python
            collection = await open_collection(app, principal, collection_id, write=False)
            path = collection.resolve("/~/data/run1/")
            assert path.display == "/data/run1/"
            ```
        """
        resolved = normalise(path)
        self.backend.check(resolved)
        return resolved


def _parse_id(collection_id: str) -> str:
    try:
        return str(uuid.UUID(collection_id))
    except ValueError:
        raise not_found(f"Collection {collection_id!r}") from None


def allowed_root(root: str, roots: list[Path]) -> Path | None:
    """``root`` fully resolved, when it lies under (or is) one of ``roots``; else None."""
    real = os.path.realpath(root)
    for allowed in roots:
        base = os.path.realpath(allowed)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            return Path(real)
    return None


def describe(item: ItemRow) -> str:
    """The description of a collection's item (a dataset's, or the collection record's)."""
    record: dict[str, Any] = item.record or {}
    if item.subtype == "dataset":
        return str(record.get("dataset_info", {}).get("description", ""))
    return str(record.get("description", ""))


def _locked(item: ItemRow) -> TransferAPIError:
    return TransferAPIError(
        409,
        "ClientError.Conflict.Locked",
        f"Collection {item.display_name!r} ({item.id}) is locked: it can't be written until "
        "an admin unlocks it.",
    )


async def _backend(
    session: AsyncSession,
    row: CollectionRow,
    item: ItemRow,
    *,
    write: bool,
    settings: ServerSettings,
    store: ObjectStore | None,
) -> PosixBackend | S3Backend:
    if row.kind == "s3":
        try:
            ditem, dataset = await datastore.load_dataset(session, item.id)
        except ServiceError:
            raise not_found(f"Collection {row.id}") from None
        if write:
            try:
                datastore.refuse_data_writes(ditem, dataset)
            except ServiceError as refused:  # locked, in review, released
                raise from_service_error(refused) from None
        if store is None:
            raise TransferAPIError(
                503,
                "ServiceUnavailable",
                "This server has no object store configured, so dataset collections are "
                "unavailable.",
            )
        if dataset.bucket != store.bucket:
            raise TransferAPIError(
                502,
                "ExternalError.CollectionUnavailable",
                f"Dataset {item.id} lives in a bucket this server doesn't serve.",
            )
        return S3Backend(store=store, prefix=dataset.prefix, dataset_id=item.id)
    if write and item.locked:
        raise _locked(item)
    record = TransferCollectionRecord.model_validate(item.record)
    root = allowed_root(record.root, settings.resolved_transfer_roots)
    if root is None:
        raise permission_denied(
            f"Collection {row.id} has a root outside the directories this server serves "
            "(server setting transfer_roots); ask an admin to fix it."
        )
    if not root.is_dir():
        raise TransferAPIError(
            502,
            "ExternalError.CollectionUnavailable",
            f"The root directory of collection {row.id} doesn't exist on the server.",
        )
    return PosixBackend(root=root)


async def open_collection(
    app: Starlette, principal: Principal, collection_id: str, *, write: bool
) -> Collection:
    """Open the collection ``collection_id`` for ``principal``, to read or to ``write``.

    Args:
        app: the server app (its sessions, settings and object store).
        principal: the caller.
        collection_id: the collection's UUID.
        write: whether the caller means to write (``data-write`` and the write checks).

    Raises:
        TransferAPIError: 404 ``ClientError.NotFound`` (no such collection), 403
            ``EndpointPermissionDenied`` (the caller lacks ``data-read``/``data-write``, or
            the collection's root isn't served), 409 ``ClientError.Conflict.Locked`` (and the
            datastore's other refusals of data writes), 503 without an object store.

    Example:
        ```python
        collection = await open_collection(request.app, principal, endpoint_id, write=True)
        await collection.backend.mkdir(collection.resolve("/new-dir"))
        ```
    """
    cid = _parse_id(collection_id)
    factory: async_sessionmaker[AsyncSession] = app.state.sessions
    async with factory() as session:
        row = await session.get(CollectionRow, cid)
        item = await session.get(ItemRow, row.item_id) if row is not None else None
        if row is None or item is None:
            raise not_found(f"Collection {collection_id}")
        roles = access.roles_on(principal, item)
        need: Role = "data-write" if write else "data-read"
        if need not in roles:
            what = "write to" if write else "read"
            # by id only: its name is the item's metadata, not every caller's to read
            raise permission_denied(
                f"You may not {what} collection {cid}: this needs "
                f"the {need!r} role on {item.id}; ask its owner or an admin."
            )
        backend = await _backend(
            session,
            row,
            item,
            write=write,
            settings=app.state.settings,
            store=getattr(app.state, "object_store", None),
        )
        return Collection(
            id=cid,
            item_id=item.id,
            display_name=item.display_name,
            owner=item.owner,
            description=describe(item),
            roles=roles,
            writable=write,
            backend=backend,
        )
