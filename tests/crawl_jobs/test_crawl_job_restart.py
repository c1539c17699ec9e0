"""A crawl job survives a restart of the server: it resumes, or fails explicitly (issue 16).

A server (SQLite in its data dir, or a new PostgreSQL database; fast job polling) runs two
slow (rate-limited) crawls and is stopped in their middle. Before the second server starts on
the same data dir and database, both jobs are made to look as if the server had been killed
(running, their leases lapsed): the first on its first run, the second on its last allowed
one. The second server takes the first over (attempt 2, a ``RESUMED`` event; every file stored
and delivered exactly once) and fails the second with the runner's ``interrupted`` error and a
``FAILED`` event: neither is forgotten.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from provena_like.server.crawl.tables import CrawlJobRow
from provena_like.testing.server_thread import ServerThread
from tests.support.auth_helpers import running_server
from tests.support.crawl_jobs import deep_tree, drain, finished, tree_collection, wait_job
from tests.support.fixtures import service_client
from tests.support.job_helpers import leave_as_crashed, open_sessions
from tests.support.users import User

pytestmark = pytest.mark.anyio

# The leases of the "crashed" runs are lapsed in the database, not by waiting: a long lease
# costs nothing here, and a short one (3 s) lapsed under load on a busy machine, which ran
# the resumed job a third time (a second RESUMED event).
FAST = {"job_lease_seconds": 30.0, "job_poll_seconds": 0.2}
DIRS, PER_DIR = 20, 3


def _admin(srv: ServerThread) -> User:
    token = srv.app.state.tokens.issue_access_token(
        subject="admin", client_id="tests", scope="openid", ttl=3600
    )
    return User("admin", token)


async def test_a_crawl_job_resumes_after_a_restart_or_fails_with_an_event(
    tmp_path: Path, own_database_url: str | None
) -> None:
    tree = deep_tree(dirs=DIRS, files=PER_DIR)
    slow = {"rate_limit": 4}
    settings = {**FAST, "database_url": own_database_url}
    with running_server(tmp_path, **settings) as first:
        admin = _admin(first)
        async with service_client(first) as http:
            cid, _root = await tree_collection(first, admin, tree)
            ids = []
            for _ in range(2):
                body: dict[str, Any] = {"source": {"collection": cid}, **slow}
                r = await http.post("/crawl/jobs", json=body, headers=admin.headers)
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            for job_id in ids:
                await wait_job(http, admin, job_id, lambda j: j["files"] > 0)
        # leaving the block stops the server cleanly: running jobs go back to the queue
    resumed, crashed = ids
    url = first.settings.resolved_database_url
    async with open_sessions(url) as sessions:
        async with sessions() as session:
            rows = {
                r.id: r
                for r in (await session.scalars(select(CrawlJobRow).where(CrawlJobRow.id.in_(ids))))
            }
        assert all(0 < rows[i].files < DIRS * PER_DIR for i in ids), rows
        stored_before = rows[resumed].records
        # as if the server had been killed: the first job's run 1 of 3 "crashed" (its lease
        # lapsed: the runner takes it over), the second job's last allowed run did
        await leave_as_crashed(sessions, resumed, attempts=1, lapses_in=-1)
        await leave_as_crashed(sessions, crashed, attempts=3, lapses_in=-1)

    with running_server(tmp_path, **settings) as second:
        admin = _admin(second)
        async with service_client(second) as http:
            job = await wait_job(http, admin, resumed, finished)
            assert job["state"] == "succeeded", job
            codes = [e["code"] for e in job["events"]]
            assert codes == ["QUEUED", "STARTED", "RESUMED", "SUCCEEDED"], codes
            assert f"{stored_before} records were stored" in job["events"][2]["message"]
            assert job["files"] == DIRS * PER_DIR and job["errors"] == 0
            assert job["attempts"] == 2  # taken over after its lease lapsed
            records = await drain(http, admin, resumed, limit=200)
            paths = [r["record"]["path"] for r in records]
            assert sorted(paths) == sorted(tree) and len(set(paths)) == len(paths)

            failed = await wait_job(http, admin, crashed, finished)
            assert failed["state"] == "failed", failed
            assert "interrupted 3 times" in failed["error"], failed
            assert failed["events"][-1]["code"] == "FAILED"
            assert "interrupted" in failed["events"][-1]["message"]
            # what it stored before stays deliverable
            kept = await drain(http, admin, crashed, limit=200)
            assert len(kept) == failed["records"] > 0
