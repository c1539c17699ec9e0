"""Streaming checksums: sha256 always, md5 only when asked, computed off the event loop.

``hashlib`` releases the GIL on large buffers, so hashing in worker threads runs truly in
parallel with the event loop. Files are read once, in large chunks (8 MiB), and every
function here is blocking except :func:`hash_file_async`, which runs :func:`hash_file` in a
worker thread under a :class:`anyio.CapacityLimiter`.

Example:
    ```python
    hasher = StreamingHasher(md5=True)
    hasher.update(b"hello")
    assert hasher.digests().sha256[:12] == '2cf24dba5fb0'
    ```
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import anyio

__all__ = [
    "CHUNK_SIZE",
    "MD5_METADATA_KEY",
    "Digests",
    "MultipartETag",
    "StoredHashes",
    "StreamingHasher",
    "etag_md5",
    "etag_part_sizes",
    "etag_parts",
    "hash_file",
    "hash_file_async",
    "is_sha256_hex",
    "md5_b64",
    "md5_from_b64",
    "read_file",
    "sha256_b64",
]

CHUNK_SIZE = 8 * 1024 * 1024
"""Bytes read per ``read`` call when hashing a file."""

_SMALL_BUFFER = 64 * 1024
"""The smallest buffer :func:`hash_file` reads a regular file into (a small file's size + 1
would do, but a file growing while it is hashed is then still read in pieces this large)."""

_HEX = frozenset("0123456789abcdef")

MiB = 1024 * 1024

COMMON_PART_SIZES = tuple(n * MiB for n in (8, 5, 16, 15, 10, 64, 100))
"""Part sizes other tools upload with: the AWS CLI, boto3 and this engine (8 MiB), rclone
(5 MiB), MinIO's client (16 MiB), s3cmd (15 MiB), ... - tried, in this order, to find the
part size of a multipart object's ETag when the store doesn't tell it."""

_MAX_PART_SIZES = 3
"""Part sizes tried at most for one object (each one is an md5 over the whole file)."""


@dataclass(frozen=True, slots=True)
class Digests:
    """Checksums of some bytes (lowercase hex), and how many there were.

    Attributes:
        size: The number of bytes hashed.
        sha256: The sha256, ``None`` when hashing was off.
        md5: The md5, ``None`` unless asked for.
    """

    size: int
    sha256: str | None
    md5: str | None = None
    etag: str | None = None
    """The ETag S3 gives these bytes uploaded in parts (see :class:`MultipartETag`), if asked."""


def etag_md5(etag: str | None) -> str | None:
    """The md5 a single-part object's ETag is (lowercase, no quotes), or ``None``.

    ``None`` for a multipart ETag (``-N``) and anything else that isn't 32 hex digits. An
    object encrypted with KMS or a customer's key has an ETag of that form that is no md5.

    Example:
        ```python
        assert etag_md5('"46746A5A8347BCCA710F4E1593301FD5"') == "46746a5a8347bcca710f4e1593301fd5"
        assert etag_md5("60da5a80d071cce99b9f33994affe96c-2") is None
        ```
    """
    if etag is None:
        return None
    value = etag.strip().strip('"').lower()
    return value if len(value) == 32 and set(value) <= _HEX else None


def etag_parts(etag: str | None) -> int | None:
    """The number of parts a multipart upload's ETag (``<md5 of the parts' md5s>-<N>``) names.

    ``None`` for any other ETag (a single-part object's md5, an encrypted object's).

    Example:
        ```python
        assert etag_parts('"60da5a80d071cce99b9f33994affe96c-2"') == 2
        assert etag_parts("46746a5a8347bcca710f4e1593301fd5") is None
        ```
    """
    if etag is None:
        return None
    md5, dash, count = etag.strip().strip('"').lower().partition("-")
    if not dash or len(md5) != 32 or not set(md5) <= _HEX or not count.isdigit():
        return None
    parts = int(count)
    return parts if parts >= 1 else None


def etag_part_sizes(size: int, parts: int, hints: tuple[int | None, ...] = ()) -> list[int]:
    """The part sizes that cut ``size`` bytes into exactly ``parts`` parts, likeliest first.

    ``hints`` (a part size the store reported, the engine's own) come first, then
    :data:`COMMON_PART_SIZES`; only sizes that give ``parts`` parts are kept, at most three.

    Example:
        ```python
        assert etag_part_sizes(20 * MiB, 3) == [8 * MiB]
        assert etag_part_sizes(20 * MiB, 3, (7 * MiB,)) == [7 * MiB, 8 * MiB]
        assert etag_part_sizes(20 * MiB, 9) == []
        ```
    """
    found: list[int] = []
    for part in (*hints, *COMMON_PART_SIZES):
        if part is None or part < 1 or part in found:
            continue
        if -(-size // part) == parts or (size == 0 and parts == 1):
            found.append(part)
    return found[:_MAX_PART_SIZES]


class MultipartETag:
    """The ETag S3 gives an object uploaded in parts of ``part_size`` bytes (the last smaller).

    It is the md5 of the parts' binary md5s, then ``-`` and the number of parts. Bytes are
    fed in order, across part boundaries.

    Example:
        ```python
        tag = MultipartETag(5)
        tag.update(b"hello world")  # parts b"hello", b" worl", b"d"
        parts = b"".join(hashlib.md5(p).digest() for p in (b"hello", b" worl", b"d"))
        assert tag.etag() == hashlib.md5(parts).hexdigest() + "-3"
        ```
    """

    __slots__ = ("_digests", "_left", "_part", "part_size")

    def __init__(self, part_size: int) -> None:
        if part_size < 1:
            raise ValueError("part_size must be positive")
        self.part_size = part_size
        self._digests: list[bytes] = []
        self._part = hashlib.md5(usedforsecurity=False)
        self._left = part_size

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes (blocking for large buffers: call it in a worker thread)."""
        view = memoryview(data)
        while len(view):
            if not self._left:
                self._digests.append(self._part.digest())
                self._part = hashlib.md5(usedforsecurity=False)
                self._left = self.part_size
            take = min(self._left, len(view))
            self._part.update(view[:take])
            self._left -= take
            view = view[take:]

    def etag(self) -> str:
        """The ETag of everything fed so far (lowercase, without quotes)."""
        digests = [*self._digests, self._part.digest()]
        joined = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
        return f"{joined}-{len(digests)}"


class StreamingHasher:
    """sha256 (+ optional md5) over bytes fed in order.

    Args:
        sha256: Compute the sha256.
        md5: Compute the md5 too (about 2.5 times slower than sha256 with SHA extensions).
        etag_part_size: Compute the ETag of a multipart upload in parts of this size too
            (:class:`MultipartETag`, an md5 as costly).

    Example:
        ```python
        h = StreamingHasher()
        for chunk in (b"a", b"b"):
            h.update(chunk)
        assert h.digests().size == 2
        ```
    """

    __slots__ = ("_etag", "_md5", "_sha256", "_size")

    def __init__(
        self, *, sha256: bool = True, md5: bool = False, etag_part_size: int | None = None
    ) -> None:
        self._sha256 = hashlib.sha256() if sha256 else None
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self._etag = MultipartETag(etag_part_size) if etag_part_size is not None else None
        self._size = 0

    def track_etag(self, *, md5: bool = False, part_size: int | None = None) -> None:
        """Also compute the md5 and/or a multipart ETag, from now on (before any byte is fed)."""
        if self._size:
            raise ValueError("too late: bytes were hashed already")
        if md5 and self._md5 is None:
            self._md5 = hashlib.md5(usedforsecurity=False)
        if part_size is not None:
            self._etag = MultipartETag(part_size)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes (blocking for large buffers: call it in a worker thread)."""
        if self._sha256 is not None:
            self._sha256.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        if self._etag is not None:
            self._etag.update(data)
        self._size += len(data)

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        return self._size

    def digests(self) -> Digests:
        """The checksums of everything fed so far."""
        return Digests(
            size=self._size,
            sha256=None if self._sha256 is None else self._sha256.hexdigest(),
            md5=None if self._md5 is None else self._md5.hexdigest(),
            etag=None if self._etag is None else self._etag.etag(),
        )


def sha256_b64(hex_digest: str) -> str:
    """The base64 form S3 uses for ``x-amz-checksum-sha256``.

    Example:
        ```python
        assert sha256_b64("00" * 32) == 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='
        ```
    """
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def md5_b64(hex_digest: str) -> str:
    """The base64 form of an md5 for ``Content-MD5`` (and rclone's ``md5chksum``)."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


MD5_METADATA_KEY = "md5chksum"
"""The metadata key of a multipart object's whole-file md5 (base64), rclone's convention:
``rclone copy`` checks a download against it, and the engine does when no sha256 is known."""


def md5_from_b64(value: object) -> str | None:
    """The lowercase hex md5 that ``value`` (a base64 md5, as rclone's ``md5chksum``) holds.

    ``None`` for anything else: not a string, not base64, not 16 bytes.

    Example:
        ```python
        assert md5_from_b64("1B2M2Y8AsgTpgAmY7PhCfg==") == "d41d8cd98f00b204e9800998ecf8427e"
        assert md5_from_b64("not an md5") is None
        ```
    """
    if not isinstance(value, str) or len(value) != 24:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 16 else None


class StoredHashes(NamedTuple):
    """The whole-file hashes an object's user metadata holds (lowercase hex, or ``None``).

    ``sha256`` is this project's ``x-amz-meta-sha256``; ``md5`` is rclone's ``md5chksum``
    (:data:`MD5_METADATA_KEY`, base64), which rclone stores on the multipart objects it
    uploads (and the engine does too with ``md5=True``). A value that isn't a well-formed
    hash counts as absent.

    Example:
        ```python
        stored = StoredHashes.of({"md5chksum": "1B2M2Y8AsgTpgAmY7PhCfg==", "sha256": "bad"})
        assert stored == StoredHashes(None, "d41d8cd98f00b204e9800998ecf8427e")
        ```
    """

    sha256: str | None
    md5: str | None

    @classmethod
    def of(cls, metadata: Mapping[str, str]) -> StoredHashes:
        """The hashes in ``metadata`` (an object's user metadata, keys without the prefix)."""
        sha256 = metadata.get("sha256")  # only a lowercase hex sha256 is one
        return cls(
            sha256 if is_sha256_hex(sha256) else None,
            md5_from_b64(metadata.get(MD5_METADATA_KEY)),
        )


def is_sha256_hex(value: object) -> bool:
    """Whether ``value`` looks like a lowercase hex sha256.

    Example:
        ```python
        assert (is_sha256_hex("ab" * 32), is_sha256_hex("xyz")) == (True, False)
        ```
    """
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def hash_file(
    path: str | os.PathLike[str],
    *,
    sha256: bool = True,
    md5: bool = False,
    chunk_size: int = CHUNK_SIZE,
    on_bytes: Callable[[int], None] | None = None,
    etag_part_size: int | None = None,
) -> Digests:
    """Hash a whole file, reading it once in ``chunk_size`` pieces. Blocking.

    ``on_bytes``, if given, is called with the size of each piece once it is hashed (in the
    calling thread). ``etag_part_size``: compute the ETag of a multipart upload of the file
    in parts of this size too (``Digests.etag``).

    Example:
        ```python
        digests = hash_file(Path("data.bin"))  # a file holding b"test"
        assert digests.sha256.startswith("9f86d081884c")
        ```
    """
    hasher = StreamingHasher(sha256=sha256, md5=md5, etag_part_size=etag_part_size)
    with open(path, "rb", buffering=0) as fh:
        # one reused buffer: no fresh allocation (and page faults) per chunk, ~10 % faster;
        # for a regular file no larger than needed (zeroing a whole chunk's buffer costs
        # ~20x hashing a file of a few KiB)
        info = os.fstat(fh.fileno())
        wanted = max(_SMALL_BUFFER, info.st_size + 1) if stat.S_ISREG(info.st_mode) else chunk_size
        buffer = bytearray(max(1, min(chunk_size, wanted)))
        view = memoryview(buffer)
        while n := fh.readinto(buffer):
            hasher.update(view[:n])
            if on_bytes is not None:
                on_bytes(n)
    return hasher.digests()


async def hash_file_async(
    path: Path,
    *,
    sha256: bool = True,
    md5: bool = False,
    limiter: anyio.CapacityLimiter | None = None,
) -> Digests:
    """Hash a file in a worker thread.

    Args:
        path: The file.
        sha256: Compute the sha256.
        md5: Compute the md5 too.
        limiter: Bounds the worker threads used (anyio's default limiter when ``None``).

    Example:
        ```python
        digests = await hash_file_async(Path("data.bin"), md5=True)
        ```
    """

    def work() -> Digests:
        return hash_file(path, sha256=sha256, md5=md5)

    return await anyio.to_thread.run_sync(work, limiter=limiter)


def read_file(
    path: str | os.PathLike[str], *, sha256: bool = True, md5: bool = False
) -> tuple[bytes, Digests]:
    """Read a (small) file whole and hash the same bytes. Blocking.

    Returns:
        The content and its digests.

    Example:
        ```python
        body, digests = read_file(Path("notes.txt"))
        ```
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        size = os.fstat(fd).st_size
        parts: list[bytes] = []
        # one read for the common case; more only if the file grew since it was stat'ed
        while chunk := os.read(fd, size + 1 if not parts else CHUNK_SIZE):
            parts.append(chunk)
    finally:
        os.close(fd)
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    hasher = StreamingHasher(sha256=sha256, md5=md5)
    hasher.update(data)
    return data, hasher.digests()
