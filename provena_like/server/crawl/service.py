"""Server-side crawl jobs: starting one, running it on the job runner, delivering its records.

**Sources.** A dataset and a transfer collection are both *collections* of the transfer
service (a dataset is its storage prefix in the server's object store), so a crawl job opens
its source with :func:`~provena_like.server.transfer.collections.open_collection` as the
job's owner (``data-read`` needed, checked when the job is started and again at each run) and
walks it with the SDK's crawler (:func:`provena_like.crawler.crawl`, :func:`~provena_like.
crawler.group`) over :class:`CollectionTree`, which lists a directory with the collection's
own backend: the server's credentials, never the user's.

**Running.** :class:`CrawlJobs` registers the handler of the job kind ``crawl`` on the app's
:class:`~provena_like.server.jobs.JobRunner`. Records are stored in batches
(:data:`BATCH_RECORDS`) as :class:`~provena_like.server.crawl.tables.CrawlResultRow` rows
numbered by ``seq``, with the job's counters, each batch in one transaction followed by a
checkpoint. A run stopped by a restart of the server (a clean shutdown puts the job back in
the queue; a crash leaves a lease that lapses) is taken over by the runner: the new run adds
a ``RESUMED`` event, walks the source again and stores only the records not stored yet (each
row has a unique ``key`` per job). A job whose runs all ended that way fails with the
runner's ``interrupted`` error: :func:`reconcile` writes it (state, error, a ``FAILED``
event) the next time the job is read, so a job is never left ``running`` forever.

**Delivery.** :func:`flush` leases up to ``limit`` records not acknowledged yet (pending, or
leased to a cursor whose lease lapsed) to a new cursor; :func:`ack` marks a cursor's records
delivered. A record is delivered at least once: until it is acknowledged it comes again after
its lease lapses (``deliveries`` counts how often it was handed out).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from provena_like.crawler import crawl, group
from provena_like.crawler.records import CrawlError, ErrorReason, FileRecord, Group
from provena_like.crawler.sources import CrawlFilter, DirListing, ListingFailed, listed_file
from provena_like.models.crawl_jobs import (
    CRAWL_JOB_STATES,
    CrawlJobFlush,
    CrawlJobRequest,
)
from provena_like.models.transfer_collections import collection_id
from provena_like.server.crawl.tables import CrawlEventRow, CrawlJobRow, CrawlResultRow
from provena_like.server.db.base import utcnow
from provena_like.server.errors import ServiceError, not_found
from provena_like.server.jobs import JobCanceled, JobContext, JobLeaseLost, JobRecord, JobRunner
from provena_like.server.security import Principal, load_principal
from provena_like.server.transfer.collections import Collection, open_collection
from provena_like.server.transfer.errors import TransferAPIError
from provena_like.server.transfer.executor import file_sha256
from provena_like.server.transfer.paths import ResolvedPath
from provena_like.storage.keys import RESERVED_KEYS

__all__ = [
    "BATCH_RECORDS",
    "KIND",
    "CollectionTree",
    "CrawlJobs",
    "ack",
    "end_job",
    "flush",
    "job_document",
    "load_job",
    "reconcile",
    "result_key",
    "service_error",
    "start",
]

log = logging.getLogger(__name__)

KIND = "crawl"
"""The job runner's kind of crawl jobs."""

BATCH_RECORDS = 500
"""Records stored per transaction (and checkpoint) at most."""

BATCH_SECONDS = 1.0
"""A batch is also stored once its first record waited this long (a slow, rate-limited crawl
shows its progress)."""

CONCURRENCY = 4
"""Directories one crawl job lists at once."""

Sessions = async_sessionmaker[AsyncSession]

_TRANSFER_CODES = {400: "bad_request", 403: "forbidden", 404: "not_found", 409: "conflict"}


def service_error(err: TransferAPIError) -> ServiceError:
    """A transfer-service refusal of the source, in the error format of ``/crawl``."""
    code = _TRANSFER_CODES.get(err.status, "source_unavailable")
    return ServiceError(err.status, code, err.message)


def result_key(record: FileRecord | CrawlError | Group) -> str:
    """The record's identity within its job (a run that resumes stores each one once).

    Example:
        ```python
        a = FileRecord(source="collection:x/", path="a.csv", size=1)
        assert result_key(a) == result_key(a.model_copy(update={"size": 2}))
        ```
    """
    if isinstance(record, Group):
        basis = f"group\x00{record.group_id}"
    elif isinstance(record, FileRecord):
        basis = f"file\x00{record.path}"
    else:
        basis = f"error\x00{record.path}\x00{record.reason}"
    return hashlib.sha256(basis.encode()).hexdigest()[:40]


