"""The server as two worker processes on one socket (``provena-like serve --workers 2``).

Everything a request relies on must hold across processes: the signing key (a token from
one worker is accepted by the other), idempotency keys, session numbers and the job runner.
Requests go out on fresh connections, which the kernel spreads over both workers.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from provena_like.server.auth.tokens import TokenService
from provena_like.testing import LocalStack
from provena_like.testing.server_workers import ServerWorkers
from tests.support.auth_helpers import running_workers
from tests.support.crawl_jobs import finished, wait_job
from tests.support.databases import BACKENDS, server_database
from tests.support.datastore_helpers import record
from tests.support.registration_helpers import unique
from tests.support.review_helpers import make_refs
from tests.support.tls import SHARED_TLS
from tests.support.transfer import sdk, transfer_client
from tests.support.transfer_tasks import (
    blocked_task,
    feed_fifo,
    fifo_writers_fixture,  # noqa: F401 - the fifo_writers fixture
)
from tests.support.users import User

pytestmark = pytest.mark.anyio

CONCURRENT = 8


@pytest.fixture(scope="module", params=BACKENDS)
async def workers(
    request: pytest.FixtureRequest,
    localstack: LocalStack,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ServerWorkers]:
    """Two workers on a fresh data dir and a new database (SQLite or PostgreSQL), sharing the
    session's SeaweedFS (own bucket)."""
    assert localstack.s3 is not None and localstack.settings is not None
    assert localstack.settings.s3 is not None
    bucket = f"workers-{secrets.token_hex(4)}"
    localstack.s3.create_bucket(bucket)
    s3 = localstack.settings.s3.model_copy(update={"bucket": bucket})
    data_dir = tmp_path_factory.mktemp("workers") / "server"
    async with server_database(request, request.param, "workers") as database_url:
        with running_workers(data_dir, 2, s3=s3, database_url=database_url) as srv:
            yield srv


@pytest.fixture(scope="module")
def admin(workers: ServerWorkers) -> User:
    """The bootstrapped administrator, with a token signed by the data dir's key."""
    settings = workers.settings
    tokens = TokenService.from_data_dir(Path(settings.data_dir), settings.issuer)
    token = tokens.issue_access_token(subject="admin", client_id="tests", scope="openid", ttl=900)
    return User("admin", token)


@pytest.fixture
async def http(workers: ServerWorkers) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=SHARED_TLS, base_url=workers.url, timeout=120) as client:
        yield client


async def _each_fresh(
    workers: ServerWorkers, method: str, path: str, bodies: list[Any], headers: list[dict[str, str]]
) -> list[httpx.Response]:
    """Send the requests at once, each on a connection of its own."""
    out: list[httpx.Response | None] = [None] * len(bodies)

    async def send(i: int) -> None:
        async with httpx.AsyncClient(
            verify=SHARED_TLS, base_url=workers.url, timeout=120
        ) as client:
            out[i] = await client.request(method, path, json=bodies[i], headers=headers[i])

    async with anyio.create_task_group() as tg:
        for i in range(len(bodies)):
            tg.start_soon(send, i)
    return [r for r in out if r is not None]


async def test_requests_reach_both_workers_and_a_token_works_on_each(
    workers: ServerWorkers, admin: User
) -> None:
    seen: set[str] = set()
    deadline = time.monotonic() + 120
    while len(seen) < 2:
        assert time.monotonic() < deadline, f"only workers {seen} of {workers.pids} answered"
        # a fresh connection each time: the kernel picks the worker that accepts it
        async with httpx.AsyncClient(verify=SHARED_TLS, base_url=workers.url, timeout=60) as client:
            health = await client.get("/healthz")
            me = await client.get("/auth/userinfo", headers=admin.headers)
        seen.add(health.json()["worker"])
        assert me.status_code == 200, me.text
    assert seen == {str(pid) for pid in workers.pids}
    # every worker signs and verifies with the one key of the data dir
    async with httpx.AsyncClient(verify=SHARED_TLS, base_url=workers.url, timeout=60) as client:
        jwks = {(await client.get("/auth/jwks")).text for _ in range(6)}
    assert len(jwks) == 1


