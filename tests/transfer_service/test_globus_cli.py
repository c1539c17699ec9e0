"""The real, unmodified ``globus`` CLI (globus-cli 3.44.0) against the live server.

globus-cli reads no access token from the environment and validates its tokens with Globus
Auth, which is not reachable here. It needs neither in client-identity mode
(``GLOBUS_CLI_CLIENT_ID`` and ``GLOBUS_CLI_CLIENT_SECRET`` set): it then uses the transfer
token in its token storage (``$HOME/.globus/cli/storage.db``, globus-sdk's ``SQLiteAdapter``,
namespace ``clientprofile/production/<client id>``) as long as that has not expired. The test
seeds that storage with a token of our own auth (and a dummy Auth token, see
:func:`seed_token_storage`), points ``GLOBUS_SDK_SERVICE_URL_TRANSFER`` at
the server (and ``GLOBUS_SDK_SERVICE_URL_AUTH`` at a closed port, so that any call to Auth
fails loudly), and runs ``globus`` in a subprocess, from its own environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from globus_sdk.scopes import AuthScopes, TransferScopes
from globus_sdk.token_storage.legacy import SQLiteAdapter

from provena_like.testing.server_thread import ServerThread
from tests.support.tool_envs import ToolEnv
from tests.support.transfer_tasks import (
    open_collection_of,
    task_admin_fixture,  # noqa: F401 - the task_admin fixture
    task_user_fixture,  # noqa: F401 - the task_user fixture
    tree,
    write_tree,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio

CLIENT_ID = "5e1d2c3b-0a9f-4e8d-8c7b-6a5f4e3d2c1b"
"""Any client id: globus-cli only uses it to name its token storage's namespace."""

CLI_TIMEOUT = 120.0
"""Bounds one ``globus`` command (the machine is shared and slow)."""


def _token(resource_server: str, scopes: list[str], token: str) -> dict[str, Any]:
    return {
        "resource_server": resource_server,
        "scope": " ".join(scopes),
        "access_token": token,
        "refresh_token": None,
        "token_type": "Bearer",
        "expires_at_seconds": int(time.time()) + 365 * 86400,
    }


def seed_token_storage(home: Path, token: str) -> None:
    """Write globus-cli's token storage under ``home`` for client ``CLIENT_ID``.

    The transfer token is ``token``. Commands that also declare a need for Auth (``endpoint
    search``) build an Auth client whose authorizer would fetch a token from Globus Auth
    unless one is stored: an Auth token is stored too (it is never sent anywhere, as long as
    no command looks identities up).
    """
    storage = home / ".globus" / "cli" / "storage.db"
    storage.parent.mkdir(parents=True)
    adapter = SQLiteAdapter(str(storage), namespace=f"clientprofile/production/{CLIENT_ID}")
    auth_scopes = [
        str(scope)
        for scope in (
            AuthScopes.openid,
            AuthScopes.profile,
            AuthScopes.email,
            AuthScopes.view_identity_set,
        )
    ]
    try:
        # SQLiteAdapter.store reads only `by_resource_server` of a token response
        response: Any = SimpleNamespace(
            by_resource_server={
                TransferScopes.resource_server: _token(
                    TransferScopes.resource_server, [str(TransferScopes.all)], token
                ),
                AuthScopes.resource_server: _token(
                    AuthScopes.resource_server, auth_scopes, "not-used"
                ),
            }
        )
        adapter.store(response)
    finally:
        adapter.close()


