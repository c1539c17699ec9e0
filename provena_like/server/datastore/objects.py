"""A dataset's objects as the server writes them: ``metadata.json``, copies, and their undo.

Writes that go with a database transaction happen *inside* it, after the rows are written and
before the commit, and are recorded in a :class:`StorageJournal`. If anything fails before the
commit has succeeded, :meth:`StorageJournal.undo` takes them back: objects the request created
are deleted, a ``metadata.json`` it overwrote gets its previous content back. So a failed mint
leaves neither an item nor an object, and a failed update leaves the old ``metadata.json``.

Each ``metadata.json`` the server writes carries a random ``write-id`` in its S3 user
metadata, and the undo touches it only if it still carries the id this request wrote. (A
rolled-back transaction gives its handle number back, so another mint may reuse the same
prefix right after a failure; the check keeps the undo from deleting that mint's file. A
window of one HEAD-to-DELETE round trip remains, for a commit failure racing a new mint.)
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field

import anyio

from provena_like.models.datastore import METADATA_FILE
from provena_like.server.errors import task_group
from provena_like.server.registry.tables import ItemRow

from . import storage
from .storage import ObjectHead, ObjectStore
from .tables import DatasetRow

__all__ = ["WRITE_ID", "CopiedObject", "StorageJournal", "copy_prefix", "metadata_document"]

log = logging.getLogger(__name__)

WRITE_ID = "write-id"
"""The S3 user-metadata key holding the id of the request that wrote a ``metadata.json``."""

SCHEMA = "provena-like/dataset-metadata/v1"


def metadata_document(item: ItemRow, dataset: DatasetRow) -> bytes:
    """The content of a dataset's ``metadata.json``: handle, timestamps and record.

    It reflects the metadata as of its last change (mint, update, revert); version links
    live in the registry, so versioning never rewrites an existing dataset's objects.
    """
    document = {
        "schema": SCHEMA,
        "id": item.id,
        "display_name": item.display_name,
        "owner": item.owner,
        "version": item.version,
        "previous_version": item.previous_version,
        "revision": item.revision,
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
        "storage": {"bucket": dataset.bucket, "prefix": dataset.prefix},
        "record": item.record,
    }
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


@dataclass(frozen=True)
class CopiedObject:
    """One object copied from a dataset to its new version."""

    path: str
    size: int
    etag: str


@dataclass
class StorageJournal:
    """The object writes of one request, so that they can be taken back.

    Args:
        store: the object store.
    """

    store: ObjectStore
    write_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: list[str] = field(default_factory=list)
    metadata_created: list[str] = field(default_factory=list)
    metadata_replaced: dict[str, bytes] = field(default_factory=dict)

    @property
    def wrote_anything(self) -> bool:
        """Whether this request started any write."""
        return bool(self.created or self.metadata_created or self.metadata_replaced)

    async def write_metadata(self, item: ItemRow, dataset: DatasetRow, *, new: bool) -> str:
        """Write ``metadata.json`` of ``dataset``; returns its ETag.

        ``new``: the dataset was just created (undo deletes the file); otherwise the current
        content is read first and undo puts it back.
        """
        key = dataset.prefix + METADATA_FILE
        if new:
            self.metadata_created.append(key)  # before the call: a lost reply still wrote it
        else:
            previous = await storage.read_object(self.store, key)
            if previous is not None:
                self.metadata_replaced[key] = previous
            else:
                self.metadata_created.append(key)
        return await storage.put_object(
            self.store,
            key,
            metadata_document(item, dataset),
            content_type="application/json",
            metadata={WRITE_ID: self.write_id},
        )

    async def copy(self, source: ObjectHead, dest_key: str) -> str:
        """Copy an object server-side, recording ``dest_key`` for undo; returns the ETag.

        Shielded from cancellation: once the request is sent the store finishes the copy
        whether or not anyone waits for the reply, so when a sibling copy fails the others are
        waited for, and :meth:`undo` deletes what they wrote instead of racing them.
        """
        self.created.append(dest_key)
        with anyio.CancelScope(shield=True):
            etag = await storage.copy_object(self.store, source.key, dest_key, size=source.size)
        return etag

    async def _ours(self, key: str) -> bool:
        head = await storage.head_object(self.store, key)
        return head is not None and head.metadata.get(WRITE_ID) == self.write_id

    async def undo(self) -> None:
        """Take back every write of this request; best effort (failures are logged)."""
        with anyio.CancelScope(shield=True):
            try:
                for key in self.metadata_created:
                    if await self._ours(key):
                        self.created.append(key)
                if self.created:
                    await storage.delete_objects(self.store, list(dict.fromkeys(self.created)))
                for key, previous in self.metadata_replaced.items():
                    if await self._ours(key):
                        await storage.put_object(
                            self.store, key, previous, content_type="application/json"
                        )
            except Exception:
                log.exception("could not undo the object writes of a failed request")
            self.created.clear()
            self.metadata_created.clear()
            self.metadata_replaced.clear()


async def copy_prefix(
    journal: StorageJournal, source_prefix: str, dest_prefix: str
) -> list[CopiedObject]:
    """Copy every object under ``source_prefix`` but ``metadata.json`` to ``dest_prefix``.

    Server-side copies, up to the store's concurrency at a time; the source is untouched.
    """
    store = journal.store
    sources = [
        o
        for o in await storage.list_objects(store, source_prefix)
        if o.key != source_prefix + METADATA_FILE
    ]
    copied: list[CopiedObject] = []
    limiter = anyio.CapacityLimiter(store.concurrency)

    async def one(source: ObjectHead) -> None:
        path = source.key[len(source_prefix) :]
        async with limiter:
            etag = await journal.copy(source, dest_prefix + path)
        copied.append(CopiedObject(path=path, size=source.size, etag=etag))

    async with task_group() as group:
        for source in sources:
            group.start_soon(one, source)
    return sorted(copied, key=lambda c: c.path)
