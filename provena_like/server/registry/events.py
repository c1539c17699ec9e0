"""What the registry tells others after it writes an item: a post-write hook.

Every write of an item row (:mod:`~provena_like.server.registry.service`) fires one
:class:`ItemWritten` on the :class:`ItemHooks` of its session, *inside the writer's
transaction*, after the row is flushed. A hook runs its own statements on that session, so
what it writes commits or rolls back with the item (the search index is kept this way: a
search sees exactly the committed items). A hook that raises fails the write.

The hooks are per app, not global: :func:`provena_like.server.app.create_app` makes one
:class:`ItemHooks`, lets the services that follow the registry subscribe to it (search does,
with :func:`provena_like.server.search.index.subscribe`) and hands it to every session of the
app through :func:`session_info`. A session without hooks (a script on its own engine)
writes items without telling anyone; ``POST /search/reindex`` rebuilds the index then.

So the registry imports none of its followers, and they import the registry.

Example:
    ```python
    hooks = ItemHooks()

    async def audit(session: AsyncSession, event: ItemWritten) -> None:
        log.info("%s %s", event.item.id, event.change)

    hooks.subscribe(audit)
    sessions = create_sessionmaker(engine, info=session_info(hooks))
    ```
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.server.registry.tables import ItemRow

__all__ = ["ItemChange", "ItemHook", "ItemHooks", "ItemWritten", "item_written", "session_info"]

ItemChange = Literal["created", "updated", "access_changed"]
"""What a write did: registered the item; changed its record, name or lock; changed its owner
or grants. (The registry deletes no items, so there is no ``deleted``.)"""


@dataclass(frozen=True, slots=True)
class ItemWritten:
    """One write of an item, fired inside the writer's transaction.

    Attributes:
        change: what the write did.
        item: the row as written (its new revision, record and access settings).
    """

    change: ItemChange
    item: ItemRow


ItemHook = Callable[[AsyncSession, ItemWritten], Awaitable[None]]
"""A subscriber: called with the writer's session and the event, in the transaction."""

_INFO_KEY = "provena_like.item_hooks"


class ItemHooks:
    """The subscribers to the registry's writes, called in the order they subscribed."""

    def __init__(self) -> None:
        self._hooks: list[ItemHook] = []

    def subscribe(self, hook: ItemHook) -> None:
        """Call ``hook`` after every item write from now on (once, however often given)."""
        if hook not in self._hooks:
            self._hooks.append(hook)

    async def fire(self, session: AsyncSession, event: ItemWritten) -> None:
        """Call every hook with ``event``, one after the other; the first error propagates."""
        for hook in self._hooks:
            await hook(session, event)


def session_info(hooks: ItemHooks) -> dict[str, Any]:
    """The ``info`` of a session factory whose sessions fire ``hooks``."""
    return {_INFO_KEY: hooks}


async def item_written(session: AsyncSession, change: ItemChange, item: ItemRow) -> None:
    """Tell the subscribers of ``session``'s hooks that ``item`` was just written."""
    hooks = session.info.get(_INFO_KEY)
    if isinstance(hooks, ItemHooks):
        await hooks.fire(session, ItemWritten(change, item))
