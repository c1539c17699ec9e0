"""Which files a transfer, sync or verify takes: glob selection and the local files that count.

One rule for the SDK, the CLI and the sync planner:

- :func:`matches`: include/exclude glob patterns on a relative POSIX path;
- :func:`is_partial`: the temp files an interrupted download leaves (never part of a copy);
- :func:`local_files`: every regular file of a local copy, partial downloads left out;
- :data:`DownloadSpec`: one object to download (or compare) and where it goes.

Which manifest entries a dataset path names (``"raw"`` vs ``"raw/"``) is the L3 side of
selection: :func:`provena_like.modules.selection.select_files` turns them into specs.

Example:
    ```python
    assert matches("raw/a.csv", ["*.csv"], ["raw/tmp*"])
    assert (is_partial(".a.csv.provena-partial"), is_partial("a.csv")) == (True, False)
    ```
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path

from provena_like.storage._resume import PARTIAL_SUFFIX

__all__ = ["DownloadSpec", "download_entry", "is_partial", "local_files", "matches"]

DownloadSpec = tuple[str, str, str | None] | tuple[str, str, str | None, int | None]
"""``(key relative to the dataset root, local path relative to dest, expected sha256)``,
optionally with the size as a 4th item (as a manifest records it)."""

_TEMP_SUFFIX = ".partial"  # a download's temp file, renamed once verified (see _download)


def download_entry(spec: DownloadSpec) -> tuple[str, str, str | None, int | None]:
    """A :data:`DownloadSpec` with its size (``None`` when the spec has none).

    Example:
        ```python
        assert download_entry(("raw/a.csv", "a.csv", None)) == ("raw/a.csv", "a.csv", None, None)
        ```
    """
    if len(spec) == 4:
        return spec
    key, local, sha256 = spec
    return key, local, sha256, None


def matches(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether a relative POSIX path passes the include and exclude glob patterns.

    Patterns use :func:`fnmatch.fnmatchcase` on the whole relative path, so ``*`` also
    matches ``/``: ``"*.csv"`` selects CSV files at any depth. Matching is case-sensitive on
    every platform.

    Args:
        relative: The path relative to the folder or prefix being transferred.
        include: If any, the path must match one of them.
        exclude: The path must match none of them.

    Example:
        ```python
        assert not matches("tmp/b.csv", ["*.csv"], ["tmp/*"])
        ```
    """
    if include and not any(fnmatchcase(relative, p) for p in include):
        return False
    return not any(fnmatchcase(relative, p) for p in exclude)


def is_partial(name: str) -> bool:
    """Whether a file name is a download in progress (a temp or resumable partial file).

    Example:
        ```python
        assert is_partial(".big.bin.1f2e3d4c.partial")
        ```
    """
    # a resumable download keeps ``.<name>.provena-partial`` and its ``.json`` sidecar
    return PARTIAL_SUFFIX in name or name.endswith(_TEMP_SUFFIX)


def local_files(root: Path) -> dict[str, Path]:
    """Every regular file under ``root`` by relative POSIX path, partial downloads left out.

    Symlinked directories are not followed. Blocking: run it in a worker thread.

    Args:
        root: The local copy (a missing folder has no files).

    Returns:
        ``{relative path: file}``, in walk order (directories sorted).
    """
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in filenames:
            if is_partial(name):
                continue
            path = Path(dirpath) / name
            found[path.relative_to(root).as_posix()] = path
    return found