def _reason_of(err: TransferAPIError) -> ErrorReason:
    if err.status == 404:
        return "not_found"
    if err.status == 403:
        return "unreadable"
    if "NotDirectory" in err.code:
        return "not_a_directory"
    return "failed"


class CollectionTree:
    """A :class:`~provena_like.crawler.TreeSource` over a collection opened on the server.

    Args:
        collection: The opened collection (a dataset or a transfer collection).
        top: The directory to crawl.
        source: The records' ``source`` (``dataset:<handle>[/prefix]``,
            ``collection:<uuid><path>``).
        checksums: Add each file's sha256 (see :func:`~provena_like.server.transfer.
            executor.file_sha256`).

    Example:
        ```python
        tree = CollectionTree(collection, collection.resolve("/raw/"), "collection:x/raw/")
        records = [r async for r in crawl(tree)]
        ```
    """

    def __init__(
        self, collection: Collection, top: ResolvedPath, source: str, *, checksums: bool = False
    ) -> None:
        self.collection = collection
        self.top = top
        self.checksums = checksums
        self._source = source
        self._s3 = collection.kind == "s3"

    @property
    def source(self) -> str:
        """The records' ``source``."""
        return self._source

    async def root_identity(self) -> tuple[int, int] | None:
        """``None`` (no inode identity); refuses a top that is missing or not a directory."""
        try:
            info = await self.collection.backend.stat(self.top)
        except TransferAPIError as err:
            raise ListingFailed(_reason_of(err), err.message) from err
        if not info.is_dir:
            raise ListingFailed("not_a_directory", f"not a directory: {self.top.display}")
        return None

    async def list_dir(self, relative: str, depth: int, rules: CrawlFilter) -> DirListing:
        """One listing of the directory ``relative`` below the top, by the backend."""
        here = self.top
        for part in relative.split("/") if relative else ():
            here = here.child(part)
        try:
            entries = await self.collection.backend.list_dir(here)
        except TransferAPIError as err:
            raise ListingFailed(_reason_of(err), err.message) from err
        prefix = relative + "/" if relative else ""
        out = DirListing()
        for entry in entries:
            rel = prefix + entry.name
            if not rules.visible(entry.name):
                continue
            if self._s3 and here.is_root and entry.name in RESERVED_KEYS:
                continue  # the datastore's own metadata.json
            if entry.is_dir:
                if rules.enter_dir(rel, depth + 1):
                    out.dirs.append((rel, None))
                continue
            if entry.type == "invalid_symlink":
                message = "a symlink leading nowhere or out of the collection"
                out.errors.append(
                    CrawlError(source=self._source, path=rel, reason="not_found", message=message)
                )
                continue
            if not rules.keep_file(rel):
                continue
            sha256 = None
            if self.checksums:
                try:
                    sha256 = await file_sha256(self.collection, here.child(entry.name))
                except TransferAPIError as err:
                    out.errors.append(
                        CrawlError(
                            source=self._source,
                            path=rel,
                            reason=_reason_of(err),
                            message=err.message,
                        )
                    )
                    continue
            out.files.append(listed_file(self._source, rel, entry, depth, sha256=sha256))
        return out


def _record_source(source: Mapping[str, Any]) -> str:
    """The ``source`` of a job's records, as the SDK's sources name theirs."""
    path = str(source["path"])
    if "dataset" in source:
        prefix = path.strip("/")
        return f"dataset:{source['dataset']}" + (f"/{prefix}/" if prefix else "")
    return f"collection:{source['collection_id']}{path}"


# -- starting, reading ---------------------------------------------------------------------------


async def start(app: Starlette, principal: Principal, request: CrawlJobRequest) -> str:
    """Check the caller may read the source, then write the crawl job and its job; its id.

    Raises:
        ServiceError: 404 (no such dataset or collection), 403 (no ``data-read`` on it),
            400 (a path that leaves it), 503 (no object store for a dataset).
    """
    wanted = request.source
    cid = collection_id(wanted.dataset) if wanted.dataset is not None else wanted.collection
    assert cid is not None  # the model requires one of them
    try:
        collection = await open_collection(app, principal, cid, write=False)
        top = collection.resolve(wanted.path or "/")
    except TransferAPIError as err:
        raise service_error(err) from err
    source: dict[str, str] = {
        "path": top.as_dir,
        "collection_id": collection.id,
        "item_id": collection.item_id,
    }
    if wanted.dataset is not None:
        source["dataset"] = collection.item_id
    else:
        source["collection"] = collection.id
    job_id = str(uuid.uuid4())
    now = utcnow()
    runner: JobRunner = app.state.job_runner
    factory: Sessions = app.state.sessions
    async with factory() as session, session.begin():
        session.add(
            CrawlJobRow(
                id=job_id,
                owner=principal.username,
                source=source,
                options=request.model_dump(mode="json", exclude={"source"}),
                state="queued",
                files=0,
                bytes=0,
                groups=0,
                errors=0,
                records=0,
                created_at=now,
                updated_at=now,
            )
        )
        await session.flush()  # the job's row first: its events refer to it
        await _add_event(session, job_id, "QUEUED", "queued")
        await runner.enqueue(
            session, KIND, {"crawl_job": job_id}, job_id=job_id, owner=principal.username
        )
    return job_id


