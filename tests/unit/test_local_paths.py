r"""EndpointPaths: collection paths ↔ local paths, Windows forms included (checked on any OS)."""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath

import pytest

from provena_like._core.errors import UnsafePath, UsageError
from provena_like._core.local_paths import EndpointPaths, is_windows_path, local_pure_path


@pytest.mark.parametrize(
    ("path", "directory", "collection_path", "local"),
    [
        (
            "/C/data/raw",
            "C:\\data\\raw",
            "/C/data/raw/s1/a.bin",
            PureWindowsPath("C:/data/raw/s1/a.bin"),
        ),
        ("/C/data/raw", "C:/data/raw", "/C/data/raw", PureWindowsPath("C:\\data\\raw")),
        (
            "/~/share",
            "\\\\nas\\lab\\raw",
            "/~/share/s1/a.bin",
            PureWindowsPath("\\\\nas\\lab\\raw\\s1\\a.bin"),
        ),
        ("/~/data", "/home/me/data", "/~/data/s1/a.bin", PurePosixPath("/home/me/data/s1/a.bin")),
        ("/", "/srv/globus", "/s1/a.bin", PurePosixPath("/srv/globus/s1/a.bin")),
    ],
)
def test_both_ways(path: str, directory: str, collection_path: str, local: object) -> None:
    paths = EndpointPaths(path, directory)
    assert paths.local_path(collection_path) == local
    assert paths.collection_path(str(local)) == collection_path


def test_windows_paths_compare_without_case() -> None:
    paths = EndpointPaths("/C/data", "C:\\Data")
    assert paths.collection_path("c:\\data\\x.bin") == "/C/data/x.bin"


@pytest.mark.parametrize(
    ("directory", "outside"),
    [
        ("C:\\data\\raw", "C:\\data\\rawer\\a.bin"),
        ("C:\\data\\raw", "D:\\data\\raw\\a.bin"),
        ("C:\\data\\raw", "/data/raw/a.bin"),
        ("\\\\nas\\lab\\raw", "\\\\nas\\other\\raw\\a.bin"),
        ("/home/me/data", "/home/me/database/a.bin"),
        ("/home/me/data", "/home/me"),
    ],
)
def test_local_paths_outside_the_directory_are_refused(directory: str, outside: str) -> None:
    with pytest.raises(UsageError, match="outside the local endpoint's directory"):
        EndpointPaths("/", directory).collection_path(outside)


def test_collection_paths_outside_the_endpoint_path_are_refused() -> None:
    paths = EndpointPaths("/C/data/raw", "C:\\data\\raw")
    for outside in ("/C/data", "/C/data/rawer/a.bin", "/D/data/raw/a.bin", "/"):
        with pytest.raises(UsageError, match="outside the local endpoint's path"):
            paths.local_path(outside)


def test_climbing_out_is_refused() -> None:
    paths = EndpointPaths("/~/data", "C:\\data")
    with pytest.raises(UnsafePath):
        paths.local_path("/~/data/../secret")
    with pytest.raises(UnsafePath):
        paths.collection_path("C:\\data\\..\\secret")
    with pytest.raises(UnsafePath):
        EndpointPaths("/", "/srv/../etc")


def test_relative_or_malformed_paths_are_refused() -> None:
    for bad in ("data\\raw", "C:data", "relative/dir", ""):
        with pytest.raises(UsageError, match="not an absolute path"):
            local_pure_path(bad)
    with pytest.raises(UsageError, match="must start with '/'"):
        EndpointPaths("C/data", "/data")
    assert is_windows_path("C:/x") and is_windows_path("\\\\host\\share")
    assert not is_windows_path("\\\\host") and not is_windows_path("/C/data")
