"""Inline session policies that limit STS credentials to one dataset's prefix.

What SeaweedFS 4.48 enforces, measured with the role of :class:`~provena_like.testing.SeaweedS3`
(its attached policy allows ``s3:*``; the session policy narrows it):

- ``Allow`` statements on ``arn:aws:s3:::BUCKET/PREFIX*`` scope object calls to the prefix;
  anything outside it is 403 ``AccessDenied``.
- ``s3:ListBucket`` and ``s3:ListBucketMultipartUploads`` on ``arn:aws:s3:::BUCKET`` with the
  condition ``StringLike s3:prefix = [PREFIX, PREFIX*]`` allow listing inside the prefix only;
  listing the bucket, another prefix, or the prefix without its trailing ``/`` (which would
  also match ``datasets/10378.1-50/`` for ``datasets/10378.1-5``) is 403.

The two listings are separate statements (``ListDatasetPrefix``, ``ListDatasetUploads``):
MinIO-family stores (the JuiceFS S3 gateway) accept ``s3:prefix`` only on ``s3:ListBucket``
and refuse a whole session policy that puts it on ``s3:ListBucketMultipartUploads``
(``InvalidParameterValue``). For them the policy is minted without ``ListDatasetUploads``
(``uploads=False``): granting that action without the condition would let one dataset's
credentials list the keys and upload ids of every dataset's unfinished multipart uploads,
so it is never granted bucket-wide. Such credentials can't list their own unfinished uploads
either; resuming an upload doesn't need to (it asks ``ListParts`` of the recorded upload).
- An explicit ``Deny`` on ``arn:aws:s3:::BUCKET/PREFIXmetadata.json`` wins over the ``Allow``:
  PutObject, CopyObject onto it, CreateMultipartUpload and DeleteObject on ``metadata.json``
  are 403 (DeleteObjects reports it per key), while reading it still works.
- ``NotResource`` is rejected as a malformed policy, so "everything but metadata.json" must be
  written as Allow + Deny.
- Resources match **without regard to case** (the pattern is lowercased): an ``Allow`` on
  ``datasets/10378.1-99/*`` also lets the session write ``DATASETS/10378.1-99/x``, and the
  ``Deny`` on ``metadata.json`` also covers ``METADATA.JSON``. The ``s3:prefix`` condition of
  listing is case-sensitive. So a prefix made only of characters without case variants
  (digits, ``.``, ``-``, ``_``, ``/``: see :func:`~provena_like.server.datastore.service.
  dataset_prefix`) grants exactly itself; Unicode look-alikes (``ſ``, the Kelvin sign) are
  refused too.

Session credentials can't be revoked, and the session policy is fixed when they are minted.
What the store does evaluate at request time is the **bucket policy**, for assumed-role
sessions as well (:func:`freeze_policy`):

- a ``Deny`` of the write actions on ``arn:aws:s3:::BUCKET/PREFIX*`` refuses PutObject,
  CopyObject onto a key, CreateMultipartUpload, UploadPart and CompleteMultipartUpload of an
  upload started before, AbortMultipartUpload, DeleteObject and DeleteObjects (per key) of a
  session minted *before* the policy was put, while reads still work;
- ``Principal: "*"`` with ``StringLike aws:PrincipalArn`` on the role's ARN and its
  assumed-role session ARNs limits the deny to the datastore role's sessions: the server's
  own admin identity is not affected (in AWS ``aws:PrincipalArn`` of a session is the role's
  ARN, in SeaweedFS the session's; both are listed). Without the condition, ``"*"`` denies
  the admin too; ``ArnLike``/``ArnNotEquals`` and ``NotPrincipal`` are not usable there;
- a bucket policy may be at most 20 KiB (as in AWS): 547 prefixes of the shape
  ``10378.1-N/`` fit, the next is ``PolicyTooLarge``. Bucket-policy resources match case
  sensitively (a deny on ``datasets/x/*`` doesn't cover ``DATASETS/x/y``), and
  ``NotResource`` is accepted there but not enforced.
"""

from __future__ import annotations

import json
import re
from typing import Any

from provena_like.models.datastore import METADATA_FILE, AccessLevel

__all__ = [
    "FROZEN_ACTIONS",
    "MAX_BUCKET_POLICY_BYTES",
    "READ_ACTIONS",
    "WRITE_ACTIONS",
    "PolicyTooLargeError",
    "freeze_policy",
    "policy_json",
    "role_session_arns",
    "session_name",
    "session_policy",
]

READ_ACTIONS: tuple[str, ...] = ("s3:GetObject",)
"""Object actions of read credentials (HeadObject is authorised as GetObject)."""

WRITE_ACTIONS: tuple[str, ...] = (
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)
"""Object actions write credentials add (PutObject covers multipart parts and copies)."""

FROZEN_ACTIONS: tuple[str, ...] = (
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectTagging",
    "s3:DeleteObject",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersion",
    "s3:AbortMultipartUpload",
)
"""What the bucket policy denies the role's sessions on a frozen prefix (a superset of
:data:`WRITE_ACTIONS`; PutObject also covers copies, multipart parts and completion)."""

