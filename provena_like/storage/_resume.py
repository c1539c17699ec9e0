"""State that lets interrupted transfers continue: upload records, download sidecars, hashes.

- **Uploads.** An open multipart upload is recorded locally (a small JSON file per key under
  the cache directory): its upload id, the part size, the file's size and mtime, and the
  sha256 given at ``CreateMultipartUpload`` if there was one (S3 doesn't return the metadata
  of an upload still open). A resumed upload reuses the open upload only if the file's size
  and mtime (and the sha256, where both are known) are unchanged and the upload is still
  listed by ``ListMultipartUploads``; each part ``ListParts`` reports is kept only if its
  size and checksum (CRC32 or the md5 ETag) match the local bytes.
- **Downloads.** A resumable download writes ``.<name>.provena-partial`` beside its target,
  with ``.<name>.provena-partial.json`` recording the remote ETag, size and bytes written.
  A later download continues with ``Range`` + ``If-Match``; a changed object starts over.
- **Hashes.** :class:`HashCache` remembers a local file's sha256 (and its md5 once asked
  for: the ETag of a single-part object) by (path, size, mtime_ns), so syncs don't re-read
  unchanged files. Files modified in the last two seconds are never
  cached (an edit within the timestamp granularity would otherwise go unseen).

Every function here is blocking: call them in worker threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from provena_like.storage.hashing import CHUNK_SIZE, hash_file

__all__ = [
    "PARTIAL_SUFFIX",
    "HashCache",
    "PartialState",
    "UploadState",
    "default_cache_dir",
    "load_upload_state",
    "partial_paths",
    "read_partial",
    "remove_partial",
    "remove_upload_state",
    "save_upload_state",
    "write_sidecar",
]

PARTIAL_SUFFIX = ".provena-partial"
_RACY_SECONDS = 2.0
_MAX_NAME = 200


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


# ---------------------------------------------------------------------- uploads


@dataclass(frozen=True, slots=True)
class UploadState:
    """An open multipart upload this machine created, and what it was created for.

    Attributes:
        upload_id: The upload.
        sha256: The sha256 stored as the object's metadata at creation (``None``: none was,
            the file was hashed while its parts were sent).
        size: The file's size.
        part_size: Bytes per part.
        mtime_ns: The file's mtime (``None`` in records written before it was kept: such an
            upload is not resumed).
    """

    upload_id: str
    sha256: str | None
    size: int
    part_size: int
    mtime_ns: int | None = None


def _upload_state_path(cache_dir: Path, endpoint: str, bucket: str, key: str) -> Path:
    digest = hashlib.sha256(f"{endpoint}\0{bucket}\0{key}".encode()).hexdigest()
    return cache_dir / "uploads" / f"{digest}.json"


def load_upload_state(cache_dir: Path, endpoint: str, bucket: str, key: str) -> UploadState | None:
    """The recorded open upload of ``key``, if any."""
    data = _read_json(_upload_state_path(cache_dir, endpoint, bucket, key))
    try:
        sha256, mtime_ns = data.get("sha256"), data.get("mtime_ns")
        return UploadState(
            upload_id=str(data["upload_id"]),
            sha256=None if sha256 is None else str(sha256),
            size=int(data["size"]),
            part_size=int(data["part_size"]),
            mtime_ns=None if mtime_ns is None else int(mtime_ns),
        )
    except (AttributeError, TypeError, KeyError, ValueError):
        return None


def save_upload_state(
    cache_dir: Path, endpoint: str, bucket: str, key: str, state: UploadState
) -> None:
    """Record an open upload of ``key``."""
    _atomic_write_json(_upload_state_path(cache_dir, endpoint, bucket, key), asdict(state))


def remove_upload_state(cache_dir: Path, endpoint: str, bucket: str, key: str) -> None:
    """Forget the open upload of ``key`` (completed or aborted)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_upload_state_path(cache_dir, endpoint, bucket, key))


# ---------------------------------------------------------------------- downloads


