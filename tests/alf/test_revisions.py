"""Revisions: the order, "last before", next names past 'z', the protected table past 'z'."""

from __future__ import annotations

import datetime as dt
import string

import pytest

from provena_like.alf import (
    AlfError,
    is_revision_name,
    last_before,
    next_revision,
    resolve_revision,
    sort_revisions,
)

TODAY = dt.date(2026, 12, 6)
T = TODAY.isoformat()
LETTERS = string.ascii_lowercase


def test_blank_is_oldest_and_sub_revisions_follow_their_date() -> None:
    revisions = ["2024-02-01", "2024-01-31z", "", "2024-01-31za", "2024-01-31", "2024-01-31a"]
    assert sort_revisions(revisions) == [
        "",
        "2024-01-31",
        "2024-01-31a",
        "2024-01-31z",
        "2024-01-31za",
        "2024-02-01",
    ]
    assert sort_revisions(revisions, newest_first=True)[0] == "2024-02-01"


@pytest.mark.parametrize(
    ("reserved", "expected"),
    [
        ([], "ra"),
        (["ra"], "rb"),
        ([f"r{c}" for c in LETTERS[:25]], "rz"),
        # past 'z': ONE's _next_revision gives 'r{', which is not a revision name
        ([f"r{c}" for c in LETTERS], "rza"),
        (["rz"], "rza"),
        ([f"r{c}" for c in LETTERS] + [f"rz{c}" for c in LETTERS[:25]], "rzz"),
        ([f"r{c}" for c in LETTERS] + [f"rz{c}" for c in LETTERS], "rzza"),
        (["rzzzz"], "rzzzza"),
        # DIFFERS: ONE fills the gap with 'rb', which would sort before the newer 'rc'
        (["ra", "rc"], "rd"),
        # names outside the alphabet are avoided, not sorted after
        (["r{"], "ra"),
        # other bases and unrelated names do not matter
        (["s", "q", "rA", "r_1"], "ra"),
    ],
)
def test_next_revision(reserved: list[str], expected: str) -> None:
    assert next_revision("r", reserved) == expected


def test_next_revision_of_nothing() -> None:
    assert next_revision("") == "a"
    assert next_revision("", ["a", "zz"]) == "zza"


@pytest.mark.parametrize("bad", ["#r#", "r/s", "r s", "é"])
def test_next_revision_refuses_a_bad_base(bad: str) -> None:
    with pytest.raises(AlfError) as caught:
        next_revision(bad)
    assert caught.value.part == "revision"


def test_a_chain_of_next_revisions_sorts_in_creation_order() -> None:
    created = [T]
    for _ in range(200):
        created.append(next_revision(T, created))
    assert sort_revisions(created) == created
    assert len(set(created)) == len(created)
    assert all(is_revision_name(r) for r in created)
    assert created[27] == f"{T}za"
    assert created[53] == f"{T}zza"


@pytest.mark.parametrize(
    ("path_revision", "existing", "expected"),
    [
        # past 'z': the table continues in the alphabet
        ("", [(f"{T}z", True), (T, True)], f"{T}za"),
        ("", [(f"{T}zz", True), (f"{T}zy", True), (T, True)], f"{T}zza"),
        (f"{T}z", [(f"{T}z", True)], f"{T}za"),
        ("v1z", [("v1z", True), ("v1", True)], "v1za"),
        # ONE would register under today's date again and be refused: today is protected,
        # though not the newest revision
        ("", [("puHIt1", False), (T, True)], f"{T}a"),
        ("", [("zzz", True), (f"{T}b", True)], f"{T}c"),
        # ONE matches "today in L" anywhere in L; we match sub-revisions of today only
        ("", [(f"v{T}", True)], T),
        # an unprotected newest revision that only looks like a date is not moved into
        ("", [("2024-W05-3", False)], T),
        ("", [("2024-02-30a", False)], T),
        ("", [("2024-01-31_rerun", False)], "2024-01-31_rerun"),
        # an unprotected sub-revision of the path revision may be reused (as in ONE)
        ("v1", [("v1a", False), ("v1", True)], "v1a"),
    ],
)
def test_revision_table_beyond_one(
    path_revision: str, existing: list[tuple[str, bool]], expected: str
) -> None:
    assert resolve_revision(path_revision, existing, today=TODAY) == expected


def test_revision_table_result_sorts_after_every_protected_revision_of_the_day() -> None:
    existing: list[tuple[str, bool]] = [("", True)]
    for _ in range(1 + 26 + 26 + 1):  # today, a..z, za..zz, zza
        revision = resolve_revision("", existing, today=TODAY)
        assert all(revision > r for r, _ in existing)
        existing.insert(0, (revision, True))
    assert existing[0][0] == f"{T}zza"


def test_last_before() -> None:
    revisions = ["2021-01-01", "", "2020-08-01a", "2020-08-01"]
    assert last_before(revisions, "2020-08-01") == "2020-08-01"
    assert last_before(revisions, "2020-08-02") == "2020-08-01a"
    assert last_before(revisions, "2000-01-01") == ""
    assert last_before(["2021-01-01"], "2000-01-01") is None
    assert last_before(iter(revisions), None) == "2021-01-01"
    assert last_before([], None) is None
