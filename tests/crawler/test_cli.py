"""``provena-like crawl`` and ``provena-like extract``: JSON lines, summaries, exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from provena_like.cli._errors import ExitCode
from provena_like.cli.main import app
from provena_like.testing.localstack import LocalStack
from tests.support.cli_runner import CliRunner
from tests.support.l3_helpers import mint_dataset
from tests.support.transfer_tasks import write_tree

runner = CliRunner()

FILES = {"a.csv": b"x,y\n", "raw/b.json": b"{}", "raw/deep/c.txt": b"c", ".hid": b"h"}


def lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_crawl_a_folder(tmp_path: Path) -> None:
    write_tree(tmp_path / "t", FILES)
    done = runner.invoke(app, ["crawl", str(tmp_path / "t"), "--json"])
    assert done.exit_code == 0, done.output
    files = {r["path"] for r in lines(done.stdout) if r["kind"] == "file"}
    assert files == {"a.csv", "raw/b.json", "raw/deep/c.txt"}

    some = runner.invoke(
        app,
        [
            "crawl",
            str(tmp_path / "t"),
            "--json",
            "-d",
            "1",
            "-x",
            "*.csv",
            "--group-by",
            "directory",
        ],
    )
    kinds = [(r["kind"], r.get("path") or r.get("key")) for r in lines(some.stdout)]
    assert ("file", "raw/b.json") in kinds and ("group", "raw") in kinds
    assert ("file", "a.csv") not in kinds and ("file", "raw/deep/c.txt") not in kinds

    human = runner.invoke(app, ["crawl", str(tmp_path / "t"), "--hidden"])
    assert human.exit_code == 0 and "4 files, 8 bytes" in human.stdout

    out = tmp_path / "records.jsonl"
    saved = runner.invoke(app, ["crawl", str(tmp_path / "t"), "-o", str(out), "--json"])
    assert lines(saved.stdout) == [
        {
            "summary": {
                "files": 3,
                "bytes": 7,
                "errors": 0,
                "groups": 0,
                "extracted": 0,
                "failed": 0,
            }
        }
    ]
    assert len(lines(out.read_text())) == 3


def test_crawl_errors_and_usage(tmp_path: Path) -> None:
    write_tree(tmp_path / "t", FILES)
    os.symlink("..", tmp_path / "t" / "raw" / "up")
    looped = runner.invoke(app, ["crawl", str(tmp_path / "t"), "--follow-symlinks"])
    assert looped.exit_code == ExitCode.FAILED, looped.output
    assert "1 unreadable" in looped.stdout and "raw/up: symlink_loop" in looped.stdout

    missing = runner.invoke(app, ["crawl", str(tmp_path / "nope"), "--json"])
    assert missing.exit_code == ExitCode.USAGE
    assert json.loads(missing.stdout)["error"]["kind"] == "usage"
    bad_group = runner.invoke(app, ["crawl", str(tmp_path), "--group-by", "colour"])
    assert bad_group.exit_code == ExitCode.USAGE
    bad_extractor = runner.invoke(app, ["extract", str(tmp_path), "-e", "no_such", "--json"])
    assert bad_extractor.exit_code == ExitCode.USAGE
    assert "no_such" in json.loads(bad_extractor.stdout)["error"]["message"]


def test_extract_a_folder(tmp_path: Path) -> None:
    write_tree(tmp_path / "t", FILES)
    done = runner.invoke(app, ["extract", str(tmp_path / "t"), "-e", "basic", "--json"])
    assert done.exit_code == 0, done.output
    results = {r["record"]["path"]: r for r in lines(done.stdout)}
    assert set(results) == {"a.csv", "raw/b.json", "raw/deep/c.txt"}
    (basic,) = results["raw/b.json"]["extractions"]
    assert basic["status"] == "ok" and basic["metadata"]["size"] == 2
    human = runner.invoke(app, ["extract", str(tmp_path / "t"), "-e", "basic"])
    assert "extracted 3, failed 0" in human.stdout


@pytest.mark.anyio
async def test_crawl_a_dataset(localstack: LocalStack, tmp_path: Path) -> None:
    write_tree(tmp_path / "up", FILES)
    async with localstack.client() as pv:
        ds = await mint_dataset(pv, "cli crawl")
        (await ds.upload(tmp_path / "up")).raise_for_failures()
    env = {
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_TOKEN_DIR": str(localstack.data_dir / "tokens" / localstack.user.username),
    }
    import anyio.to_thread

    def invoke(*args: str) -> Any:
        return runner.invoke(app, list(args), env=env)

    done = await anyio.to_thread.run_sync(invoke, "crawl", f"dataset:{ds.id}/raw", "--json")
    assert done.exit_code == 0, done.output
    assert {r["path"] for r in lines(done.stdout)} == {"b.json", "deep/c.txt"}
    absent = await anyio.to_thread.run_sync(invoke, "crawl", "dataset:10378.1/999999", "--json")
    assert absent.exit_code == ExitCode.NOT_FOUND, absent.output


@pytest.mark.anyio
async def test_extract_a_dataset_and_attach(localstack: LocalStack, tmp_path: Path) -> None:
    word = f"depth{os.urandom(4).hex()}"
    write_tree(tmp_path / "up", {"raw/a.csv": f"site,{word}\nx,1\n".encode(), "b.txt": b"b"})
    async with localstack.client() as pv:
        ds = await mint_dataset(pv, "cli extract")
        (await ds.upload(tmp_path / "up")).raise_for_failures()
    env = {
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_TOKEN_DIR": str(localstack.data_dir / "tokens" / localstack.user.username),
    }
    import anyio.to_thread

    def invoke(*args: str) -> Any:
        return runner.invoke(app, list(args), env=env)

    out = tmp_path / "results.jsonl"
    done = await anyio.to_thread.run_sync(
        invoke, "extract", f"dataset:{ds.id}", "-e", "tabular", "--attach", "-o", str(out), "--json"
    )
    assert done.exit_code == 0, done.output
    answer = lines(done.stdout)[0]
    assert answer["summary"]["files"] == 2 and answer["summary"]["failed"] == 0
    assert (answer["attached"]["dataset"], answer["attached"]["files"]) == (ds.id, 2)
    results = {r["record"]["path"]: r for r in lines(out.read_text())}
    (tabular,) = results["raw/a.csv"]["extractions"]
    assert tabular["status"] == "ok" and tabular["metadata"]["terms"] == ["site", word]
    async with localstack.client() as pv:
        hits = await pv.search_client.search_items(word, subtype="dataset")
        assert [h.item.id for h in hits.items] == [ds.id]
    # dataset search: a column of that name, not merely a dataset that mentions the word
    found = await anyio.to_thread.run_sync(
        invoke, "dataset", "search", f"extracted:{word} -extracted:nosuch{word}", "--json"
    )
    assert found.exit_code == 0, found.output
    assert [h["item"]["id"] for h in json.loads(found.stdout)] == [ds.id]
    bad = await anyio.to_thread.run_sync(invoke, "dataset", "search", "extracted:", "--json")
    assert bad.exit_code not in (0, ExitCode.UNREACHABLE), bad.output
    assert "'extracted:' needs a word" in bad.stdout

    # a local copy, attached with --dataset: the new run replaces the first
    write_tree(tmp_path / "copy", {"raw/a.csv": b"site,salinity\nx,1\n"})
    human = await anyio.to_thread.run_sync(
        invoke, "extract", str(tmp_path / "copy"), "-e", "tabular", "--attach", "--dataset", ds.id
    )
    assert human.exit_code == 0, human.output
    assert f"attached to {ds.id}: 1 files" in human.stdout
    async with localstack.client() as pv:
        assert (await pv.search_client.search_items(word, subtype="dataset")).items == []

    no_dataset = await anyio.to_thread.run_sync(
        invoke, "extract", str(tmp_path / "copy"), "--attach", "--json"
    )
    assert no_dataset.exit_code == ExitCode.USAGE
