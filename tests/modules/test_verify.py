"""``InteractiveDataset.verify`` against the real stack: the sync comparison, read-only."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

from provena_like import ProvenaClient, UsageError
from provena_like.cli.main import app
from provena_like.modules.interactive import InteractiveDataset
from provena_like.testing.localstack import LocalStack
from tests.support.cli_runner import CliRunner

pytestmark = pytest.mark.anyio

APPROVALS = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")
# what an interrupted download leaves beside a.csv: a resumable file, its sidecar, a temp file
PARTIALS = (".a.csv.provena-partial", ".a.csv.provena-partial.json", ".b.csv.1f2e3d4c.partial")


def make_record(refs: dict[str, str]) -> dict[str, Any]:
    return {
        "associations": {
            "organisation_id": refs["organisation"],
            "point_of_contact": refs["person"],
        },
        "approvals": {a: {"relevant": False, "obtained": False} for a in APPROVALS},
        "dataset_info": {
            "name": f"Verified {uuid.uuid4().hex[:6]}",
            "description": "Files checked against the manifest.",
            "access_info": {"reposited": True},
            "publisher_id": refs["organisation"],
            "created_date": "2024-01-01",
            "published_date": "2024-06-30",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["verify"],
        },
    }


async def uploaded_copy(
    pv: ProvenaClient, refs: dict[str, str], tmp_path: Path
) -> tuple[InteractiveDataset, Path]:
    """A dataset with four registered files, and a downloaded copy of them."""
    ds = await pv.datastore.mint(make_record(refs))
    src = tmp_path / "src"
    for name in ("a.csv", "b.csv", "c.csv", "raw/d.csv"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(os.urandom(300))
    (await ds.upload(src)).raise_for_failures()
    dest = tmp_path / "copy"
    (await ds.sync_down(dest)).raise_for_failures()
    return ds, dest


async def test_verify_reports_match_mismatch_and_missing_on_both_sides(
    tmp_path: Path, pv: ProvenaClient, refs: dict[str, str]
) -> None:
    ds, dest = await uploaded_copy(pv, refs, tmp_path)
    manifest = {f.path: f.sha256 for f in await ds.list_files()}

    clean = await ds.verify(dest)
    assert clean.matches and len(clean) == 4
    assert {f.path: f.sha256 for f in clean.ok} == manifest

    # same size, new bytes, mtime put back: only reading the bytes can tell
    before = (dest / "b.csv").stat()
    (dest / "b.csv").write_bytes(os.urandom(300))
    os.utime(dest / "b.csv", ns=(before.st_atime_ns, before.st_mtime_ns))
    (dest / "raw" / "d.csv").write_bytes(b"shorter")
    (dest / "c.csv").unlink()
    (dest / "extra.csv").write_bytes(b"not registered")

    result = await ds.verify(dest)
    assert not result.matches
    statuses = {f.path: f.status for f in result}
    assert statuses == {
        "a.csv": "ok",
        "b.csv": "mismatch",
        "c.csv": "missing-local",
        "raw/d.csv": "mismatch",
        "extra.csv": "missing-remote",
    }
    reasons = {f.path: f.reason or "" for f in result}
    assert reasons["b.csv"].startswith("sha256 ") and manifest["b.csv"] in reasons["b.csv"]
    assert reasons["raw/d.csv"] == "size 7, expected 300"
    assert [f.path for f in result.differences] == ["b.csv", "c.csv", "raw/d.csv"]
    assert [f.path for f in result.missing_remote] == ["extra.csv"]

    # include/exclude select as for sync; a selection by path maps as for download
    only = await ds.verify(dest, include=["*.csv"], exclude=["raw/*", "extra*"])
    assert {f.path for f in only} == {"a.csv", "b.csv", "c.csv"}
    folder = await ds.verify(dest / "raw", paths="raw/")
    assert [(f.path, f.status) for f in folder] == [("raw/d.csv", "mismatch")]

    # sync_down agrees with verify on what differs, and after it verify finds nothing
    plan = await ds.sync_down(dest, dry_run=True, delete=True)
    assert {f.path: f.reason for f in plan.skipped} == {
        "a.csv": "unchanged",
        "b.csv": "would download",
        "c.csv": "would download",
        "raw/d.csv": "would download",
        "extra.csv": "would delete",
    }
    (await ds.sync_down(dest, delete=True)).raise_for_failures()
    assert (await ds.verify(dest)).matches

    with pytest.raises(UsageError):
        await ds.verify(dest / "a.csv")
    with pytest.raises(UsageError, match="nope"):
        await ds.verify(dest, paths=["nope"])


async def test_verify_ignores_partial_downloads_exactly_as_sync_does(
    tmp_path: Path, pv: ProvenaClient, refs: dict[str, str]
) -> None:
    ds, dest = await uploaded_copy(pv, refs, tmp_path)
    for name in PARTIALS:
        (dest / name).write_bytes(b"half a download")
    # a file whose name merely mentions "partial" is a file like any other
    (dest / "partial-results.csv").write_bytes(b"mine")

    result = await ds.verify(dest)
    assert [(f.path, f.status) for f in result.missing_remote] == [
        ("partial-results.csv", "missing-remote")
    ]
    assert len(result.ok) == 4
    plan = await ds.sync_down(dest, dry_run=True, delete=True)
    assert [f.path for f in plan.skipped if f.reason == "would delete"] == ["partial-results.csv"]


async def test_cli_verify_formats_the_sdk_result(
    localstack: LocalStack, tmp_path: Path, pv: ProvenaClient, refs: dict[str, str]
) -> None:
    ds, dest = await uploaded_copy(pv, refs, tmp_path)
    (dest / PARTIALS[0]).write_bytes(b"half")
    (dest / "partial-results.csv").write_bytes(b"mine")
    (dest / "c.csv").unlink()
    env = {
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_TOKEN_DIR": str(localstack.data_dir / "tokens" / localstack.user.username),
    }

    def verify_cli() -> Any:
        return CliRunner().invoke(
            app, ["verify", ds.id, str(dest), "--json"], env=env, catch_exceptions=False
        )

    out = await anyio.to_thread.run_sync(verify_cli)
    assert out.exit_code == 1
    doc = json.loads(out.stdout)
    assert (doc["action"], doc["ok"], doc["skipped"], doc["failed"]) == ("verify", 3, 1, 1)
    files = {f["path"]: (f["status"], f["reason"]) for f in doc["files"]}
    assert files["c.csv"] == ("failed", "missing")
    assert files["partial-results.csv"] == ("skipped", "not in the manifest")
    assert PARTIALS[0] not in files
