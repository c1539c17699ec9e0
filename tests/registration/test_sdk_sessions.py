"""``pv.registration``: sessions, flags, weighings, and the local side of file registration."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import UsageError
from tests.support.registration_helpers import Lab, make_subject, unique
from tests.support.registration_sdk import SdkVocabulary, write_file

pytestmark = pytest.mark.anyio

DAY = "2026-12-06"


@pytest.fixture
async def subject(client: httpx.AsyncClient, lab: Lab) -> dict[str, Any]:
    return await make_subject(client, lab)


def nickname(subject: dict[str, Any]) -> str:
    return str(subject["record"]["nickname"])


async def test_create_session_numbers_come_from_the_server_and_folders_match(
    lab_pv: ProvenaClient, lab: Lab, subject: dict[str, Any], tmp_path: Path
) -> None:
    first = await lab_pv.registration.create_session(nickname(subject), date=DAY, root=tmp_path)
    # a folder of number 005 on disk changes nothing: the number is the server's
    (tmp_path / lab.name / "Subjects" / nickname(subject) / DAY / "005").mkdir(parents=True)
    second = await lab_pv.registration.create_session(
        subject["id"], date=DAY, lab=lab.name, root=tmp_path, task_protocol="training"
    )
    assert (first.number, second.number) == (1, 2)
    assert first.path == tmp_path / lab.name / "Subjects" / nickname(subject) / DAY / "001"
    assert second.path is not None and second.path.is_dir() and second.path.name == "002"
    assert second.item.record["task_protocol"] == "training"
    bare = await lab_pv.registration.create_session(nickname(subject), date=DAY, lab_folders=False)
    assert bare.path is None and str(bare.session) == f"{nickname(subject)}/{DAY}/003"


async def test_register_session_creates_with_the_path_number_then_updates(
    lab_pv: ProvenaClient, lab: Lab, subject: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / lab.name / "Subjects" / nickname(subject) / DAY / "7"
    folder.mkdir(parents=True)
    done = await lab_pv.registration.register_session(
        folder, users=[lab.member.name], file_list=False, start_time=f"{DAY}T09:00:00+00:00"
    )
    assert done.created and done.item.record["number"] == 7
    assert done.item.record["users"] == [lab.member.name]
    again = await lab_pv.registration.register_session(
        folder, file_list=False, task_protocol="ephys", lab=lab.name
    )
    assert not again.created and again.item.id == done.item.id
    assert again.item.record["task_protocol"] == "ephys"
    assert again.item.record["users"] == [lab.member.name]
    sessions = [s async for s in lab_pv.registration.iter_sessions(subject=nickname(subject))]
    assert [s.id for s in sessions] == [done.item.id]


async def test_register_session_names_the_part_that_disagrees_with_the_path(
    lab_pv: ProvenaClient, lab: Lab, subject: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / lab.name / "Subjects" / nickname(subject) / DAY / "001"
    folder.mkdir(parents=True)
    with pytest.raises(UsageError, match="^start_time: 2026-12-07 does not match"):
        await lab_pv.registration.register_session(
            folder, file_list=False, start_time="2026-12-07T09:00:00+00:00"
        )
    other = await lab_pv.registry_client.create_item(
        {"subtype": "lab", "record": {"name": unique("lab"), "group": lab.group}}
    )
    with pytest.raises(UsageError, match="^lab: .* does not match the lab in the path"):
        await lab_pv.registration.register_session(folder, file_list=False, lab=other.id)
    assert [s async for s in lab_pv.registration.iter_sessions(subject=subject["id"])] == []


async def test_create_sessions_removes_a_flag_only_after_its_session_registered(
    lab_pv: ProvenaClient, lab: Lab, subject: dict[str, Any], tmp_path: Path
) -> None:
    good = tmp_path / lab.name / "Subjects" / nickname(subject) / DAY / "002"
    bad = tmp_path / lab.name / "Subjects" / unique("nobody") / DAY / "001"
    for folder in (good, bad):
        write_file(folder / "create_me.flag", b"")
    # a file of an unknown extension is skipped; it doesn't fail the session
    write_file(good / "alf" / "notes.unknownext", b"x")

    planned = await lab_pv.registration.create_sessions(tmp_path, register_files=True, dry_run=True)
    assert sorted(o.session_path for o in planned) == sorted([good, bad])
    assert all(o.registration is None and not o.flag_removed for o in planned)
    assert [s async for s in lab_pv.registration.iter_sessions(subject=subject["id"])] == []

    outcomes = {
        o.session_path: o
        for o in await lab_pv.registration.create_sessions(tmp_path, register_files=True)
    }
    assert outcomes[good].flag_removed and not (good / "create_me.flag").exists()
    registered = outcomes[good].registration
    assert registered is not None and registered.files is not None
    assert [f.status for f in registered.files] == ["skipped"]
    assert outcomes[bad].error is not None and not outcomes[bad].flag_removed
    assert (bad / "create_me.flag").exists()
    assert isinstance(outcomes[bad].error, UsageError)
    assert "subject" in str(outcomes[bad].error)


async def test_weighings_and_water(
    lab_pv: ProvenaClient, lab: Lab, subject: dict[str, Any]
) -> None:
    weighing = await lab_pv.registration.register_weight(
        nickname(subject), 21.5, user=lab.member.name, lab=lab.name
    )
    water = await lab_pv.registration.register_water_administration(
        subject["id"], 0.75, time="2026-12-06T10:00:00+01:00", water_type="Water"
    )
    assert (weighing.subtype, weighing.record["grams"]) == ("weighing", 21.5)
    assert weighing.record["subject"] == subject["id"]
    assert (water.subtype, water.record["ml"], water.record["water_type"]) == (
        "water_administration",
        0.75,
        "Water",
    )
    with pytest.raises(UsageError, match="no UTC offset"):
        await lab_pv.registration.register_weight(subject["id"], 20, time="2026-12-06T10:00:00")


async def test_plan_matches_types_and_skips_with_reasons(
    lab_pv: ProvenaClient, lab: Lab, subject: dict[str, Any], vocab: SdkVocabulary, tmp_path: Path
) -> None:
    ses = tmp_path / lab.name / "Subjects" / nickname(subject) / DAY / "001"
    paths = [
        write_file(ses / "alf" / vocab.name(0), b"zero"),
        write_file(ses / "alf" / f"_ibl_{vocab.token}9.table{vocab.extension}", b"no type"),
        write_file(ses / "alf" / f"_ibl_{vocab.token}0.table.unknownext", b"unknown"),
        write_file(tmp_path / "loose" / vocab.name(1), b"no session"),
        write_file(ses / "alf" / "#2026-12-07#" / vocab.name(1), b"one"),
    ]
    result = await lab_pv.registration.register_files(paths, dry_run=True)
    assert [f.path for f in result] == paths
    assert [f.status for f in result] == ["planned", "skipped", "skipped", "skipped", "planned"]
    assert result[0].dataset_type == vocab.types[0]
    assert result[0].sha256 == hashlib.sha256(b"zero").hexdigest() and result[0].size == 4
    assert result[4].rel_path == f"alf/#2026-12-07#/{vocab.name(1)}"
    assert "no dataset type" in str(result[1].reason) or "matches" in str(result[1].reason)
    assert "unknown extension '.unknownext'" in str(result[2].reason)
    assert "not an ALF dataset" in str(result[3].reason)
    assert result[0].md5 is None
    with_md5 = await lab_pv.registration.register_files(paths[:1], dry_run=True, md5=True)
    assert with_md5[0].md5 == hashlib.md5(b"zero").hexdigest()


async def test_unchanged_files_are_not_read_again(
    lab_pv: ProvenaClient,
    lab: Lab,
    subject: dict[str, Any],
    vocab: SdkVocabulary,
    tmp_path: Path,
    reads: list[Path],
) -> None:
    ses = tmp_path / lab.name / "Subjects" / nickname(subject) / DAY / "001"
    paths = [write_file(ses / f"c{i}" / vocab.name(i % 2), bytes([i]) * 100) for i in range(5)]
    first = await lab_pv.registration.register_files(paths, dry_run=True)
    assert sorted(reads) == sorted(paths)
    reads.clear()
    second = await lab_pv.registration.register_files(paths, dry_run=True)
    assert reads == []
    assert [f.sha256 for f in second] == [f.sha256 for f in first]
    write_file(paths[2], b"changed", old=False)  # a new size and mtime: read again
    third = await lab_pv.registration.register_files(paths, dry_run=True)
    assert reads == [paths[2]]
    assert third[2].sha256 == hashlib.sha256(b"changed").hexdigest()
