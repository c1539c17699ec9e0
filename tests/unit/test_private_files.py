"""``write_private_file``: owner-only, replaces atomically, leaves no temporary file behind."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from provena_like._private_files import write_private_file


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_new_file_is_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    write_private_file(target, b"secret\n")
    assert target.read_bytes() == b"secret\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_replaces_an_existing_file_and_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    target.write_bytes(b"old content, longer than the new one")
    os.chmod(target, 0o644)
    write_private_file(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_a_failed_replace_leaves_the_target_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "occupied"
    target.mkdir()
    (target / "inside").write_text("kept")
    with pytest.raises(OSError):
        write_private_file(target, b"data")  # a non-empty directory can't be replaced
    assert (target / "inside").read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["occupied"]


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_private_file(tmp_path / "absent" / "file", b"data")
    assert list(tmp_path.iterdir()) == []
