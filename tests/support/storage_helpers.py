"""Helpers of the storage tests: scoped credentials minted with STS, admin clients."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config

from provena_like.storage import S3Credentials
from provena_like.testing.seaweed import SeaweedS3

BUCKET = "storage-tests"


def session_policy(bucket: str, prefix: str) -> str:
    """What the datastore will grant: objects and listing under ``prefix`` only."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                    "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
                },
                {
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                    "Resource": [f"arn:aws:s3:::{bucket}"],
                    "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
                },
            ],
        }
    )


def admin_client(store: SeaweedS3, service: str = "s3") -> Any:
    return boto3.client(
        service,
        endpoint_url=store.endpoint_url,
        region_name=store.region,
        aws_access_key_id=store.admin_access_key,
        aws_secret_access_key=store.admin_secret_key,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def mint(
    store: SeaweedS3,
    prefix: str,
    *,
    allowed: str | None = None,
    access: str = "write",
    duration: int | None = 900,
) -> S3Credentials:
    """AssumeRole with a session policy on ``allowed`` (default: ``prefix``).

    ``duration=None`` leaves DurationSeconds out: the store's ``token_duration`` applies.
    """
    sts = admin_client(store, "sts")
    try:
        extra: dict[str, Any] = {} if duration is None else {"DurationSeconds": duration}
        response = sts.assume_role(
            RoleArn=store.role_arn,
            RoleSessionName="storage-tests",
            Policy=session_policy(BUCKET, allowed or prefix),
            **extra,
        )
    finally:
        sts.close()
    return S3Credentials.from_sts(
        response["Credentials"],
        endpoint_url=store.endpoint_url,
        region=store.region,
        bucket=BUCKET,
        prefix=prefix,
        access="write" if access == "write" else "read",
    )
