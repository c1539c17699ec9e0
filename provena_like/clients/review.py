"""``ReviewClient``: the L2 client of review and release (routes under ``/datastore``).

One method per route, one HTTP call per method. Listing methods return one
:class:`~provena_like.models.shared.Page`; the ``iter_*`` methods return an
:class:`~provena_like.AsyncPaginator`. The workflow's steps answer the dataset as it now is.

Refusals arrive as typed errors: :class:`~provena_like.ReleaseStateConflict` (409: the
dataset's release state doesn't allow the step; ``.state`` says which it is),
:class:`~provena_like.NotYourReview` (403: another reviewer's request),
:class:`~provena_like.Locked` (409: the dataset is locked).
"""

from __future__ import annotations

from typing import Any

from provena_like._core.http import HTTPCore
from provena_like._core.pagination import AsyncPaginator
from provena_like._core.sentinels import NOT_GIVEN, NotGiven
from provena_like.clients._base import ServiceClient
from provena_like.clients._encoding import encode_body, path_segment
from provena_like.clients._list_route import ListRoute
from provena_like.clients.datastore import dataset_path
from provena_like.models.datastore import Dataset
from provena_like.models.review import (
    RejectRequest,
    ReleaseEvent,
    ReleaseRequest,
    Reviewer,
    ReviewerAdd,
    ReviewNotes,
)
from provena_like.models.shared import Page

__all__ = ["ReviewClient"]


