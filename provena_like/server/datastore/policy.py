"""Inline session policies that limit STS credentials to one dataset's prefix.

What SeaweedFS 4.48 enforces, measured with the role of :class:`~provena_like.testing.SeaweedS3`
(its attached policy allows ``s3:*``; the session policy narrows it):

- ``Allow`` statements on ``arn:aws:s3:::BUCKET/PREFIX*`` scope object calls to the prefix;
  anything outside it is 403 ``AccessDenied``.
- ``s3:ListBucket`` and ``s3:ListBucketMultipartUploads`` on ``arn:aws:s3:::BUCKET`` with the
  condition ``StringLike s3:prefix = [PREFIX, PREFIX*]`` allow listing inside the prefix only;
  listing the bucket, another prefix, or the prefix without its trailing ``/`` (which would
  also match ``datasets/10378.1-50/`` for ``datasets/10378.1-5``) is 403.
- An explicit ``Deny`` on ``arn:aws:s3:::BUCKET/PREFIXmetadata.json`` wins over the ``Allow``:
  PutObject, CopyObject onto it, CreateMultipartUpload and DeleteObject on ``metadata.json``
  are 403 (DeleteObjects reports it per key), while reading it still works.
- ``NotResource`` is rejected as a malformed policy, so "everything but metadata.json" must be
  written as Allow + Deny.
"""

from __future__ import annotations

import json
import re
from typing import Any

from provena_like.models.datastore import METADATA_FILE, AccessLevel

__all__ = ["READ_ACTIONS", "WRITE_ACTIONS", "policy_json", "session_name", "session_policy"]

READ_ACTIONS: tuple[str, ...] = ("s3:GetObject",)
"""Object actions of read credentials (HeadObject is authorised as GetObject)."""

WRITE_ACTIONS: tuple[str, ...] = (
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)
"""Object actions write credentials add (PutObject covers multipart parts and copies)."""

_SESSION_NAME = re.compile(r"[^\w+=,.@-]")


def session_policy(bucket: str, prefix: str, access: AccessLevel) -> dict[str, Any]:
    """The session policy for ``access`` to ``s3://bucket/prefix`` (``prefix`` ends with ``/``).

    Example:
        ```python
        policy = session_policy("provena", "datasets/10378.1-7/", "write")
        ```
    """
    if not prefix.endswith("/"):
        raise ValueError(f"a dataset prefix ends with '/', got {prefix!r}")
    objects = f"arn:aws:s3:::{bucket}/{prefix}*"
    list_actions = ["s3:ListBucket"]
    if access == "write":
        list_actions.append("s3:ListBucketMultipartUploads")
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ListDatasetPrefix",
            "Effect": "Allow",
            "Action": list_actions,
            "Resource": [f"arn:aws:s3:::{bucket}"],
            "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
        },
        {
            "Sid": "ReadDatasetObjects",
            "Effect": "Allow",
            "Action": list(READ_ACTIONS),
            "Resource": [objects],
        },
    ]
    if access == "write":
        statements += [
            {
                "Sid": "WriteDatasetObjects",
                "Effect": "Allow",
                "Action": list(WRITE_ACTIONS),
                "Resource": [objects],
            },
            {
                "Sid": "ProtectMetadataFile",
                "Effect": "Deny",
                "Action": list(WRITE_ACTIONS),
                "Resource": [f"arn:aws:s3:::{bucket}/{prefix}{METADATA_FILE}"],
            },
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def policy_json(bucket: str, prefix: str, access: AccessLevel) -> str:
    """:func:`session_policy` as the compact JSON STS takes."""
    return json.dumps(session_policy(bucket, prefix, access), separators=(",", ":"))


def session_name(username: str, dataset_id: str) -> str:
    """A RoleSessionName (2-64 letters, digits or ``_+=,.@-``) naming who asked for which."""
    raw = f"{username}@{dataset_id.replace('/', '-')}"
    name = _SESSION_NAME.sub("_", raw)[:64]
    return name if len(name) >= 2 else f"{name}__"
