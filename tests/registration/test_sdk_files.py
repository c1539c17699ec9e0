"""``pv.registration.register_files`` end to end: atomic requests, protection, force, cache."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import PreconditionFailed
from provena_like.clients.registry import RegistryClient
from provena_like.models.registration import FileRegistration, UnchangedFile
from provena_like.storage import HashingProgress, TransferEvent
from tests.support.registration_helpers import unique
from tests.support.registration_sdk import SdkVocabulary, write_file

pytestmark = pytest.mark.anyio

DAY = "2026-12-06"


@pytest.fixture
async def protected_tag(admin_pv: ProvenaClient) -> str:
    tag = await admin_pv.registry_client.create_item(
        {
            "subtype": "tag",
            "record": {"name": unique("frozen"), "protected": True},
            "general": ["metadata-read"],
        }
    )
    return tag.id


async def datasets(lab_pv: ProvenaClient, session_dir: Path) -> list[tuple[str, bool]]:
    """(rel_path, default) of every registered revision of the session, in server order."""
    subject = session_dir.parent.parent.name
    return [
        (d.rel_path, d.default)
        async for d in lab_pv.registration.iter_datasets(subject=subject)
        if d.collection.startswith("alf")
    ]


async def test_register_files_registers_each_session_atomically_and_aligned(
    lab_pv: ProvenaClient, vocab: SdkVocabulary, session_dir: Path
) -> None:
    paths = [
        write_file(session_dir / "alf" / vocab.name(0), b"zero"),
        write_file(session_dir / "alf" / "notes.unknownext", b"skipped, not failed"),
        write_file(session_dir / "alf" / "probe00" / vocab.name(1), b"one"),
    ]
    result = await lab_pv.registration.register_files(paths, versions="1.0")
    assert [f.status for f in result] == ["registered", "skipped", "registered"]
    assert [f.path for f in result] == paths
    assert result[0].response.status == "registered"
    assert result[0].response.dataset.sha256 == hashlib.sha256(b"zero").hexdigest()
    assert result[0].response.dataset.version == "1.0"
    assert await datasets(lab_pv, session_dir) == [
        (f"alf/{vocab.name(0)}", True),
        (f"alf/probe00/{vocab.name(1)}", True),
    ]


async def test_dry_run_writes_nothing_and_returns_the_servers_plan(
    lab_pv: ProvenaClient, vocab: SdkVocabulary, session_dir: Path, protected_tag: str
) -> None:
    path = write_file(session_dir / "alf" / vocab.name(0), b"zero")
    plan = await lab_pv.registration.register_files([path], dry_run=True)
    assert [f.status for f in plan] == ["planned"]
    assert plan[0].response.status == "registered" and plan[0].response.dataset.id is None
    assert await datasets(lab_pv, session_dir) == []

    done = await lab_pv.registration.register_files([path])
    await lab_pv.registry_client.tag_dataset(done[0].response.dataset.id, protected_tag)
    forced = await lab_pv.registration.register_files([path], dry_run=True, force=True)
    # the plan says where the file would go; nothing moved, nothing registered
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert forced[0].status == "planned"
    assert forced[0].moved_to == session_dir / "alf" / f"#{today}#" / vocab.name(0)
    assert path.exists() and not (session_dir / "alf" / f"#{today}#").exists()
    assert await datasets(lab_pv, session_dir) == [(f"alf/{vocab.name(0)}", True)]


async def test_protected_refuses_the_whole_request_and_force_moves_to_the_next_revision(
    lab_pv: ProvenaClient, vocab: SdkVocabulary, session_dir: Path, protected_tag: str
) -> None:
    alf = session_dir / "alf"
    first = write_file(alf / vocab.name(0), b"v1")
    done = await lab_pv.registration.register_files([first])
    await lab_pv.registry_client.tag_dataset(done[0].response.dataset.id, protected_tag)

    write_file(first, b"v2")
    other = write_file(alf / vocab.name(1), b"new dataset in the same request")
    refused = await lab_pv.registration.register_files([first, other])
    assert [f.status for f in refused] == ["failed", "failed"]
    assert all(isinstance(f.error, PreconditionFailed) for f in refused)
    # atomic: the unprotected file of the same request was not registered either
    assert await datasets(lab_pv, session_dir) == [(f"alf/{vocab.name(0)}", True)]
    assert first.exists()

    # ONE's table: no revision in the path, the newest ("") protected -> today's revision
    today = dt.datetime.now(dt.UTC).date().isoformat()
    forced = await lab_pv.registration.register_files([first, other], force=True)
    assert [f.status for f in forced] == ["registered", "registered"]
    moved = alf / f"#{today}#" / vocab.name(0)
    assert (forced[0].moved_from, forced[0].moved_to) == (first, moved)
    assert forced[1].moved_to is None and other.exists()
    assert moved.read_bytes() == b"v2" and not first.exists()
    assert forced[0].rel_path == f"alf/#{today}#/{vocab.name(0)}"
    assert result_list(await datasets(lab_pv, session_dir)) == [
        (f"alf/{vocab.name(0)}", False),
        (f"alf/{vocab.name(1)}", True),
        (f"alf/#{today}#/{vocab.name(0)}", True),
    ]

    # that revision protected too: the path's revision is protected -> next_revision
    await lab_pv.registry_client.tag_dataset(forced[0].response.dataset.id, protected_tag)
    write_file(moved, b"v3")
    again = await lab_pv.registration.register_files([moved], force=True)
    assert again[0].status == "registered"
    assert again[0].moved_to == alf / f"#{today}a#" / vocab.name(0)
    # the old path names the protected revision; the new one a free one
    newest = alf / f"#{today}a#" / vocab.name(0)
    checks = await lab_pv.registration.check_protected_files([moved, newest])
    assert [c.protected for c in checks] == [True, False]
    revisions = [(r.revision, r.protected) for r in checks[0].revisions]
    assert revisions == [(f"{today}a", False), (today, True), ("", True)]


def result_list(rows: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    return sorted(rows, key=lambda row: (row[0].count("#"), row[0]))


async def test_reregistering_unchanged_files_reads_none_of_them(
    lab_pv: ProvenaClient,
    vocab: SdkVocabulary,
    session_dir: Path,
    reads: list[Path],
) -> None:
    paths = [
        write_file(session_dir / "alf" / f"c{i}" / vocab.name(i % 2), b"x" * i) for i in range(6)
    ]
    first = await lab_pv.registration.register_files(paths)
    assert len(reads) == 6 and [f.response.status for f in first] == ["registered"] * 6
    reads.clear()
    second = await lab_pv.registration.register_files(paths)
    assert reads == []
    assert [f.response.status for f in second] == ["unchanged"] * 6
    # the server answered them compactly: per file, in order, the revision's id
    assert all(isinstance(f.response, UnchangedFile) for f in second)
    assert [f.response.dataset_id for f in second] == [f.response.dataset_id for f in first]
    assert [f.response.path for f in second] == [f.rel_path for f in first]
    # one file changed among unchanged ones: that one is answered in full, in its place
    write_file(paths[3], b"changed")
    third = await lab_pv.registration.register_files(paths)
    assert [f.response.status for f in third] == ["unchanged"] * 3 + ["updated"] + ["unchanged"] * 2
    assert isinstance(third[3].response, FileRegistration)
    assert third[3].response.dataset.sha256 == hashlib.sha256(b"changed").hexdigest()
    assert [f.response.dataset_id for f in third] == [f.response.dataset_id for f in first]


async def test_register_files_reports_the_hashing_before_registering(
    lab_pv: ProvenaClient, vocab: SdkVocabulary, session_dir: Path
) -> None:
    big = write_file(session_dir / "alf" / vocab.name(0), os.urandom(3 * 1024 * 1024 + 5))
    small = write_file(session_dir / "alf" / "probe00" / vocab.name(1), b"one")
    total = big.stat().st_size + 3
    events: list[TransferEvent] = []
    result = await lab_pv.registration.register_files([big, small], progress=events.append)
    assert [f.status for f in result] == ["registered", "registered"]
    hashing = [e for e in events if isinstance(e, HashingProgress)]
    assert hashing == events  # a registration moves no bytes: the hashing is its progress
    assert hashing[0] == HashingProgress(0, 2, 0, total)  # the phase begins: the bytes to hash
    assert hashing[-1] == HashingProgress(2, 2, total, total)
    assert [e.bytes_done for e in hashing] == sorted(e.bytes_done for e in hashing)

    # again: both hashes come from the hash cache, so nothing is left to hash
    again: list[TransferEvent] = []
    await lab_pv.registration.register_files([big, small], progress=again.append)
    assert again[0] == HashingProgress(0, 2, 0, total)
    assert again[-1] == HashingProgress(2, 2, 0, 0)


async def test_reregistering_unchanged_files_sends_no_file_documents(
    lab_pv: ProvenaClient,
    vocab: SdkVocabulary,
    session_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths = [
        write_file(session_dir / "alf" / f"c{i}" / vocab.name(0), b"u%d" % i) for i in range(4)
    ]
    first = await lab_pv.registration.register_files(paths, versions="1.0")
    assert [f.response.status for f in first] == ["registered"] * 4
    sent: list[list[str]] = []
    post_files = RegistryClient._post_files

    async def spy(self: RegistryClient, session: str, body: dict[str, Any], **kw: Any) -> Any:
        sent.append([f["path"] for f in body["files"]])
        return await post_files(self, session, body, **kw)

    monkeypatch.setattr(RegistryClient, "_post_files", spy)
    # unchanged: one digest, no file documents; the same results as a compact answer
    again = await lab_pv.registration.register_files(paths, versions="1.0")
    assert sent == []
    assert all(isinstance(f.response, UnchangedFile) for f in again)
    assert [(f.status, f.response.status) for f in again] == [("registered", "unchanged")] * 4
    assert [f.response.dataset_id for f in again] == [f.response.dataset_id for f in first]
    assert [f.response.index for f in again] == [0, 1, 2, 3]
    # each change is seen: the registration is sent and does what it says
    write_file(paths[1], b"a changed byte")
    added = write_file(session_dir / "alf" / "c9" / vocab.name(0), b"added")
    changed = await lab_pv.registration.register_files([*paths, added])
    assert [f.response.status for f in changed] == ["unchanged", "updated", "unchanged"] + [
        "unchanged",
        "registered",
    ]
    moved = await lab_pv.registration.register_files(paths[:1], revision="v2")
    assert moved[0].moved_to is not None and moved[0].response.status == "registered"
    assert len(sent) == 2
    # a subset of the session's files is not its registered revisions: sent, unchanged
    subset = await lab_pv.registration.register_files(paths[2:])
    assert [f.response.status for f in subset] == ["unchanged"] * 2 and len(sent) == 3


async def test_revision_argument_moves_files_into_that_folder(
    lab_pv: ProvenaClient, vocab: SdkVocabulary, session_dir: Path
) -> None:
    path = write_file(session_dir / "alf" / vocab.name(0), b"r")
    result = await lab_pv.registration.register_files([path], revision="v2")
    assert result[0].moved_to == session_dir / "alf" / "#v2#" / vocab.name(0)
    assert result[0].response.dataset.revision == "v2"


async def test_create_sessions_keeps_the_flag_of_a_refused_session(
    lab_pv: ProvenaClient, vocab: SdkVocabulary, session_dir: Path, protected_tag: str
) -> None:
    path = write_file(session_dir / "alf" / vocab.name(0), b"v1")
    done = await lab_pv.registration.register_files([path])
    await lab_pv.registry_client.tag_dataset(done[0].response.dataset.id, protected_tag)
    write_file(path, b"v2")
    flag = write_file(session_dir / "create_me.flag", b"")
    outcomes = await lab_pv.registration.create_sessions(
        session_dir.parents[4], register_files=True
    )
    [outcome] = [o for o in outcomes if o.flag == flag]
    assert not outcome.flag_removed and flag.exists()
    assert isinstance(outcome.error, PreconditionFailed)


async def test_force_moves_into_the_newest_unprotected_date_revision(
    lab_pv: ProvenaClient, vocab: SdkVocabulary, session_dir: Path, protected_tag: str
) -> None:
    # ONE's table: no revision in the path, "" protected, the newest revision an unprotected
    # date -> the file joins that revision
    alf = session_dir / "alf"
    bare = write_file(alf / vocab.name(0), b"v1")
    done = await lab_pv.registration.register_files([bare])
    await lab_pv.registry_client.tag_dataset(done[0].response.dataset.id, protected_tag)
    dated = write_file(alf / "#2026-01-01#" / vocab.name(0), b"v2")
    await lab_pv.registration.register_files([dated])
    write_file(bare, b"v3")
    # a move never overwrites a local file: the revision folder holds that file already
    refused = await lab_pv.registration.register_files([bare], force=True)
    assert refused[0].status == "failed" and "not overwriting" in str(refused[0].reason)
    assert bare.read_bytes() == b"v3" and dated.read_bytes() == b"v2"
    dated.unlink()  # (e.g. that revision was registered from another machine)
    forced = await lab_pv.registration.register_files([bare], force=True)
    assert forced[0].status == "registered"
    assert (forced[0].moved_from, forced[0].moved_to) == (bare, dated)
    assert forced[0].response.status == "updated"
    assert dated.read_bytes() == b"v3" and not bare.exists()


def test_session_folders_split_like_split_session_path(tmp_path: Path) -> None:
    from provena_like.alf import split_session_path
    from provena_like.modules.registration import _SessionFolders

    session = tmp_path / "lab" / "Subjects" / "KS023" / "2026-12-06" / "001"
    paths = [
        session / "alf" / "probe00" / "spikes.times.npy",
        session / "alf" / "probe00" / "spikes.clusters.npy",
        session / "trials.table.pqt",
        session / "alf" / "#v2#" / "wheel.position.npy",
        session.parent / "002",  # the file name is the session's number: not the folder's
        session.parent / "003",
    ]
    folders = _SessionFolders()
    for path in paths:
        root, ses, rest = split_session_path(path)
        assert folders.split(path) == (Path(root), ses, rest)


def test_session_folders_split_paths_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative paths and ``..`` steps split like their absolute paths (folders as given)."""
    from provena_like.alf import split_session_path
    from provena_like.modules.registration import _SessionFolders

    monkeypatch.chdir(tmp_path)
    session = Path("lab", "Subjects", "KS023", "2026-12-06", "001")
    given = [
        session / "alf" / "spikes.times.npy",
        session / "alf" / "spikes.clusters.npy",
        session / "alf" / ".." / "trials.table.pqt",  # the session's folder, by a step
        session / "alf" / ".." / "wheel.position.npy",
        session / "alf" / "#v2#" / ".." / "licks.times.npy",
        session / "alf" / "..",  # the session's folder itself
        session.parent / "002" / "alf" / ".." / "trials.table.pqt",
        str(session / "alf" / "spikes.depths.npy"),
    ]
    folders = _SessionFolders()
    for path in given:
        root, ses, rest = split_session_path(os.path.abspath(path))
        assert folders.split(Path(path)) == (Path(root), ses, rest), path