class ReviewClient(ServiceClient):
    """Typed calls for reviewers, release requests, decisions and review queues.

    Args:
        core: the shared HTTP core (normally ``ProvenaClient.review_client`` builds this).

    Example:
        ```python
        async with ProvenaClient.from_env() as pv:
            page = await pv.review_client.list_awaiting_reviews()
        ```
    """

    _service = "datastore"

    def __init__(self, core: HTTPCore) -> None:
        super().__init__(core)
        self._reviewers = self._list_route("/reviewers", Page[Reviewer])
        self._awaiting = self._list_route("/reviews/awaiting", Page[Dataset])
        self._mine = self._list_route("/reviews/mine", Page[Dataset])

    # -- reviewers -----------------------------------------------------------------------

    async def list_reviewers(
        self, *, page_size: int = 100, cursor: str | None = None
    ) -> Page[Reviewer]:
        """One page of the users who may review release requests (``GET /reviewers``).

        Example:
            ```python
            page = await pv.review_client.list_reviewers()
            [r.username for r in page.items]
            ```
        """
        return await self._reviewers.page(page_size=page_size, cursor=cursor)

    def iter_reviewers(
        self, *, page_size: int = 100, cursor: str | None = None, max_items: int | None = None
    ) -> AsyncPaginator[Reviewer]:
        """Every reviewer, fetched page by page.

        Example:
            ```python
            names = [r.username async for r in pv.review_client.iter_reviewers()]
            ```
        """
        return self._reviewers.iterate(page_size=page_size, cursor=cursor, max_items=max_items)

    async def add_reviewer(self, username: str) -> Reviewer:
        """Make a user a reviewer (``POST /reviewers``); system admins only.

        Adding a reviewer twice changes nothing.

        Raises:
            Forbidden: the caller is not a system admin.
            NotFound: no such user.

        Example:
            ```python
            await pv.review_client.add_reviewer("rob")
            ```
        """
        return await self._core.request(
            "POST",
            "datastore",
            "/reviewers",
            json=encode_body(ReviewerAdd, {"username": username}, "reviewer"),
            cast_to=Reviewer,
            expected=(200, 201),
        )

    async def remove_reviewer(self, username: str) -> None:
        """Take the reviewer role from a user (``DELETE /reviewers/{username}``).

        Raises:
            Forbidden: the caller is not a system admin.
            NotFound: the user is not a reviewer.
            Conflict: they still have pending reviews (code ``reviewer_busy``).

        Example:
            ```python
            await pv.review_client.remove_reviewer("rob")
            ```
        """
        await self._core.request(
            "DELETE", "datastore", "/reviewers/" + path_segment(username, "username")
        )

    # -- the workflow --------------------------------------------------------------------

    async def _step(
        self,
        dataset_id: str,
        action: str,
        body: Any,
        idempotency_key: str | None | NotGiven,
    ) -> Dataset:
        return await self._core.request(
            "POST",
            "datastore",
            f"{dataset_path(dataset_id)}/release/{action}",
            json=body,
            idempotency_key=idempotency_key,
            cast_to=Dataset,
        )

    async def request_release(
        self,
        dataset_id: str,
        reviewer: str,
        notes: str = "",
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> Dataset:
        """Ask for a dataset's release, naming its reviewer (``POST .../release/request``).

        Needs ``admin`` on the dataset. From then on the dataset is ``PENDING``: its data and
        metadata are frozen and the reviewer may read both.

        Args:
            dataset_id: the handle.
            reviewer: the username of a reviewer (not yourself).
            notes: for the reviewer.
            idempotency_key: replays the first answer for the same key; left out, a fresh
                key protects this call's own retries.

        Raises:
            ReleaseStateConflict: the dataset is already ``PENDING`` or ``RELEASED``.
            Locked: the dataset is locked.
            Unprocessable: ``reviewer`` is not a reviewer.

        Example:
            ```python
            ds = await pv.review_client.request_release("10378.1/42", "rob", "ready")
            ```
        """
        body = encode_body(
            ReleaseRequest, {"reviewer": reviewer, "notes": notes}, "release request"
        )
        return await self._step(dataset_id, "request", body, idempotency_key)

    async def approve_release(
        self,
        dataset_id: str,
        notes: str = "",
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> Dataset:
        """Approve a pending request: the dataset is ``RELEASED`` (``POST .../release/approve``).

        Raises:
            NotYourReview: the request names another reviewer.
            ReleaseStateConflict: there is no pending request.

        Example:
            ```python
            ds = await pv.review_client.approve_release("10378.1/42", "looks good")
            ```
        """
        body = encode_body(ReviewNotes, {"notes": notes}, "approval")
        return await self._step(dataset_id, "approve", body, idempotency_key)

    async def reject_release(
        self,
        dataset_id: str,
        notes: str,
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> Dataset:
        """Reject a pending request, saying what to fix (``POST .../release/reject``).

        Raises:
            UsageError: empty ``notes``.
            NotYourReview: the request names another reviewer.
            ReleaseStateConflict: there is no pending request.

        Example:
            ```python
            ds = await pv.review_client.reject_release("10378.1/42", "add a licence")
            ```
        """
        body = encode_body(RejectRequest, {"notes": notes}, "rejection")
        return await self._step(dataset_id, "reject", body, idempotency_key)

    async def withdraw_release(
        self,
        dataset_id: str,
        notes: str = "",
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> Dataset:
        """Take back a pending request (``POST .../release/withdraw``); needs ``admin``.

        Raises:
            ReleaseStateConflict: there is no pending request.

        Example:
            ```python
            ds = await pv.review_client.withdraw_release("10378.1/42", "wrong reviewer")
            ```
        """
        body = encode_body(ReviewNotes, {"notes": notes}, "withdrawal")
        return await self._step(dataset_id, "withdraw", body, idempotency_key)

    async def list_release_history(
        self, dataset_id: str, *, page_size: int = 100, cursor: str | None = None
    ) -> Page[ReleaseEvent]:
        """One page of a dataset's release history, oldest first (``GET .../release/history``).

        Example:
            ```python
            page = await pv.review_client.list_release_history("10378.1/42")
            [(e.action, e.user, e.notes) for e in page.items]
            ```
        """
        return await self._history(dataset_id).page(page_size=page_size, cursor=cursor)

    def iter_release_history(
        self,
        dataset_id: str,
        *,
        page_size: int = 100,
        cursor: str | None = None,
        max_items: int | None = None,
    ) -> AsyncPaginator[ReleaseEvent]:
        """Every step of a dataset's release history, oldest first, page by page.

        Example:
            ```python
            async for event in pv.review_client.iter_release_history("10378.1/42"):
                print(event.time, event.action, event.notes)
            ```
        """
        history = self._history(dataset_id)
        return history.iterate(page_size=page_size, cursor=cursor, max_items=max_items)

    def _history(self, dataset_id: str) -> ListRoute[ReleaseEvent]:
        return self._list_route(dataset_path(dataset_id) + "/release/history", Page[ReleaseEvent])

    # -- queues --------------------------------------------------------------------------

    async def list_awaiting_reviews(
        self, *, page_size: int = 100, cursor: str | None = None
    ) -> Page[Dataset]:
        """One page of the datasets awaiting your review, oldest request first.

        Example:
            ```python
            page = await pv.review_client.list_awaiting_reviews()
            ```
        """
        return await self._awaiting.page(page_size=page_size, cursor=cursor)

    def iter_awaiting_reviews(
        self, *, page_size: int = 100, cursor: str | None = None, max_items: int | None = None
    ) -> AsyncPaginator[Dataset]:
        """Every dataset awaiting your review, page by page (``GET /reviews/awaiting``).

        Example:
            ```python
            async for ds in pv.review_client.iter_awaiting_reviews():
                print(ds.id, ds.release_requester)
            ```
        """
        return self._awaiting.iterate(page_size=page_size, cursor=cursor, max_items=max_items)

    async def list_my_requests(
        self, *, page_size: int = 100, cursor: str | None = None
    ) -> Page[Dataset]:
        """One page of your pending release requests, oldest first (``GET /reviews/mine``).

        Example:
            ```python
            page = await pv.review_client.list_my_requests()
            ```
        """
        return await self._mine.page(page_size=page_size, cursor=cursor)

    def iter_my_requests(
        self, *, page_size: int = 100, cursor: str | None = None, max_items: int | None = None
    ) -> AsyncPaginator[Dataset]:
        """Every pending release request of yours, page by page.

        Example:
            ```python
            async for ds in pv.review_client.iter_my_requests():
                print(ds.id, ds.release_reviewer)
            ```
        """
        return self._mine.iterate(page_size=page_size, cursor=cursor, max_items=max_items)
