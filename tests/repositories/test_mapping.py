"""``path_from_dataset`` and friends: a registered dataset's path in a repository (pure)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest

from provena_like import UnsafePath, UsageError
from provena_like.models.registration import RegisteredDataset
from provena_like.repositories import (
    STAGING_FOLDER,
    file_record,
    is_staging_path,
    path_from_dataset,
    paths_from_datasets,
    split_staging_path,
    staging_path,
)

UUID1 = "a976e418-c8b8-4d24-be47-d05120b18341"
UUID2 = "0d9a2c3e-5b7f-4c1d-8e2a-3f4b5c6d7e8f"
PRIMARY = "10378.1/1"
MIRROR = "10378.1/2"
SESSION = "cortexlab/Subjects/mouse1/2024-01-31/001"


def dataset(
    *,
    id: str | None = UUID1,  # noqa: A002 - the wire field's name
    collection: str = "alf",
    revision: str = "",
    name: str = "trials.table.pqt",
    files: list[tuple[str, str, bool]] | None = None,
) -> RegisteredDataset:
    """A registered dataset whose file records are ``(repository, relative_path, exists)``."""
    rel = "/".join(p for p in (collection, f"#{revision}#" if revision else "", name) if p)
    if files is None:
        files = [(PRIMARY, f"{SESSION}/{rel}", True)]
    body: dict[str, Any] = {
        "id": id,
        "session": "10378.1/9",
        "collection": collection,
        "name": name,
        "revision": revision,
        "revision_seq": 1,
        "default": True,
        "dataset_type": "10378.1/10",
        "data_format": "10378.1/11",
        "size": 3,
        "sha256": "0" * 64,
        "files": [
            {"repository": repo, "relative_path": path, "exists": exists}
            for repo, path, exists in files
        ],
        "created_by": "ada",
    }
    return RegisteredDataset.model_validate(body)


REV = "alf/#2024-02-01#/trials.table.pqt"

# (dataset arguments, path_from_dataset arguments, expected path)
CASES: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    ({}, {}, f"{SESSION}/alf/trials.table.pqt"),
    ({}, {"uuid": True}, f"{SESSION}/alf/trials.table.{UUID1}.pqt"),
    ({}, {"root": "/mnt/lab"}, f"/mnt/lab/{SESSION}/alf/trials.table.pqt"),
    ({}, {"root": "/mnt/lab/"}, f"/mnt/lab/{SESSION}/alf/trials.table.pqt"),
    ({}, {"root": PurePosixPath("/mnt")}, f"/mnt/{SESSION}/alf/trials.table.pqt"),
    (
        {},
        {"root": "s3://bucket/data", "uuid": True},
        f"s3://bucket/data/{SESSION}/alf/trials.table.{UUID1}.pqt",
    ),
    ({"collection": ""}, {}, f"{SESSION}/trials.table.pqt"),
    ({"collection": "raw/probe00"}, {}, f"{SESSION}/raw/probe00/trials.table.pqt"),
    # the #revision# folder is kept, and the UUID goes on the name, not the folder
    ({"revision": "2024-02-01"}, {}, f"{SESSION}/{REV}"),
    (
        {"revision": "2024-02-01"},
        {"uuid": True},
        f"{SESSION}/alf/#2024-02-01#/trials.table.{UUID1}.pqt",
    ),
    # a record whose path lost the revision folder: the object is in it (ibllib#737)
    (
        {"revision": "2024-02-01", "files": [(PRIMARY, f"{SESSION}/alf/trials.table.pqt", True)]},
        {},
        f"{SESSION}/{REV}",
    ),
    # a record path that carries a UUID: removed unless asked for, replaced when asked
    (
        {"files": [(PRIMARY, f"{SESSION}/alf/trials.table.{UUID2}.pqt", True)]},
        {},
        f"{SESSION}/alf/trials.table.pqt",
    ),
    (
        {"files": [(PRIMARY, f"{SESSION}/alf/trials.table.{UUID2}.pqt", True)]},
        {"uuid": True},
        f"{SESSION}/alf/trials.table.{UUID1}.pqt",
    ),
    # a session without lab, and the record's own (unpadded) session folders kept
    (
        {"files": [(PRIMARY, "mouse1/2024-01-31/1/alf/trials.table.pqt", True)]},
        {},
        "mouse1/2024-01-31/1/alf/trials.table.pqt",
    ),
    # the record of the repository asked for; by default the first whose file exists
    (
        {
            "files": [
                (PRIMARY, f"{SESSION}/alf/trials.table.pqt", False),
                (MIRROR, f"mirror/{SESSION}/alf/trials.table.pqt", True),
            ]
        },
        {},
        f"mirror/{SESSION}/alf/trials.table.pqt",
    ),
    (
        {
            "files": [
                (PRIMARY, f"{SESSION}/alf/trials.table.pqt", False),
                (MIRROR, f"mirror/{SESSION}/alf/trials.table.pqt", True),
            ]
        },
        {"repository": PRIMARY},
        f"{SESSION}/alf/trials.table.pqt",
    ),
    (
        {
            "files": [
                (PRIMARY, f"{SESSION}/alf/trials.table.pqt", False),
                (MIRROR, f"{SESSION}/alf/x.y.pqt", False),
            ]
        },
        {},
        f"{SESSION}/alf/trials.table.pqt",
    ),
]


@pytest.mark.parametrize(("made", "kwargs", "expected"), CASES)
def test_path_from_dataset(made: dict[str, Any], kwargs: dict[str, Any], expected: str) -> None:
    assert path_from_dataset(dataset(**made), **kwargs) == expected


REFUSED: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    ({"files": []}, {}, "no file record"),
    ({}, {"repository": MIRROR}, "no file record in repository"),
    ({"id": None}, {"uuid": True}, "no UUID"),
    ({"files": [(PRIMARY, "alf/trials.table.pqt", True)]}, {}, "holds no session"),
    ({"files": [(PRIMARY, f"{SESSION}/alf/other.table.pqt", True)]}, {}, "doesn't match"),
    ({"files": [(PRIMARY, f"{SESSION}/raw/trials.table.pqt", True)]}, {}, "doesn't match"),
    # a record in another revision is not this dataset's object
    (
        {
            "revision": "2024-02-01",
            "files": [(PRIMARY, f"{SESSION}/alf/#2024-03-01#/trials.table.pqt", True)],
        },
        {},
        "doesn't match",
    ),
]


@pytest.mark.parametrize(("made", "kwargs", "message"), REFUSED)
def test_path_from_dataset_refuses(
    made: dict[str, Any], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        path_from_dataset(dataset(**made), **kwargs)


def test_a_record_path_that_escapes_is_refused() -> None:
    bad = dataset(files=[(PRIMARY, f"../{SESSION}/alf/trials.table.pqt", True)])
    with pytest.raises(UnsafePath):
        path_from_dataset(bad)


def test_file_record_picks_the_repository_then_the_first_existing() -> None:
    both = dataset(
        files=[(PRIMARY, f"{SESSION}/{REV}", False), (MIRROR, f"m/{SESSION}/{REV}", True)],
        revision="2024-02-01",
    )
    assert file_record(both).repository == MIRROR
    assert file_record(both, PRIMARY).repository == PRIMARY


def test_the_list_form_keeps_every_argument_for_every_element() -> None:
    """ibllib's list input calls path_from_dataset(d) per element, dropping these three."""
    first = dataset()
    second = dataset(
        id=UUID2,
        revision="2024-02-01",
        files=[(PRIMARY, f"{SESSION}/{REV}", False), (MIRROR, f"mirror/{SESSION}/{REV}", True)],
    )
    got = paths_from_datasets([first, second], None, uuid=True, root="/mnt")
    assert got == [
        f"/mnt/{SESSION}/alf/trials.table.{UUID1}.pqt",
        f"/mnt/mirror/{SESSION}/alf/#2024-02-01#/trials.table.{UUID2}.pqt",
    ]
    # each element is exactly the single form with the same arguments
    for one, path in zip([first, second], got, strict=True):
        assert path_from_dataset(one, uuid=True, root="/mnt") == path
    mirror = dataset(files=[(MIRROR, f"{SESSION}/alf/trials.table.pqt", True)])
    assert (
        paths_from_datasets([mirror, mirror], MIRROR, uuid=False)
        == [f"{SESSION}/alf/trials.table.pqt"] * 2
    )
    with pytest.raises(UsageError, match="no file record in repository"):
        paths_from_datasets([mirror, first], MIRROR)
    assert paths_from_datasets([]) == []


