"""The direct path's SigV4 signer gives exactly botocore's signature for the same request."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from provena_like.storage._sigv4 import UNSIGNED_PAYLOAD, host_header, sign

NOW = datetime(2026, 11, 22, 6, 30, 15, tzinfo=UTC)
WITH_TOKEN = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLE", "t" * 900)
NO_TOKEN = ReadOnlyCredentials("AKIDEXAMPLE", "secret/with+chars", None)

CASES = [
    ("GET", "http://127.0.0.1:8333", "/bucket/datasets/x/a.bin", "", {}),
    ("HEAD", "http://127.0.0.1:8333", "/bucket/datasets/x/with%20space%2Bplus.txt", "", {}),
    (
        "PUT",
        "https://b.s3.eu-west-1.amazonaws.com",
        "/unicod%C3%A9/na%C3%AFve%20%E2%98%83.txt",
        "",
        {"x-amz-checksum-sha256": "AAAA=", "x-amz-meta-sha256": "ab" * 32, "Content-MD5": "x=="},
    ),
    (
        "GET",
        "http://localhost:9000",
        "/bucket/",
        "continuation-token=abc%2Fdef%3D&encoding-type=url&list-type=2&max-keys=1000"
        "&prefix=datasets%2Fx%2F",
        {},
    ),
    ("GET", "http://[::1]:8333", "/bucket/k", "", {"Range": "bytes=0-99", "If-Match": '"e"'}),
]


def botocore_signature(
    method: str, origin: str, path: str, query: str, headers: dict[str, str], creds: object
) -> dict[str, str]:
    class Unsigned(S3SigV4Auth):
        def _should_sha256_sign_payload(self, request: AWSRequest) -> bool:  # noqa: ARG002
            return False

    url = origin + path + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=b"")
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        Unsigned(creds, "s3", "eu-west-1").add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}


@pytest.mark.parametrize("creds", [WITH_TOKEN, NO_TOKEN], ids=["token", "no-token"])
@pytest.mark.parametrize(("method", "origin", "path", "query", "headers"), CASES)
def test_same_signature_as_botocore(
    creds: ReadOnlyCredentials,
    method: str,
    origin: str,
    path: str,
    query: str,
    headers: dict[str, str],
) -> None:
    ours = sign(method, path, query, host_header(origin), headers, creds, "eu-west-1", now=NOW)
    theirs = botocore_signature(method, origin, path, query, headers, creds)
    assert ours["authorization"] == theirs["authorization"]
    assert ours["x-amz-date"] == theirs["x-amz-date"] == "20261122T063015Z"
    assert ours["x-amz-content-sha256"] == UNSIGNED_PAYLOAD
    assert ("x-amz-security-token" in ours) == (creds.token is not None)


def test_host_header_drops_default_ports() -> None:
    assert host_header("http://h:80/x") == "h"
    assert host_header("https://h:443/x") == "h"
    assert host_header("https://h:8443/x") == "h:8443"
    assert host_header("http://[::1]:9000/") == "[::1]:9000"