async def load_job(session: AsyncSession, principal: Principal, job_id: str) -> CrawlJobRow:
    """The crawl job ``job_id`` if the caller may see it (its owner, or a system admin).

    Raises:
        ServiceError: 404 for anyone else, as if it did not exist.
    """
    row = await session.get(CrawlJobRow, job_id, populate_existing=True)
    if row is None or (row.owner != principal.username and not principal.is_admin):
        raise not_found(f"Crawl job {job_id!r}")
    return row


async def _add_event(session: AsyncSession, job_id: str, code: str, message: str) -> None:
    session.add(CrawlEventRow(job_id=job_id, code=code, message=message, time=utcnow()))
    await session.flush()


async def end_job(
    session: AsyncSession, job_id: str, state: str, error: str | None, event: tuple[str, str]
) -> bool:
    """Put a crawl job in a final state with an event, unless it is in one; whether it did."""
    now = utcnow()
    changed = await session.execute(
        update(CrawlJobRow)
        .where(CrawlJobRow.id == job_id, CrawlJobRow.state.not_in(sorted(CRAWL_JOB_STATES)))
        .values(state=state, error=error, finished_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if int(changed.rowcount) != 1:  # type: ignore[attr-defined]
        return False
    await _add_event(session, job_id, *event)
    return True


async def reconcile(sessions: Sessions, runner: JobRunner, row: CrawlJobRow) -> bool:
    """End a crawl job whose runner job ended without ending it; whether it did.

    Never leaves a crawl ``running`` forever: a job that was cancelled before its handler
    could say so ends ``canceled``; one that failed (interrupted by restarts more often than
    it may be, or a bug) ends ``failed`` with the job's error and a ``FAILED`` event.
    """
    if row.state in CRAWL_JOB_STATES:
        return False
    async with sessions() as session, session.begin():
        job = await runner.get(session, row.id)
        if job is not None and not job.finished:
            return False
        if job is not None and job.state.value == "canceled":
            return await end_job(session, row.id, "canceled", None, ("CANCELED", "canceled"))
        error = dict(job.error or {}) if job is not None else {}
        message = str(
            error.get("message")
            or (f"its job ended {job.state.value}" if job else "its job is gone")
        )
        return await end_job(
            session,
            row.id,
            "failed",
            message,
            ("FAILED", f"the crawl could not be completed: {message}"),
        )


def _state(row: CrawlJobRow, job: JobRecord | None) -> str:
    """The state to show: the crawl's own once final, else its runner job's."""
    if row.state in CRAWL_JOB_STATES or job is None:
        return row.state
    return job.state.value


async def job_document(
    session: AsyncSession, runner: JobRunner, row: CrawlJobRow
) -> dict[str, Any]:
    """The ``CrawlJob`` document of ``row`` (with its events and delivery counters)."""
    job = await runner.get(session, row.id)
    events = (
        await session.scalars(
            select(CrawlEventRow).where(CrawlEventRow.job_id == row.id).order_by(CrawlEventRow.id)
        )
    ).all()
    unacked = await session.scalar(
        select(func.count())
        .select_from(CrawlResultRow)
        .where(CrawlResultRow.job_id == row.id, CrawlResultRow.delivery != "acked")
    )
    return {
        "id": row.id,
        "owner": row.owner,
        "state": _state(row, job),
        "source": {k: v for k, v in row.source.items() if k != "item_id"},
        "options": row.options,
        "files": row.files,
        "bytes": row.bytes,
        "groups": row.groups,
        "errors": row.errors,
        "records": row.records,
        "unacked": int(unacked or 0),
        "attempts": job.attempts if job is not None else 0,
        "error": row.error,
        "events": [{"code": e.code, "message": e.message, "time": e.time} for e in events],
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
    }


# -- delivery ------------------------------------------------------------------------------------


async def ack(session: AsyncSession, job_id: str, cursor: str) -> int:
    """Mark the records leased to ``cursor`` delivered (in the caller's transaction); how many.

    Records whose lease lapsed and were leased to another cursor since are not touched.
    """
    done = await session.execute(
        update(CrawlResultRow)
        .where(
            CrawlResultRow.job_id == job_id,
            CrawlResultRow.lease == cursor,
            CrawlResultRow.delivery == "leased",
        )
        .values(delivery="acked", lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


async def flush(
    sessions: Sessions, runner: JobRunner, row: CrawlJobRow, request: CrawlJobFlush
) -> dict[str, Any]:
    """Acknowledge ``request.ack``, then lease the next unacknowledged records (a page)."""
    now = utcnow()
    job_id = row.id
    due = or_(
        CrawlResultRow.delivery == "pending",
        and_(CrawlResultRow.delivery == "leased", CrawlResultRow.lease_expires_at < now),
    )
    async with sessions() as session, session.begin():
        acked = 0 if request.ack is None else await ack(session, job_id, request.ack)
        seqs = list(
            await session.scalars(
                select(CrawlResultRow.seq)
                .where(CrawlResultRow.job_id == job_id, due)
                .order_by(CrawlResultRow.seq)
                .limit(request.limit)
            )
        )
        cursor: str | None = None
        expires = now + timedelta(seconds=request.lease_seconds)
        leased: list[CrawlResultRow] = []
        if seqs:
            cursor = uuid.uuid4().hex
            await session.execute(
                update(CrawlResultRow)
                .where(CrawlResultRow.job_id == job_id, CrawlResultRow.seq.in_(seqs), due)
                .values(
                    delivery="leased",
                    lease=cursor,
                    lease_expires_at=expires,
                    deliveries=CrawlResultRow.deliveries + 1,
                )
                .execution_options(synchronize_session=False)
            )
            leased = list(
                (
                    await session.scalars(
                        select(CrawlResultRow)
                        .where(CrawlResultRow.job_id == job_id, CrawlResultRow.lease == cursor)
                        .order_by(CrawlResultRow.seq)
                    )
                ).all()
            )
            if not leased:  # another flush leased them first
                cursor = None
        unacked = await session.scalar(
            select(func.count())
            .select_from(CrawlResultRow)
            .where(CrawlResultRow.job_id == job_id, CrawlResultRow.delivery != "acked")
        )
        current = await session.get(CrawlJobRow, job_id, populate_existing=True)
        job = await runner.get(session, job_id)
    assert current is not None
    return {
        "records": [{"seq": r.seq, "deliveries": r.deliveries, "record": r.record} for r in leased],
        "cursor": cursor,
        "lease_expires_at": expires if cursor else None,
        "acked": acked,
        "unacked": int(unacked or 0),
        "state": _state(current, job),
    }


# -- running -------------------------------------------------------------------------------------


class CrawlJobs:
    """Runs crawl jobs (job kind ``crawl``) on the server's job runner.

    Args:
        app: The server app (sessions, settings, object store).
        max_attempts: Runs of a job before it fails (a crash of the server costs one; a clean
            shutdown none).
    """

    def __init__(self, app: Starlette, *, max_attempts: int = 3) -> None:
        self.app = app
        self.max_attempts = max_attempts

    @property
    def sessions(self) -> Sessions:
        """The app's session factory."""
        factory: Sessions = self.app.state.sessions
        return factory

    def register(self, runner: JobRunner) -> None:
        """Register the handler on ``runner``."""
        runner.register(KIND, self.run, max_attempts=self.max_attempts)

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        """The handler of ``crawl`` jobs: one run of one crawl job."""
        job_id = ctx.job_id
        async with self.sessions() as session:
            row = await session.get(CrawlJobRow, job_id)
        if row is None or row.state in CRAWL_JOB_STATES:
            return {"state": row.state if row else "missing"}
        await self._mark_running(row)
        try:
            records = await self._open(row)
            await self._store_all(ctx, records)
        except JobLeaseLost:
            raise  # another worker holds the job: write nothing more
        except JobCanceled:
            await self._finish(job_id, "canceled", None, ("CANCELED", "canceled"))
            raise
        except ServiceError as err:
            await self._fail(job_id, err.message)
        except TransferAPIError as err:
            await self._fail(job_id, err.message)
        except Exception as err:
            log.exception("crawl job %s failed", job_id)
            await self._fail(job_id, f"the server failed: {type(err).__name__}: {err}")
        else:
            await self._finish(job_id, "succeeded", None, ("SUCCEEDED", "the crawl is complete"))
        async with self.sessions() as session:
            ended = await session.get(CrawlJobRow, job_id)
        return {"state": ended.state if ended else "missing"}

    async def _mark_running(self, row: CrawlJobRow) -> None:
        now = utcnow()
        resumed = row.started_at is not None  # an earlier run was stopped
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(CrawlJobRow)
                .where(CrawlJobRow.id == row.id)
                .values(state="running", started_at=row.started_at or now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if resumed:
                message = (
                    f"resumed after an interruption ({row.records} records were stored): the "
                    "source is walked again and only records not stored yet are added"
                )
                await _add_event(session, row.id, "RESUMED", message)
            else:
                await _add_event(session, row.id, "STARTED", "started")

    async def _finish(
        self, job_id: str, state: str, error: str | None, event: tuple[str, str]
    ) -> None:
        async with self.sessions() as session, session.begin():
            await end_job(session, job_id, state, error, event)

    async def _fail(self, job_id: str, message: str) -> None:
        await self._finish(job_id, "failed", message, ("FAILED", message))

    async def _open(self, row: CrawlJobRow) -> AsyncIterator[FileRecord | CrawlError | Group]:
        """The crawl's records (the source opened as the owner: access is checked again)."""
        async with self.sessions() as session:
            principal = await load_principal(session, {"sub": row.owner})
        collection = await open_collection(
            self.app, principal, row.source["collection_id"], write=False
        )
        top = collection.resolve(row.source["path"])
        options = row.options
        tree = CollectionTree(
            collection, top, _record_source(row.source), checksums=bool(options.get("checksums"))
        )
        records = crawl(
            tree,
            max_depth=options.get("max_depth"),
            include=options.get("include") or (),
            exclude=options.get("exclude") or (),
            hidden=bool(options.get("hidden")),
            concurrency=CONCURRENCY,
            rate_limit=options.get("rate_limit"),
        )
        grouper = options.get("grouper")
        return group(records, grouper) if grouper else records

    async def _store_all(
        self, ctx: JobContext, records: AsyncIterator[FileRecord | CrawlError | Group]
    ) -> None:
        async with self.sessions() as session:
            seq = int(
                await session.scalar(
                    select(func.coalesce(func.max(CrawlResultRow.seq), 0)).where(
                        CrawlResultRow.job_id == ctx.job_id
                    )
                )
                or 0
            )
        batch: list[FileRecord | CrawlError | Group] = []
        first = 0.0
        async for record in records:
            if not batch:
                first = time.monotonic()
            batch.append(record)
            if len(batch) >= BATCH_RECORDS or time.monotonic() - first > BATCH_SECONDS:
                seq = await self._store(ctx, seq, batch)
                batch = []
        if batch:
            seq = await self._store(ctx, seq, batch)

    async def _store(
        self, ctx: JobContext, seq: int, batch: list[FileRecord | CrawlError | Group]
    ) -> int:
        """Store the records of ``batch`` not stored yet, update the counters, checkpoint."""
        keys = [result_key(r) for r in batch]
        counts = {"files": 0, "bytes": 0, "groups": 0, "errors": 0, "records": 0}
        async with self.sessions() as session, session.begin():
            stored = set(
                await session.scalars(
                    select(CrawlResultRow.key).where(
                        CrawlResultRow.job_id == ctx.job_id, CrawlResultRow.key.in_(keys)
                    )
                )
            )
            rows: list[dict[str, Any]] = []
            for record, key in zip(batch, keys, strict=True):
                if key in stored:
                    continue
                stored.add(key)
                seq += 1
                rows.append(
                    {
                        "job_id": ctx.job_id,
                        "seq": seq,
                        "key": key,
                        "kind": record.kind,
                        "record": record.model_dump(mode="json", exclude_none=True),
                        "delivery": "pending",
                        "deliveries": 0,
                    }
                )
                counts["records"] += 1
                if isinstance(record, FileRecord):
                    counts["files"] += 1
                    counts["bytes"] += record.size or 0
                elif isinstance(record, Group):
                    counts["groups"] += 1
                else:
                    counts["errors"] += 1
            if rows:
                await session.execute(insert(CrawlResultRow), rows)
                await session.execute(
                    update(CrawlJobRow)
                    .where(CrawlJobRow.id == ctx.job_id)
                    .values(
                        updated_at=utcnow(),
                        **{name: getattr(CrawlJobRow, name) + n for name, n in counts.items() if n},
                    )
                    .execution_options(synchronize_session=False)
                )
        await ctx.checkpoint({"seq": seq})
        return seq