STAGED = [
    ("a/b.c.npy", "p1", ".staging/p1/a/b.c.npy"),
    (
        f"{SESSION}/{REV}",
        "8f0c2d1e-5b7f-4c1d-8e2a-3f4b5c6d7e8f",
        f".staging/8f0c2d1e-5b7f-4c1d-8e2a-3f4b5c6d7e8f/{SESSION}/{REV}",
    ),
    ("x.y.z", "patch_2024-01-31", ".staging/patch_2024-01-31/x.y.z"),
]


@pytest.mark.parametrize(("path", "patch_id", "expected"), STAGED)
def test_staging_path(path: str, patch_id: str, expected: str) -> None:
    staged = staging_path(path, patch_id)
    assert staged == expected
    assert staged.startswith(STAGING_FOLDER + "/") and is_staging_path(staged)
    assert not is_staging_path(path)
    assert split_staging_path(staged) == (patch_id, path)


@pytest.mark.parametrize(
    ("path", "patch_id", "error"),
    [
        ("a/b.c", "2024-01-31", UsageError),  # a date: .staging/<date>/... could be a session
        ("a/b.c", "", UsageError),
        ("a/b.c", "-p", UsageError),
        ("a/b.c", "p/q", UsageError),
        ("a/b.c", "p" * 65, UsageError),
        (".staging/p1/a/b.c", "p2", UsageError),  # already staged
        ("../a", "p1", UnsafePath),
        ("/a", "p1", UnsafePath),
    ],
)
def test_staging_path_refuses(path: str, patch_id: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        staging_path(path, patch_id)


def test_staging_paths_never_parse_as_a_dataset_of_a_session() -> None:
    """The reason the folder is safe: no ALF session can start with `.staging/<patch id>`."""
    from provena_like.alf import AlfError, parse_session_path

    for patch_id in ("p1", "001", "8f0c2d1e-5b7f-4c1d-8e2a-3f4b5c6d7e8f"):
        staged = staging_path(f"{SESSION}/{REV}", patch_id)
        head = "/".join(staged.split("/")[:3])
        with pytest.raises(AlfError):
            parse_session_path(head)
        with pytest.raises(AlfError):
            parse_session_path("/".join(staged.split("/")[:5]))


@pytest.mark.parametrize(
    "path", ["a/b.c", ".staging", ".staging/p1", ".staging/2024-01-31/a", ".stagingx/p/a"]
)
def test_split_staging_path_of_other_paths(path: str) -> None:
    assert split_staging_path(path) is None
