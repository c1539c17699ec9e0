"""Dataset names: every part's rules, the error that names the part, stored names with UUIDs."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath, PureWindowsPath

import pytest

from provena_like.alf import (
    AlfError,
    DatasetName,
    add_uuid,
    is_valid_dataset_name,
    parse_dataset_name,
    remove_uuid,
)
from tests.support.alf_helpers import assert_alf_error

UUID = "a976e418-c8b8-4d24-be47-d05120b18341"


@pytest.mark.parametrize(
    ("name", "part", "says"),
    [
        ("badfile", "dataset_name", "has no extension"),
        ("spike_train.npy", "dataset_name", "has no attribute"),
        # ONE reads this as namespace 'ob' and object 'j'
        ("_obj.attr.ext", "namespace", "not closed by an underscore"),
        ("__obj.attr.ext", "namespace", "letters and digits between two underscores"),
        ("_n-s_obj.attr.ext", "namespace", "letters and digits"),
        # ONE reads object '_obj'
        ("_ns__obj.attr.ext", "object", "a letter or digit"),
        ("a-b.c.d", "object", "a letter or digit"),
        ("é.attr.ext", "object", "letters, digits and underscores"),
        ("obj..ext", "attribute", "'_times' or '_intervals'"),
        ("obj.at-tr.ext", "attribute", "letters and digits"),
        ("obj._Phy_ids.csv", "attribute", "letters and digits"),
        ("obj.attr_bp-od.ext", "timescale", "after the attribute"),
        ("obj.attr_times_é.ext", "timescale", "after the attribute"),
        # ONE reads extra 'x..y'
        ("obj.attr.x..y.npy", "extra", "between periods"),
        ("obj.attr.x y.npy", "extra", "between periods"),
        ("obj.attr.ext.", "extension", "after the last period"),
        ("obj.attr.ex-t", "extension", "after the last period"),
        ("alf/obj.attr.ext", "dataset_name", "without folders"),
    ],
)
def test_a_bad_name_names_the_part_and_what_was_expected(name: str, part: str, says: str) -> None:
    assert_alf_error(parse_dataset_name, name, part, says)
    assert not is_valid_dataset_name(name)


@pytest.mark.parametrize(
    ("name", "attribute", "timescale"),
    [
        ("obj.attr_times.npy", "attr_times", None),
        ("obj.attr_intervals_bpod.npy", "attr_intervals", "bpod"),
        ("obj.attr_timesX.npy", "attr", "timesX"),
        ("obj.attr_timestamps.npy", "attr", "timestamps"),
        ("obj.attr_times_times.npy", "attr_times", "times"),
        ("obj.attr__x.npy", "attr", "_x"),
        ("obj._phy_ids.csv", "_phy_ids", None),
        ("Obj.Attr.EXT", "Attr", None),
    ],
)
def test_attribute_and_timescale_split_as_in_one(
    name: str, attribute: str, timescale: str | None
) -> None:
    parsed = parse_dataset_name(name)
    assert (parsed.attribute, parsed.timescale) == (attribute, timescale)
    assert str(parsed) == name


def test_object_may_hold_underscores_and_end_with_one() -> None:
    assert parse_dataset_name("obj_.attr.ext").object == "obj_"
    assert parse_dataset_name("_a_b_c.x.y").namespace == "a"
    assert parse_dataset_name("_a_b_c.x.y").object == "b_c"


def test_extra_parts_keep_hyphens_and_order() -> None:
    parsed = parse_dataset_name("a.b.c-d.-.e")
    assert parsed.extra == ("c-d", "-")


@pytest.mark.parametrize(
    ("kwargs", "part", "value"),
    [
        ({"attribute": "a", "timescale": "times"}, "attribute", "a"),
        ({"attribute": "a", "timescale": "intervals_x"}, "attribute", "a"),
        ({"attribute": "attr", "namespace": ""}, "namespace", ""),
        ({"attribute": "attr", "timescale": ""}, "timescale", ""),
        ({"attribute": "attr", "extra": ("",)}, "extra", ""),
        ({"attribute": "attr", "extra": ("a.b",)}, "extra", "a.b"),
        ({"attribute": "attr", "extra": "raw"}, "extra", "raw"),
    ],
)
def test_the_builder_refuses_parts_that_would_not_read_back(
    kwargs: dict[str, object], part: str, value: str
) -> None:
    with pytest.raises(AlfError) as caught:
        DatasetName("obj", extension="npy", **kwargs)  # type: ignore[arg-type]
    assert (caught.value.part, caught.value.value) == (part, value)


def test_ambiguous_parts_say_what_they_read_back_as() -> None:
    with pytest.raises(AlfError, match="reads back with attribute 'a_times'"):
        DatasetName("obj", "a", "npy", timescale="times")


def test_extra_given_as_a_list_is_kept_as_a_tuple() -> None:
    name = DatasetName("obj", "attr", "npy", extra=["x", "y"])  # type: ignore[arg-type]
    assert name.extra == ("x", "y")
    assert hash(name) == hash(parse_dataset_name("obj.attr.x.y.npy"))


def test_names_are_frozen_and_hashable() -> None:
    name = parse_dataset_name("obj.attr.npy")
    with pytest.raises(AttributeError):
        name.object = "other"  # type: ignore[misc]
    assert {name, parse_dataset_name("obj.attr.npy")} == {name}


def test_uuid_is_the_last_extra_part() -> None:
    stored = parse_dataset_name(f"_ibl_trials.table.raw.{UUID}.pqt")
    assert stored.uuid == uuid.UUID(UUID)
    assert str(stored.without_uuid()) == "_ibl_trials.table.raw.pqt"
    assert parse_dataset_name(f"trials.table.{UUID}.raw.pqt").uuid is None
    assert parse_dataset_name(f"trials.table.{UUID.upper()}.pqt").uuid is None


def test_with_uuid_refuses_what_is_not_a_canonical_uuid() -> None:
    name = parse_dataset_name("trials.table.pqt")
    for bad in ("fake", UUID.upper(), UUID.replace("-", ""), f"{{{UUID}}}"):
        with pytest.raises(AlfError) as caught:
            name.with_uuid(bad)
        assert caught.value.part == "uuid"


def test_add_uuid_keeps_the_path_kind() -> None:
    assert add_uuid(PurePosixPath("a/b.c.d"), UUID) == PurePosixPath(f"a/b.c.{UUID}.d")
    windows = add_uuid(PureWindowsPath(r"C:\a\b.c.d"), UUID)
    assert isinstance(windows, PureWindowsPath)
    assert windows == PureWindowsPath(rf"C:\a\b.c.{UUID}.d")
    assert add_uuid("b.c.d", uuid.UUID(UUID)) == f"b.c.{UUID}.d"


@pytest.mark.parametrize("name", ["noext", ".hidden", "trailing."])
def test_add_uuid_needs_an_extension(name: str) -> None:
    with pytest.raises(AlfError) as caught:
        add_uuid(name, UUID)
    assert caught.value.part == "extension"


@pytest.mark.parametrize("name", ["noext", f"{UUID}.npy", "a.b.npy", f"a/{UUID}/b.npy"])
def test_remove_uuid_leaves_names_without_one_alone(name: str) -> None:
    assert remove_uuid(name) == name


def test_add_then_remove_is_identity() -> None:
    for name in ("trials.table.pqt", "x/tata.json", "a.b.c.d.e"):
        assert remove_uuid(add_uuid(name, uuid.uuid4())) == name
