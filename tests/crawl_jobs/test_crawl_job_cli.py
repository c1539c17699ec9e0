"""``provena-like crawl start|status|flush|ack|cancel|jobs``: server crawl jobs from the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from provena_like.cli._errors import ExitCode
from provena_like.cli.main import app
from provena_like.testing.localstack import LocalStack
from tests.support.cli_runner import CliRunner
from tests.support.l3_helpers import mint_dataset
from tests.support.transfer_tasks import write_tree

pytestmark = pytest.mark.anyio

runner = CliRunner()

FILES = {"a.csv": b"x,y\n", "raw/b.json": b"{}", "raw/deep/c.txt": b"c"}


def _lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


async def test_start_status_flush_ack(localstack: LocalStack, tmp_path: Path) -> None:
    write_tree(tmp_path / "up", FILES)
    async with localstack.client() as pv:
        ds = await mint_dataset(pv, "cli server crawl")
        (await ds.upload(tmp_path / "up")).raise_for_failures()
    env = {
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_TOKEN_DIR": str(localstack.data_dir / "tokens" / localstack.user.username),
    }

    async def invoke(*args: str) -> Any:
        return await anyio.to_thread.run_sync(lambda: runner.invoke(app, list(args), env=env))

    started = await invoke(
        "crawl", "start", f"dataset:{ds.id}", "-g", "directory", "--wait", "--json"
    )
    assert started.exit_code == 0, started.output
    job = json.loads(started.stdout)
    assert job["state"] == "succeeded" and job["files"] == 3 and job["groups"] == 3, job
    job_id = job["id"]

    shown = await invoke("crawl", "status", job_id)
    assert shown.exit_code == 0, shown.output
    assert "succeeded  3 files, 7 bytes, 3 groups" in shown.stdout

    # leased, not acknowledged: printed with the cursor to acknowledge
    leased = await invoke("crawl", "flush", job_id, "-n", "2", "--json")
    assert leased.exit_code == 0, leased.output
    *records, summary = _lines(leased.stdout)
    assert len(records) == 2 and summary["summary"]["acked"] == 0
    cursor = summary["summary"]["cursor"]
    rest = await invoke("crawl", "flush", job_id, "-n", "100", "--ack", "--json")
    *others, done = _lines(rest.stdout)
    assert len(others) == 4 and done["summary"]["acked"] == 4 and done["summary"]["unacked"] == 2
    acked = await invoke("crawl", "ack", job_id, cursor, "--json")
    assert json.loads(acked.stdout) == {"acked": 2}
    paths = {r["path"] for r in records + others if r["kind"] == "file"}
    assert paths == set(FILES)
    empty = await invoke("crawl", "flush", job_id)
    assert empty.exit_code == 0 and "0 records; job succeeded, 0 unacknowledged" in empty.output

    listed = await invoke("crawl", "jobs", "--json")
    assert job_id in {j["id"] for j in json.loads(listed.stdout)}
    canceled = await invoke("crawl", "cancel", job_id, "--json")
    assert canceled.exit_code == 0 and json.loads(canceled.stdout)["state"] == "succeeded"

    missing = await invoke("crawl", "status", "no-such-job", "--json")
    assert missing.exit_code == ExitCode.NOT_FOUND, missing.output
    not_remote = await invoke("crawl", "start", str(tmp_path), "--json")
    assert not_remote.exit_code == ExitCode.USAGE, not_remote.output
    absent = await invoke("crawl", "start", "dataset:10378.1/99999999", "--json")
    assert absent.exit_code == ExitCode.NOT_FOUND, absent.output
    # a local crawl is still `crawl PATH`
    local = await invoke("crawl", str(tmp_path / "up"), "--json")
    assert local.exit_code == 0 and len(_lines(local.stdout)) == 3, local.output
