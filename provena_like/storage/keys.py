"""Object keys that are safe to write locally, and where they land.

A key comes from a manifest or a bucket listing, i.e. from someone else. Before anything
touches the local disk it is checked by :func:`validate_relative_key` (pure string checks),
and mapped under the destination by :func:`local_target` (pure too). Only then does
:func:`prepare_local_target` create the directories, one level at a time, refusing any level
whose real path leaves the destination (a symlink planted inside it pointing elsewhere).

Example:
    ```python
    assert validate_relative_key("raw/2024-05-01/run1.csv") == 'raw/2024-05-01/run1.csv'
    with pytest.raises(UnsafePath):
        validate_relative_key("../etc/passwd")
    ```
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import MutableMapping
from pathlib import Path

from provena_like._core.errors import UnsafePath

__all__ = [
    "RESERVED_KEYS",
    "check_uploadable",
    "local_target",
    "prepare_local_target",
    "validate_prefix",
    "validate_relative_key",
]

RESERVED_KEYS: frozenset[str] = frozenset({"metadata.json"})
"""Keys at the dataset root that belong to the datastore and can't be uploaded."""

_DRIVE = re.compile(r"^[A-Za-z]:")
# names Windows maps to devices whatever the extension ("NUL.txt" is the NUL device)
_WINDOWS_DEVICES = re.compile(r"^(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?$", re.IGNORECASE)


def _refuse(key: str, why: str) -> UnsafePath:
    return UnsafePath(f"unsafe key {key!r}: {why}")


def validate_relative_key(key: str) -> str:
    r"""Check that ``key`` is a plain relative POSIX path that stays where it is put.

    Refused: the empty key; NUL characters; backslashes (including UNC paths
    ``\\server\share``); absolute keys (``/x``); drive letters (``C:``, ``C:/x``);
    empty segments (``a//b``, a trailing ``/``); ``.`` and ``..`` segments.

    Args:
        key: A key relative to the dataset's prefix, e.g. ``"raw/run1.csv"``.

    Returns:
        ``key``, unchanged.

    Raises:
        UnsafePath: Saying what was wrong.

    Example:
        ```python
        assert validate_relative_key("a/b.txt") == 'a/b.txt'
        ```
    """
    if not isinstance(key, str):
        raise UnsafePath(f"a key must be a string, got {type(key).__name__}")
    if not key:
        raise _refuse(key, "the key is empty")
    if "\x00" in key:
        raise _refuse(key, "NUL characters are not allowed")
    if key.startswith("\\\\"):
        raise _refuse(key, "UNC paths are not allowed")
    if "\\" in key:
        raise _refuse(key, "backslashes are not allowed (use '/')")
    if key.startswith("/"):
        raise _refuse(key, "absolute keys are not allowed")
    if _DRIVE.match(key):
        raise _refuse(key, "drive letters are not allowed")
    for segment in key.split("/"):
        if segment == "":
            raise _refuse(key, "empty segments ('a//b' or a trailing '/') are not allowed")
        if segment == "..":
            raise _refuse(key, "'..' segments are not allowed")
        if segment == ".":
            raise _refuse(key, "'.' segments are not allowed")
    return key


def validate_prefix(prefix: str) -> str:
    """Check a key prefix (for listing, or to upload under): ``""``, ``"raw/"``, ``"raw/20"``.

    The same rules as :func:`validate_relative_key`, except that the prefix may be empty or
    end with ``/``.

    Returns:
        ``prefix``, unchanged.

    Raises:
        UnsafePath: Saying what was wrong.

    Example:
        ```python
        assert validate_prefix("raw/") == 'raw/'
        ```
    """
    if prefix == "":
        return prefix
    validate_relative_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def check_uploadable(key: str) -> str:
    """Check a key to upload: safe, and not one of the :data:`RESERVED_KEYS`.

    Returns:
        ``key``, unchanged.

    Raises:
        UnsafePath: If the key is unsafe or reserved.

    Example:
        ```python
        with pytest.raises(UnsafePath):
            check_uploadable("metadata.json")  # reserved for the dataset's metadata
        ```
    """
    validate_relative_key(key)
    if key in RESERVED_KEYS:
        raise _refuse(key, "reserved for the dataset's metadata")
    return key


def local_target(dest_root: Path, key: str) -> Path:
    """Map ``key`` under ``dest_root``, without any filesystem call.

    Args:
        dest_root: The destination directory.
        key: A relative key, checked with :func:`validate_relative_key` (and, on Windows,
            refused if a segment holds ``:`` or names a device).

    Returns:
        ``dest_root / key``.

    Raises:
        UnsafePath: If the key is unsafe.

    Example:
        ```python
        assert local_target(Path("/data/out"), "raw/a.csv").as_posix() == '/data/out/raw/a.csv'
        ```
    """
    validate_relative_key(key)
    segments = key.split("/")
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        for segment in segments:
            if ":" in segment:
                raise _refuse(key, "':' is not allowed in Windows file names")
            if _WINDOWS_DEVICES.match(segment) or segment.endswith((".", " ")):
                raise _refuse(key, f"{segment!r} is not a valid Windows file name")
    return dest_root.joinpath(*segments)


def prepare_local_target(
    dest_root: Path, target: Path, *, real_roots: MutableMapping[Path, Path] | None = None
) -> Path:
    """Create the directories of ``target`` inside ``dest_root``, refusing symlink escapes.

    Blocking: call it in a worker thread. Directories are created one level at a time and
    each level's real path must stay inside the real path of ``dest_root``, so a symlink
    inside the destination that points elsewhere can't redirect a write (nor make this
    function create directories elsewhere). A symlink as the *file* itself is harmless:
    the engine replaces it with ``os.replace``, which never follows it.

    Args:
        dest_root: The destination directory (created if missing).
        target: A path returned by :func:`local_target` for ``dest_root``.
        real_roots: The real paths of destination directories already created, for one
            batch of files: ``dest_root`` is created and resolved once for all of them (a
            dozen system calls less per file); the levels below it are checked every time.

    Returns:
        The target inside the real path of its directory.

    Raises:
        UnsafePath: If a directory on the way resolves outside ``dest_root``.
        OSError: If a directory can't be created.

    Example:
        ```python
        prepare_local_target(root, local_target(root, "raw/a.csv"))
        # PosixPath('/data/out/raw/a.csv')
        ```
    """
    root = real_roots.get(dest_root) if real_roots is not None else None
    if root is None:
        dest_root.mkdir(parents=True, exist_ok=True)
        root = dest_root.resolve(strict=True)
        if real_roots is not None:
            real_roots[dest_root] = root
    relative = target.relative_to(dest_root)
    current = str(root)
    for part in relative.parts[:-1]:
        step = os.path.join(current, part)
        try:
            os.mkdir(step)
        except FileExistsError:
            pass
        info = os.lstat(step)
        if stat.S_ISDIR(info.st_mode) and not getattr(info, "st_reparse_tag", 0):
            # a plain directory (no symlink, no Windows junction) inside a checked one
            current = step
            continue
        real = Path(step).resolve(strict=True)
        if real != root and not real.is_relative_to(root):
            raise UnsafePath(
                f"unsafe key {relative.as_posix()!r}: {step} leads outside the destination ({real})"
            )
        if not real.is_dir():
            raise NotADirectoryError(f"{step} exists and is not a directory")
        current = str(real)
    return Path(current, relative.parts[-1])
