"""``Review``: reviewers, release requests and decisions (L3), reachable as ``pv.datastore.review``.

```python
async with ProvenaClient.from_env() as pv:
    await pv.datastore.review.request_release(dataset_id, "rob", "ready for release")
    ...                                                  # as rob, the reviewer:
    async for ds in pv.datastore.review.awaiting_my_review():
        await pv.datastore.review.approve(ds.id, "checked the licence and files")
```

A dataset is ``NOT_RELEASED`` → ``PENDING`` (requested, frozen) → ``RELEASED`` (approved) or
back to ``NOT_RELEASED`` (rejected or withdrawn). Refusals are typed:
:class:`~provena_like.ReleaseStateConflict` (its ``.state`` says where the dataset is),
:class:`~provena_like.NotYourReview`, :class:`~provena_like.Locked`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from provena_like.clients.review import ReviewClient
from provena_like.models.datastore import Dataset
from provena_like.models.review import ReleaseEvent, Reviewer
from provena_like.modules.credentials import CredentialsCache

__all__ = ["Review"]


class Review:
    """The review and release workflow of datasets.

    Args:
        client: the review routes' L2 client.
        credentials_cache: the datastore's cache of scoped credentials; a step that changes
            a dataset's release state drops that dataset's cached credentials.

    Example:
        ```python
        review = pv.datastore.review
        await review.request_release(ds.id, reviewer="rob", notes="ready")
        ```
    """

    def __init__(
        self, client: ReviewClient, *, credentials_cache: CredentialsCache | None = None
    ) -> None:
        self.client = client
        self._cache = credentials_cache

    def __repr__(self) -> str:
        return f"Review({self.client!r})"

    def _changed(self, dataset: Dataset) -> Dataset:
        if self._cache is not None:
            self._cache.forget(dataset.id)
        return dataset

    # ------------------------------------------------------------------ reviewers

    async def add_reviewer(self, username: str) -> Reviewer:
        """Let ``username`` review release requests (system admins only).

        Example:
            ```python
            await pv.datastore.review.add_reviewer("rob")
            ```
        """
        return await self.client.add_reviewer(username)

    async def remove_reviewer(self, username: str) -> None:
        """Stop ``username`` reviewing (system admins only); refused while reviews await them.

        Example:
            ```python
            await pv.datastore.review.remove_reviewer("rob")
            ```
        """
        await self.client.remove_reviewer(username)

    async def list_reviewers(self) -> list[Reviewer]:
        """Every user you may name as the reviewer of a release request.

        Example:
            ```python
            names = [r.username for r in await pv.datastore.review.list_reviewers()]
            ```
        """
        return [reviewer async for reviewer in self.client.iter_reviewers()]

    # ------------------------------------------------------------------ the workflow

    async def request_release(self, dataset_id: str, reviewer: str, notes: str = "") -> Dataset:
        """Ask ``reviewer`` to release a dataset; it is ``PENDING`` (and frozen) until they decide.

        Needs ``admin`` on the dataset (owners have it).

        Raises:
            ReleaseStateConflict: it is already ``PENDING`` or ``RELEASED``.
            Locked: it is locked.
            Unprocessable: ``reviewer`` is not a reviewer (or is you).

        Example:
            ```python
            ds = await pv.datastore.review.request_release(dataset_id, "rob", "ready")
            print(ds.release_status)   # PENDING
            ```
        """
        return self._changed(await self.client.request_release(dataset_id, reviewer, notes))

    async def approve(self, dataset_id: str, notes: str = "") -> Dataset:
        """Approve the release of a dataset whose request names you; it is ``RELEASED``.

        Raises:
            NotYourReview: the request names another reviewer.
            ReleaseStateConflict: there is no pending request.

        Example:
            ```python
            await pv.datastore.review.approve(dataset_id, "metadata and files checked")
            ```
        """
        return self._changed(await self.client.approve_release(dataset_id, notes))

    async def reject(self, dataset_id: str, notes: str) -> Dataset:
        """Reject a request that names you, saying what to fix; it is ``NOT_RELEASED`` again.

        Raises:
            UsageError: empty ``notes``.
            NotYourReview: the request names another reviewer.
            ReleaseStateConflict: there is no pending request.

        Example:
            ```python
            await pv.datastore.review.reject(dataset_id, "the licence is missing")
            ```
        """
        return self._changed(await self.client.reject_release(dataset_id, notes))

    async def withdraw(self, dataset_id: str, notes: str = "") -> Dataset:
        """Take back a pending request (dataset admins); it is ``NOT_RELEASED`` again.

        Example:
            ```python
            await pv.datastore.review.withdraw(dataset_id, "asked the wrong reviewer")
            ```
        """
        return self._changed(await self.client.withdraw_release(dataset_id, notes))

    async def history(self, dataset_id: str) -> list[ReleaseEvent]:
        """Every step of a dataset's release workflow, oldest first.

        Example:
            ```python
            for event in await pv.datastore.review.history(dataset_id):
                print(event.time, event.user, event.action, event.notes)
            ```
        """
        return [event async for event in self.client.iter_release_history(dataset_id)]

    # ------------------------------------------------------------------ queues

    async def awaiting_my_review(
        self, *, page_size: int = 100, max_items: int | None = None
    ) -> AsyncIterator[Dataset]:
        """The datasets awaiting your review, oldest request first.

        Example:
            ```python
            async for ds in pv.datastore.review.awaiting_my_review():
                print(ds.id, ds.display_name, ds.release_requester)
            ```
        """
        paginator = self.client.iter_awaiting_reviews(page_size=page_size, max_items=max_items)
        async for dataset in paginator:
            yield dataset

    async def my_requests(
        self, *, page_size: int = 100, max_items: int | None = None
    ) -> AsyncIterator[Dataset]:
        """Your release requests that await a decision, oldest first.

        Example:
            ```python
            async for ds in pv.datastore.review.my_requests():
                print(ds.id, "waiting for", ds.release_reviewer)
            ```
        """
        paginator = self.client.iter_my_requests(page_size=page_size, max_items=max_items)
        async for dataset in paginator:
            yield dataset
