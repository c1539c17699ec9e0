"""Session and dataset paths: the rules, the part an error names, the builder."""

from __future__ import annotations

import datetime as dt
from pathlib import PurePosixPath

import pytest

from provena_like.alf import (
    AlfError,
    AlfPath,
    SessionPath,
    as_date,
    parse_alf_path,
    parse_dataset_name,
    parse_rel_path,
    parse_session_path,
    split_session_path,
)
from tests.support.alf_helpers import assert_alf_error

NAME = parse_dataset_name("trials.table.pqt")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("mouse1/2024-01-31/1", SessionPath("mouse1", dt.date(2024, 1, 31), 1)),
        ("mouse1/2024-01-31/01", SessionPath("mouse1", dt.date(2024, 1, 31), 1)),
        ("mouse1/2024-01-31/001/", SessionPath("mouse1", dt.date(2024, 1, 31), 1)),
        ("mouse1/2024-01-31/000", SessionPath("mouse1", dt.date(2024, 1, 31), 0)),
        ("mouse1/2024-01-31/999", SessionPath("mouse1", dt.date(2024, 1, 31), 999)),
        ("NYU-4.0/2024-01-31/2", SessionPath("NYU-4.0", dt.date(2024, 1, 31), 2)),
        ("lab_1/Subjects/m/2024-01-31/2", SessionPath("m", dt.date(2024, 1, 31), 2, "lab_1")),
        (
            PurePosixPath("lab/Subjects/m/2024-01-31/2"),
            SessionPath("m", dt.date(2024, 1, 31), 2, "lab"),
        ),
    ],
)
def test_session_paths(path: str, expected: SessionPath) -> None:
    assert parse_session_path(path) == expected
    assert parse_session_path(str(expected)) == expected


@pytest.mark.parametrize(
    ("path", "part", "says"),
    [
        ("mouse1/2024-02-30/001", "date", "YYYY-MM-DD"),
        ("mouse1/2024-1-31/001", "date", "YYYY-MM-DD"),
        ("mouse1/20240131/001", "date", "YYYY-MM-DD"),
        ("mouse1/2024-01-31/0001", "number", "1 to 3 digits"),
        ("mouse1/2024-01-31/a1", "number", "1 to 3 digits"),
        ("mouse1/2024-01-31/١", "number", "1 to 3 digits"),
        ("../2024-01-31/001", "subject", "not '.' or '..'"),
        ("mo use/2024-01-31/001", "subject", "letters, digits"),
        ("la-b/Subjects/m/2024-01-31/001", "lab", "followed by a 'Subjects' folder"),
        ("lab/subjects/m/2024-01-31/001", "session", "[lab/Subjects/]subject"),
        ("mouse1/2024-01-31", "session", "[lab/Subjects/]subject"),
        ("root/mouse1/2024-01-31/001", "session", "[lab/Subjects/]subject"),
        ("mouse1/2024-01-31/001/alf", "session", "[lab/Subjects/]subject"),
    ],
)
def test_a_bad_session_path_names_the_part(path: str, part: str, says: str) -> None:
    assert_alf_error(parse_session_path, path, part, says)


@pytest.mark.parametrize(
    ("kwargs", "part"),
    [
        ({"number": 1000}, "number"),
        ({"number": -1}, "number"),
        ({"number": True}, "number"),
        ({"number": "001"}, "number"),
        ({"date": dt.datetime(2024, 1, 31, 12)}, "date"),
        ({"date": "2024-01-31"}, "date"),
        ({"subject": ".."}, "subject"),
        ({"subject": None}, "subject"),
        ({"lab": "a/b"}, "lab"),
    ],
)
def test_the_session_builder_validates(kwargs: dict[str, object], part: str) -> None:
    values: dict[str, object] = {"subject": "m", "date": dt.date(2024, 1, 31), "number": 1}
    values.update(kwargs)
    with pytest.raises(AlfError) as caught:
        SessionPath(**values)  # type: ignore[arg-type]
    assert caught.value.part == part


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-31", dt.date(2024, 1, 31)),
        ("2024-02-30", None),
        ("20240131", None),
        ("2024-W05-3", None),
        ("2024-1-31", None),
        ("2024-01-31 ", None),
    ],
)
def test_as_date(text: str, expected: dt.date | None) -> None:
    assert as_date(text) == expected


def test_session_short_drops_the_lab() -> None:
    session = SessionPath("m", dt.date(2024, 1, 31), 7, lab="lab")
    assert (str(session), session.short) == ("lab/Subjects/m/2024-01-31/007", "m/2024-01-31/007")


