"""HTTP routes of review and release, mounted at ``/datastore`` beside the datastore's own.

- ``GET|POST /reviewers``, ``DELETE /reviewers/{username}``: list (anyone signed in), add
  and remove (system admins) reviewers.
- ``POST /datasets/{id}/release/request|approve|reject|withdraw``: the workflow's steps
  (see :mod:`provena_like.server.review.service`); each answers the dataset as it now is.
- ``GET /datasets/{id}/release/history``: every step, oldest first.
- ``GET /reviews/awaiting``: datasets awaiting the caller's review; ``GET /reviews/mine``:
  the caller's pending requests. Both oldest request first.

Every step is one transaction, honours ``Idempotency-Key`` (a retried step replays its first
answer instead of meeting its own new state) and, once committed, is handed to the app's
notifier (``app.state.notifier``) as a background task: a failing notifier changes nothing.

A request and an approval run with the dataset's data frozen in the object store
(:mod:`~provena_like.server.datastore.freeze`) and check it against the manifest; a
rejection and a withdrawal let the store accept writes again once committed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTask

from provena_like.models.datastore import Dataset
from provena_like.models.review import (
    RejectRequest,
    ReleaseEvent,
    ReleaseRequest,
    Reviewer,
    ReviewerAdd,
    ReviewNotes,
)
from provena_like.models.shared import ErrorBody, Page
from provena_like.server import access
from provena_like.server.datastore import service as datastore
from provena_like.server.datastore.freeze import freeze_guard
from provena_like.server.datastore.integrity import ManifestCheck
from provena_like.server.datastore.tables import DatasetRow
from provena_like.server.idempotency import run_request_once
from provena_like.server.notifications import Notifier, ReleaseNotice, notify_safely
from provena_like.server.params import Cursor, IdempotencyKey, PageSize
from provena_like.server.registry.tables import ItemRow
from provena_like.server.security import Principal, db_session, require_principal, sessions

from . import reviewers, service
from .service import DataCheck, Transition

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 413, 422)
}

_STORE_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (502, 503)
}
"""Release steps also talk to the object store (its bucket policy, the data check)."""

router = APIRouter(tags=["review"], responses=_ERRORS)

Caller = Annotated[Principal, Depends(require_principal)]
Session = Annotated[AsyncSession, Depends(db_session)]


def _dataset_id(id_prefix: str, id_suffix: str) -> str:
    return f"{id_prefix}/{id_suffix}"


def _endpoint_url(request: Request) -> str | None:
    store = getattr(request.app.state, "object_store", None)
    return None if store is None else store.endpoint_url


def _wire(request: Request, principal: Principal, item: ItemRow, dataset: DatasetRow) -> Dataset:
    roles = access.roles_on(principal, item)
    return datastore.to_dataset(item, dataset, roles, endpoint_url=_endpoint_url(request))


def _notice(step: Transition) -> ReleaseNotice:
    return ReleaseNotice(
        action=step.event.action,
        dataset_id=step.item.id,
        dataset_name=step.item.display_name,
        status=step.event.status,
        actor=step.event.user,
        reviewer=step.event.reviewer,
        requester=step.dataset.release_requester,
        notes=step.event.notes,
        time=step.event.time,
    )


async def _step(
    request: Request,
    principal: Principal,
    key: str | None,
    body: Any,
    run: Callable[[AsyncSession], Awaitable[Transition]],
) -> JSONResponse:
    """Run a workflow step once per Idempotency-Key; notify after a fresh commit."""
    done: list[Transition] = []

    async def work(session: AsyncSession) -> tuple[int, Any]:
        step: Transition = await run(session)
        done.append(step)
        return 200, _wire(request, principal, step.item, step.dataset).model_dump(mode="json")

    response = await run_request_once(request, principal, key, body, work)
    if done and "idempotent-replayed" not in response.headers:
        notifier: Notifier = request.app.state.notifier
        response.background = BackgroundTask(notify_safely, notifier, _notice(done[0]))
    return response


async def _guarded_step(
    request: Request,
    principal: Principal,
    dataset_id: str,
    action: Literal["request", "approve", "reject", "withdraw"],
    key: str | None,
    body: Any,
    run: Callable[[AsyncSession, DataCheck], Awaitable[Transition]],
) -> JSONResponse:
    """:func:`_step` with the data frozen (request, approve) or thawed after (the others)."""
    store = getattr(request.app.state, "object_store", None)
    freezes = False
    if action in ("request", "approve") and store is not None:
        async with sessions(request)() as session:
            freezes = await service.freeze_wanted(session, principal, dataset_id, action)
    check = ManifestCheck(store) if freezes and store is not None else None
    data = DataCheck(check, needed=store is not None)

    async def step(session: AsyncSession) -> Transition:
        return await run(session, data)

    async with freeze_guard(request.app.state, dataset_id, freezes=freezes):
        return await _step(request, principal, key, body, step)


# -- reviewers -----------------------------------------------------------------------------


@router.get("/reviewers", response_model=Page[Reviewer])
async def list_reviewers_route(
    _principal: Caller, session: Session, page_size: PageSize = 100, cursor: Cursor = None
) -> Page[Reviewer]:
    """The users who may be named to review a release request, by username.

    Open to anyone signed in: a requester has to pick one.
    """
    items, next_cursor = await reviewers.list_reviewers(session, page_size=page_size, cursor=cursor)
    return Page[Reviewer](items=items, next_cursor=next_cursor)


@router.post("/reviewers", status_code=201, response_model=Reviewer)
async def add_reviewer_route(body: ReviewerAdd, request: Request, principal: Caller) -> Response:
    """Give a user the system role ``reviewer``; system admins only.

    201 when the user became a reviewer, 200 when they already were one.
    """
    access.require_system_role(principal, "admin", "Managing reviewers")
    async with sessions(request)() as session, session.begin():
        reviewer, added = await reviewers.add_reviewer(session, body.username)
    return JSONResponse(reviewer.model_dump(mode="json"), status_code=201 if added else 200)


@router.delete("/reviewers/{username}", status_code=204)
async def remove_reviewer_route(username: str, request: Request, principal: Caller) -> Response:
    """Take the system role ``reviewer`` from a user; system admins only.

    409 ``reviewer_busy`` while release requests await their decision.
    """
    access.require_system_role(principal, "admin", "Managing reviewers")
    async with sessions(request)() as session, session.begin():
        await reviewers.remove_reviewer(session, username)
    return Response(status_code=204)


# -- the workflow --------------------------------------------------------------------------


@router.post(
    "/datasets/{id_prefix}/{id_suffix}/release/request",
    response_model=Dataset,
    responses=_STORE_ERRORS,
)
async def request_release_route(
    id_prefix: str,
    id_suffix: str,
    body: ReleaseRequest,
    request: Request,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Ask for the dataset's release, naming the reviewer: ``NOT_RELEASED`` → ``PENDING``.

    Needs ``admin`` on the dataset. 409 ``locked``, ``under_review`` or ``released``; 422 when
    ``reviewer`` is not a reviewer (or is the caller). From now on the dataset's data and
    metadata are frozen, and the reviewer may read both.
    """
    dataset_id = _dataset_id(id_prefix, id_suffix)

    async def run(session: AsyncSession, data: DataCheck) -> Transition:
        return await service.request_release(session, principal, dataset_id, body, data=data)

    return await _guarded_step(
        request,
        principal,
        dataset_id,
        "request",
        idempotency_key,
        body.model_dump(mode="json"),
        run,
    )


