"""``provena-like transfer …`` against the live transfer service: every command, exit codes.

Collections: two local collections registered by an admin and open to every user, a
private one, and a dataset of the LocalStack's user (named by its handle). Most calls run the
command in-process (typer's runner); the exit codes that matter most are also checked on the
real process (a subprocess), which is slower to start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from provena_like.cli._errors import ExitCode
from provena_like.cli.main import app
from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread, bind_socket
from tests.support.cli_helpers import cli_command, cli_env, run_cli
from tests.support.cli_runner import CliRunner
from tests.support.transfer import mint_dataset, new_root, register_collection
from tests.support.transfer_tasks import (
    feed_fifo,
    fifo_writers_fixture,  # noqa: F401 - the fifo_writers fixture
    open_collection_of,
    task_admin_fixture,  # noqa: F401 - the task_admin fixture
    tree,
    write_tree,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio

runner = CliRunner()


def user_env(stack: LocalStack) -> dict[str, str]:
    """The environment of the LocalStack's signed-in user."""
    return {
        "PROVENA_BASE_URL": stack.url,
        "PROVENA_TOKEN_DIR": str(stack.data_dir / "tokens" / stack.user.username),
        "PROVENA_MAX_RETRIES": "0",
    }


class Cli:
    """Runs ``provena-like transfer ARGS`` as the LocalStack's user."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        """In-process: (exit code, stdout, stderr)."""
        result = await anyio.to_thread.run_sync(
            lambda: runner.invoke(app, ["transfer", *args], env=self.env)
        )
        assert "Traceback" not in result.output, result.output
        return result.exit_code, result.stdout, result.stderr

    async def json(self, *args: str, code: int = 0) -> Any:
        """In-process with ``--json``: the document, after checking the exit code."""
        got, out, err = await self(*args, "--json")
        assert got == code, (got, out, err)
        return json.loads(out)

    async def process(self, *args: str) -> tuple[int, Any]:
        """As a real process with ``--json``: (exit code, document)."""
        done = await anyio.to_thread.run_sync(
            lambda: run_cli("transfer", *args, "--json", env=self.env)
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode, json.loads(done.stdout)


@pytest.fixture
def cli(localstack: LocalStack) -> Cli:
    return Cli(user_env(localstack))


async def test_ls_mkdir_rename_and_path_errors(
    server: ServerThread, task_admin: User, cli: Cli
) -> None:
    src, root = await open_collection_of(server, task_admin, "cli-paths")
    write_tree(root, {"a.txt": b"alpha", "sub/b.txt": b"beta", ".hidden": b"h"})

    made = await cli.json("mkdir", f"{src}:/new")
    assert made == {"location": f"globus://{src}/new", "created": True}
    assert (root / "new").is_dir()
    code, _, err = await cli("mkdir", f"{src}:/new")  # exists: refused
    assert code == ExitCode.FAILED and "MkdirFailed.Exists" in err
    assert (await cli.json("mkdir", f"{src}:/new", "-p"))["created"] is False

    listing = await cli.json("ls", f"{src}:/")
    assert listing["path"] == "/"
    assert {e["name"]: e["type"] for e in listing["entries"]} == {
        "a.txt": "file",
        "sub": "dir",
        ".hidden": "file",
        "new": "dir",
    }
    visible = await cli.json("ls", f"globus://{src}/", "--no-hidden")
    assert ".hidden" not in [e["name"] for e in visible["entries"]]
    deep = await cli.json("ls", f"{src}:/", "-r")
    assert {e["path"] for e in deep["entries"]} >= {"/a.txt", "/sub", "/sub/b.txt"}
    code, out, _ = await cli("ls", f"{src}:/", "-l")
    assert code == 0 and "sub/" in out and "a.txt" in out

    moved = await cli.json("rename", f"{src}:/a.txt", "/c.txt")
    assert moved["destination"] == f"globus://{src}/c.txt"
    assert (root / "c.txt").read_bytes() == b"alpha" and not (root / "a.txt").exists()

    # bad paths: 2 (refused before any request, or not a directory); missing: 4
    for bad, why in (
        (f"{src}:/../etc", "'..' is not allowed"),
        (f"{src}:/c.txt", "NotDirectory"),
        ("no-such-label:/x", "location label"),
        (f"{src}:/x\x00y", "NUL"),
    ):
        code, out, _ = await cli("ls", bad, "--json")
        assert code == ExitCode.USAGE and why in json.loads(out)["error"]["message"], (bad, out)
    code, out, _ = await cli("ls", f"{src}:/nope", "--json")
    assert code == ExitCode.NOT_FOUND, out
    assert json.loads(out)["error"]["status"] == 404


async def test_unknown_private_and_unreachable_collections(
    server: ServerThread, task_admin: User, cli: Cli, tmp_path: Path
) -> None:
    private = await register_collection(server, task_admin, new_root(server, "cli-private"))
    unknown = str(uuid.uuid4())
    code, out, _ = await cli("ls", f"{unknown}:/", "--json")
    assert code == ExitCode.NOT_FOUND and json.loads(out)["error"]["status"] == 404, out
    code, out, _ = await cli("ls", f"{private['collection_id']}:/", "--json")
    assert code == ExitCode.NOT_FOUND, out
    assert json.loads(out)["error"]["code"] == "EndpointPermissionDenied"
    code, out, _ = await cli("ls", f"{unknown}:/../x", "--json")
    assert code == ExitCode.USAGE and "'..' is not allowed" in out, out
    # the private collection is not found by a search either
    found = await cli.json("endpoint", "search", "cli-private", "--limit", "100")
    assert private["collection_id"] not in [e["id"] for e in found["endpoints"]]

    sock = bind_socket()  # a port nothing listens on once closed
    port = sock.getsockname()[1]
    sock.close()
    down = Cli(
        {
            "PROVENA_BASE_URL": f"http://127.0.0.1:{port}",
            "PROVENA_ACCESS_TOKEN": "t",
            "PROVENA_MAX_RETRIES": "0",
        }
    )
    code, doc = await down.process("ls", f"{unknown}:/")
    assert code == ExitCode.UNREACHABLE and doc["error"]["kind"] == "unreachable", doc

    signed_out = Cli({**cli.env, "PROVENA_TOKEN_DIR": str(tmp_path / "no-tokens")})
    code, out, _ = await signed_out("ls", f"{unknown}:/", "--json")
    assert code == ExitCode.AUTH, out


async def test_cp_wait_tasks_and_rm(server: ServerThread, task_admin: User, cli: Cli) -> None:
    src, src_root = await open_collection_of(server, task_admin, "cli-src")
    dst, dst_root = await open_collection_of(server, task_admin, "cli-dst")
    files = {"a.bin": os.urandom(3000), "sub/b.bin": os.urandom(100), "skip.tmp": b"x"}
    write_tree(src_root, files)
    sid = str(uuid.uuid4())
    copy = (
        "cp", f"{src}:/", f"{dst}:/copy", "-r", "--sync-level", "checksum",
        "--verify-checksum", "--exclude", "*.tmp", "--label", "cli copy",
        "--submission-id", sid,
    )  # fmt: skip
    code, done = await cli.process(*copy, "--wait", "--poll", "0.2")
    assert code == ExitCode.OK, done
    assert (done["outcome"], done["submission_id"], done["code"]) == ("SUCCEEDED", sid, "Accepted")
    assert done["task"]["files_transferred"] == 2 and done["task"]["label"] == "cli copy"
    assert tree(dst_root / "copy") == {k: v for k, v in files.items() if k != "skip.tmp"}
    task_id = done["task_id"]

    again = await cli.json(*copy)  # the same submission id: the first task, not a second
    assert (again["task_id"], again["code"]) == (task_id, "Duplicate")
    write_tree(dst_root / "copy", {"extra.txt": b"not in the source"})
    synced = await cli.json(
        "cp", f"{src}:/", f"{dst}:/copy", "-r", "-s", "checksum", "-x", "*.tmp",
        "--delete-extra", "--wait", "--poll", "0.2",
    )  # fmt: skip
    assert synced["task"]["files_skipped"] == 2 and synced["task"]["files_transferred"] == 0
    assert not (dst_root / "copy" / "extra.txt").exists()
    late = await cli.json(
        "cp", f"{src}:/a.bin", f"{dst}:/late.bin", "--deadline", "2000-01-01T00:00:00+00:00",
        "--wait", "--poll", "0.2", code=ExitCode.FAILED,
    )  # fmt: skip
    assert late["task"]["fatal_error"]["code"] == "DEADLINE_EXCEEDED"
    code, out, _ = await cli("cp", f"{src}:/a.bin", f"{dst}:/b", "--deadline", "soon", "--json")
    assert code == ExitCode.USAGE and "--deadline" in out
    # checksums verified unless --no-verify-checksum (Globus's own default is not to)
    for flags, checked in (((), 3000), (("--no-verify-checksum",), 0)):
        plain = await cli.json(
            "cp", f"{src}:/a.bin", f"{dst}:/plain.bin", *flags, "--wait", "--poll", "0.2"
        )
        assert plain["task"]["bytes_checksummed"] == checked, (flags, plain["task"])

    shown = await cli.json("task", "show", task_id, "--events", "3")
    assert (shown["status"], shown["label"], shown["type"]) == ("SUCCEEDED", "cli copy", "TRANSFER")
    assert shown["events"] and shown["events"][0]["code"]
    code, out, _ = await cli("task", "show", task_id)
    assert code == 0 and "SUCCEEDED" in out
    listed = await cli.json("task", "list", "--status", "SUCCEEDED", "--type", "TRANSFER")
    assert task_id in [t["task_id"] for t in listed["tasks"]]
    assert (await cli.json("task", "wait", task_id))["outcome"] == "SUCCEEDED"
    code, out, _ = await cli("task", "wait", task_id)
    assert code == 0 and "SUCCEEDED" in out

    # a missing source fails the task: exit 1, with why
    failed = await cli.json("cp", f"{src}:/missing", f"{dst}:/m", "--wait", "--poll", "0.2",
                            code=ExitCode.FAILED)  # fmt: skip
    assert failed["outcome"] == "FAILED" and failed["task"]["fatal_error"]["code"]
    assert (await cli.json("task", "wait", failed["task_id"], code=1))["outcome"] == "FAILED"

    removed = await cli.json("rm", f"{dst}:/copy", "-r", "--wait", "--poll", "0.2")
    assert removed["outcome"] == "SUCCEEDED" and not (dst_root / "copy").exists()
    await cli.json("rm", f"{dst}:/gone", "--wait", "--poll", "0.2", code=ExitCode.FAILED)
    await cli.json("rm", f"{dst}:/gone", "-f", "--wait", "--poll", "0.2")
    code, out, _ = await cli("rm", f"{dst}:/x", f"{src}:/y", "--json")
    assert code == ExitCode.USAGE and "one collection" in out
    code, out, _ = await cli("task", "show", str(uuid.uuid4()), "--json")
    assert code == ExitCode.NOT_FOUND, out


async def test_interrupt_and_timeout_leave_the_task_running_and_cancel_fails_it(
    server: ServerThread, task_admin: User, cli: Cli, fifo_writers: list[Path]
) -> None:
    src, src_root = await open_collection_of(server, task_admin, "cli-slow")
    dst, _ = await open_collection_of(server, task_admin, "cli-slow-dst")
    fifo = src_root / "slow"
    os.mkfifo(fifo)  # the copy blocks opening it: the task stays ACTIVE
    fifo_writers.append(fifo)
    # Ctrl-C while `cp --wait` waits: exit 130, and the task goes on (its id is said)
    command = cli_command(
        "transfer", "cp", f"{src}:/slow", f"{dst}:/slow", "--wait", "--poll", "0.2"
    )
    waiting = subprocess.Popen(
        command,
        env=cli_env({**cli.env, "PYTHONUNBUFFERED": "1"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert waiting.stdout is not None
        first = await anyio.to_thread.run_sync(waiting.stdout.readline)
        assert first.startswith("transfer task "), first
        task_id = first.split()[2]
        waiting.send_signal(signal.SIGINT)
        out, err = await anyio.to_thread.run_sync(lambda: waiting.communicate(timeout=120))
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == ExitCode.INTERRUPTED, (out, err)
    assert f"task {task_id} keeps running" in err and "Traceback" not in err, err

    code, out, _ = await cli("task", "wait", task_id, "--timeout", "0.5", "--poll", "0.1", "--json")
    assert code == ExitCode.TIMED_OUT, out
    waited = json.loads(out)
    assert waited["outcome"] == "TIMED_OUT" and waited["task"]["status"] == "ACTIVE"
    active = await cli.json("task", "list", "--status", "ACTIVE")
    assert task_id in [t["task_id"] for t in active["tasks"]]

    assert (await cli.json("task", "cancel", task_id))["code"] == "Canceled"
    ended = await cli.json("task", "wait", task_id, "--poll", "0.1", code=ExitCode.FAILED)
    assert ended["task"]["fatal_error"]["code"] == "CANCELED"
    assert (await cli.json("task", "cancel", task_id))["code"] == "TaskComplete"
    await anyio.to_thread.run_sync(lambda: feed_fifo(fifo, b"late"))


async def test_dataset_handles_and_endpoint_search(
    server: ServerThread, task_admin: User, localstack: LocalStack, cli: Cli,
    new_user: Callable[..., User],
) -> None:  # fmt: skip
    src, src_root = await open_collection_of(server, task_admin, "cli-find-me")
    write_tree(src_root, {"a.csv": b"x,y\n1,2\n"})
    async with localstack.client() as pv:
        token = (await pv.auth_manager.get_access_token()).get_secret_value()
    researcher = User(localstack.user.username, token)
    dataset = await mint_dataset(server, researcher)
    handle = dataset["id"]
    copied = await cli.json(
        "cp", f"{src}:/a.csv", f"{handle}:/raw/a.csv", "--wait", "--poll", "0.2"
    )
    assert copied["task"]["destination_endpoint_id"] == dataset["collection_id"]
    listing = await cli.json("ls", f"{handle}:/raw")
    assert [e["name"] for e in listing["entries"]] == ["a.csv"]
    shown = await cli.json("endpoint", "show", handle)
    assert shown["id"] == dataset["collection_id"]

    found = await cli.json("endpoint", "search", "cli-find-me")
    assert src in [e["id"] for e in found["endpoints"]]
    mine = await cli.json("endpoint", "search", "--scope", "my-endpoints", "--limit", "1000")
    assert dataset["collection_id"] in [e["id"] for e in mine["endpoints"]]
    assert src not in [e["id"] for e in mine["endpoints"]]  # the admin's
    code, out, _ = await cli("endpoint", "search", "cli-find-me")
    assert code == 0 and src in out
    # someone else's dataset: not found by them, refused to them
    other = await mint_dataset(server, new_user("other"))
    code, out, _ = await cli("ls", f"{other['id']}:/", "--json")
    assert code == ExitCode.NOT_FOUND, out
