"""Key validation and local targets: refuse escapes before touching the disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provena_like import UnsafePath, UsageError
from provena_like.storage import (
    check_uploadable,
    local_target,
    prepare_local_target,
    validate_prefix,
    validate_relative_key,
)

UNSAFE = {
    "../x": "'..' segments",
    "a/../../x": "'..' segments",
    "/abs": "absolute",
    "C:\\x": "drive letters|backslashes",
    "C:/x": "drive letters",
    "c:x": "drive letters",
    "\\\\server\\share\\x": "UNC",
    "a\\..\\b": "backslashes",
    "a//b": "empty segments",
    "a/": "empty segments",
    "a/./b": "'.' segments",
    ".": "'.' segments",
    "..": "'..' segments",
    "a\x00b": "NUL",
    "": "empty",
}


@pytest.mark.parametrize(("key", "why"), list(UNSAFE.items()))
def test_unsafe_keys_are_refused_with_the_reason(key: str, why: str) -> None:
    with pytest.raises(UnsafePath, match=why):
        validate_relative_key(key)


def test_unsafe_path_is_a_transfer_and_usage_error() -> None:
    with pytest.raises(UsageError):
        validate_relative_key("../x")


@pytest.mark.parametrize(
    "key",
    ["a.txt", "raw/2024-05-01T10:00:00.csv", "a b/ü.txt", "x+y=z&.txt", "..hidden", "a/.b", "..."],
)
def test_ordinary_keys_pass_unchanged(key: str) -> None:
    assert validate_relative_key(key) == key


def test_prefixes() -> None:
    assert validate_prefix("") == ""
    assert validate_prefix("raw/") == "raw/"
    assert validate_prefix("raw/2024-") == "raw/2024-"
    for bad in ("../", "/raw/", "raw//", "a/../"):
        with pytest.raises(UnsafePath):
            validate_prefix(bad)


def test_metadata_json_is_reserved_at_the_root_only() -> None:
    with pytest.raises(UnsafePath, match="reserved"):
        check_uploadable("metadata.json")
    assert check_uploadable("raw/metadata.json") == "raw/metadata.json"


def test_local_target_touches_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    for name in ("stat", "lstat", "mkdir", "open", "makedirs", "listdir", "scandir"):
        real = getattr(os, name)

        def spy(*args: object, _real: object = real, _name: str = name, **kwargs: object) -> object:
            calls.append(_name)
            return _real(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(os, name, spy)
    dest = tmp_path / "does-not-exist"
    assert local_target(dest, "a/b/c.txt") == dest / "a" / "b" / "c.txt"
    for key in UNSAFE:
        with pytest.raises(UnsafePath):
            local_target(dest, key)
    monkeypatch.undo()
    assert calls == []
    assert not dest.exists()


def test_prepare_creates_directories_inside(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    final = prepare_local_target(dest, local_target(dest, "a/b/c.txt"))
    assert final == dest.resolve() / "a" / "b" / "c.txt"
    assert (dest / "a" / "b").is_dir()
    assert not final.exists()


def test_symlinked_directory_escaping_the_destination_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    outside = tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "evil").symlink_to(outside, target_is_directory=True)
    (dest / "dangling").symlink_to(tmp_path / "nowhere")
    for key in ("evil/x.txt", "evil/sub/deeper/x.txt"):
        with pytest.raises(UnsafePath, match="outside the destination"):
            prepare_local_target(dest, local_target(dest, key))
    with pytest.raises((UnsafePath, OSError)):
        prepare_local_target(dest, local_target(dest, "dangling/x.txt"))
    assert list(outside.iterdir()) == []  # no directory was created through the link
    assert not (tmp_path / "nowhere").exists()


def test_symlink_inside_the_destination_is_followed_when_it_stays_inside(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    (dest / "real").mkdir(parents=True)
    (dest / "alias").symlink_to(dest / "real", target_is_directory=True)
    final = prepare_local_target(dest, local_target(dest, "alias/x.txt"))
    assert final == (dest / "real").resolve() / "x.txt"


def test_a_batch_resolves_its_destination_once_and_still_checks_every_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "out"
    outside = tmp_path / "outside"
    outside.mkdir()
    resolved: list[Path] = []
    real_resolve = Path.resolve

    def counting(self: Path, strict: bool = False) -> Path:
        resolved.append(self)
        return real_resolve(self, strict=strict)

    monkeypatch.setattr(Path, "resolve", counting)
    real_roots: dict[Path, Path] = {}
    for name in ("a.txt", "b.txt", "c.txt"):
        final = prepare_local_target(dest, local_target(dest, name), real_roots=real_roots)
        assert final == real_resolve(dest) / name
    assert resolved.count(dest) == 1  # the destination: created and resolved once
    assert real_roots == {dest: real_resolve(dest)}
    # a level below it is checked every time, also once the destination is known
    (dest / "evil").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath, match="outside the destination"):
        prepare_local_target(dest, local_target(dest, "evil/x.txt"), real_roots=real_roots)
    assert list(outside.iterdir()) == []
