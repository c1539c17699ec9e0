"""Object operations the sync planner needs: a stored sha256 and batched deletes.

The engine binds these to its open requests and the dataset's location, and hands them to
:class:`~provena_like.storage._sync.SyncContext`; the planner itself sends no S3 request.
"""

from __future__ import annotations

from collections.abc import Sequence

from provena_like.storage._requests import S3Requests, describe, to_transfer_error
from provena_like.storage.hashing import is_sha256_hex
from provena_like.storage.results import FileResult

__all__ = ["DELETE_BATCH", "delete_objects", "stored_sha256"]

DELETE_BATCH = 1000
"""S3's most keys per ``DeleteObjects`` call."""


async def stored_sha256(requests: S3Requests, prefix: str, key: str) -> str | None:
    """The ``x-amz-meta-sha256`` of one object (lowercase), or ``None`` if it has none.

    Args:
        requests: The engine's open requests.
        prefix: The dataset's prefix in the bucket.
        key: The key relative to the dataset root.

    Raises:
        Exception: The HEAD's error (missing object, access denied, unreachable).
    """
    head = await requests.head(prefix + key)
    stored = head.metadata.get("sha256")
    return stored.lower() if stored is not None and is_sha256_hex(stored) else None


async def delete_objects(
    requests: S3Requests, bucket: str, prefix: str, keys: Sequence[str]
) -> list[FileResult]:
    """Delete objects (keys relative to the dataset root), 1,000 per request.

    Returns:
        One result per key: ``ok`` with reason ``deleted``, or ``failed`` with why.
    """
    results: list[FileResult] = []
    for start in range(0, len(keys), DELETE_BATCH):
        batch = keys[start : start + DELETE_BATCH]
        try:
            response = await requests.call(
                requests.client.delete_objects,
                Bucket=bucket,
                Delete={"Objects": [{"Key": prefix + k} for k in batch], "Quiet": True},
            )
        except Exception as exc:
            error = to_transfer_error(exc, "delete")
            results += [FileResult(k, "failed", reason=describe(exc), error=error) for k in batch]
            continue
        errors = {
            e.get("Key", "")[len(prefix) :]: f"{e.get('Code')}: {e.get('Message')}"
            for e in response.get("Errors", [])
        }
        results += [
            FileResult(k, "failed", reason=errors[k])
            if k in errors
            else FileResult(k, "ok", reason="deleted")
            for k in batch
        ]
    return results
