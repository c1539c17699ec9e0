"""``CrawlClient``: the server-side crawl jobs, one call per route of ``/crawl/jobs``.

A crawl job walks a dataset or a transfer collection on the server (with the server's access
to the storage) and keeps its records; they are read with paged, at-least-once delivery:
:meth:`CrawlClient.flush` leases a page to a cursor, :meth:`CrawlClient.ack` marks it
delivered, and a page not acknowledged within its lease is delivered again. The workflow
around it (start, wait, iterate) is the L3 module ``pv.crawler``
(:class:`~provena_like.modules.crawl_jobs.Crawler`).

Example:
    ```python
    crawls = CrawlClient(pv.http_core)
    job = await crawls.start_job({"source": {"dataset": dataset_id}, "grouper": "directory"})
    page = await crawls.flush(job.id, limit=100)
    if page.cursor is not None:  # records were leased: acknowledge them once kept
        await crawls.ack(job.id, page.cursor)
    ```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from provena_like._core.errors import ResponseValidationError
from provena_like._core.pagination import AsyncPaginator
from provena_like.clients._base import ServiceClient
from provena_like.clients._encoding import encode_body
from provena_like.models.crawl_jobs import (
    CrawlJob,
    CrawlJobAck,
    CrawlJobAcked,
    CrawlJobFlush,
    CrawlJobPage,
    CrawlJobRequest,
    CrawlJobState,
)
from provena_like.models.shared import Page

__all__ = ["CrawlClient", "CrawlJobPoll"]


@dataclass(frozen=True, slots=True)
class CrawlJobPoll:
    """One poll of a crawl job (:meth:`CrawlClient.poll_job`).

    Attributes:
        job: the job; ``None`` when it did not change (``304``: the tag sent is current).
        etag: the tag of the job's state, to send with the next poll (``None``: the server
            has no tags, an older one).
        held: whether the server held the poll (``Preference-Applied: wait``).
    """

    job: CrawlJob | None
    etag: str | None
    held: bool


def _job_path(job_id: str) -> str:
    return f"/jobs/{quote(job_id, safe='')}"


class CrawlClient(ServiceClient):
    """The server-side crawl jobs (see the module docstring).

    Example:
        ```python
        page = await CrawlClient(pv.http_core).list_jobs(page_size=10)
        for job in page.items:
            print(job.id, job.state, job.files, job.bytes)
        ```
    """

    _service = "crawl"

    async def start_job(self, request: CrawlJobRequest | Mapping[str, Any]) -> CrawlJob:
        """Start a crawl job (needs ``data-read`` on the dataset or collection).

        Example:
            ```python
            job = await crawls.start_job({"source": {"collection": cid, "path": "/raw/"}})
            ```
        """
        body = encode_body(CrawlJobRequest, request, "crawl job")
        return await self._core.request("POST", "crawl", "/jobs", json=body, cast_to=CrawlJob)

    async def get_job(self, job_id: str) -> CrawlJob:
        """A crawl job: state, counters, events (its owner's and system admins' only).

        Example:
            ```python
            job = await crawls.get_job(job_id)
            ```
        """
        return await self._core.request("GET", "crawl", _job_path(job_id), cast_to=CrawlJob)

    async def poll_job(
        self, job_id: str, *, etag: str | None = None, wait: float = 0.0
    ) -> CrawlJobPoll:
        """One poll of a crawl job that the server may hold until the job changes.

        With ``etag`` (the tag of the last answer), sends ``If-None-Match`` and
        ``Prefer: wait=<wait>``: the server then answers when the job changes, or after
        ``wait`` seconds (at most 10, and at most half the client's timeout) with ``304``
        (:attr:`CrawlJobPoll.job` ``None``); a job that ended is answered at once.
        :meth:`CrawlHandle.wait <provena_like.modules.crawl_jobs.CrawlHandle.wait>` polls
        with this.

        Raises:
            NotFound: no such job (or not yours).

        Example:
            ```python
            first = await crawls.poll_job(job_id)
            later = await crawls.poll_job(job_id, etag=first.etag, wait=5)
            job = later.job or first.job  # None: unchanged after 5 s
            ```
        """
        hold = max(0.0, min(wait, self._core.config.timeout / 2))  # answered before a timeout
        headers = {"Prefer": f"wait={hold:.3f}"}
        if etag is not None:
            headers["If-None-Match"] = etag
        path = _job_path(job_id)
        response = await self._core.request(
            "GET", "crawl", path, headers=headers, cast_to=None, expected=(200, 304)
        )
        tag = response.headers.get("ETag")
        held = "wait=" in response.headers.get("Preference-Applied", "")
        if response.status_code == 304:
            return CrawlJobPoll(None, tag or etag, held)
        try:
            job = CrawlJob.model_validate_json(response.content)
        except ValidationError as err:
            raise ResponseValidationError(
                f"GET {path} returned a body that is not a valid CrawlJob "
                f"({err.error_count()} problem(s))",
                request_id=response.headers.get("x-request-id"),
                service="crawl",
            ) from None
        return CrawlJobPoll(job, tag, held)

    async def list_jobs(
        self,
        *,
        state: CrawlJobState | None = None,
        page_size: int = 50,
        cursor: str | None = None,
    ) -> Page[CrawlJob]:
        """One page of the caller's crawl jobs, newest first.

        Example:
            ```python
            page = await crawls.list_jobs(state="running")
            ```
        """
        route = self._list_route("/jobs", Page[CrawlJob])
        return await route.page({"state": state}, page_size=page_size, cursor=cursor)

    def iter_jobs(
        self, *, state: CrawlJobState | None = None, max_items: int | None = None
    ) -> AsyncPaginator[CrawlJob]:
        """Every crawl job of the caller, newest first.

        Example:
            ```python
            ids = [job.id async for job in crawls.iter_jobs()]
            ```
        """
        route = self._list_route("/jobs", Page[CrawlJob])
        return route.iterate({"state": state}, page_size=100, cursor=None, max_items=max_items)

    async def flush(
        self,
        job_id: str,
        *,
        limit: int = 100,
        lease_seconds: float = 300.0,
        ack: str | None = None,
    ) -> CrawlJobPage:
        """Lease up to ``limit`` records not acknowledged yet (acknowledging ``ack`` first).

        Args:
            job_id: The crawl job.
            limit: Records at most (1-1000).
            lease_seconds: How long they are held for this page's cursor; unacknowledged
                after that, they are delivered again.
            ack: The cursor of the previous page, to acknowledge in the same call.

        Example:
            ```python
            page = await crawls.flush(job_id, limit=500)
            ```
        """
        body = encode_body(
            CrawlJobFlush, {"limit": limit, "lease_seconds": lease_seconds, "ack": ack}, "flush"
        )
        return await self._core.request(
            "POST", "crawl", _job_path(job_id) + "/flush", json=body, cast_to=CrawlJobPage
        )

    async def ack(self, job_id: str, cursor: str) -> int:
        """Mark the records of a page delivered; how many.

        0 when the page's lease lapsed meanwhile and its records were leased again, or when
        it was acknowledged before.

        Example:
            ```python
            acked = await crawls.ack(job_id, page.cursor)
            ```
        """
        body = encode_body(CrawlJobAck, {"cursor": cursor}, "ack")
        answer = await self._core.request(
            "POST", "crawl", _job_path(job_id) + "/ack", json=body, cast_to=CrawlJobAcked
        )
        return answer.acked

    async def cancel_job(self, job_id: str) -> CrawlJob:
        """Cancel a crawl job (its records so far stay readable).

        Example:
            ```python
            job = await crawls.cancel_job(job_id)
            ```
        """
        return await self._core.request(
            "POST", "crawl", _job_path(job_id) + "/cancel", cast_to=CrawlJob
        )
