"""``pv.archive`` end to end against the session server: publish, discover, retrieve.

Two sessions' raw files on a laptop's local endpoint go to a storage location (a local
collection) in one task; the records are deleted and rebuilt by discover; retrieve brings
identical bytes back to a second folder and refuses to write over the originals; paths that
don't fit the layout are reported; a task that fails records nothing and a re-run completes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import responses
from globus_sdk.testing import load_response

from provena_like import ProvenaClient
from provena_like.clients.transfer import TransferClient
from provena_like.models.archive import Layout
from provena_like.modules.archive import Archive, ArchiveRefused
from tests.archive.conftest import ArchivePlace
from tests.support.globus_responses import event_list, register, register_task, sent_json, task_doc
from tests.support.registration_helpers import Lab, make_subject, post_session

pytestmark = pytest.mark.anyio


async def _session(client: httpx.AsyncClient, lab: Lab, day: str) -> tuple[str, str]:
    """A new subject's session on ``day``: (handle, ALF folder without the lab)."""
    subject = await make_subject(client, lab)
    r = await post_session(client, lab.member, {"subject": subject["id"], "date": day})
    assert r.status_code == 201, r.text
    return r.json()["id"], f"{subject['record']['nickname']}/{day}/001"


def _write(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _key(records: list[object]) -> set[tuple[object, ...]]:
    return {(r.session, r.path, r.size, r.sha256) for r in records}  # type: ignore[attr-defined]


async def test_publish_discover_retrieve_end_to_end(
    client: httpx.AsyncClient, pv: ProvenaClient, lab: Lab, place: ArchivePlace
) -> None:
    s1, f1 = await _session(client, lab, "2026-12-01")
    s2, f2 = await _session(client, lab, "2026-12-02")
    data = place.laptop.directory / "data"
    originals = {
        f"{lab.name}/{f1}/raw_ephys_data/probe00/a.ap.bin": b"probe 0 of session 1" * 100,
        f"{lab.name}/{f1}/raw_ephys_data/probe00/a.ap.meta": b"meta 1",
        f"{lab.name}/{f2}/raw_ephys_data/probe01/b.ap.bin": b"probe 1 of session 2" * 50,
    }
    for rel, blob in originals.items():
        _write(data, rel, blob)
    _write(data, f"{lab.name}/{f1}/alf/not_raw.npy", b"not raw: not archived")

    planned = await pv.archive.publish(place.kind, sessions=[s1, s2], local=place.laptop,
                                       source=data, dry_run=True)  # fmt: skip
    assert planned.count("planned") == 3 and planned.tasks == {} and not place.archive_dir.exists()

    published = await pv.archive.publish(place.kind, sessions=[s1, s2], local=place.laptop,
                                         source=data)  # fmt: skip
    assert published.ok, (published.problems, published.files)
    assert published.count("archived") == 3 and len(published.tasks) == 1  # ONE task
    (task_id,) = published.tasks.values()
    assert _tree(place.archive_dir) == originals  # the layout, not the alf/ file
    records = await pv.archive.ls(place.kind)
    assert {r.path: r.sha256 for r in records} == {
        rel: hashlib.sha256(blob).hexdigest() for rel, blob in originals.items()
    }
    assert {r.task_id for r in records} == {task_id} and all(r.source for r in records)

    again = await pv.archive.publish(place.kind, sessions=[s1, s2], local=place.laptop,
                                     source=data)  # fmt: skip
    assert again.count("already") == 3 and again.tasks == {}  # nothing new is sent

    # retrieve onto the originals it was published from: refused, nothing written
    with pytest.raises(ArchiveRefused, match="original") as refused:
        await pv.archive.retrieve(place.kind, dest=data, local=place.laptop, session=s1)
    assert len(refused.value.paths) == 2 and _tree(data / lab.name) == {
        k.removeprefix(f"{lab.name}/"): v for k, v in originals.items()
    } | {f"{f1}/alf/not_raw.npy": b"not raw: not archived"}

    # the records lost: discover rebuilds the same ones, and reports what doesn't fit
    _write(place.archive_dir, "stray.txt", b"not in the layout")
    _write(place.archive_dir, f"{lab.name}/{f1}/notes.txt", b"matches no pattern")
    _write(place.archive_dir, f"{lab.name}/nobody/2026-12-01/001/raw_ephys_data/x.bin", b"?")
    for session in (s1, s2):
        await pv.archive.records.delete_archived_files(place.location, session=session)
    assert await pv.archive.ls(place.kind) == []
    with pytest.MonkeyPatch.context() as patch:  # sessions are looked up, subjects not all read
        iter_items = pv.registry_client.iter_items

        def no_subject_listing(**kwargs: Any) -> Any:
            assert kwargs.get("subtype") != "subject", "discover listed every subject"
            return iter_items(**kwargs)

        patch.setattr(pv.registry_client, "iter_items", no_subject_listing)
        found = await pv.archive.discover(place.kind, local=place.laptop)
    rebuilt = await pv.archive.ls(place.kind)
    assert _key(rebuilt) == _key(records)
    unmatched = {u.path: u.reason for u in found.unmatched}
    assert set(unmatched) == {
        "stray.txt",
        f"{lab.name}/{f1}/notes.txt",
        f"{lab.name}/nobody/2026-12-01/001/raw_ephys_data/x.bin",
    }
    assert (
        "layout" in unmatched["stray.txt"] and "patterns" in unmatched[f"{lab.name}/{f1}/notes.txt"]
    )
    assert not list((place.laptop.directory / ".provena-spool").rglob("*"))

    # retrieve to a second folder: identical bytes; onto the originals: refused
    restore = place.laptop.directory / "restore"
    back = await pv.archive.retrieve(place.kind, dest=restore, local=place.laptop)
    assert back.ok and back.count("retrieved") == 3, back.files
    assert _tree(restore) == originals
    # rebuilt records don't know their source; an edited original is refused by its sha256
    _write(data, f"{lab.name}/{f1}/raw_ephys_data/probe00/a.ap.meta", b"edited since")
    with pytest.raises(ArchiveRefused, match="sha256 differs"):
        await pv.archive.retrieve(place.kind, dest=data, local=place.laptop, session=s1)
    assert (data / f"{lab.name}/{f1}/raw_ephys_data/probe00/a.ap.meta").read_bytes() == (
        b"edited since"
    )
    # an existing file whose checksum differs: refused, unless told
    _write(restore, f"{lab.name}/{f2}/raw_ephys_data/probe01/b.ap.bin", b"changed")
    with pytest.raises(ArchiveRefused, match="sha256 differs"):
        await pv.archive.retrieve(place.kind, dest=restore, local=place.laptop, session=s2)
    told = await pv.archive.retrieve(
        place.kind, dest=restore, local=place.laptop, session=s2, overwrite=True
    )
    assert told.count("retrieved") == 1 and _tree(restore) == originals


async def test_a_failed_task_records_nothing_and_a_rerun_completes(
    client: httpx.AsyncClient, pv: ProvenaClient, lab: Lab, place: ArchivePlace
) -> None:
    s1, f1 = await _session(client, lab, "2026-12-03")
    data = place.laptop.directory
    blob = b"raw bytes" * 10
    _write(data, f"{lab.name}/{f1}/raw_ephys_data/a.bin", blob)
    # a file where the archive needs the lab's folder: the task can't write there
    _write(place.archive_dir, lab.name, b"in the way")
    failed = await pv.archive.publish(place.kind, sessions=[s1], local=place.laptop)
    assert not failed.ok and failed.count("failed") == 1 and failed.tasks == {}
    assert await pv.archive.ls(place.kind) == []
    (place.archive_dir / lab.name).unlink()
    rerun = await pv.archive.publish(place.kind, sessions=[s1], local=place.laptop, read_back=True)
    assert rerun.ok and rerun.count("archived") == 1
    assert (place.archive_dir / lab.name / f1 / "raw_ephys_data/a.bin").read_bytes() == blob
    assert [r.path for r in await pv.archive.ls(place.kind)] == [
        f"{lab.name}/{f1}/raw_ephys_data/a.bin"
    ]


def test_layout_folders_parse_back_and_several_sessions_a_day_need_number() -> None:
    layout = Layout("{lab}/{subject}/{date}/{number:03d}")
    folder = layout.folder(lab="cortexlab", subject="KS023", date="2026-12-06", number=12)
    assert folder == "cortexlab/KS023/2026-12-06/012"
    parsed = layout.parse(folder + "/raw_ephys_data/probe00/a.bin")
    assert (
        parsed is not None
        and parsed[0].number == 12
        and parsed[1] == "raw_ephys_data/probe00/a.bin"
    )
    for bad in (folder, "cortexlab/KS023/2026-13-06/001/a", "cortexlab/KS023/2026-12-06/12/a"):
        assert layout.parse(bad) is None, bad
    daily = Layout("{subject}/{date}")
    assert daily.parse("KS023/2026-12-06/a.bin")[0].number == 1  # type: ignore[index]
    with pytest.raises(ValueError, match="session 1 of a day"):
        daily.folder(subject="KS023", date="2026-12-06", number=2)
    for bad in (
        "{subject}",
        "/{subject}/{date}",
        "{subject}/{date}/{probe}",
        "{subject}/../{date}",
    ):
        with pytest.raises(ValueError):
            Layout(bad)


async def test_a_paused_task_is_cancelled_records_nothing_and_a_rerun_completes(
    client: httpx.AsyncClient, pv: ProvenaClient, lab: Lab, place: ArchivePlace
) -> None:
    """Real Globus pauses tasks (INACTIVE), our service never does: registered responses."""
    s1, f1 = await _session(client, lab, "2026-12-05")
    rel = f"{lab.name}/{f1}/raw_ephys_data/a.bin"
    _write(place.laptop.directory, rel, b"paused bytes")
    responses.start()
    try:
        load_response("transfer.get_submission_id")
        task_id = load_response("transfer.submit_transfer").metadata["task_id"]
        paused = {"status": "INACTIVE", "nice_status": "PAUSED_BY_ADMIN", "is_paused": True}
        register_task(task_id, task_doc(task_id, completion_time=None, **paused))
        register(
            f"/v0.10/task/{task_id}/event_list", json_body=event_list([("PAUSED", "x", False)])
        )
        cancel = {"DATA_TYPE": "result", "code": "Canceled", "message": "canceled"}
        register(f"/v0.10/task/{task_id}/cancel", method="POST", json_body=cancel)
        async with TransferClient(max_retries=0) as globus:
            archive = Archive(pv.registry_client, pv.archive.records, globus, poll=0.01)
            result = await archive.publish(place.kind, sessions=[s1], local=place.laptop)
        cancels = [c for c in responses.calls if c.request.url.endswith(f"/task/{task_id}/cancel")]
        sent = sent_json(path_endswith="/v0.10/transfer")
    finally:
        responses.stop()
        responses.reset()
    (failed,) = result.files
    assert failed.status == "failed" and "INACTIVE" in (failed.reason or "") and not result.ok
    assert len(cancels) == 1 and result.tasks == {}
    assert (sent["sync_level"], sent["verify_checksum"]) == (3, True) and len(sent["DATA"]) == 1
    assert await pv.archive.ls(place.kind) == []  # nothing recorded
    rerun = await pv.archive.publish(place.kind, sessions=[s1], local=place.laptop)
    assert rerun.ok and [f.status for f in rerun.files] == ["archived"]
    assert [r.path for r in await pv.archive.ls(place.kind)] == [rel]
