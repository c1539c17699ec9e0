"""Listing a dataset's objects (``ListObjectsV2``, every page)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provena_like.storage._requests import S3Requests

__all__ = ["IncompleteUpload", "RemoteObject", "iter_objects", "iter_uploads"]


@dataclass(frozen=True, slots=True)
class RemoteObject:
    """One object of a dataset.

    Attributes:
        key: The key relative to the dataset root.
        size: Its size in bytes.
        etag: Its ETag (quotes stripped; ``"<md5>-<parts>"`` for multipart uploads).
        last_modified: When it was written.
        sha256: The sha256 stored with it (``x-amz-meta-sha256``) when the object was
            HEADed (:meth:`~provena_like.storage.TransferEngine.stat`); ``None`` in listings,
            which don't carry metadata. A stored value, not recomputed: see
            :meth:`~provena_like.storage.TransferEngine.digest` for the bytes' own.
    """

    key: str
    size: int
    etag: str
    last_modified: datetime
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class IncompleteUpload:
    """A multipart upload that was started and neither completed nor aborted.

    Attributes:
        key: The key relative to the dataset root.
        upload_id: The upload's id.
        initiated: When it was started.
    """

    key: str
    upload_id: str
    initiated: datetime | None


async def iter_uploads(
    requests: S3Requests, bucket: str, dataset_prefix: str, prefix: str = ""
) -> AsyncIterator[IncompleteUpload]:
    """Yield the open multipart uploads under ``dataset_prefix + prefix``, every page."""
    client = requests.client
    args: dict[str, Any] = {"Bucket": bucket, "Prefix": dataset_prefix + prefix}
    while True:
        page = await requests.call(client.list_multipart_uploads, **args)
        for upload in page.get("Uploads", []):
            key = upload.get("Key", "")
            if key.startswith(dataset_prefix):
                yield IncompleteUpload(
                    key=key[len(dataset_prefix) :],
                    upload_id=upload.get("UploadId", ""),
                    initiated=upload.get("Initiated"),
                )
        if not page.get("IsTruncated"):
            return
        args["KeyMarker"] = page.get("NextKeyMarker", "")
        args["UploadIdMarker"] = page.get("NextUploadIdMarker", "")


async def iter_objects(
    requests: S3Requests,
    dataset_prefix: str,
    prefix: str,
    *,
    page_size: int = 1000,
    start_after: str | None = None,
) -> AsyncIterator[RemoteObject]:
    """Yield every object under ``dataset_prefix + prefix`` (in the requests' bucket).

    With ``start_after`` (relative to ``dataset_prefix``), only the keys after it. Stops
    only when the server says the listing is complete (no continuation token).
    """
    token: str | None = None
    after = None if start_after is None else dataset_prefix + start_after
    while True:
        page = await requests.list_page(
            dataset_prefix + prefix,
            token=token,
            max_keys=page_size,
            start_after=after if token is None else None,
        )
        for entry in page.objects:
            yield RemoteObject(
                key=entry.key[len(dataset_prefix) :],
                size=entry.size,
                etag=entry.etag.strip('"'),
                last_modified=entry.last_modified,
            )
        token = page.next_token
        if not token:
            return