MAX_BUCKET_POLICY_BYTES = 20 * 1024
"""The largest bucket policy AWS S3 and SeaweedFS 4.48 accept (measured: 20,453 bytes pass)."""

_SESSION_NAME = re.compile(r"[^\w+=,.@-]")
_ROLE_ARN = re.compile(
    r"^arn:(?P<partition>[\w-]+):iam::(?P<account>\d*):role/(?:.*/)?(?P<name>[^/]+)$"
)


class PolicyTooLargeError(ValueError):
    """The bucket policy for so many frozen prefixes would exceed the store's limit."""


def role_session_arns(role_arn: str) -> list[str]:
    """``aws:PrincipalArn`` patterns of the role's sessions: the role, and its sessions.

    Example:
        ```python
        role_session_arns("arn:aws:iam::000000000000:role/DatasetAccess")
        # ['arn:aws:iam::000000000000:role/DatasetAccess',
        #  'arn:aws:sts::000000000000:assumed-role/DatasetAccess/*']
        ```
    """
    match = _ROLE_ARN.match(role_arn)
    if match is None:
        raise ValueError(f"not an IAM role ARN: {role_arn!r}")
    part, account, name = match["partition"], match["account"], match["name"]
    return [role_arn, f"arn:{part}:sts::{account}:assumed-role/{name}/*"]


def freeze_policy(bucket: str, role_arn: str, prefixes: list[str]) -> str | None:
    """The bucket policy (compact JSON) that stops the role's sessions writing ``prefixes``.

    One ``Deny`` of :data:`FROZEN_ACTIONS` on every ``arn:aws:s3:::bucket/prefix*``, for
    principals whose ARN is the role's or one of its sessions'. None when nothing is frozen
    (the bucket policy is then deleted). The prefixes are sorted, so equal sets give equal
    documents.

    Raises:
        PolicyTooLargeError: the document would exceed :data:`MAX_BUCKET_POLICY_BYTES`.
    """
    if not prefixes:
        return None
    for prefix in prefixes:
        if not prefix.endswith("/"):
            raise ValueError(f"a dataset prefix ends with '/', got {prefix!r}")
    statement = {
        "Sid": "FrozenDatasets",
        "Effect": "Deny",
        "Principal": "*",
        "Action": list(FROZEN_ACTIONS),
        "Resource": [f"arn:aws:s3:::{bucket}/{p}*" for p in sorted(set(prefixes))],
        "Condition": {"StringLike": {"aws:PrincipalArn": role_session_arns(role_arn)}},
    }
    document = json.dumps(
        {"Version": "2012-10-17", "Statement": [statement]}, separators=(",", ":")
    )
    if len(document.encode()) > MAX_BUCKET_POLICY_BYTES:
        raise PolicyTooLargeError(
            f"{len(set(prefixes))} frozen prefixes need a {len(document.encode())}-byte bucket "
            f"policy; the store accepts at most {MAX_BUCKET_POLICY_BYTES}"
        )
    return document


def session_policy(
    bucket: str, prefix: str, access: AccessLevel, *, uploads: bool = True
) -> dict[str, Any]:
    """The session policy for ``access`` to ``s3://bucket/prefix`` (``prefix`` ends with ``/``).

    Args:
        bucket: the dataset bucket.
        prefix: the dataset's prefix, ending with ``/``.
        access: ``read`` or ``write``.
        uploads: with ``write``, also let the credentials list the unfinished multipart
            uploads under the prefix (``ListDatasetUploads``); False for stores that refuse
            the ``s3:prefix`` condition on that action (never granted without it).

    Example:
        ```python
        policy = session_policy("provena", "10378.1-7/", "write")
        ```
    """
    if not prefix.endswith("/"):
        raise ValueError(f"a dataset prefix ends with '/', got {prefix!r}")
    objects = f"arn:aws:s3:::{bucket}/{prefix}*"
    within_prefix = {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ListDatasetPrefix",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{bucket}"],
            "Condition": within_prefix,
        },
        {
            "Sid": "ReadDatasetObjects",
            "Effect": "Allow",
            "Action": list(READ_ACTIONS),
            "Resource": [objects],
        },
    ]
    if access == "write" and uploads:
        statements.append(
            {
                "Sid": "ListDatasetUploads",
                "Effect": "Allow",
                "Action": ["s3:ListBucketMultipartUploads"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
                "Condition": within_prefix,
            }
        )
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


def policy_json(bucket: str, prefix: str, access: AccessLevel, *, uploads: bool = True) -> str:
    """:func:`session_policy` as the compact JSON STS takes."""
    document = session_policy(bucket, prefix, access, uploads=uploads)
    return json.dumps(document, separators=(",", ":"))


def session_name(username: str, dataset_id: str) -> str:
    """A RoleSessionName (2-64 letters, digits or ``_+=,.@-``) naming who asked for which."""
    raw = f"{username}@{dataset_id.replace('/', '-')}"
    name = _SESSION_NAME.sub("_", raw)[:64]
    return name if len(name) >= 2 else f"{name}__"
