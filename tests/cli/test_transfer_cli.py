"""``provena-like upload|download|sync|verify``: exit codes, --json and --dry-run."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

from provena_like.cli.main import app
from provena_like.testing.localstack import LocalStack
from tests.support.cli_runner import CliRunner

pytestmark = pytest.mark.anyio

runner = CliRunner()


def make_record(org: str, person: str) -> dict[str, Any]:
    approvals = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")
    return {
        "associations": {"organisation_id": org, "point_of_contact": person},
        "approvals": {a: {"relevant": False, "obtained": False} for a in approvals},
        "dataset_info": {
            "name": f"CLI transfers {uuid.uuid4().hex[:6]}",
            "description": "Files moved by the CLI.",
            "access_info": {"reposited": True},
            "publisher_id": org,
            "created_date": "2024-01-01",
            "published_date": "2024-06-30",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["cli"],
        },
    }


async def test_transfer_commands(localstack: LocalStack, tmp_path: Path) -> None:
    async with localstack.client() as pv:
        org = await pv.registry_client.create_item(
            {"subtype": "organisation", "record": {"name": f"CLI Org {uuid.uuid4().hex[:6]}"}}
        )
        person = await pv.registry_client.create_item(
            {
                "subtype": "person",
                "record": {"first_name": "Cy", "last_name": "Li", "email": "cy@example.org"},
            }
        )
        ds = await pv.datastore.mint(make_record(org.id, person.id))
    env = {
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_TOKEN_DIR": str(localstack.data_dir / "tokens" / localstack.user.username),
    }

    async def cli(*args: str) -> Any:
        return await anyio.to_thread.run_sync(
            lambda: runner.invoke(app, list(args), env=env, catch_exceptions=False)
        )

    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.csv", "b.csv", "c.tmp"):
        (src / name).write_bytes(os.urandom(200))

    up = await cli("upload", ds.id, str(src), "--exclude", "*.tmp", "--json")
    assert up.exit_code == 0, up.output
    doc = json.loads(up.stdout)
    assert doc["ok"] == 2 and doc["failed"] == 0
    assert sorted(f["path"] for f in doc["files"]) == ["a.csv", "b.csv"]

    (src / "a.csv").write_bytes(os.urandom(200))  # same size, new bytes
    plan = await cli("sync", ds.id, str(src), "--dry-run", "--json", "-x", "*.tmp")
    assert plan.exit_code == 0, plan.output
    reasons = {f["path"]: f["reason"] for f in json.loads(plan.stdout)["files"]}
    assert reasons == {"a.csv": "would upload", "b.csv": "unchanged"}
    async with localstack.client() as pv:
        listed = await (await pv.datastore.interactive(ds.id)).list_files()
    before = {f.path: f.sha256 for f in listed}
    synced = await cli("sync", ds.id, str(src), "-x", "*.tmp", "--json")
    assert json.loads(synced.stdout)["ok"] == 1

    dest = tmp_path / "dest"
    down = await cli("download", ds.id, str(dest))
    assert down.exit_code == 0, down.output
    assert "2 ok" in down.stdout
    good = await cli("verify", ds.id, str(dest), "--json")
    assert good.exit_code == 0 and json.loads(good.stdout)["ok"] == 2
    (dest / "b.csv").write_bytes(os.urandom(200))
    bad = await cli("verify", ds.id, str(dest), "--json")
    assert bad.exit_code == 1
    failed = [f for f in json.loads(bad.stdout)["files"] if f["status"] == "failed"]
    assert [f["path"] for f in failed] == ["b.csv"] and "sha256" in failed[0]["reason"]
    again = await cli("sync", ds.id, str(dest), "--direction", "down", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["ok"] == 1

    usage = await cli("sync", ds.id, str(tmp_path / "nope"))
    assert usage.exit_code == 2
    assert (await cli("verify", ds.id)).exit_code == 2
    async with localstack.client() as pv:
        after = await (await pv.datastore.interactive(ds.id)).list_files()
    assert {f.path for f in after} == {"a.csv", "b.csv"}
    assert {f.path: f.sha256 for f in after}["a.csv"] != before["a.csv"]
