"""``Content-MD5`` on requests that S3 requires an integrity header for.

botocore ≥ 1.36 covers ``DeleteObjects`` (and the other "checksum required" operations) with
an ``x-amz-checksum-crc32`` header instead of ``Content-MD5``. AWS and SeaweedFS accept that;
MinIO-family stores refuse the request (``MissingContentMD5``). Adding ``Content-MD5`` before
signing satisfies every store: those that check CRCs still get one.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

__all__ = ["MD5_OPERATIONS", "add_content_md5", "register_content_md5"]

MD5_OPERATIONS = ("DeleteObjects",)
"""S3 operations whose body must carry ``Content-MD5`` for MinIO-family stores."""


def add_content_md5(request: Any, **_: Any) -> None:
    """Handle botocore's ``before-sign``: set ``Content-MD5`` from a bytes body if absent."""
    body = request.body
    if "Content-MD5" in request.headers or not isinstance(body, bytes | bytearray):
        return
    digest = hashlib.md5(body, usedforsecurity=False).digest()
    request.headers["Content-MD5"] = base64.b64encode(digest).decode("ascii")


def register_content_md5(client: Any) -> None:
    """Register :func:`add_content_md5` on an (aio)botocore S3 ``client``."""
    for operation in MD5_OPERATIONS:
        client.meta.events.register(f"before-sign.s3.{operation}", add_content_md5)
