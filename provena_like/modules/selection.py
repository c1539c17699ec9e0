"""Which files a download takes, with the Provena client's semantics for paths.

- a file path → that file, saved under its own name;
- a folder without a trailing slash (``raw``) → the folder itself (``dest/raw/...``);
- a folder with a trailing slash (``raw/``) → its contents (``dest/...``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from provena_like._core.errors import UsageError
from provena_like.models.datastore import ManifestEntry

__all__ = ["Selection", "select_files"]


@dataclass(frozen=True)
class Selection:
    """``files``: (key, local path, sha256, size); ``missing``: paths that matched nothing."""

    files: list[tuple[str, str, str | None, int]]
    missing: list[str]


def select_files(entries: Iterable[ManifestEntry], paths: Sequence[str] | None) -> Selection:
    """Map requested dataset paths to download specs (no filesystem access).

    Example:
        ```python
        # select_files(manifest, ["raw/"]) → every file under raw/, relative to raw/
        ```
    """
    manifest = list(entries)
    if paths is None:
        return Selection([(e.path, e.path, e.sha256, e.size) for e in manifest], [])
    chosen: dict[str, tuple[str, str, str | None, int]] = {}
    missing: list[str] = []
    by_path = {e.path: e for e in manifest}
    for raw in paths:
        if not raw or raw.startswith("/"):
            raise UsageError(f"download paths are relative to the dataset root, got {raw!r}")
        found = False
        if raw.endswith("/"):
            for e in manifest:
                if e.path.startswith(raw):
                    chosen[e.path] = (e.path, e.path[len(raw) :], e.sha256, e.size)
                    found = True
        elif raw in by_path:
            e = by_path[raw]
            chosen[e.path] = (e.path, posixpath.basename(e.path), e.sha256, e.size)
            found = True
        else:
            folder = raw + "/"
            base = posixpath.basename(raw)
            for e in manifest:
                if e.path.startswith(folder):
                    chosen[e.path] = (
                        e.path,
                        base + "/" + e.path[len(folder) :],
                        e.sha256,
                        e.size,
                    )
                    found = True
        if not found:
            missing.append(raw)
    return Selection(list(chosen.values()), missing)