@dataclass(frozen=True)
class Done:
    """A finished ``globus`` command."""

    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class GlobusCLI:
    """Runs the ``globus`` command of ``env`` as one user, against ``server``."""

    env: ToolEnv
    server: ServerThread
    home: Path

    @property
    def environ(self) -> dict[str, str]:
        """The command's environment: ours without any GLOBUS_* variable, plus the settings."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("GLOBUS_")}
        return {
            **base,
            "HOME": str(self.home),
            "GLOBUS_CLI_CLIENT_ID": CLIENT_ID,
            "GLOBUS_CLI_CLIENT_SECRET": "unused-no-auth-is-reached",
            "GLOBUS_SDK_SERVICE_URL_TRANSFER": self.server.url + "/",
            "GLOBUS_SDK_SERVICE_URL_AUTH": "http://127.0.0.1:9/",
        }

    async def run(self, *args: str, check: bool = True) -> Done:
        """Run ``globus *args``; with ``check``, fail unless it exits 0."""
        command = [str(self.env.script("globus")), *args]
        with anyio.fail_after(CLI_TIMEOUT):
            done = await anyio.run_process(
                command, env=self.environ, check=False, stdin=subprocess.DEVNULL
            )
        result = Done(done.returncode, done.stdout.decode(), done.stderr.decode())
        if check:
            assert result.returncode == 0, (args, result)
        return result

    async def json(self, *args: str) -> Any:
        """Run ``globus *args --format json`` and parse its output."""
        return json.loads((await self.run(*args, "--format", "json")).stdout)


@pytest.fixture
def globus_cli(
    globus_cli_env: ToolEnv, server: ServerThread, task_user: User, tmp_path: Path
) -> GlobusCLI:
    """The real ``globus`` CLI, signed in as ``task_user`` with a token of our own auth."""
    seed_token_storage(tmp_path, task_user.token)
    return GlobusCLI(globus_cli_env, server, tmp_path)


async def test_ls_mkdir_transfer_and_task_wait(
    server: ServerThread, task_admin: User, globus_cli: GlobusCLI
) -> None:
    src, src_root = await open_collection_of(server, task_admin, "cli-src")
    dst, dst_root = await open_collection_of(server, task_admin, "cli-dst")
    files = {
        "a.txt": b"alpha",
        "sub/b.bin": bytes(range(256)),
        "sub/deeper/c.csv": b"t,v\n1,2\n",
    }
    write_tree(src_root, files)

    listed = await globus_cli.json("ls", "--recursive", f"{src}:/")
    names = sorted(entry["name"] for entry in listed["DATA"])
    assert names == ["a.txt", "sub", "sub/b.bin", "sub/deeper", "sub/deeper/c.csv"]
    text = await globus_cli.run("ls", "--recursive", f"{src}:/~/sub/")
    assert sorted(text.stdout.split()) == ["b.bin", "deeper/", "deeper/c.csv"]
    # --filter applies to files only: every directory is walked (two filter parameters)
    csv = await globus_cli.run("ls", "--recursive", "--filter", "~*.csv", f"{src}:/")
    assert sorted(csv.stdout.split()) == ["sub/", "sub/deeper/", "sub/deeper/c.csv"]

    await globus_cli.run("mkdir", f"{dst}:/incoming")
    assert (dst_root / "incoming").is_dir()
    exists = await globus_cli.run("mkdir", f"{dst}:/incoming", check=False)
    assert exists.returncode == 1 and "MkdirFailed.Exists" in exists.stderr, exists

    submission_id = (await globus_cli.run("task", "generate-submission-id")).stdout.strip()
    assert uuid.UUID(submission_id)
    submit = (
        "transfer",
        f"{src}:/",
        f"{dst}:/incoming/copy",
        "--recursive",
        "--submission-id",
        submission_id,
        "--label",
        "globus cli copy",
    )
    accepted = await globus_cli.json(*submit)
    assert accepted["code"] == "Accepted", accepted
    again = await globus_cli.json(*submit)
    assert (again["code"], again["task_id"]) == ("Duplicate", accepted["task_id"])

    task_id = accepted["task_id"]
    await globus_cli.run("task", "wait", task_id, "--timeout", "150", "--polling-interval", "1")
    assert tree(dst_root / "incoming" / "copy") == files
    shown = await globus_cli.json("task", "show", task_id)
    assert (shown["status"], shown["label"], shown["files_transferred"]) == (
        "SUCCEEDED",
        "globus cli copy",
        3,
    )


async def test_task_wait_fails_for_a_failed_task(
    server: ServerThread, task_admin: User, globus_cli: GlobusCLI
) -> None:
    src, _ = await open_collection_of(server, task_admin, "cli-src")
    dst, dst_root = await open_collection_of(server, task_admin, "cli-dst")
    accepted = await globus_cli.json("transfer", f"{src}:/missing.txt", f"{dst}:/missing.txt")
    waited = await globus_cli.run(
        "task",
        "wait",
        accepted["task_id"],
        "--timeout",
        "150",
        "--polling-interval",
        "1",
        check=False,
    )
    assert waited.returncode == 1, waited
    shown = await globus_cli.json("task", "show", accepted["task_id"])
    assert shown["status"] == "FAILED" and not (dst_root / "missing.txt").exists()


async def test_stat_rename_rm_task_list_and_endpoint_search(
    server: ServerThread, task_admin: User, globus_cli: GlobusCLI
) -> None:
    name = f"cli-lab-{uuid.uuid4().hex[:8]}"
    lab, root = await open_collection_of(server, task_admin, name)
    write_tree(root, {"a.txt": b"alpha", "old/x.bin": b"x", "old/deeper/y.bin": b"y"})

    found = await globus_cli.json("endpoint", "search", name)
    assert [(e["id"], e["display_name"]) for e in found["DATA"]] == [(lab, name)]
    info = await globus_cli.json("stat", f"{lab}:/a.txt")
    assert (info["name"], info["type"], info["size"]) == ("a.txt", "file", 5)
    await globus_cli.run("rename", lab, "/a.txt", "/b.txt")
    assert (root / "b.txt").read_bytes() == b"alpha" and not (root / "a.txt").exists()

    removed = await globus_cli.run("rm", "--recursive", "--label", "cli rm", f"{lab}:/old")
    assert "Delete task submitted" in removed.stderr, removed  # rm waits for its task
    assert not (root / "old").exists()
    tasks = await globus_cli.json("task", "list", "--filter-status", "SUCCEEDED")
    assert [(t["type"], t["label"]) for t in tasks["DATA"]] == [("DELETE", "cli rm")]
