"""Helpers shared by the datastore tests (importable: not a conftest)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import ClientError

from provena_like.testing.seaweed import SeaweedS3
from tests.support.users import User  # noqa: F401 (re-exported)

APPROVALS = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")


@dataclass(frozen=True)
class Refs:
    """Registry items a dataset record can refer to."""

    organisation: str
    person: str


def record(refs: Refs, name: str = "Reef temperatures", **info: Any) -> dict[str, Any]:
    """A valid dataset record referring to ``refs``; ``info`` overrides dataset_info fields."""
    dataset_info: dict[str, Any] = {
        "name": name,
        "description": "Hourly logger readings from the outer reef.",
        "access_info": {"reposited": True},
        "publisher_id": refs.organisation,
        "created_date": "2024-01-01",
        "published_date": "2024-06-30",
        "license": "https://creativecommons.org/licenses/by/4.0/",
        "keywords": ["reef", "temperature"],
        "formats": ["text/csv"],
        "user_metadata": {"instrument": "HOBO"},
        "temporal_info": {"begin_date": "2023-01-01", "end_date": "2023-12-31"},
    }
    dataset_info.update(info)
    return {
        "associations": {"organisation_id": refs.organisation, "point_of_contact": refs.person},
        "approvals": {a: {"relevant": False, "obtained": False} for a in APPROVALS},
        "dataset_info": dataset_info,
    }


def changed(rec: dict[str, Any], **info: Any) -> dict[str, Any]:
    out = copy.deepcopy(rec)
    out["dataset_info"].update(info)
    return out


async def mint(
    client: httpx.AsyncClient, user: User, rec: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """Mint a dataset as ``user`` and return its JSON (asserting 201)."""
    r = await client.post("/datasets", json={"record": rec, **fields}, headers=user.headers)
    assert r.status_code == 201, r.text
    dataset: dict[str, Any] = r.json()["dataset"]
    return dataset


def path(dataset_id: str, tail: str = "") -> str:
    return f"/datasets/{dataset_id}{tail}"


def error(r: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = r.json()["error"]
    return body


@contextlib.contextmanager
def s3_client(store: SeaweedS3, creds: dict[str, Any] | None = None) -> Iterator[Any]:
    """A boto3 S3 client: the admin's, or one using credentials the datastore returned."""
    if creds is None:
        keys = {
            "aws_access_key_id": store.admin_access_key,
            "aws_secret_access_key": store.admin_secret_key,
        }
    else:
        keys = {
            "aws_access_key_id": creds["access_key_id"],
            "aws_secret_access_key": creds["secret_access_key"],
            "aws_session_token": creds["session_token"],
        }
    client = boto3.client(
        "s3",
        endpoint_url=store.endpoint_url,
        region_name=store.region,
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
        **keys,
    )
    try:
        yield client
    finally:
        client.close()


def s3_error(err: ClientError) -> tuple[int, str]:
    response = err.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def keys_under(store: SeaweedS3, bucket: str, prefix: str) -> list[str]:
    with s3_client(store) as s3:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))