async def test_concurrent_mints_with_one_idempotency_key_make_one_dataset(
    workers: ServerWorkers, admin: User, http: httpx.AsyncClient
) -> None:
    refs = await make_refs(http, admin)
    name = unique("once")
    headers = {**admin.headers, "Idempotency-Key": secrets.token_hex(8)}
    body = {"record": record(refs, name=name)}
    answers = await _each_fresh(
        workers, "POST", "/datastore/datasets", [body] * CONCURRENT, [headers] * CONCURRENT
    )
    assert {r.status_code for r in answers} == {201}, [r.text for r in answers]
    ids = {r.json()["dataset"]["id"] for r in answers}
    assert len(ids) == 1, ids
    found = await http.get("/registry/items", params={"subtype": "dataset"}, headers=admin.headers)
    assert found.status_code == 200, found.text
    named = [i for i in found.json()["items"] if name in str(i)]
    assert [i["id"] for i in named] == list(ids)


async def test_concurrent_sessions_get_distinct_numbers(
    workers: ServerWorkers, admin: User, http: httpx.AsyncClient
) -> None:
    group = unique("grp").replace("_", "-")
    r = await http.post("/auth/groups", json={"name": group}, headers=admin.headers)
    assert r.status_code == 201, r.text
    r = await http.post(
        f"/auth/groups/{group}/members", json={"username": "admin"}, headers=admin.headers
    )
    assert r.status_code in (200, 201), r.text
    lab = await http.post(
        "/registry/items",
        json={"subtype": "lab", "record": {"name": unique("lab"), "group": group}},
        headers=admin.headers,
    )
    assert lab.status_code == 201, lab.text
    subject = await http.post(
        "/registry/items",
        json={
            "subtype": "subject",
            "record": {"nickname": unique("mouse"), "lab": lab.json()["id"]},
        },
        headers=admin.headers,
    )
    assert subject.status_code == 201, subject.text
    body = {"subject": subject.json()["id"], "date": "2026-12-06"}
    answers = await _each_fresh(
        workers, "POST", "/registry/sessions", [body] * CONCURRENT, [admin.headers] * CONCURRENT
    )
    assert {r.status_code for r in answers} == {201}, [r.text for r in answers]
    numbers = sorted(r.json()["record"]["number"] for r in answers)
    assert numbers == list(range(1, CONCURRENT + 1))


async def test_each_background_job_runs_exactly_once(
    workers: ServerWorkers, admin: User, http: httpx.AsyncClient
) -> None:
    refs = await make_refs(http, admin)
    r = await http.post("/datastore/datasets", json={"record": record(refs)}, headers=admin.headers)
    assert r.status_code == 201, r.text
    dataset = r.json()["dataset"]["id"]
    body = {"source": {"dataset": dataset}}
    started = await _each_fresh(
        workers, "POST", "/crawl/jobs", [body] * CONCURRENT, [admin.headers] * CONCURRENT
    )
    assert {s.status_code for s in started} == {201}, [s.text for s in started]
    for s in started:
        job = await wait_job(http, admin, s.json()["id"], finished)
        assert job["state"] == "succeeded", job
        kinds = [e["code"] for e in job["events"]]
        assert kinds.count("STARTED") == 1 and "RESUMED" not in kinds, job


