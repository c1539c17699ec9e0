"""``provena-like check-datasets`` and ``delete-dataset`` on datasets held by S3 and POSIX."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from provena_like import ProvenaClient
from provena_like.cli.main import app
from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread
from tests.support.cli_helpers import on_a_terminal
from tests.support.cli_runner import CliRunner, Result
from tests.support.deletion_helpers import GlobusHeld, Replicated, listing
from tests.support.registration_db import rows_of
from tests.support.registration_helpers import Lab

pytestmark = pytest.mark.anyio

runner = CliRunner()


@pytest.fixture
def env(localstack: LocalStack, lab: Lab, tmp_path: Path) -> dict[str, str]:
    """The environment of a command run by the lab's member."""
    return {
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_ACCESS_TOKEN": lab.member.token,
        "PROVENA_TOKEN_DIR": str(tmp_path / "tokens"),
        "COLUMNS": "200",
    }


async def cli(env: dict[str, str], *args: str) -> Result:
    """Run ``provena-like ARGS`` (its own event loop, in a worker thread)."""
    return await anyio.to_thread.run_sync(
        lambda: runner.invoke(app, list(args), env=env, catch_exceptions=False)
    )


def doc(result: Result) -> Any:
    return json.loads(result.stdout)


async def test_check_datasets_opens_the_repositories_it_can_and_names_the_others(
    env: dict[str, str], rep: Replicated
) -> None:
    mounted = f"{rep.posix}={rep.posix_root}"
    ok = await cli(env, "check-datasets", *rep.ids, "--repository", mounted, "--json")
    assert ok.exit_code == 0, ok.output
    found = doc(ok)
    assert found["ok"] and found["unavailable"] == []
    assert [{r["status"] for r in d["replicas"]} for d in found["datasets"]] == [{"ok"}] * 2
    human = await cli(env, "check-datasets", *rep.ids, "--repository", mounted)
    assert human.exit_code == 0 and "checked 2 datasets, 0 with problems" in human.stdout
    # the POSIX repository's mount not given: unchecked, exit 1, and said why
    partial = await cli(env, "check-datasets", rep.ids[0], "--json")
    assert partial.exit_code == 1, partial.output
    found = doc(partial)
    assert len(found["unavailable"]) == 1 and rep.posix in found["unavailable"][0]
    statuses = {r["repository"]: r["status"] for r in found["datasets"][0]["replicas"]}
    assert statuses == {rep.s3: "ok", rep.posix: "unchecked"}
    bad = await cli(env, "check-datasets", rep.ids[0], "--repository", "=/x", "--json")
    assert bad.exit_code == 2, bad.output


async def test_delete_dataset_dry_run_asks_then_deletes_everything(
    env: dict[str, str],
    pv: ProvenaClient,
    server: ServerThread,
    rep: Replicated,
) -> None:
    mounted = ["--repository", f"{rep.posix}={rep.posix_root}"]
    stored = await listing(pv, rep)
    rows = await rows_of(server, rep.session)
    plan = await cli(env, "delete-dataset", *rep.ids, *mounted, "--dry-run", "--json")
    assert plan.exit_code == 0, plan.output
    assert doc(plan)["by_repository"] == stored
    assert [d["status"] for d in doc(plan)["datasets"]] == ["would_delete"] * 2
    human = await cli(env, "delete-dataset", *rep.ids, *mounted, "--dry-run")
    assert human.exit_code == 0 and "would delete: 2 datasets" in human.stdout, human.output
    # the CLI's console is made once per process and keeps the width COLUMNS had then, if it
    # was set (`env` can't widen it): a long path may be wrapped, so look for each path with
    # the line breaks taken out
    printed = "".join(human.stdout.split())
    assert all(path in printed for paths in stored.values() for path in paths)
    # on a terminal it asks first; "n" changes nothing
    args = ["delete-dataset", *rep.ids, *mounted]
    code, err = await anyio.to_thread.run_sync(lambda: on_a_terminal(args, env, b"n\n"))
    assert code == 1 and "Delete 2 datasets" in err and "declined" in err, err
    assert await listing(pv, rep) == stored
    assert await rows_of(server, rep.session) == rows
    done = await cli(env, *args, "--yes", "--json")
    assert done.exit_code == 0, done.output
    assert [d["status"] for d in doc(done)["datasets"]] == ["deleted"] * 2
    assert await listing(pv, rep) == {rep.s3: [], rep.posix: []}
    assert await rows_of(server, rep.session) == {"datasets": [], "file_records": [], "tags": []}
    gone = await cli(env, *args, "--yes", "--json")
    assert gone.exit_code == 4, gone.output
    assert [d["status"] for d in doc(gone)["datasets"]] == ["not_found"] * 2


async def test_check_datasets_opens_a_globus_repository_through_the_local_endpoint(
    env: dict[str, str], globus: GlobusHeld
) -> None:
    endpoint = f"{globus.local.collection}={globus.local.directory}"
    ok = await cli(env, "check-datasets", globus.dataset_id, "--local-endpoint", endpoint, "--json")
    assert ok.exit_code == 0, ok.output
    found = doc(ok)
    assert found["unavailable"] == [] and found["datasets"][0]["replicas"][0]["status"] == "ok"
    without = await cli(env, "check-datasets", globus.dataset_id, "--json")
    assert without.exit_code == 1 and "--local-endpoint" in doc(without)["unavailable"][0]
    for bad in ("not-a-uuid=/tmp", globus.local.collection):
        wrong = await cli(env, "check-datasets", globus.dataset_id, "--local-endpoint", bad)
        assert wrong.exit_code == 2 and "--local-endpoint" in wrong.output, wrong.output
