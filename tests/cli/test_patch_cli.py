"""``provena-like patch``: dry run, exit codes, a real patch, and resuming an interrupted one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from provena_like import ProvenaClient
from provena_like.cli.main import app
from provena_like.testing.localstack import LocalStack
from tests.support.cli_runner import CliRunner
from tests.support.patcher_helpers import (
    Bench,
    Flaky,
    Injected,
    assert_no_orphans,
    hold_files,
    make_bench,
    read_all,
    write_local,
)
from tests.support.registration_helpers import make_lab, make_vocabulary
from tests.support.tls import SHARED_TLS
from tests.support.users import User

runner = CliRunner()


async def _setup(
    localstack: LocalStack, new_user: Callable[..., User], tmp: Path, *, interrupt: bool
) -> tuple[Bench, list[str], list[Path], str | None]:
    """A bench with two held files, their new local versions, and (maybe) an interrupted patch."""
    admin = new_user("regadmin", system_roles=("admin",))
    async with httpx.AsyncClient(
        verify=SHARED_TLS, base_url=f"{localstack.url}/registry"
    ) as client:
        lab = await make_lab(client, new_user)
        vocabulary = await make_vocabulary(client, admin)
        bench = await make_bench(client, admin, lab, vocabulary, tmp)
        async with ProvenaClient(localstack.config(access_token=lab.member.token)) as pv:
            resolver = bench.resolver(pv)
            async with await resolver.open([bench.s3, bench.posix], access="write") as repos:
                v = vocabulary
                contents = {f"alf/{v.name()}": b"old a", f"alf/{v.name('intervals')}": b"old b"}
                datasets = await hold_files(client, bench, repos, contents)
                paths = [
                    write_local(tmp / "local", d, b"new " + bytes([65 + i]))
                    for i, d in enumerate(datasets)
                ]
                patch_id = None
                if interrupt:
                    pv.patcher.journal_dir = tmp / "state" / "patches"
                    flaky: dict[str, Any] = dict(repos)
                    flaky[bench.s3] = Flaky(repos[bench.s3], ("put", 2))
                    with pytest.raises(Injected):
                        await pv.patcher.patch_files(paths, repositories=flaky)
                    patch_id = pv.patcher.unfinished()[0].patch_id
    return bench, [str(d.id) for d in datasets], paths, patch_id


async def _check_done(localstack: LocalStack, bench: Bench, ids: list[str], tmp: Path) -> None:
    async with ProvenaClient(localstack.config(access_token=bench.lab.member.token)) as pv:
        async with await bench.resolver(pv).open([bench.s3, bench.posix]) as repos:
            got = await read_all(pv, repos, ids, tmp / "read")
            assert set(got.values()) == {b"new A", b"new B"}
            await assert_no_orphans(pv, repos, ids)


def _env(localstack: LocalStack, bench: Bench, tmp: Path) -> dict[str, str]:
    return {
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_ACCESS_TOKEN": bench.lab.member.token,
        "PROVENA_CACHE_DIR": str(tmp / "cache"),
        "PROVENA_STATE_DIR": str(tmp / "state"),
        "COLUMNS": "200",
    }


def test_patch_dry_run_refusals_then_for_real(
    localstack: LocalStack, new_user: Callable[..., User], tmp_path: Path
) -> None:
    bench, ids, paths, _ = anyio.run(
        lambda: _setup(localstack, new_user, tmp_path, interrupt=False)
    )
    env = _env(localstack, bench, tmp_path)
    mount = f"{bench.posix}={bench.posix_root}"
    args = ["patch", *map(str, paths), "--repository", mount]
    dry = runner.invoke(app, [*args, "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0, dry.output
    doc = json.loads(dry.output)
    assert doc["dry_run"] and doc["step"] == "planned" and len(doc["files"]) == 2
    assert {loc["repository"] for f in doc["files"] for loc in f["locations"]} == {
        bench.s3,
        bench.posix,
    }
    human = runner.invoke(app, [*args, "--dry-run"], env=env)
    assert human.exit_code == 0 and "would patch 2 file(s) in 2 repositories" in human.output
    stray = paths[0].with_name(paths[0].name.replace("times", "nothing"))
    stray.write_bytes(b"?")
    unknown = runner.invoke(app, ["patch", str(stray), "--repository", mount, "--json"], env=env)
    assert unknown.exit_code == 4, unknown.output
    assert str(stray) in json.loads(unknown.output)["error"]["message"]
    unmounted = runner.invoke(app, ["patch", *map(str, paths)], env=env)
    assert unmounted.exit_code == 2 and bench.posix in unmounted.output
    bad = runner.invoke(app, ["patch", str(paths[0]), "--repository", "nonsense"], env=env)
    assert bad.exit_code == 2
    assert runner.invoke(app, ["patch"], env=env).exit_code == 2
    done = runner.invoke(app, [*args, "--json"], env=env)
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)
    assert doc["step"] == "done" and len(doc["cleaned"]) == 4 and not doc["resumed"]
    anyio.run(_check_done, localstack, bench, ids, tmp_path)


def test_an_interrupted_patch_says_how_to_resume_and_resumes(
    localstack: LocalStack, new_user: Callable[..., User], tmp_path: Path
) -> None:
    bench, ids, paths, patch_id = anyio.run(
        lambda: _setup(localstack, new_user, tmp_path, interrupt=True)
    )
    assert patch_id is not None
    env = _env(localstack, bench, tmp_path)
    # the POSIX repository isn't mounted: a usage error, which says how to resume
    stuck = runner.invoke(app, ["patch", *map(str, paths), "--json"], env=env)
    assert stuck.exit_code == 2, stuck.output
    message = json.loads(stuck.output)["error"]["message"]
    assert bench.posix in message and f"provena-like patch --resume {patch_id}" in message
    mount = f"{bench.posix}={bench.posix_root}"
    resumed = runner.invoke(
        app, ["patch", "--resume", patch_id, "--repository", mount, "--json"], env=env
    )
    assert resumed.exit_code == 0, resumed.output
    doc = json.loads(resumed.output)
    assert doc["resumed"] and doc["step"] == "done" and doc["patch_id"] == patch_id
    anyio.run(_check_done, localstack, bench, ids, tmp_path)


async def _protect(localstack: LocalStack, bench: Bench, dataset_id: str) -> None:
    async with ProvenaClient(localstack.config(access_token=bench.lab.member.token)) as pv:
        tagged = await pv.registry_client.tag_dataset(dataset_id, bench.vocabulary.protected_tag)
        assert tagged.protected


def test_patch_force_makes_a_protected_files_new_bytes_a_new_revision(
    localstack: LocalStack, new_user: Callable[..., User], tmp_path: Path
) -> None:
    bench, ids, paths, _ = anyio.run(
        lambda: _setup(localstack, new_user, tmp_path, interrupt=False)
    )
    anyio.run(_protect, localstack, bench, ids[0])
    env = _env(localstack, bench, tmp_path)
    args = ["patch", *map(str, paths), "--repository", f"{bench.posix}={bench.posix_root}"]
    refused = runner.invoke(app, [*args, "--json"], env=env)
    assert refused.exit_code == 1, refused.output
    error = json.loads(refused.output)["error"]
    assert error["kind"] == "protected" and "--force" in error["message"]
    dry = runner.invoke(app, [*args, "--force", "--dry-run"], env=env)
    assert dry.exit_code == 0 and "new revision" in dry.output, dry.output
    done = runner.invoke(app, [*args, "--force", "--json"], env=env)
    assert done.exit_code == 0, done.output
    files = {f["dataset"]: f for f in json.loads(done.output)["files"]}
    assert files[ids[0]]["new_revision"] and files[ids[0]]["new_dataset"]
    assert files[ids[1]]["new_revision"] is None