def partial_paths(final: Path) -> tuple[Path, Path]:
    """The resumable temp file beside ``final`` and its sidecar."""
    tmp = final.with_name(f".{final.name[:_MAX_NAME]}{PARTIAL_SUFFIX}")
    return tmp, tmp.with_name(tmp.name + ".json")


@dataclass(frozen=True, slots=True)
class PartialState:
    """What a partial download holds: the object's ETag and size, and the bytes written."""

    etag: str
    size: int
    done: int


def read_partial(final: Path) -> PartialState | None:
    """The resumable state of ``final``'s partial download (``None`` if there is none).

    The partial file is truncated to the bytes the sidecar vouches for.
    """
    tmp, sidecar = partial_paths(final)
    data = _read_json(sidecar)
    try:
        state = PartialState(str(data["etag"]), int(data["size"]), int(data["done"]))
        on_disk = os.lstat(tmp).st_size
    except (TypeError, KeyError, ValueError, OSError):
        return None
    done = min(state.done, on_disk)
    if done <= 0 or done > state.size:
        return None
    if on_disk != done:
        os.truncate(tmp, done)
    return PartialState(state.etag, state.size, done)


def write_sidecar(final: Path, state: PartialState) -> None:
    """Record what the partial download of ``final`` holds."""
    _atomic_write_json(partial_paths(final)[1], asdict(state))


def remove_partial(final: Path) -> None:
    """Remove the partial download of ``final`` and its sidecar."""
    for path in partial_paths(final):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


# ---------------------------------------------------------------------- local hashes


class HashCache:
    """sha256 (and md5) of local files keyed by (absolute path, size, mtime_ns), saved as JSON.

    An entry is ``[size, mtime_ns, sha256]`` or ``[size, mtime_ns, sha256, md5]``: the md5 is
    kept once a sync compared the file with a single-part object's ETag.

    Example:
        ```python
        cache = HashCache.load(Path("cache/hashes.json"))
        cache.get(Path("a.bin"), os.stat("a.bin"))
        ```
    """

    def __init__(self, path: Path, entries: dict[str, list[Any]]) -> None:
        self._path = path
        self._entries = entries
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

    def _entry(self, path: Path, info: os.stat_result) -> list[Any] | None:
        entry = self._entries.get(str(path))
        if (
            isinstance(entry, list)
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

    def put(self, path: Path, info: os.stat_result, sha256: str, md5: str | None = None) -> None:
        """Remember ``path``'s sha256, and md5 if given (unless modified too recently to trust).

        An md5 already cached for the same size, mtime and sha256 is kept when none is given.
        """
        if time.time() - info.st_mtime_ns / 1e9 < _RACY_SECONDS:
            return
        with self._lock:
            if md5 is None and (old := self._entry(path, info)) is not None and old[2] == sha256:
                md5 = self.get_md5(path, info)
            entry: list[Any] = [info.st_size, info.st_mtime_ns, sha256]
            self._entries[str(path)] = entry if md5 is None else [*entry, md5]
            self._dirty = True

    def digest(
        self, path: Path, info: os.stat_result, *, trust_cache: bool = True, md5: bool = False
    ) -> tuple[str, str | None] | None:
        """``path``'s sha256 (and md5 if asked): cached, else read and remembered.

        Blocking (it may read the file): call it from a worker thread. ``None`` if the file
        can't be read.
        """
        if trust_cache:
            cached = self.get(path, info)
            cached_md5 = self.get_md5(path, info) if md5 else None
            if cached is not None and (not md5 or cached_md5 is not None):
                return cached, cached_md5
        try:
            # a buffer sized to the file: no 8 MiB buffer zeroed for each small file
            digests = hash_file(path, md5=md5, chunk_size=min(CHUNK_SIZE, info.st_size + 1))
        except OSError:
            return None
        if digests.sha256 is None:  # pragma: no cover - sha256 is always asked for
            return None
        self.put(path, info, digests.sha256, digests.md5)
        return digests.sha256, digests.md5

    def save(self) -> None:
        """Write the cache if it changed (best effort)."""
        if not self._dirty:
            return
        with contextlib.suppress(OSError):
            _atomic_write_json(self._path, self._entries)
        self._dirty = False
