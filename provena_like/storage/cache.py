"""The local cache of the storage engine and of registration: where it is, and file hashes.

:func:`default_cache_dir` is the folder both keep their state in (``$PROVENA_CACHE_DIR``,
else the user's cache folder). :class:`HashCache` remembers the sha256 (and the md5, once
asked for) of local files by (absolute path, size, mtime_ns), one JSON file per folder of
files, so that syncs and :meth:`~provena_like.modules.registration.Registration.register_files`
don't read unchanged files again. A file modified in the last two seconds is never cached:
an edit within the timestamp granularity would otherwise go unseen.

Every function here is blocking: call them in worker threads.

Example:
    ```python
    Path("a.bin").write_bytes(b"hello")
    path = Path("a.bin").absolute()
    cache = HashCache.for_root(Path("cache"), path.parent)
    sha256, md5 = cache.digest(path, os.stat(path), md5=True) or ("", None)
    assert sha256.startswith("2cf24dba") and md5 == "5d41402abc4b2a76b9719d911017c592"
    cache.save()
    ```
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provena_like.storage.hashing import CHUNK_SIZE, hash_file

__all__ = ["HashCache", "default_cache_dir"]

_RACY_SECONDS = 2.0


def default_cache_dir() -> Path:
    """``$PROVENA_CACHE_DIR``, else ``$XDG_CACHE_HOME/provena_like``, else ``~/.cache/...``.

    Example:
        ```python
        assert default_cache_dir().name == 'provena_like'
        ```
    """
    explicit = os.environ.get("PROVENA_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "provena_like"


def _atomic_write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(payload), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class HashCache:
    """sha256 (and md5) of local files keyed by (absolute path, size, mtime_ns), saved as JSON.

    An entry is ``[size, mtime_ns, sha256]``, ``[size, mtime_ns, sha256, md5]`` or
    ``[size, mtime_ns, sha256, md5 or null, "part_size:etag"]``: the md5 is kept once a sync
    compared the file with a single-part object's ETag, the multipart ETag (and the part size
    it was computed for) once a sync compared it with a multipart object's. In memory entries
    are tuples: the garbage collector leaves tuples of plain values alone, and a cache of
    many files then costs it nothing.

    Example:
        ```python
        Path("b.bin").write_bytes(b"")
        cache = HashCache.load(Path("cache/hashes.json"))
        assert cache.get(Path("b.bin").absolute(), os.stat("b.bin")) is None  # not yet
        ```
    """

    def __init__(self, path: Path, entries: dict[str, Any]) -> None:
        self._path = path
        self._entries: dict[str, tuple[Any, ...]] = {
            key: tuple(entry) for key, entry in entries.items() if isinstance(entry, list | tuple)
        }
        self._dirty = False
        self._lock = threading.Lock()

    @classmethod
    def for_root(cls, cache_dir: Path, root: Path) -> HashCache:
        """The cache of the files under ``root``."""
        digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:32]
        return cls.load(cache_dir / "hashes" / f"{digest}.json")

    @classmethod
    def load(cls, path: Path) -> HashCache:
        """Load the cache at ``path`` (empty if missing or unreadable)."""
        data = _read_json(path)
        return cls(path, data if isinstance(data, dict) else {})

    def _entry(self, path: Path, info: os.stat_result) -> tuple[Any, ...] | None:
        entry = self._entries.get(str(path))
        if (
            entry is not None
            and len(entry) >= 3
            and entry[0] == info.st_size
            and entry[1] == info.st_mtime_ns
        ):
            return entry
        return None

    def get(self, path: Path, info: os.stat_result) -> str | None:
        """The cached sha256 of ``path`` if its size and mtime are unchanged."""
        entry = self._entry(path, info)
        return str(entry[2]) if entry is not None else None

    def get_md5(self, path: Path, info: os.stat_result) -> str | None:
        """The cached md5 of ``path`` if its size and mtime are unchanged and one was kept."""
        entry = self._entry(path, info)
        return str(entry[3]) if entry is not None and len(entry) > 3 and entry[3] else None

    def get_etag(self, path: Path, info: os.stat_result) -> tuple[int, str] | None:
        """The cached (part size, multipart ETag) of ``path``, if size and mtime are unchanged."""
        entry = self._entry(path, info)
        if entry is None or len(entry) < 5 or not isinstance(entry[4], str):
            return None
        part, _, etag = entry[4].partition(":")
        return (int(part), etag) if part.isdigit() and etag else None

    def put(
        self,
        path: Path,
        info: os.stat_result,
        sha256: str,
        md5: str | None = None,
        etag: tuple[int, str] | None = None,
    ) -> None:
        """Remember ``path``'s sha256, and md5 and multipart ETag (part size, ETag) if given.

        Unless ``path`` was modified too recently to trust. An md5 or ETag already cached for
        the same size, mtime and sha256 is kept when none is given.
        """
        if time.time() - info.st_mtime_ns / 1e9 < _RACY_SECONDS:
            return
        with self._lock:
            if (old := self._entry(path, info)) is not None and old[2] == sha256:
                md5 = md5 if md5 is not None else self.get_md5(path, info)
                etag = etag if etag is not None else self.get_etag(path, info)
            entry: tuple[Any, ...] = (info.st_size, info.st_mtime_ns, sha256)
            if etag is not None:
                entry = (*entry, md5, f"{etag[0]}:{etag[1]}")
            elif md5 is not None:
                entry = (*entry, md5)
            self._entries[str(path)] = entry
            self._dirty = True

    def digest(
        self,
        path: Path,
        info: os.stat_result,
        *,
        trust_cache: bool = True,
        md5: bool = False,
        on_bytes: Callable[[int], None] | None = None,
    ) -> tuple[str, str | None] | None:
        """``path``'s sha256 (and md5 if asked): cached, else read and remembered.

        Blocking (it may read the file): call it from a worker thread. ``None`` if the file
        can't be read. ``on_bytes`` is called with the size of each piece hashed.
        """
        if trust_cache:
            cached = self.get(path, info)
            cached_md5 = self.get_md5(path, info) if md5 else None
            if cached is not None and (not md5 or cached_md5 is not None):
                return cached, cached_md5
        try:
            # a buffer sized to the file: no 8 MiB buffer zeroed for each small file
            digests = hash_file(
                path, md5=md5, chunk_size=min(CHUNK_SIZE, info.st_size + 1), on_bytes=on_bytes
            )
        except OSError:
            return None
        if digests.sha256 is None:  # pragma: no cover - sha256 is always asked for
            return None
        self.put(path, info, digests.sha256, digests.md5)
        return digests.sha256, digests.md5

    def digest_etag(
        self,
        path: Path,
        info: os.stat_result,
        part_size: int,
        *,
        trust_cache: bool = True,
        on_bytes: Callable[[int], None] | None = None,
    ) -> tuple[str, str] | None:
        """``path``'s sha256 and its multipart ETag in parts of ``part_size``: cached, else read.

        Blocking, as :meth:`digest`. ``None`` if the file can't be read.
        """
        if trust_cache:
            cached, tag = self.get(path, info), self.get_etag(path, info)
            if cached is not None and tag is not None and tag[0] == part_size:
                return cached, tag[1]
        try:
            digests = hash_file(
                path,
                chunk_size=min(CHUNK_SIZE, info.st_size + 1),
                on_bytes=on_bytes,
                etag_part_size=part_size,
            )
        except OSError:
            return None
        if digests.sha256 is None or digests.etag is None:  # pragma: no cover - both asked for
            return None
        self.put(path, info, digests.sha256, etag=(part_size, digests.etag))
        return digests.sha256, digests.etag

    def save(self) -> None:
        """Write the cache if it changed (best effort)."""
        if not self._dirty:
            return
        with contextlib.suppress(OSError):
            _atomic_write_json(self._path, self._entries)
        self._dirty = False