@pytest.mark.parametrize(
    ("rel", "part", "says"),
    [
        ("#v1#/alf/a.b.c", "revision", "not the last folder before the file name"),
        ("#a#/#b#/a.b.c", "revision", "not the last folder before the file name"),
        ("alf/##/a.b.c", "revision", "'#revision#' folder"),
        ("alf/#v1/a.b.c", "revision", "'#revision#' folder"),
        ("alf/#v 1#/a.b.c", "revision", "'#revision#' folder"),
        ("alf//a.b.c", "collection", "has an empty folder"),
        ("alf/../a.b.c", "collection", "not '.' or '..'"),
        ("./a.b.c", "collection", "not '.' or '..'"),
        ("al f/a.b.c", "collection", "letters, digits"),
        ("/alf/a.b.c", "path", "relative to the session"),
        ("alf/a.b", "dataset_name", "has no attribute"),
        ("alf/_x.b.c", "namespace", "not closed"),
    ],
)
def test_a_bad_rel_path_names_the_part(rel: str, part: str, says: str) -> None:
    err = assert_alf_error(parse_rel_path, rel, part, says)
    assert rel in (err.path, err.value)


def test_errors_inside_a_path_quote_the_whole_path() -> None:
    with pytest.raises(AlfError) as caught:
        parse_alf_path("m/2024-01-31/001/alf/trials.ta-ble.pqt")
    assert caught.value.path == "m/2024-01-31/001/alf/trials.ta-ble.pqt"
    assert str(caught.value).startswith("in 'm/2024-01-31/001/alf/trials.ta-ble.pqt': attribute")


@pytest.mark.parametrize(
    ("path", "part"),
    [
        ("m/2024-01-31/001", "session"),
        ("alf/trials.table.pqt", "session"),
        ("root/m/2024-01-31/001/a.b.c", "session"),
        ("m/2024-13-01/001/a.b.c", "date"),
        ("m/2024-01-31/1000/a.b.c", "number"),
        ("m/2024-01-31/001/#r#/alf/a.b.c", "revision"),
    ],
)
def test_a_full_path_starts_with_its_session(path: str, part: str) -> None:
    with pytest.raises(AlfError) as caught:
        parse_alf_path(path)
    assert caught.value.part == part


def test_full_path_with_lab_collection_and_revision() -> None:
    path = parse_alf_path("lab/Subjects/m/2024-01-31/2/raw/probe00/#2024-02-01a#/trials.table.pqt")
    assert path == AlfPath(
        NAME,
        SessionPath("m", dt.date(2024, 1, 31), 2, lab="lab"),
        "raw/probe00",
        "2024-02-01a",
    )
    assert path.rel_path == "raw/probe00/#2024-02-01a#/trials.table.pqt"
    assert path.name == "trials.table.pqt"


def test_a_date_folder_can_be_a_collection() -> None:
    path = parse_alf_path("m/2024-01-31/001/2024-01-31/a.b.c")
    assert path.collection == "2024-01-31"


def test_the_path_builder_validates() -> None:
    with pytest.raises(AlfError) as caught:
        AlfPath(NAME, collection="alf/#v1#")
    assert caught.value.part == "revision"
    with pytest.raises(AlfError) as caught:
        AlfPath(NAME, revision="v 1")
    assert caught.value.part == "revision"
    with pytest.raises(AlfError) as caught:
        AlfPath(NAME, collection="alf/")
    assert caught.value.part == "collection"
    with pytest.raises(AlfError) as caught:
        AlfPath("trials.table.pqt")  # type: ignore[arg-type]
    assert caught.value.part == "dataset_name"
    with pytest.raises(AlfError) as caught:
        AlfPath(NAME, "m/2024-01-31/001")  # type: ignore[arg-type]
    assert caught.value.part == "session"
    with pytest.raises(AlfError) as caught:
        AlfPath(NAME, revision=None)  # type: ignore[arg-type]
    assert caught.value.part == "revision"


def test_with_revision_keeps_everything_else() -> None:
    path = parse_alf_path("m/2024-01-31/001/alf/trials.table.pqt")
    revised = path.with_revision("2024-02-01")
    assert str(revised) == "m/2024-01-31/001/alf/#2024-02-01#/trials.table.pqt"
    assert revised.without_revision() == path
    with pytest.raises(AlfError):
        path.with_revision("#x#")


def test_split_session_path_roots() -> None:
    assert split_session_path("m/2024-01-31/001")[0] == ""
    assert split_session_path("/m/2024-01-31/001")[0] == "/"
    assert split_session_path("data/m/2024-01-31/001/a.b.c") == (
        "data",
        SessionPath("m", dt.date(2024, 1, 31), 1),
        "a.b.c",
    )


def test_split_session_path_reports_a_bad_date_in_session_position() -> None:
    with pytest.raises(AlfError) as caught:
        split_session_path("/data/m/2024-02-30/001/a.b.c")
    assert caught.value.part == "date"
