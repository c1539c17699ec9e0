"""Tables of the transfer service: which registry item each collection UUID stands for.

A collection is a registry item (a dataset, or a ``transfer_collection``); its Globus id is
a UUID derived from the item's handle (:func:`~provena_like.server.transfer.index.
collection_id`). :class:`CollectionRow` maps that UUID back to the item, so that a request
naming a collection finds it with one lookup, and so that ``endpoint_search`` lists the
collections a caller may use inside SQL (joined with ``registry_items`` and filtered by
:func:`~provena_like.server.access.readable_filter`). Rows are written by the registry's
post-write hook, in the transaction that creates the item.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from provena_like.server.db.base import Base

__all__ = ["CollectionRow"]


class CollectionRow(Base):
    """One collection: its UUID, the registry item it is, and its backend."""

    __tablename__ = "transfer_collections"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, doc="the collection's UUID")
    item_id: Mapped[str] = mapped_column(
        ForeignKey("registry_items.id", ondelete="CASCADE"), unique=True
    )
    kind: Mapped[str] = mapped_column(String(8), doc="s3 (a dataset) | posix")
