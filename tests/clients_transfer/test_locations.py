"""Locations: ``globus://<uuid>/path``, labelled roots, and paths that can't climb out."""

from __future__ import annotations

import pytest

from provena_like import ProvenaConfig, UnsafePath, UsageError
from provena_like.clients.transfer import Location, Locations, to_globus_path

U1 = "6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e"
U2 = "0b8d1a3e-1111-4222-8333-944455556666"


def test_parse_and_print_round_trip() -> None:
    loc = Location.parse(f"globus://{U1.upper()}/data//raw/./a.bin")
    assert loc == Location(U1, "/data/raw/a.bin")
    assert str(loc) == f"globus://{U1}/data/raw/a.bin"
    assert Location.parse(f"globus://{U1}").path == "/"
    assert Location.parse(f"globus://{U1}/~/x").path == "/~/x"
    assert loc.name == "a.bin" and loc.parent.path == "/data/raw"
    assert (loc.parent / "b.bin").path == "/data/raw/b.bin"
    assert Location(U1, "/data").dir_path == "/data/"


@pytest.mark.parametrize(
    "text", ["/data/x", "globus:/x", f"gridftp://{U1}/x", "globus://not-a-uuid/x"]
)
def test_parse_refuses_other_notations(text: str) -> None:
    with pytest.raises(UsageError):
        Location.parse(text)


@pytest.mark.parametrize("bad", ["../etc", "a/../../b", "a/\x00b", ".."])
def test_relative_paths_never_climb_out(bad: str) -> None:
    root = Location(U1, "/data")
    with pytest.raises(UnsafePath):
        root.joinpath(bad)
    places = Locations({"lab": (U1, "/data")})
    with pytest.raises(UnsafePath):
        places.resolve(f"lab:{bad}")
    with pytest.raises(UnsafePath):
        places.resolve("lab", bad)


def test_labels_resolve_below_their_root() -> None:
    places = Locations({"lab": (U1, "/data/"), "flatiron": (U2, "/")})
    assert places.resolve("lab") == Location(U1, "/data")
    assert places.resolve("lab:subjects/ZM_1") == Location(U1, "/data/subjects/ZM_1")
    assert places.resolve("lab", "subjects") == Location(U1, "/data/subjects")
    assert places.resolve(f"globus://{U2}/x") == Location(U2, "/x")
    assert places.resolve(U2, "/abs/path") == Location(U2, "/abs/path")
    assert places.resolve(Location(U2, "/x"), "y") == Location(U2, "/x/y")
    with pytest.raises(UsageError, match="lab, flatiron|flatiron, lab"):
        places.resolve("nowhere:x")
    assert len(places) == 2 and set(places) == {"lab", "flatiron"}
    assert "lab" in repr(places)


def test_label_of_picks_the_deepest_root() -> None:
    places = Locations({"all": (U1, "/"), "lab": (U1, "/data"), "other": (U2, "/data")})
    assert places.label_of(Location(U1, "/data/raw/a")) == ("lab", "raw/a")
    assert places.label_of(Location(U1, "/database")) == ("all", "database")
    assert places.label_of(Location(U1, "/data")) == ("lab", "")
    assert Locations({"lab": (U1, "/data")}).label_of(Location(U2, "/data")) is None


@pytest.mark.parametrize("label", ["", "a:b", "a/b"])
def test_bad_labels_are_refused(label: str) -> None:
    with pytest.raises(UsageError):
        Locations({label: (U1, "/")})


def test_windows_paths_become_globus_paths() -> None:
    assert to_globus_path(r"E:\FlatIron\zadorlab") == "/E/FlatIron/zadorlab"
    assert to_globus_path("c:/Users/x/") == "/C/Users/x"
    assert to_globus_path("/mnt/s0/Data/") == "/mnt/s0/Data"


def test_config_reads_labels_from_toml_and_env(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    toml = tmp_path / "config.toml"
    toml.write_text(f'[transfer_locations]\nlab = ["{U1}", "/data/"]\n')
    assert ProvenaConfig.load(toml).transfer_locations == {"lab": (U1, "/data/")}
    monkeypatch.setenv("PROVENA_TRANSFER_LOCATIONS", f'{{"flat": ["{U2}", "/"]}}')
    config = ProvenaConfig.load(toml)
    assert config.transfer_locations == {"flat": (U2, "/")}
    assert Locations(config.transfer_locations).resolve("flat:x") == Location(U2, "/x")
    monkeypatch.setenv("PROVENA_TRANSFER_LOCATIONS", "{not json")
    with pytest.raises(UsageError, match="transfer_locations"):
        ProvenaConfig.load(toml)
    assert "transfer_locations" not in repr(ProvenaConfig())
