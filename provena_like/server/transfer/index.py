"""The collection index: every dataset and transfer collection gets a collection UUID.

:func:`subscribe` hangs :func:`follow` on the registry's post-write hooks
(:mod:`provena_like.server.registry.events`): when a dataset or a ``transfer_collection`` is
created, its :class:`~provena_like.server.transfer.tables.CollectionRow` is written in the
same transaction. Migration ``0007_transfer_collections`` wrote the rows of the datasets that
existed before.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.transfer_collections import (
    COLLECTION_NAMESPACE,
    TRANSFER_COLLECTION,
    collection_id,
)
from provena_like.server.registry.events import ItemHooks, ItemWritten
from provena_like.server.transfer.tables import CollectionRow

__all__ = ["COLLECTION_KINDS", "COLLECTION_NAMESPACE", "collection_id", "follow", "subscribe"]

COLLECTION_KINDS = {"dataset": "s3", TRANSFER_COLLECTION: "posix"}
"""registry subtype → backend of the collection it is."""


async def follow(session: AsyncSession, event: ItemWritten) -> None:
    """Give a newly created dataset or transfer collection its collection row.

    Added to the session, not flushed: it goes in with the transaction's next flush.
    """
    kind = COLLECTION_KINDS.get(event.item.subtype)
    if event.change != "created" or kind is None:
        return
    session.add(CollectionRow(id=collection_id(event.item.id), item_id=event.item.id, kind=kind))


def subscribe(hooks: ItemHooks) -> None:
    """Follow every item write announced on ``hooks`` (the app does this at start)."""
    hooks.subscribe(follow)
