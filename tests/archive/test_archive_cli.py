"""``provena-like archive publish|ls|retrieve|discover``: exit codes, ``--json``, refusals."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import anyio
import httpx
import pytest
from click.testing import Result

from provena_like.cli.main import app
from provena_like.testing.localstack import LocalStack
from tests.archive.conftest import ArchivePlace
from tests.support.cli_runner import CliRunner
from tests.support.registration_helpers import Lab, make_subject, post_session

pytestmark = pytest.mark.anyio

runner = CliRunner()


async def _invoke(env: dict[str, str], *args: str) -> Result:
    """``provena-like ARGS`` in a worker thread (the command runs its own event loop)."""
    return await anyio.to_thread.run_sync(
        functools.partial(runner.invoke, app, list(args), env=env)
    )


async def _session_with_file(
    client: httpx.AsyncClient, lab: Lab, place: ArchivePlace, date: str, data: bytes
) -> tuple[str, str]:
    """A new session on ``date`` and its raw-ephys file in the laptop's directory."""
    subject = await make_subject(client, lab)
    r = await post_session(client, lab.member, {"subject": subject["id"], "date": date})
    rel = f"{lab.name}/{subject['record']['nickname']}/{date}/001/raw_ephys_data/a.bin"
    original = place.laptop.directory / rel
    original.parent.mkdir(parents=True)
    original.write_bytes(data)
    return r.json()["id"], rel


async def test_publish_ls_retrieve_discover_from_the_command_line(
    client: httpx.AsyncClient, localstack: LocalStack, lab: Lab, place: ArchivePlace, tmp_path: Path
) -> None:
    session, rel = await _session_with_file(client, lab, place, "2026-12-04", b"raw" * 100)
    original = place.laptop.directory / rel
    env = {
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_ACCESS_TOKEN": lab.member.token,
        "PROVENA_CACHE_DIR": str(tmp_path / "cache"),
        "PROVENA_STATE_DIR": str(tmp_path / "state"),
        "COLUMNS": "200",
    }
    endpoint = f"{place.laptop.collection}={place.laptop.directory}"

    no_endpoint = await _invoke(env, "archive", "publish", place.kind, session, "--json")
    assert no_endpoint.exit_code == 2 and "--local-endpoint" in no_endpoint.output
    dry = await _invoke(
        env,
        "archive",
        "publish",
        place.kind,
        session,
        "--local-endpoint",
        endpoint,
        "--dry-run",
        "--json",
    )
    assert dry.exit_code == 0, dry.output
    assert [f["status"] for f in json.loads(dry.output)["files"]] == ["planned"]
    done = await _invoke(
        env, "archive", "publish", place.kind, session, "--local-endpoint", endpoint, "--json"
    )
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)
    assert doc["ok"] and [f["path"] for f in doc["files"]] == [rel] and len(doc["tasks"]) == 1

    listed = await _invoke(env, "archive", "ls", place.kind, "--session", session, "--json")
    assert [f["path"] for f in json.loads(listed.output)["files"]] == [rel]
    human = await _invoke(env, "archive", "ls", place.kind)
    assert human.exit_code == 0 and "1 archived files" in human.output

    onto = await _invoke(
        env,
        "archive",
        "retrieve",
        place.kind,
        "--dest",
        str(place.laptop.directory),
        "--local-endpoint",
        endpoint,
        "--json",
    )
    assert onto.exit_code == 1, onto.output
    error = json.loads(onto.output)["error"]
    assert error["kind"] == "refused" and "original" in error["message"]
    back = await _invoke(
        env,
        "archive",
        "retrieve",
        place.kind,
        "--dest",
        str(place.laptop.directory / "back"),
        "--local-endpoint",
        endpoint,
    )
    assert back.exit_code == 0, back.output
    assert (place.laptop.directory / "back" / rel).read_bytes() == original.read_bytes()

    (place.archive_dir / "stray.bin").write_bytes(b"?")
    found = await _invoke(
        env, "archive", "discover", place.kind, "--local-endpoint", endpoint, "--json"
    )
    assert found.exit_code == 0, found.output
    assert [u["path"] for u in json.loads(found.output)["unmatched"]] == ["stray.bin"]


async def test_local_endpoint_by_name_from_the_config_file(
    client: httpx.AsyncClient, localstack: LocalStack, lab: Lab, place: ArchivePlace, tmp_path: Path
) -> None:
    session, rel = await _session_with_file(client, lab, place, "2026-12-05", b"raw" * 10)
    config = tmp_path / "config.toml"
    config.write_text(
        f"[local_endpoints.laptop]\ncollection = {place.laptop.collection!r}\n"
        f"path = {place.laptop.path!r}\ndirectory = {str(place.laptop.directory)!r}\n\n"
        f"[local_endpoints.lab-pc]\ncollection = {place.laptop.collection!r}\n"
        "path = '/C/data'\ndirectory = 'C:\\data'\n",
        encoding="utf-8",
    )
    env = {
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_ACCESS_TOKEN": lab.member.token,
        "PROVENA_CONFIG_FILE": str(config),
        "PROVENA_CACHE_DIR": str(tmp_path / "cache"),
        "PROVENA_STATE_DIR": str(tmp_path / "state"),
        "COLUMNS": "200",
    }
    publish = ("archive", "publish", place.kind, session, "--dry-run", "--json")

    dry = await _invoke(env, *publish, "--local-endpoint", "laptop")
    assert dry.exit_code == 0, dry.output
    files = json.loads(dry.output)["files"]
    assert [(f["path"], f["status"]) for f in files] == [(rel, "planned")]

    unknown = await _invoke(env, *publish, "--local-endpoint", "desk")
    assert unknown.exit_code == 2
    assert "'desk'" in unknown.output and "lab-pc, laptop" in unknown.output
    windows = await _invoke(env, *publish, "--local-endpoint", "lab-pc")
    assert windows.exit_code == 2 and "not a path of this machine's kind" in windows.output
