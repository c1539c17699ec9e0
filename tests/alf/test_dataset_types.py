"""Matching a file to its one dataset type: case-folded patterns, name matches, typed errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

import pytest

from provena_like.alf import AlfError, DatasetTypeError, match_dataset_type, matching_dataset_types


@dataclass(frozen=True)
class DatasetType:
    name: str
    filename_pattern: str


TYPES = [
    DatasetType("trials.table", ""),
    DatasetType("camera.raw", "_iblrig_*Camera.raw.*"),
    DatasetType("wheel.position", "  "),
    DatasetType("notes", ""),
]


@pytest.mark.parametrize(
    ("filename", "name"),
    [
        ("_ibl_trials.table.pqt", "trials.table"),
        ("trials.table_bpod.extra.pqt", "trials.table"),
        ("_IBLRIG_leftCAMERA.RAW.mp4", "camera.raw"),
        ("_iblrig_leftCamera.raw.mp4", "camera.raw"),
        ("wheel.position.npy", "wheel.position"),  # a blank pattern counts as empty
        ("notes.txt", "notes"),  # not ALF: the name without its last extension
        (PurePosixPath("s/2024-01-31/001/alf/trials.table.pqt"), "trials.table"),
        (PureWindowsPath(r"C:\s\2024-01-31\001\trials.table.pqt"), "trials.table"),
        ("alf/#2024-01-31#/trials.table.pqt", "trials.table"),
    ],
)
def test_the_single_matching_type(filename: str, name: str) -> None:
    assert match_dataset_type(filename, TYPES).name == name


def test_an_empty_pattern_compares_names_case_sensitively() -> None:
    with pytest.raises(DatasetTypeError):
        match_dataset_type("Trials.table.pqt", TYPES)


def test_no_match_is_a_typed_error_naming_the_file() -> None:
    with pytest.raises(DatasetTypeError) as caught:
        match_dataset_type("alf/spikes.times.npy", TYPES)
    err = caught.value
    assert isinstance(err, AlfError) and isinstance(err, ValueError)
    assert (err.part, err.filename, err.candidates) == ("dataset_type", "spikes.times.npy", ())
    assert "matches no dataset type" in str(err)


def test_several_matches_list_the_candidates() -> None:
    types = [*TYPES, DatasetType("any.table", "*.table.*")]
    with pytest.raises(DatasetTypeError) as caught:
        match_dataset_type("trials.table.pqt", types)
    assert caught.value.candidates == ("trials.table", "any.table")
    assert "'trials.table', 'any.table'" in str(caught.value)
    assert [t.name for t in matching_dataset_types("trials.table.pqt", types)] == [
        "trials.table",
        "any.table",
    ]


def test_types_may_be_any_iterable() -> None:
    assert match_dataset_type("notes.txt", iter(TYPES)).name == "notes"
