"""L3 end to end: mint, upload, list, download, version, metadata — against the real stack."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import anyio
import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import Conflict, PreconditionFailed, UnsafePath, UsageError
from provena_like.modules.selection import select_files
from provena_like.storage import TransferProgress
from tests.support.l3_helpers import make_record
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio


def _tree(root: Path) -> dict[str, bytes]:
    files = {
        "README.md": b"# reef\n",
        "raw/a.csv": b"t,temp\n0,21.5\n" * 100,
        "raw/b.csv": os.urandom(3000),
        "raw/deep/c.bin": os.urandom(70_000),
        "notes/skip.tmp": b"scratch",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_upload_list_download_round_trip(
    pv: ProvenaClient, refs: dict[str, str], tmp_path: Path
) -> None:
    ds = await pv.datastore.mint(make_record(refs, name=f"Round trip {uuid.uuid4().hex[:6]}"))
    src = tmp_path / "src"
    files = _tree(src)
    events: list[TransferProgress] = []
    result = await ds.upload(
        src,
        exclude=["*.tmp"],
        progress=lambda e: events.append(e) if isinstance(e, TransferProgress) else None,
    )  # noqa: E501
    assert sorted(f.path for f in result.ok) == sorted(p for p in files if not p.endswith(".tmp"))
    assert not result.failed
    assert events and events[-1].files_done == 4

    manifest = {f.path: f for f in await ds.list_files()}
    assert set(manifest) == {"README.md", "raw/a.csv", "raw/b.csv", "raw/deep/c.bin"}
    assert all(manifest[p].sha256 == _sha(files[p]) for p in manifest)

    # the whole dataset
    everything = await ds.download(tmp_path / "all")
    assert len(everything.ok) == 4 and not everything.failed
    assert (tmp_path / "all" / "raw" / "deep" / "c.bin").read_bytes() == files["raw/deep/c.bin"]

    # Provena semantics: a folder without a slash is the folder itself ...
    folder = await ds.download(tmp_path / "folder", paths="raw")
    assert (tmp_path / "folder" / "raw" / "a.csv").exists()
    assert len(folder.ok) == 3
    # ... with a slash its contents, and a file is the file
    contents = await ds.download(tmp_path / "contents", paths=["raw/", "README.md"])
    assert (tmp_path / "contents" / "deep" / "c.bin").exists()
    assert (tmp_path / "contents" / "README.md").exists()
    assert len(contents.ok) == 4

    missing = await ds.download(tmp_path / "none", paths=["nope/"])
    assert [f.path for f in missing.failed] == ["nope/"]


async def test_upload_into_a_prefix_and_file_list(
    pv: ProvenaClient, refs: dict[str, str], tmp_path: Path
) -> None:
    ds = await pv.datastore.mint(make_record(refs, name=f"Prefixed {uuid.uuid4().hex[:6]}"))
    one = tmp_path / "one.txt"
    one.write_text("one")
    two = tmp_path / "two.txt"
    two.write_text("two")
    result = await ds.upload([one, two], prefix="inbox/")
    assert sorted(f.path for f in result.ok) == ["inbox/one.txt", "inbox/two.txt"]
    assert [f.path for f in await ds.list_files(prefix="inbox/")] == [
        "inbox/one.txt",
        "inbox/two.txt",
    ]
    # uploading the reserved metadata.json is refused per file, the rest goes on
    meta = tmp_path / "metadata.json"
    meta.write_text("{}")
    refused = await ds.upload([meta, one])
    assert [f.path for f in refused.failed] == ["metadata.json"]
    assert [f.path for f in refused.ok] == ["one.txt"]


async def test_presigned_url_and_cloudpath(
    pv: ProvenaClient, refs: dict[str, str], tmp_path: Path
) -> None:
    ds = await pv.datastore.mint(make_record(refs, name=f"Links {uuid.uuid4().hex[:6]}"))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "table.csv").write_text("a,b\n1,2\n")
    await ds.upload(tmp_path / "d")
    link = await ds.presigned_url("table.csv", expires_in=60)
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        got = await http.get(link.url)
    assert got.status_code == 200 and got.text == "a,b\n1,2\n"

    path = await ds.path("table.csv")
    assert await anyio.to_thread.run_sync(path.read_text) == "a,b\n1,2\n"


async def test_metadata_update_conflict_revert_and_version(
    pv: ProvenaClient, refs: dict[str, str], tmp_path: Path
) -> None:
    ds = await pv.datastore.mint(make_record(refs, name=f"Versioned {uuid.uuid4().hex[:6]}"))
    other = await pv.datastore.interactive(ds.id)
    await ds.update_metadata(
        make_record(refs, name=ds.record.dataset_info.name, purpose="calibration"),
        reason="add purpose",
    )
    with pytest.raises(PreconditionFailed):  # `other` still holds the old revision
        await other.update_metadata(make_record(refs, name="stale"), reason="stale write")
    history = await ds.history()
    assert [h.reason for h in history][0] == "add purpose"
    first = history[-1]
    await ds.revert_metadata(first.id, reason="undo")
    assert ds.record.dataset_info.purpose is None

    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "x.txt").write_text("x")
    await ds.upload(tmp_path / "v1")
    v2 = await ds.version(reason="recalibrated", copy_files=True)
    assert v2.id != ds.id and v2.dataset.versioning.version == 2
    assert ds.dataset.versioning.next == v2.id
    assert [f.path for f in await v2.list_files()] == ["x.txt"]
    got = await v2.download(tmp_path / "v2")
    assert (tmp_path / "v2" / "x.txt").read_text() == "x"
    assert len(got.ok) == 1


async def test_credentials_are_cached_and_registry_refuses_dataset_edits(
    pv: ProvenaClient, refs: dict[str, str]
) -> None:
    ds = await pv.datastore.mint(make_record(refs, name=f"Cached {uuid.uuid4().hex[:6]}"))
    first = await ds.credentials("write")
    again = await ds.credentials("write")
    assert first is again
    assert first.prefix == ds.dataset.storage.prefix
    forced = await pv.datastore.credentials(ds.id, "write", force=True)
    assert forced is not first
    with pytest.raises(Conflict):
        await pv.registry_client.update_item(
            ds.id, {"record": ds.dataset.record.model_dump(mode="json"), "reason": "sneaky"}
        )


async def test_search_and_iterate(pv: ProvenaClient, refs: dict[str, str]) -> None:
    tag = uuid.uuid4().hex[:8]
    ds = await pv.datastore.mint(make_record(refs, name=f"Seagrass {tag} survey"))
    hits = [hit async for hit in pv.datastore.search(f"seagrass {tag}")]
    assert [h.item.id for h in hits] == [ds.id]
    mine = [d.id async for d in pv.datastore.iter_datasets(keyword="reef", max_items=10_000)]
    assert ds.id in mine


async def test_download_refuses_escaping_keys_before_touching_disk(tmp_path: Path) -> None:
    from provena_like.models.datastore import ManifestEntry

    bad = ManifestEntry.model_construct(path="../escape.txt", size=1, sha256="0" * 64)
    selection = select_files([bad], None)
    assert selection.files == [("../escape.txt", "../escape.txt", "0" * 64, 1)]
    from provena_like.storage import local_target

    with pytest.raises(UnsafePath):
        local_target(tmp_path, "../escape.txt")
    assert list(tmp_path.iterdir()) == []


async def test_validate_list_refresh_and_fetch(pv: ProvenaClient, refs: dict[str, str]) -> None:
    good = await pv.datastore.validate(make_record(refs))
    assert good.valid and good.errors == []
    bad_record = make_record(refs)
    bad_record["associations"]["organisation_id"] = "10378.1/999999"
    checked = await pv.datastore.validate(bad_record)
    assert not checked.valid
    assert [e.field for e in checked.errors] == ["record.associations.organisation_id"]
    bad_record["dataset_info"]["license"] = "not a url"
    checked = await pv.datastore.validate(bad_record)
    assert any(e.field.endswith("license") for e in checked.errors)
    with pytest.raises(UsageError, match="license"):  # mint checks the record before sending
        await pv.datastore.mint(bad_record)

    tag = uuid.uuid4().hex[:8]
    ds = await pv.datastore.mint(make_record(refs, name=f"Listed {tag}", keywords=[tag]))
    page = await pv.datastore.list_datasets(keyword=tag, page_size=5)
    assert [d.id for d in page.items] == [ds.id] and page.next_cursor is None
    fetched = await pv.datastore.fetch(ds.id, include_history=True)
    assert fetched.history is not None and len(fetched.history) == 1
    assert "admin" in fetched.roles

    old_revision = ds.dataset.revision
    again = await pv.datastore.interactive(ds.id)
    await again.update_metadata(make_record(refs, name=f"Renamed {tag}"), reason="rename")
    assert (await ds.refresh()).revision == old_revision + 1
    assert ds.dataset.display_name == f"Renamed {tag}"


async def test_upload_refuses_colliding_names_and_missing_paths(
    pv: ProvenaClient, refs: dict[str, str], tmp_path: Path
) -> None:
    ds = await pv.datastore.mint(make_record(refs, name=f"Collide {uuid.uuid4().hex[:6]}"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.txt").write_text("a")
    (tmp_path / "b" / "x.txt").write_text("b")
    with pytest.raises(UsageError, match="both be uploaded"):
        await ds.upload([tmp_path / "a" / "x.txt", tmp_path / "b" / "x.txt"])
    with pytest.raises(UsageError, match="neither a file nor a folder"):
        await ds.upload(tmp_path / "typo")
    assert await ds.list_files() == []
