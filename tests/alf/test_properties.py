"""Properties: parse(build(parts)) == parts, and parsing fails only with AlfError."""

from __future__ import annotations

import datetime as dt
import string

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from provena_like.alf import (
    AlfError,
    AlfPath,
    DatasetName,
    SessionPath,
    next_revision,
    parse_alf_path,
    parse_dataset_name,
    parse_rel_path,
    parse_session_path,
    sort_revisions,
)

ALNUM = string.ascii_letters + string.digits
WORD = ALNUM + "_"
NAME = WORD + ".-"

alnum = st.text(ALNUM, min_size=1, max_size=8)
words = st.text(WORD, min_size=1, max_size=8)
names = st.text(NAME, min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))


@st.composite
def dataset_names(draw: st.DrawFn) -> DatasetName:
    """Names whose parts read back unchanged (the builder refuses the others, see below)."""
    obj = draw(st.text(ALNUM, min_size=1, max_size=1)) + draw(st.text(WORD, max_size=8))
    attribute = draw(alnum) + draw(st.sampled_from(["", "_times", "_intervals"]))
    if draw(st.booleans()):
        attribute = f"_{draw(st.text(string.ascii_lowercase, min_size=1, max_size=4))}_{attribute}"
    try:
        return DatasetName(
            obj,
            attribute,
            draw(words),
            namespace=draw(st.none() | alnum),
            timescale=draw(st.none() | words),
            extra=tuple(draw(st.lists(st.text(WORD + "-", min_size=1, max_size=6), max_size=3))),
        )
    except AlfError as err:
        assert err.reason.startswith("is ambiguous")
        assume(False)
        raise


sessions = st.builds(
    SessionPath,
    subject=names,
    date=st.dates(dt.date(1900, 1, 1), dt.date(2999, 12, 31)),
    number=st.integers(0, 999),
    lab=st.none() | words,
)
collections = st.lists(names, max_size=3).map("/".join)
revisions = st.just("") | st.text(NAME, min_size=1, max_size=10)


@given(dataset_names())
def test_dataset_name_round_trip(name: DatasetName) -> None:
    assert parse_dataset_name(str(name)) == name


@given(sessions)
def test_session_path_round_trip(session: SessionPath) -> None:
    assert parse_session_path(str(session)) == session


@given(dataset_names(), sessions, collections, revisions)
def test_alf_path_round_trip(
    name: DatasetName, session: SessionPath, collection: str, revision: str
) -> None:
    path = AlfPath(name, session, collection, revision)
    assert parse_alf_path(str(path)) == path
    assert parse_rel_path(path.rel_path) == AlfPath(name, None, collection, revision)


@given(st.text(NAME + "/#_ ", max_size=40))
@settings(max_examples=300)
def test_parsing_fails_only_with_alf_error(text: str) -> None:
    for parse in (parse_dataset_name, parse_rel_path, parse_alf_path, parse_session_path):
        try:
            parse(text)
        except AlfError as err:
            assert err.part and err.expected


@given(st.text(NAME, max_size=12), st.lists(st.text(NAME + "{~", max_size=14), max_size=8))
def test_next_revision_is_new_in_the_alphabet_and_newest_of_its_base(
    base: str, reserved: list[str]
) -> None:
    if base in (".", ".."):
        base = "r"
    new = next_revision(base, reserved)
    assert new.startswith(base) and new not in reserved
    assert parse_rel_path(f"#{new}#/a.b.c").revision == new
    extending = [r for r in reserved if r.startswith(base) and "{" not in r and "~" not in r]
    assert sort_revisions([*extending, new])[-1] == new


@given(st.text(NAME, max_size=12), st.lists(st.text("wxyz", max_size=5), max_size=12))
def test_next_revision_past_z_stays_valid_and_newest(base: str, suffixes: list[str]) -> None:
    reserved = [base + suffix for suffix in suffixes]
    new = next_revision(base, reserved)
    assert parse_rel_path(f"#{new}#/a.b.c").revision == new
    assert new not in reserved and all(new > r for r in reserved)