@contextlib.asynccontextmanager
async def _pinned_clients(
    workers: ServerWorkers, address: str
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two clients from ``address``, each holding one connection, to different workers."""
    async with contextlib.AsyncExitStack() as stack:
        by_worker: dict[str, httpx.AsyncClient] = {}
        deadline = time.monotonic() + 120
        while len(by_worker) < 2:
            assert time.monotonic() < deadline, f"only workers {set(by_worker)} answered"
            transport = httpx.AsyncHTTPTransport(local_address=address)
            client = await stack.enter_async_context(
                httpx.AsyncClient(base_url=workers.url, timeout=120, transport=transport)
            )
            by_worker.setdefault((await client.get("/healthz")).json()["worker"], client)
        first, second = by_worker.values()
        yield first, second


async def _timed_get(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], into: dict[str, Any]
) -> None:
    """``GET path`` into ``into["held"]``, and the seconds it took into ``into["took"]``."""
    started = time.monotonic()
    into["held"] = await client.get(path, headers=headers)
    into["took"] = time.monotonic() - started


def _connection(r: httpx.Response) -> Any:
    """The local end of the connection that carried ``r`` (one connection, one worker)."""
    return r.extensions["network_stream"].get_extra_info("client_addr")


async def test_failed_sign_ins_on_both_workers_count_together(workers: ServerWorkers) -> None:
    """Wrong client secrets sent to the two workers in turn are counted together.

    The client is locked after ``account_failures`` of them, although each worker saw only
    half: with counts per process it would take twice as many.
    """
    limit = workers.settings.throttle.account_failures
    client_id = f"unknown-{secrets.token_hex(4)}"
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": "x"}
    seen: dict[str, int] = {}
    statuses: list[int] = []
    async with _pinned_clients(workers, "127.0.0.30") as pair:
        for i in range(limit + 1):
            client = pair[i % 2]
            r = await client.post("/auth/token", data=form)
            statuses.append(r.status_code)
            health = await client.get("/healthz")  # which worker answered r
            assert _connection(health) == _connection(r), "the connection was replaced"
            if r.status_code == 401:
                worker = health.json()["worker"]
                seen[worker] = seen.get(worker, 0) + 1
    assert statuses == [401] * limit + [429], statuses
    assert r.json()["error"] == "temporarily_unavailable"
    assert int(r.headers["Retry-After"]) >= 1
    assert set(seen) == {str(pid) for pid in workers.pids}
    assert max(seen.values()) < limit, seen  # no worker could have locked it on its own


async def test_a_poll_held_by_one_worker_answers_a_change_made_on_the_other(
    workers: ServerWorkers, admin: User, fifo_writers: list[Path]
) -> None:
    """A held ``GET task/{id}`` hears of a change committed by another process: it reads the
    task again every 0.25 s (only its own process's changes wake it at once)."""
    blocked = await blocked_task(workers, admin, admin, fifo_writers)  # type: ignore[arg-type]
    path = f"/v0.10/task/{blocked.task_id}"
    tag = blocked.first.headers["ETag"]
    async with _pinned_clients(workers, "127.0.0.31") as (one, two):
        worker_one = (await one.get("/healthz")).json()["worker"]
        assert worker_one != (await two.get("/healthz")).json()["worker"]
        # The rename is made some time after the poll is sent. On a loaded machine the poll
        # can reach its worker after the rename: it is then answered at once, unheld (no
        # Preference-Applied), which proves nothing; so that round is run again, later.
        for attempt, delay in enumerate((0.5, 1.5, 3.0)):
            answers: dict[str, Any] = {}
            held = {**admin.headers, "If-None-Match": tag, "Prefer": "wait=10"}
            label = f"renamed-{attempt}"
            async with anyio.create_task_group() as group:
                group.start_soon(_timed_get, one, path, held, answers)
                await anyio.sleep(delay)
                renamed = await two.put(
                    path, json={"DATA_TYPE": "task", "label": label}, headers=admin.headers
                )
                assert renamed.status_code == 200, renamed.text
            answer = answers["held"]
            assert answer.status_code == 200 and answer.json()["label"] == label, answer.text
            if "Preference-Applied" in answer.headers:
                break
            tag = answer.headers["ETag"]
        assert answer.headers["Preference-Applied"] == "wait=10", answer.headers
        assert answers["took"] < delay + 4.5, answers
    with transfer_client(workers, admin) as tc:
        assert (await sdk(lambda: tc.cancel_task(blocked.task_id)))["code"] == "Canceled"
    await sdk(lambda: feed_fifo(blocked.fifo, b"late"))
