"""State that lets interrupted transfers continue: upload records, download sidecars, hashes.

- **Uploads.** An open multipart upload is recorded locally (a small JSON file per key under
  the cache directory): its upload id, the part size, the file's size and mtime, and the
  sha256 given at ``CreateMultipartUpload`` if there was one (S3 doesn't return the metadata
  of an upload still open). A resumed upload reuses the open upload only if the file's size
  and mtime (and the sha256, where both are known) are unchanged and the upload is
  still open (``ListParts`` of it answers); each part ``ListParts`` reports is kept only if its
  size and checksum (CRC32 or the md5 ETag) match the local bytes.
- **Downloads.** A resumable download writes ``.<name>.provena-partial`` beside its target,
  with ``.<name>.provena-partial.json`` recording the remote ETag, size and bytes written.
  A later download continues with ``Range`` + ``If-Match``; a changed object starts over.
- **Hashes** of local files are kept by :class:`~provena_like.storage.cache.HashCache`.

Every function here is blocking: call them in worker threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from provena_like.storage.cache import _atomic_write_json, _read_json

__all__ = [
    "PARTIAL_SUFFIX",
    "PartialState",
    "UploadState",
    "load_upload_state",
    "partial_paths",
    "read_partial",
    "remove_partial",
    "remove_upload_state",
    "save_upload_state",
    "write_sidecar",
]

PARTIAL_SUFFIX = ".provena-partial"
_MAX_NAME = 200


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
