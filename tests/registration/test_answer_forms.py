"""``RegisterFilesResult.aligned``: one entry per file from a full or a compact answer."""

from __future__ import annotations

from typing import Any

import pytest

from provena_like.models.registration import FileRegistration, RegisterFilesResult, UnchangedFile

PATHS = ["alf/a.times.npy", "alf/b.times.npy", "alf/c.times.npy"]
IDS = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(3)]


def entry(index: int | None, status: str = "registered") -> dict[str, Any]:
    dataset = {
        "id": IDS[index or 0],
        "session": "10378.1/9",
        "collection": "alf",
        "name": PATHS[index or 0].removeprefix("alf/"),
        "revision": "",
        "revision_seq": 1,
        "default": True,
        "dataset_type": "10378.1/3",
        "data_format": "10378.1/4",
        "size": 1,
        "sha256": "0" * 64,
        "created_by": "alice",
    }
    found = {"path": PATHS[index or 0], "status": status, "dataset": dataset}
    return found if index is None else {**found, "index": index}


def answer(files: list[dict[str, Any]], unchanged: Any = None) -> RegisterFilesResult:
    return RegisterFilesResult.model_validate(
        {"session": "10378.1/9", "dry_run": False, "files": files, "unchanged": unchanged}
    )


def test_a_full_answer_is_its_files() -> None:
    full = answer([entry(None), entry(None), entry(None)])
    assert full.aligned(PATHS) == full.files
    with pytest.raises(ValueError, match="3 answers for 2 files"):
        full.aligned(PATHS[:2])


def test_a_compact_answer_is_expanded_in_the_requests_order() -> None:
    compact = answer([entry(1, "updated")], {"indexes": [0, 2], "ids": [IDS[0], IDS[2]]})
    first, second, third = compact.aligned(PATHS)
    assert first == UnchangedFile(PATHS[0], 0, IDS[0])
    assert isinstance(second, FileRegistration) and second.status == "updated"
    assert third == UnchangedFile(PATHS[2], 2, IDS[2])
    assert [e.status for e in (first, second, third)] == ["unchanged", "updated", "unchanged"]
    assert [e.dataset_id for e in (first, second, third)] == [IDS[0], IDS[1], IDS[2]]


@pytest.mark.parametrize(
    ("files", "unchanged", "message"),
    [
        ([entry(1)], {"indexes": [0], "ids": [IDS[0]]}, "no answer for the files at \\[2\\]"),
        ([entry(1)], {"indexes": [0, 1, 2], "ids": IDS}, "index 1 is out of range or answered"),
        ([], {"indexes": [0, 1, 3], "ids": IDS}, "index 3 is out of range"),
        ([entry(None)], {"indexes": [1, 2], "ids": IDS[1:]}, "index None"),
        ([], {"indexes": [0, 1, 2], "ids": IDS[:2]}, "as many ids as indexes"),
    ],
)
def test_a_compact_answer_that_does_not_fit_is_refused(
    files: list[dict[str, Any]], unchanged: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        answer(files, unchanged).aligned(PATHS)
