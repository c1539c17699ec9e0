"""The 409s that refuse a change to a locked, pending or released dataset, one builder for all.

``refuse_unless_open`` serves the datastore's data writes and the release request; the
approval builds its ``locked`` answer with the same ``locked_error``. These pin the answers
each of them gives (the routes' tests check the codes end to end).
"""

from __future__ import annotations

import pytest

from provena_like.server.datastore.service import (
    locked_error,
    refuse_data_writes,
    refuse_unless_open,
)
from provena_like.server.datastore.tables import DatasetRow
from provena_like.server.errors import ServiceError
from provena_like.server.registry.tables import ItemRow

DATASET_ID = "10378.1/7"


def rows(*, locked: bool, status: str) -> tuple[ItemRow, DatasetRow]:
    return ItemRow(id=DATASET_ID, locked=locked), DatasetRow(release_status=status)


def refusal(item: ItemRow, dataset: DatasetRow) -> ServiceError:
    with pytest.raises(ServiceError) as refused:
        refuse_unless_open(item, dataset, locked="unlock it first", closed="it can't change")
    return refused.value


def test_an_open_dataset_passes() -> None:
    item, dataset = rows(locked=False, status="NOT_RELEASED")
    refuse_unless_open(item, dataset, locked="unlock it first", closed="it can't change")
    refuse_data_writes(item, dataset)


@pytest.mark.parametrize("status", ["NOT_RELEASED", "PENDING", "RELEASED"])
def test_the_lock_is_named_first_with_the_release_state(status: str) -> None:
    err = refusal(*rows(locked=True, status=status))
    assert (err.status, err.code) == (409, "locked")
    assert err.message == f"Dataset {DATASET_ID} is locked: unlock it first."
    assert err.details == {"state": status}


@pytest.mark.parametrize(
    ("status", "code", "ending"),
    [
        ("PENDING", "under_review", "until the reviewer approves or rejects it"),
        ("RELEASED", "released", "create a new version to change it."),
    ],
)
def test_an_unlocked_closed_dataset_names_its_state(status: str, code: str, ending: str) -> None:
    err = refusal(*rows(locked=False, status=status))
    assert (err.status, err.code, err.details) == (409, code, {"state": status})
    assert err.message.startswith(f"Dataset {DATASET_ID} is {status}")
    assert "it can't change" in err.message and ending in err.message


def test_data_writes_keep_their_words() -> None:
    with pytest.raises(ServiceError) as locked:
        refuse_data_writes(*rows(locked=True, status="NOT_RELEASED"))
    assert locked.value.message == (
        f"Dataset {DATASET_ID} is locked: its data can't change until an admin unlocks it."
    )
    with pytest.raises(ServiceError) as released:
        refuse_data_writes(*rows(locked=False, status="RELEASED"))
    assert released.value.message == (
        f"Dataset {DATASET_ID} is RELEASED: its data can't change; create a new version to "
        "change it."
    )


def test_locked_error_carries_the_state_it_is_given() -> None:
    err = locked_error(DATASET_ID, "PENDING", "it can't be released")
    assert (err.status, err.code, err.details) == (409, "locked", {"state": "PENDING"})
    assert err.message == f"Dataset {DATASET_ID} is locked: it can't be released."
