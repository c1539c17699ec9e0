"""``provena-like register ...`` against the session's LocalStack, as a lab member."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx

from provena_like import ProvenaClient
from provena_like.cli.main import app
from provena_like.testing.localstack import LocalStack
from tests.support.cli_runner import CliRunner
from tests.support.registration_helpers import Lab, make_lab, make_subject
from tests.support.registration_sdk import SdkVocabulary, make_sdk_vocabulary, write_file
from tests.support.tls import SHARED_TLS
from tests.support.users import User

runner = CliRunner()


async def _setup(
    localstack: LocalStack, new_user: Callable[..., User]
) -> tuple[Lab, dict[str, Any], SdkVocabulary]:
    async with httpx.AsyncClient(
        verify=SHARED_TLS, base_url=f"{localstack.url}/registry"
    ) as client:
        lab = await make_lab(client, new_user)
        subject = await make_subject(client, lab)
    admin = new_user("regadmin", system_roles=("admin",))
    async with ProvenaClient(localstack.config(access_token=admin.token)) as pv:
        vocab = await make_sdk_vocabulary(pv)
    return lab, subject, vocab


def test_register_session_and_files_dry_run_then_for_real(
    localstack: LocalStack, new_user: Callable[..., User], tmp_path: Path
) -> None:
    # the commands run their own event loop: set up in another one, first
    lab, subject, vocab = anyio.run(_setup, localstack, new_user)
    env = {
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_ACCESS_TOKEN": lab.member.token,
        "PROVENA_CACHE_DIR": str(tmp_path / "cache"),
        "COLUMNS": "200",
    }
    folder = tmp_path / lab.name / "Subjects" / subject["record"]["nickname"] / "2026-12-06" / "3"
    data = write_file(folder / "alf" / vocab.name(0), b"trials")
    write_file(folder / "notes.unknownext", b"?")

    dry = runner.invoke(app, ["register", "session", str(folder), "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0, dry.output
    doc = json.loads(dry.output)
    assert (doc["action"], doc["id"], doc["dry_run"]) == ("create", None, True)
    assert [f["status"] for f in doc["files"]["files"]] == ["planned", "skipped"]
    assert doc["files"]["files"][0]["sha256"] == hashlib.sha256(b"trials").hexdigest()

    plan = runner.invoke(app, ["register", "files", str(data), "--dry-run", "--md5"], env=env)
    assert plan.exit_code == 0, plan.output
    assert "would register: 1 files, 0 skipped, 0 failed" in plan.output

    done = runner.invoke(
        app, ["register", "session", str(folder), "--no-files", "-u", lab.member.name], env=env
    )
    assert done.exit_code == 0, done.output
    assert f"created session {lab.name}/Subjects/" in done.output
    again = runner.invoke(
        app, ["register", "session", str(folder), "--no-files", "--json"], env=env
    )
    assert json.loads(again.output)["action"] == "update"

    real = runner.invoke(
        app, ["register", "files", str(data), "--version", "2.0", "--json"], env=env
    )
    assert real.exit_code == 0, real.output
    [registered] = json.loads(real.output)["files"]
    assert (registered["status"], registered["rel_path"]) == ("registered", f"alf/{vocab.name(0)}")

    check = runner.invoke(app, ["register", "check-protected", str(data), "--json"], env=env)
    assert check.exit_code == 0, check.output
    [protection] = json.loads(check.output)
    assert protection["protected"] is False
    assert [r["revision"] for r in protection["revisions"]] == [""]
    table = runner.invoke(app, ["register", "check-protected", str(data)], env=env)
    assert "no" in table.output and "''" in table.output

    bad = runner.invoke(app, ["register", "session", str(tmp_path), "--json"], env=env)
    assert bad.exit_code != 0
