"""Run a creating request at most once per ``Idempotency-Key`` (DESIGN.md §3).

The stored record is written in the same transaction as the write itself, so a crash can't
leave one without the other; a concurrent duplicate loses the primary-key race and replays.
A request whose work answers :class:`Unchanged` (it changed nothing) leaves no record: a
retry with its key runs the work again, which answers from what is there then.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from provena_like.server.db.idempotency import IdempotencyRow
from provena_like.server.errors import ServiceError, validation_error
from provena_like.server.security import Principal, sessions

Work = Callable[[AsyncSession], Awaitable[tuple[int, Any]]]


class Unchanged(NamedTuple):
    """What a :data:`Work` answers when it changed nothing: no record is kept for replay.

    There is nothing a retry could do twice, so a retry with the same key runs again (and
    the key, unrecorded, may then be used for another request).
    """

    status: int
    body: Any


def fingerprint(method: str, path: str, body: Any) -> str:
    """A digest of what was asked, to refuse a key reused for a different request."""
    raw = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _replay(row: IdempotencyRow, fp: str) -> JSONResponse:
    if row.fingerprint != fp:
        raise ServiceError(
            409,
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different request; use a new key.",
        )
    return JSONResponse(row.body, status_code=row.status, headers={"Idempotent-Replayed": "true"})


async def run_idempotent(
    sessions: async_sessionmaker[AsyncSession],
    *,
    principal: str,
    key: str | None,
    fp: str,
    work: Work,
) -> JSONResponse:
    """Run ``work`` in one transaction, or replay the stored result for (principal, key).

    ``work`` returns (status, JSON-able body), as :class:`Unchanged` when it changed
    nothing (then no record is kept). Without a key it simply runs once.
    """
    if key is not None and not 1 <= len(key) <= 255:
        message = "Idempotency-Key must be 1-255 characters."
        detail = {"field": "header.Idempotency-Key", "message": message, "type": "string_length"}
        raise validation_error([detail], message=message)
    async with sessions() as session:
        try:
            async with session.begin():
                if key is not None:
                    found = await session.get(IdempotencyRow, (principal, key))
                    if found is not None:
                        return _replay(found, fp)
                answer = await work(session)
                status, body = answer
                if key is not None and isinstance(answer, Unchanged):
                    # a duplicate that ran while the first of its key wrote may see that
                    # write as "nothing to change": it answers what the first did
                    found = await session.get(IdempotencyRow, (principal, key))
                    if found is not None:
                        return _replay(found, fp)
                elif key is not None:
                    session.add(
                        IdempotencyRow(
                            principal=principal, key=key, fingerprint=fp, status=status, body=body
                        )
                    )
        except IntegrityError:
            if key is None:
                raise
            async with sessions() as again:
                found = await again.get(IdempotencyRow, (principal, key))
            if found is None:
                raise
            return _replay(found, fp)
    return JSONResponse(body, status_code=status)


async def run_request_once(
    request: Request, principal: Principal, key: str | None, body: Any, work: Work
) -> JSONResponse:
    """:func:`run_idempotent` for the request being answered.

    The records go to the app's database, and the fingerprint is the request's method and
    path with ``body`` (the JSON form of what was sent; secrets already masked).

    Args:
        request: the request being answered.
        principal: the caller (keys are per caller).
        key: the ``Idempotency-Key`` header, or None.
        body: what the request asked for, as JSON-able data.
        work: the write, returning (status, JSON-able body).

    Returns:
        The response of ``work``, or the replay of the first answer for this key.
    """
    return await run_idempotent(
        sessions(request),
        principal=principal.username,
        key=key,
        fp=fingerprint(request.method, request.url.path, body),
        work=work,
    )
