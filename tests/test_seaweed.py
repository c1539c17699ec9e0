"""Real SeaweedFS (``weed mini``) on loopback: admin I/O, STS session policies, restarts."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from provena_like.testing import seaweed
from provena_like.testing.seaweed import SeaweedS3

BUCKET = "scoped-test"
ALLOWED = "datasets/a/"
DENIED = "datasets/b/"


def _session_policy(bucket: str, prefix: str) -> str:
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
                    "Action": ["s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{bucket}"],
                    "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
                },
            ],
        }
    )


@contextlib.contextmanager
def _client(
    service: str, store: SeaweedS3, creds: dict[str, Any] | None = None, **config: Any
) -> Iterator[Any]:
    """A boto3 client for ``store`` (admin keys unless ``creds`` are given), closed on exit."""
    if creds is None:
        keys = {
            "aws_access_key_id": store.admin_access_key,
            "aws_secret_access_key": store.admin_secret_key,
        }
    else:
        keys = {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }
    client = boto3.client(
        service,
        endpoint_url=store.endpoint_url,
        region_name=store.region,
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}, **config),
        **keys,
    )
    try:
        yield client
    finally:
        client.close()


def _assume(store: SeaweedS3, policy: str | None = None, **kwargs: Any) -> dict[str, Any]:
    with _client("sts", store) as sts:
        extra = {} if policy is None else {"Policy": policy}
        response = sts.assume_role(
            RoleArn=store.role_arn, RoleSessionName="pytest-session", **extra, **kwargs
        )
    creds: dict[str, Any] = response["Credentials"]
    return creds


def _error(exc_info: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = exc_info.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    instance = SeaweedS3(tmp_path_factory.mktemp("seaweed") / "s3")
    instance.start()
    try:
        instance.create_bucket(BUCKET)
        yield instance
    finally:
        instance.stop()


def test_admin_can_create_bucket_put_and_get(store: SeaweedS3) -> None:
    store.create_bucket("admin-bucket")
    store.create_bucket("admin-bucket")  # exist_ok by default
    with _client("s3", store) as s3:
        s3.put_object(Bucket="admin-bucket", Key="dir/hello.txt", Body=b"hello")
        assert s3.get_object(Bucket="admin-bucket", Key="dir/hello.txt")["Body"].read() == b"hello"
        listed = s3.list_objects_v2(Bucket="admin-bucket", Prefix="dir/")
        assert [o["Key"] for o in listed["Contents"]] == ["dir/hello.txt"]
        names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {"admin-bucket", BUCKET} <= names
    with pytest.raises(ClientError):
        store.create_bucket("admin-bucket", exist_ok=False)


def test_wrong_secret_is_refused(store: SeaweedS3) -> None:
    bad = {"AccessKeyId": store.admin_access_key, "SecretAccessKey": "x" * 40, "SessionToken": ""}
    with _client("s3", store, bad) as s3, pytest.raises(ClientError) as exc_info:
        s3.list_objects_v2(Bucket=BUCKET)
    assert _error(exc_info)[0] == 403


def test_session_policy_scopes_credentials_to_prefix(store: SeaweedS3) -> None:
    with _client("s3", store) as admin:
        admin.put_object(Bucket=BUCKET, Key=f"{DENIED}secret.bin", Body=b"not yours")
    creds = _assume(store, _session_policy(BUCKET, ALLOWED), DurationSeconds=900)
    assert creds["AccessKeyId"] != store.admin_access_key
    remaining = (creds["Expiration"] - datetime.now(UTC)).total_seconds()
    assert 800 < remaining <= 905

    with _client("s3", store, creds) as s3:
        # inside the prefix: write, read, list, multipart, delete
        s3.put_object(Bucket=BUCKET, Key=f"{ALLOWED}x.txt", Body=b"mine")
        assert s3.get_object(Bucket=BUCKET, Key=f"{ALLOWED}x.txt")["Body"].read() == b"mine"
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=ALLOWED)
        assert [o["Key"] for o in listed["Contents"]] == [f"{ALLOWED}x.txt"]
        upload = s3.create_multipart_upload(Bucket=BUCKET, Key=f"{ALLOWED}big.bin")
        s3.upload_part(
            Bucket=BUCKET,
            Key=f"{ALLOWED}big.bin",
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"p" * 1024,
        )
        parts = s3.list_parts(Bucket=BUCKET, Key=f"{ALLOWED}big.bin", UploadId=upload["UploadId"])
        assert [p["PartNumber"] for p in parts["Parts"]] == [1]
        s3.abort_multipart_upload(
            Bucket=BUCKET, Key=f"{ALLOWED}big.bin", UploadId=upload["UploadId"]
        )
        s3.delete_object(Bucket=BUCKET, Key=f"{ALLOWED}x.txt")

        # outside the prefix: every operation is refused with 403 AccessDenied
        denied_calls = {
            "put": lambda: s3.put_object(Bucket=BUCKET, Key=f"{DENIED}y.txt", Body=b"no"),
            "get": lambda: s3.get_object(Bucket=BUCKET, Key=f"{DENIED}secret.bin"),
            "delete": lambda: s3.delete_object(Bucket=BUCKET, Key=f"{DENIED}secret.bin"),
            "list-prefix": lambda: s3.list_objects_v2(Bucket=BUCKET, Prefix=DENIED),
            "list-bucket": lambda: s3.list_objects_v2(Bucket=BUCKET),
            "multipart": lambda: s3.create_multipart_upload(Bucket=BUCKET, Key=f"{DENIED}m"),
            "create-bucket": lambda: s3.create_bucket(Bucket="not-allowed"),
        }
        for name, call in denied_calls.items():
            with pytest.raises(ClientError) as exc_info:
                call()
            assert _error(exc_info) == (403, "AccessDenied"), name

    with _client("s3", store) as admin:  # nothing leaked through
        assert admin.get_object(Bucket=BUCKET, Key=f"{DENIED}secret.bin")["Body"].read() == (
            b"not yours"
        )
        assert "Contents" not in admin.list_objects_v2(Bucket=BUCKET, Prefix=f"{DENIED}y")


def test_sts_duration_bounds(store: SeaweedS3) -> None:
    """The server accepts DurationSeconds in [900, maxSessionLength] (12h here).

    botocore refuses < 900 on the client side too, so validation is off to probe the server.
    """
    policy = _session_policy(BUCKET, ALLOWED)
    with _client("sts", store, parameter_validation=False) as sts:
        for duration in (1, 60, 899, 43201):
            with pytest.raises(ClientError) as exc_info:
                sts.assume_role(
                    RoleArn=store.role_arn,
                    RoleSessionName="pytest-bounds",
                    Policy=policy,
                    DurationSeconds=duration,
                )
            assert _error(exc_info) == (400, "InvalidParameterValue"), duration
        for duration in (900, 43200):
            creds = sts.assume_role(
                RoleArn=store.role_arn,
                RoleSessionName="pytest-bounds",
                Policy=policy,
                DurationSeconds=duration,
            )["Credentials"]
            remaining = (creds["Expiration"] - datetime.now(UTC)).total_seconds()
            assert duration - 100 < remaining <= duration + 5


def test_credentials_files_are_private_and_secret_not_in_repr(store: SeaweedS3) -> None:
    for name in ("s3-credentials.json", "s3.json", "iam.json"):
        mode = stat.S_IMODE((store.data_dir / name).stat().st_mode)
        assert mode == 0o600, name
    assert store.admin_secret_key not in repr(store)
    assert store.endpoint_url == f"http://127.0.0.1:{store.s3_port}"
    assert store.role_arn == "arn:aws:iam::000000000000:role/DatasetAccess"
    assert len(set(store.ports)) == len(store.ports) == 11


def test_fixed_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        instance = SeaweedS3(tmp_path / "s3", s3_port=port)
        with pytest.raises(RuntimeError, match="already in use"):
            instance.start()
    instance.stop()  # idempotent, and fine after a failed start


def test_port_taken_between_pick_and_bind_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picks: list[Any] = []
    real_pick = seaweed._pick_ports
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = busy.getsockname()[1]

        def pick(host: str, s3_port: int | None) -> Any:
            ports = real_pick(host, s3_port)
            # 1st launch: the master port was taken meanwhile -> weed exits, start() retries;
            # 2nd launch: the S3 gRPC port was taken -> weed silently binds another port
            field = "master" if not picks else "s3_grpc"
            ports = dataclasses.replace(ports, **{field: busy_port})
            picks.append(ports)
            return ports

        monkeypatch.setattr(seaweed, "_pick_ports", pick)
        with SeaweedS3(tmp_path / "s3") as instance:
            instance.create_bucket("retried")
    assert len(picks) == 2
    log = instance.log_path.read_text()
    assert "Port allocation failed" in log
    assert f"gRPC port {busy_port} for S3 is not available" in log
    # the socket named after the port weed chose itself was removed too
    moved = [p for n in range(busy_port, busy_port + 50) for p in Path("/tmp").glob(f"*-{n}.sock")]
    assert moved == []


@pytest.mark.slow
def test_restart_keeps_credentials_and_data_and_stop_cleans_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "s3"
    SeaweedS3(data_dir).stop()  # stop before start is a no-op
    first = SeaweedS3(data_dir, token_duration="6s")  # time for one read on a busy machine
    with first:
        first.create_bucket("persist")
        with _client("s3", first) as s3:
            s3.put_object(Bucket="persist", Key=f"{ALLOWED}keep.txt", Body=b"kept")
        long_lived = _assume(first, _session_policy("persist", ALLOWED), DurationSeconds=900)
        short_lived = _assume(first, _session_policy("persist", ALLOWED))  # tokenDuration: 6s
        with _client("s3", first, short_lived) as s3:
            assert s3.get_object(Bucket="persist", Key=f"{ALLOWED}keep.txt")["Body"].read()
            # expired session credentials are refused
            wait = (short_lived["Expiration"] - datetime.now(UTC)).total_seconds() + 1.1
            assert wait < 8
            time.sleep(max(wait, 0))
            with pytest.raises(ClientError) as exc_info:
                s3.get_object(Bucket="persist", Key=f"{ALLOWED}keep.txt")
            assert _error(exc_info)[0] == 403
        pid, ports = first.pid, first.ports
        assert pid is not None
        assert first.socket_files()  # weed made its unix sockets ...
    assert not first.running
    _assert_gone(pid, ports, first.socket_files())  # ... and stop() removed them
    first.stop()  # idempotent

    second = SeaweedS3(data_dir)  # a new process on the same data dir (a persistent serve)
    assert second.admin_access_key == first.admin_access_key
    assert second.admin_secret_key == first.admin_secret_key
    with second:
        with _client("s3", second) as s3:
            body = s3.get_object(Bucket="persist", Key=f"{ALLOWED}keep.txt")["Body"].read()
            assert body == b"kept"
        # the signing key persisted too: a session minted before the restart still works
        with _client("s3", second, long_lived) as s3:
            listed = s3.list_objects_v2(Bucket="persist", Prefix=ALLOWED)
            assert [o["Key"] for o in listed["Contents"]] == [f"{ALLOWED}keep.txt"]
        pid, ports = second.pid, second.ports
    _assert_gone(pid, ports, second.socket_files())


def _assert_gone(pid: int | None, ports: tuple[int, ...], sockets: list[Path]) -> None:
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert sockets == []
    leftovers = [p for port in ports for p in Path("/tmp").glob(f"seaweedfs-*-{port}.sock")]
    assert leftovers == []
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
