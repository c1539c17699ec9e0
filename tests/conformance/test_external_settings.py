"""Settings of an external object store: what is checked, and where each call goes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from provena_like.server.datastore.policy import session_policy
from provena_like.server.datastore.storage import open_object_store
from provena_like.server.settings import S3Settings

pytestmark = pytest.mark.anyio

KEYS = {"access_key": "server", "secret_key": "s3cret"}


def test_aws_needs_no_endpoint_and_the_public_one_defaults_to_the_servers() -> None:
    aws = S3Settings(bucket="my-datasets", region="ap-southeast-2", **KEYS)
    assert aws.endpoint_url is None and aws.client_endpoint_url is None
    assert aws.resolved_sts_endpoint_url is None
    own = S3Settings(endpoint_url="http://10.0.0.5:9000", **KEYS)
    assert own.client_endpoint_url == "http://10.0.0.5:9000"
    assert own.resolved_sts_endpoint_url == "http://10.0.0.5:9000"
    split = S3Settings(
        endpoint_url="http://10.0.0.5:9000",
        sts_endpoint_url="http://10.0.0.5:9001",
        public_endpoint_url="https://s3.example.org",
        **KEYS,
    )
    assert split.client_endpoint_url == "https://s3.example.org"
    assert split.resolved_sts_endpoint_url == "http://10.0.0.5:9001"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("endpoint_url", "10.0.0.5:9000"),
        ("sts_endpoint_url", "ftp://x"),
        ("public_endpoint_url", "https://s3.example.org/ with space"),
        ("bucket", "Not_A_Bucket"),
        ("role_arn", "DatasetAccess"),
        ("addressing_style", "host"),
        ("upload_listing", "bucket"),
        ("access_key", ""),
    ],
)
def test_a_wrong_setting_is_named(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as info:
        S3Settings.model_validate({**KEYS, field: value})
    assert [e["loc"] for e in info.value.errors()] == [(field,)]


def test_the_secret_is_required_and_never_shown() -> None:
    with pytest.raises(ValidationError) as info:
        S3Settings.model_validate({"access_key": "server"})
    assert [e["loc"] for e in info.value.errors()] == [("secret_key",)]
    assert "s3cret" not in repr(S3Settings(**KEYS))


async def test_sts_and_s3_calls_go_where_the_settings_say() -> None:
    settings = S3Settings(
        endpoint_url="http://127.0.0.1:9",
        sts_endpoint_url="http://127.0.0.2:9",
        public_endpoint_url="https://s3.example.org",
        addressing_style="virtual",
        **KEYS,
    )
    async with open_object_store(settings) as store:
        assert store.s3.meta.endpoint_url == "http://127.0.0.1:9"
        assert store.sts.meta.endpoint_url == "http://127.0.0.2:9"
        assert store.s3.meta.config.s3 == {"addressing_style": "virtual"}
        assert store.endpoint_url == "https://s3.example.org"
        assert store.internal_endpoint_url == "http://127.0.0.1:9"


def test_upload_listing_is_its_own_statement_and_never_bucket_wide() -> None:
    def statements(**kwargs: Any) -> dict[str, dict[str, Any]]:
        document = session_policy("provena", "10378.1-7/", "write", **kwargs)
        return {s["Sid"]: s for s in document["Statement"]}

    within = {"StringLike": {"s3:prefix": ["10378.1-7/", "10378.1-7/*"]}}
    full = statements()
    assert full["ListDatasetPrefix"]["Action"] == ["s3:ListBucket"]
    assert full["ListDatasetUploads"]["Action"] == ["s3:ListBucketMultipartUploads"]
    assert full["ListDatasetPrefix"]["Condition"] == full["ListDatasetUploads"]["Condition"]
    assert full["ListDatasetUploads"]["Condition"] == within
    without = statements(uploads=False)
    assert "ListDatasetUploads" not in without
    granted = [a for s in without.values() if s["Effect"] == "Allow" for a in s["Action"]]
    assert "s3:ListBucketMultipartUploads" not in granted
    read = session_policy("provena", "10378.1-7/", "read")
    assert [s["Sid"] for s in read["Statement"]] == ["ListDatasetPrefix", "ReadDatasetObjects"]
