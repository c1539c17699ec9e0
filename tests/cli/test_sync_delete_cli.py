"""``sync --delete`` asks on a terminal and has a cap; ``verify --path``; ``--no-progress``;
``update --edit`` (the record in $EDITOR)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from provena_like.cli.main import app
from provena_like.testing.localstack import LocalStack
from tests.support.cli_helpers import on_a_terminal
from tests.support.cli_runner import CliRunner
from tests.support.l3_helpers import mint_dataset

pytestmark = pytest.mark.anyio

runner = CliRunner()


async def _dataset(stack: LocalStack) -> str:
    async with stack.client() as pv:
        ds = await mint_dataset(pv, "Sync delete")
    return ds.id


async def _files(stack: LocalStack, dataset: str) -> list[str]:
    async with stack.client() as pv:
        return sorted(f.path for f in await (await pv.datastore.interactive(dataset)).list_files())


async def test_sync_delete_is_capped_and_confirmed(localstack: LocalStack, tmp_path: Path) -> None:
    dataset = await _dataset(localstack)
    env = {
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_TOKEN_DIR": str(localstack.data_dir / "tokens" / localstack.user.username),
    }

    async def cli(*args: str) -> Any:
        return await anyio.to_thread.run_sync(
            lambda: runner.invoke(app, list(args), env=env, catch_exceptions=False)
        )

    src = tmp_path / "src"
    (src / "raw").mkdir(parents=True)
    names = ["keep.csv", "raw/a.csv", "raw/b.csv", "raw/c.csv"]
    for rel in names:
        (src / rel).write_bytes(os.urandom(500))
    assert (await cli("upload", dataset, str(src))).exit_code == 0
    for rel in names[1:]:
        (src / rel).unlink()

    capped = await cli("sync", dataset, str(src), "--delete", "--max-delete", "2", "--json")
    assert capped.exit_code == 1, capped.output
    error = json.loads(capped.stdout)["error"]
    assert error["kind"] == "refused" and error["would_delete"] == 3
    assert await _files(localstack, dataset) == names

    args = ["sync", dataset, str(src), "--delete"]
    code, err = await anyio.to_thread.run_sync(lambda: on_a_terminal(args, env, b"n\n"))
    assert code == 1 and "Delete 3 files" in err and "declined" in err, err
    assert await _files(localstack, dataset) == names

    code, err = await anyio.to_thread.run_sync(
        lambda: on_a_terminal([*args, "--max-delete", "3"], env, b"y\n")
    )
    assert code == 0, err
    assert await _files(localstack, dataset) == ["keep.csv"]


async def test_verify_path_after_partial_download(localstack: LocalStack, tmp_path: Path) -> None:
    dataset = await _dataset(localstack)
    env = {
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_TOKEN_DIR": str(localstack.data_dir / "tokens" / localstack.user.username),
    }

    async def cli(*args: str, extra: dict[str, str] | None = None) -> Any:
        return await anyio.to_thread.run_sync(
            lambda: runner.invoke(app, list(args), env={**env, **(extra or {})})
        )

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for rel in ("top.csv", "sub/x.csv", "sub/y.csv"):
        (src / rel).write_bytes(os.urandom(300))
    assert (await cli("upload", dataset, str(src), "--no-progress")).exit_code == 0

    dest = tmp_path / "dest"
    quiet = {"PROVENA_NO_PROGRESS": "1"}
    got = await cli("download", dataset, str(dest), "-p", "sub/", "--json", extra=quiet)
    assert got.exit_code == 0 and json.loads(got.stdout)["ok"] == 2
    # the variable is read (a value that is not a boolean is a usage error)
    wrong = await cli("download", dataset, str(dest), extra={"PROVENA_NO_PROGRESS": "maybe"})
    assert wrong.exit_code == 2

    whole = await cli("verify", dataset, str(dest), "--json")
    assert whole.exit_code == 1  # top.csv was not downloaded
    part = await cli("verify", dataset, str(dest), "--path", "sub/", "--json")
    assert part.exit_code == 0, part.output
    doc = json.loads(part.stdout)
    assert doc["ok"] == 2 and doc["failed"] == 0


async def test_update_with_editor(localstack: LocalStack, tmp_path: Path) -> None:
    """``--edit`` opens the record in $EDITOR (here: a sed that renames), then updates."""
    dataset = await _dataset(localstack)
    env = {
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_TOKEN_DIR": str(localstack.data_dir / "tokens" / localstack.user.username),
        "VISUAL": "",
        "EDITOR": "sed -i s/Sync\\ delete/Edited/",
    }

    def cli(*args: str, extra: dict[str, str] | None = None) -> Any:
        return runner.invoke(app, list(args), env={**env, **(extra or {})})

    done = await anyio.to_thread.run_sync(
        lambda: cli("dataset", "update", dataset, "--reason", "edited", "--edit", "--json")
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["record"]["dataset_info"]["name"].startswith("Edited ")

    failing = await anyio.to_thread.run_sync(
        lambda: cli("dataset", "update", dataset, "--reason", "x", "-e", extra={"EDITOR": "false"})
    )
    assert failing.exit_code == 1 and "nothing was changed" in failing.output
    unset = await anyio.to_thread.run_sync(
        lambda: cli("item", "update", dataset, "--reason", "x", "-e", extra={"EDITOR": ""})
    )
    assert unset.exit_code == 2 and "EDITOR" in unset.output
