"""Does the object store still hold what a dataset's manifest says? Checked before a release.

A release request and its approval check every registered file against the store: the
object must exist with the registered size, and the same content - the same full-object
SHA-256 when the store keeps one, otherwise the ETag recorded at registration. Any
difference is answered 409 ``data_changed``, naming each file and what differs, and the step
is not taken.

The check runs in two passes (:class:`ManifestCheck`): a first one before the step's
transaction writes anything (while the data is already frozen in the store, see
:mod:`~provena_like.server.datastore.freeze`), and a second one after the step has claimed
the dataset's row, which HEADs only the manifest rows that the first pass did not see as they
are now (a registration that committed in between). So the database isn't held for the
duration of a large dataset's check, and nothing registered before the step escapes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.server.errors import ServiceError

from . import storage
from .storage import ObjectHead, ObjectStore, ObjectStoreError
from .tables import ManifestRow

__all__ = ["ManifestCheck", "compare"]

_NAMED_IN_MESSAGE = 5
_MAX_DETAILS = 1000

_Recorded = tuple[int, str, str]  # size, sha256, etag as registered


def compare(row: ManifestRow, head: ObjectHead | None) -> dict[str, Any] | None:
    """What differs between a manifest row and the object the store holds; None if nothing.

    The problem is ``missing``, ``size`` or ``content`` (another SHA-256, or - when the store
    keeps no full-object checksum - another ETag than the one registered).
    """
    expected = {"size": row.size, "sha256": row.sha256, "etag": row.etag}
    if head is None:
        return {"path": row.path, "problem": "missing", "expected": expected, "found": None}
    found = {"size": head.size, "sha256": head.sha256, "etag": head.etag}
    problem: str | None
    if head.size != row.size:
        problem = "size"
    elif head.sha256 is not None:
        problem = None if head.sha256 == row.sha256 else "content"
    else:
        problem = None if head.etag == row.etag else "content"
    if problem is None:
        return None
    return {"path": row.path, "problem": problem, "expected": expected, "found": found}


@dataclass
class ManifestCheck:
    """Checks a dataset's manifest against the store, remembering what already matched.

    Attributes:
        store: the object store.
        matched: path → (size, sha256, etag) of the rows found intact so far.
    """

    store: ObjectStore
    matched: dict[str, _Recorded] = field(default_factory=dict)

    async def run(self, session: AsyncSession, item_id: str, prefix: str, state: str) -> None:
        """Check every manifest row not already matched as it is now; 409 naming mismatches.

        Args:
            session: the session of the step (its rows as the transaction sees them).
            item_id: the dataset.
            prefix: its key prefix.
            state: its release state, for ``details.state`` of the 409.
        """
        rows = list(
            await session.scalars(select(ManifestRow).where(ManifestRow.item_id == item_id))
        )
        todo = [r for r in rows if self.matched.get(r.path) != (r.size, r.sha256, r.etag)]
        heads = await self._heads([prefix + r.path for r in todo])
        problems: list[dict[str, Any]] = []
        for row in todo:
            problem = compare(row, heads[prefix + row.path])
            if problem is None:
                self.matched[row.path] = (row.size, row.sha256, row.etag)
            else:
                problems.append(problem)
        if problems:
            raise _changed(item_id, state, sorted(problems, key=lambda p: str(p["path"])))

    async def _heads(self, keys: list[str]) -> dict[str, ObjectHead | None]:
        heads: dict[str, ObjectHead | None] = {}
        failures: list[ObjectStoreError] = []
        limiter = anyio.CapacityLimiter(self.store.concurrency)

        async def one(key: str) -> None:
            async with limiter:
                try:
                    heads[key] = await storage.head_object(self.store, key)
                except ObjectStoreError as err:  # raised below, outside the task group
                    failures.append(err)

        async with anyio.create_task_group() as group:
            for key in keys:
                group.start_soon(one, key)
        if failures:
            raise failures[0]
        return heads


def _changed(item_id: str, state: str, problems: list[dict[str, Any]]) -> ServiceError:
    words = {"missing": "missing", "size": "another size", "content": "other content"}
    named = ", ".join(f"{p['path']} ({words[p['problem']]})" for p in problems[:_NAMED_IN_MESSAGE])
    more = len(problems) - _NAMED_IN_MESSAGE
    if more > 0:
        named += f" and {more} more"
    return ServiceError(
        409,
        "data_changed",
        f"The stored data of dataset {item_id} no longer matches its manifest: {named}. It "
        "can't be released like this: while it is NOT_RELEASED (reject or withdraw a pending "
        "request first), upload and register these files again, or remove them.",
        details={"state": state, "files": problems[:_MAX_DETAILS], "count": len(problems)},
    )