async def _decide(
    verdict: Literal["approve", "reject"],
    dataset_id: str,
    notes: str,
    request: Request,
    principal: Principal,
    key: str | None,
) -> JSONResponse:
    async def run(session: AsyncSession, data: DataCheck) -> Transition:
        return await service.decide(session, principal, dataset_id, verdict, notes, data=data)

    return await _guarded_step(request, principal, dataset_id, verdict, key, {"notes": notes}, run)


@router.post(
    "/datasets/{id_prefix}/{id_suffix}/release/approve",
    response_model=Dataset,
    responses=_STORE_ERRORS,
)
async def approve_route(
    id_prefix: str,
    id_suffix: str,
    body: ReviewNotes,
    request: Request,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Approve the pending request: ``PENDING`` → ``RELEASED`` (``release_time`` set).

    Only the reviewer the request names (403 ``not_your_review``); 409 ``not_under_review``
    or ``released`` when there is no pending request.
    """
    dataset_id = _dataset_id(id_prefix, id_suffix)
    return await _decide("approve", dataset_id, body.notes, request, principal, idempotency_key)


@router.post(
    "/datasets/{id_prefix}/{id_suffix}/release/reject",
    response_model=Dataset,
    responses=_STORE_ERRORS,
)
async def reject_route(
    id_prefix: str,
    id_suffix: str,
    body: RejectRequest,
    request: Request,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Reject the pending request with notes saying what to fix: → ``NOT_RELEASED``.

    Only the reviewer the request names (403 ``not_your_review``); 409 when there is no
    pending request; 422 without notes.
    """
    dataset_id = _dataset_id(id_prefix, id_suffix)
    return await _decide("reject", dataset_id, body.notes, request, principal, idempotency_key)


@router.post(
    "/datasets/{id_prefix}/{id_suffix}/release/withdraw",
    response_model=Dataset,
    responses=_STORE_ERRORS,
)
async def withdraw_route(
    id_prefix: str,
    id_suffix: str,
    body: ReviewNotes,
    request: Request,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Take back the pending request: ``PENDING`` → ``NOT_RELEASED``; needs ``admin``.

    409 when there is no pending request.
    """
    dataset_id = _dataset_id(id_prefix, id_suffix)

    async def run(session: AsyncSession, data: DataCheck) -> Transition:
        del data  # a withdrawal checks nothing
        return await service.withdraw(session, principal, dataset_id, body.notes)

    return await _guarded_step(
        request,
        principal,
        dataset_id,
        "withdraw",
        idempotency_key,
        body.model_dump(mode="json"),
        run,
    )


@router.get("/datasets/{id_prefix}/{id_suffix}/release/history", response_model=Page[ReleaseEvent])
async def release_history_route(
    id_prefix: str,
    id_suffix: str,
    principal: Caller,
    session: Session,
    page_size: PageSize = 100,
    cursor: Cursor = None,
) -> Page[ReleaseEvent]:
    """Every step of the dataset's release workflow, oldest first; needs ``metadata-read``."""
    events, next_cursor = await service.history_page(
        session,
        principal,
        _dataset_id(id_prefix, id_suffix),
        page_size=page_size,
        cursor=cursor,
    )
    return Page[ReleaseEvent](items=events, next_cursor=next_cursor)


# -- queues --------------------------------------------------------------------------------


async def _queue(
    request: Request,
    principal: Principal,
    session: AsyncSession,
    queue: service.Queue,
    page_size: int,
    cursor: str | None,
) -> Page[Dataset]:
    rows, next_cursor = await service.pending_page(
        session, principal, queue, page_size=page_size, cursor=cursor
    )
    items = [_wire(request, principal, item, dataset) for item, dataset in rows]
    return Page[Dataset](items=items, next_cursor=next_cursor)


@router.get("/reviews/awaiting", response_model=Page[Dataset])
async def awaiting_route(
    request: Request,
    principal: Caller,
    session: Session,
    page_size: PageSize = 100,
    cursor: Cursor = None,
) -> Page[Dataset]:
    """The datasets awaiting the caller's review, oldest request first."""
    return await _queue(request, principal, session, "awaiting", page_size, cursor)


@router.get("/reviews/mine", response_model=Page[Dataset])
async def mine_route(
    request: Request,
    principal: Caller,
    session: Session,
    page_size: PageSize = 100,
    cursor: Cursor = None,
) -> Page[Dataset]:
    """The caller's own pending release requests, oldest first."""
    return await _queue(request, principal, session, "mine", page_size, cursor)
