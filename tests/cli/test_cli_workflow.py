"""The whole job on the command line, each command a real ``provena-like`` process.

``login`` → ``item create`` → ``dataset mint`` → ``upload`` → ``dataset search`` →
``dataset ls/show/update/history/revert/version`` → ``download`` → ``verify``, every output
parsed from ``--json``, then one command per error class with its exit code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

from provena_like.cli._errors import ExitCode
from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import bind_socket
from tests.support.cli_helpers import approve_cli_login

pytestmark = pytest.mark.anyio

CLI = [sys.executable, "-m", "provena_like.cli.main"]

RECORD_TOML = """
[associations]
organisation_id = "{org}"
point_of_contact = "{person}"

[approvals]
ethics_registration = {{ relevant = false, obtained = false }}
ethics_access = {{ relevant = false, obtained = false }}
indigenous_knowledge = {{ relevant = false, obtained = false }}
export_controls = {{ relevant = false, obtained = false }}

[dataset_info]
name = "{name}"
description = "Coral cover transects, minted from the command line."
publisher_id = "{org}"
created_date = "2024-01-01"
published_date = "2024-06-30"
license = "https://creativecommons.org/licenses/by/4.0/"
keywords = ["cli", "coral"]
access_info = {{ reposited = true }}
"""


class Cli:
    """Runs ``provena-like`` in a subprocess with one user's token directory."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, "COLUMNS": "200", **env}

    async def run(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        def go() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*CLI, *args], env=self.env, capture_output=True, text=True, timeout=600
            )

        done = await anyio.to_thread.run_sync(go)
        assert done.returncode == expect, (args, done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    async def json(self, *args: str, expect: int = 0) -> Any:
        done = await self.run(*args, "--json", expect=expect)
        return json.loads(done.stdout)


async def _login(cli: Cli, stack: LocalStack) -> dict[str, Any]:
    """``login --json``: the prompt on stderr, approved as a browser would, JSON on stdout."""
    async with await anyio.open_process([*CLI, "login", "--json"], env=cli.env) as proc:
        assert proc.stderr is not None and proc.stdout is not None
        await approve_cli_login(proc.stderr, stack)
        with anyio.fail_after(120):
            out = b"".join([chunk async for chunk in proc.stdout])
            await proc.wait()
    assert proc.returncode == 0, out
    doc: dict[str, Any] = json.loads(out)
    return doc


async def test_login_to_verify_with_json(localstack: LocalStack, tmp_path: Path) -> None:
    cli = Cli({"PROVENA_BASE_URL": localstack.url, "PROVENA_TOKEN_DIR": str(tmp_path / "tok")})
    assert (await _login(cli, localstack))["username"] == localstack.user.username
    me = await cli.json("whoami")
    assert me["preferred_username"] == localstack.user.username

    tag = uuid.uuid4().hex[:8]
    org = await cli.json("item", "create", "organisation", "--set", f"name=CLI Reef Org {tag}")
    person = await cli.json(
        "item",
        "create",
        "person",
        "-s",
        "first_name=Ana",
        "-s",
        "last_name=Reef",
        "-s",
        "email=ana@example.org",
    )
    assert org["subtype"] == "organisation" and person["subtype"] == "person"
    shown = await cli.json("item", "show", org["id"])
    assert shown["record"]["name"] == f"CLI Reef Org {tag}"
    people = await cli.json("item", "list", "--subtype", "person")
    assert person["id"] in {p["id"] for p in people}
    renamed = await cli.json("item", "update", org["id"], "--reason", "rename", "-s", "name=R2")
    assert renamed["record"]["name"] == "R2"
    item_history = await cli.json("item", "history", org["id"])
    assert [h["reason"] for h in item_history][0] == "rename"  # newest first

    record = tmp_path / "record.toml"
    name = f"Coral cover {tag}"
    record.write_text(RECORD_TOML.format(org=org["id"], person=person["id"], name=name))
    ds = await cli.json("dataset", "mint", "--record", str(record), "-k", "cli", "-k", tag)
    assert ds["display_name"] == name and ds["record"]["dataset_info"]["keywords"] == ["cli", tag]
    assert (await cli.json("dataset", "show", ds["id"]))["id"] == ds["id"]
    listed = await cli.json("dataset", "list", "--keyword", tag)
    assert [d["id"] for d in listed] == [ds["id"]]

    src = tmp_path / "src"
    (src / "raw").mkdir(parents=True)
    for rel in ("raw/a.csv", "raw/b.csv", "notes.txt"):
        (src / rel).write_bytes(os.urandom(3000))
    up = await cli.json("upload", ds["id"], str(src), "--no-progress")
    assert up["ok"] == 3 and up["failed"] == 0
    files = await cli.json("dataset", "ls", ds["id"])
    assert sorted(f["path"] for f in files) == ["notes.txt", "raw/a.csv", "raw/b.csv"]
    assert [f["path"] for f in await cli.json("dataset", "ls", ds["id"], "--prefix", "raw/")] == [
        "raw/a.csv",
        "raw/b.csv",
    ]

    hits = await cli.json("dataset", "search", f"coral {tag}")
    assert ds["id"] in [h["item"]["id"] for h in hits]

    changed = await cli.json(
        "dataset", "update", ds["id"], "--reason", "better name", "--name", f"Coral {tag} v2"
    )
    assert changed["record"]["dataset_info"]["name"] == f"Coral {tag} v2"
    history = await cli.json("dataset", "history", ds["id"])
    assert history[0]["reason"] == "better name"  # newest first
    first = history[-1]["id"]
    reverted = await cli.json("dataset", "revert", ds["id"], str(first), "--reason", "undo")
    assert reverted["record"]["dataset_info"]["name"] == name
    v2 = await cli.json("dataset", "version", ds["id"], "--reason", "recalibrated")
    assert v2["version"] == 2 and v2["previous"] == ds["id"]

    dest = tmp_path / "dest"
    down = await cli.json("download", ds["id"], str(dest))
    assert down["ok"] == 3
    good = await cli.json("verify", ds["id"], str(dest))
    assert good["ok"] == 3 and good["failed"] == 0

    # -- every error class, with its exit code and a JSON error object ------------------
    (dest / "raw" / "a.csv").write_bytes(b"changed")
    bad = await cli.json("verify", ds["id"], str(dest), expect=ExitCode.FAILED)
    assert [f["path"] for f in bad["files"] if f["status"] == "failed"] == ["raw/a.csv"]

    usage = await cli.json("dataset", "mint", "--set", "dataset_info.name=x", expect=2)
    assert usage["error"]["kind"] == "usage" and "associations" in usage["error"]["message"]
    assert (await cli.json("dataset", "mint", "--set", "oops", expect=2))["error"][
        "kind"
    ] == "usage"

    missing = await cli.json("dataset", "show", "10378.1/99999999", expect=ExitCode.NOT_FOUND)
    assert missing["error"]["status"] == 404

    sock = bind_socket()
    port = sock.getsockname()[1]
    sock.close()
    down_url = f"http://127.0.0.1:{port}"
    unreachable = await cli.json("dataset", "list", "--url", down_url, expect=ExitCode.AUTH)
    assert unreachable["error"]["kind"] == "auth"  # this URL has no sign-in of its own
    token_cli = Cli({"PROVENA_BASE_URL": down_url, "PROVENA_ACCESS_TOKEN": "t"})
    gone = await token_cli.json("dataset", "list", expect=ExitCode.UNREACHABLE)
    assert down_url in gone["error"]["message"]

    assert (await cli.json("logout"))["signed_out"] is True
    signed_out = await cli.json("dataset", "list", expect=ExitCode.AUTH)
    assert "login" in signed_out["error"]["message"]

    # Ctrl-C while `login` waits for the browser: 130, and no traceback
    async with await anyio.open_process([*CLI, "login"], env=cli.env) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        seen = b""
        with anyio.fail_after(120):
            while b"Waiting" not in seen:
                seen += await proc.stdout.receive()
        proc.send_signal(signal.SIGINT)
        with anyio.fail_after(60):
            err = b"".join([chunk async for chunk in proc.stderr])
            await proc.wait()
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert b"Traceback" not in err and b"interrupted" in err
