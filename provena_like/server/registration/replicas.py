"""What the server can see of a registered file's replica: objects in its own bucket.

The server can look into one kind of repository only: an S3 repository (``kind`` ``s3``)
whose root is in the bucket of the server's object store (``s3://<its bucket>[/prefix]``).
There it HEADs the object itself - its size and the full-object sha256 checksum the store
keeps - instead of taking the caller's word. Everywhere else (POSIX, Globus, another bucket)
what a caller says about a replica is recorded as its claim (``verified_at`` None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provena_like.server.datastore import storage
from provena_like.server.datastore.storage import ObjectStore
from provena_like.server.registry.tables import ItemRow

__all__ = ["Look", "look", "own_prefix", "verify_bytes"]


def own_prefix(store: ObjectStore | None, repository: ItemRow) -> str | None:
    """The key prefix (``''`` or ``prefix/``) of ``repository`` in the server's own bucket.

    None when the server can't look into the repository (not S3, another bucket, or no
    object store configured).
    """
    record: dict[str, Any] = repository.record
    root = str(record.get("root") or "")
    if store is None or record.get("kind") != "s3" or not root.startswith("s3://"):
        return None
    bucket, _, prefix = root.removeprefix("s3://").partition("/")
    if bucket != store.bucket:
        return None
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


@dataclass(frozen=True)
class Look:
    """What the server saw of one replica.

    Attributes:
        ours: whether the server could look (the repository is in its own bucket).
        key: the object's key in the bucket (``''`` when not ours).
        head: what HEAD answered, None when there is no such object (or not ours).
    """

    ours: bool
    key: str = ""
    head: storage.ObjectHead | None = None


async def look(store: ObjectStore | None, repository: ItemRow, relative_path: str) -> Look:
    """HEAD the replica at ``relative_path`` in ``repository`` if the server can look there."""
    prefix = own_prefix(store, repository)
    if prefix is None or store is None:
        return Look(ours=False)
    key = prefix + relative_path.lstrip("/")
    return Look(ours=True, key=key, head=await storage.head_object(store, key))


def verify_bytes(seen: Look, size: int, sha256: str) -> tuple[bool, str | None]:
    """Whether a replica the server looked at holds ``size`` bytes of sha256 ``sha256``.

    Returns:
        (verified, problem): verified True when the server saw the size and the store's
        sha256 checksum equal the expected ones; a problem (a sentence) when what it saw
        contradicts them (no object, another size or sha256). Neither for a replica the
        server can't look at, or an object without a full-object sha256 (the caller's
        claim then stands).
    """
    if not seen.ours:
        return False, None
    if seen.head is None:
        return False, f"there is no object {seen.key!r} in the server's bucket"
    if seen.head.size != size:
        return False, f"object {seen.key!r} has {seen.head.size} bytes, not {size}"
    if seen.head.sha256 is None:
        return False, None
    if seen.head.sha256 != sha256:
        return False, f"object {seen.key!r} has sha256 {seen.head.sha256}, not {sha256}"
    return True, None
