"""The object store's internal ports refuse everyone but its own components (issue 9, item 1).

Against the session's LocalStack: plain HTTP to the filer, the volume server and the master,
and gRPC without the per-start client certificate, must neither read nor change objects,
while S3 through the S3 port (admin and scoped session credentials) keeps working.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from provena_like.testing.localstack import BUCKET, LocalStack
from provena_like.testing.seaweed import SeaweedS3, find_weed_binary
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio

SECRET = b"metadata that only the S3 gateway may serve"


def _store(localstack: LocalStack) -> SeaweedS3:
    assert localstack.s3 is not None
    return localstack.s3


def _admin(store: SeaweedS3) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=store.endpoint_url,
        region_name=store.region,
        aws_access_key_id=store.admin_access_key,
        aws_secret_access_key=store.admin_secret_key,
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def stored_object(localstack: LocalStack) -> Iterator[tuple[SeaweedS3, str]]:
    """An object written through S3, removed afterwards."""
    store = _store(localstack)
    key = f"ports-test/{uuid.uuid4().hex}/metadata.json"
    client = _admin(store)
    client.put_object(Bucket=BUCKET, Key=key, Body=SECRET)
    try:
        yield store, key
    finally:
        client.delete_object(Bucket=BUCKET, Key=key)
        client.close()


def _url(store: SeaweedS3, service: str, path: str) -> str:
    return f"http://{store.host}:{store.service_ports[service]}{path}"


def _assert_refused(response: httpx.Response) -> None:
    assert response.status_code in {401, 403, 404, 405}, (
        response.request.method,
        str(response.request.url),
        response.status_code,
        response.text[:200],
    )
    assert SECRET not in response.content


def test_filer_http_refuses_reads_and_writes_without_jwt(
    stored_object: tuple[SeaweedS3, str],
) -> None:
    store, key = stored_object
    path = f"/buckets/{BUCKET}/{key}"
    folder = path.rsplit("/", 1)[0]
    with httpx.Client(verify=SHARED_TLS, timeout=30) as http:
        _assert_refused(http.get(_url(store, "filer", path)))
        _assert_refused(http.get(_url(store, "filer", f"{folder}/?pretty=y")))
        _assert_refused(http.get(_url(store, "filer", "/")))
        _assert_refused(http.put(_url(store, "filer", path), content=b"overwritten"))
        _assert_refused(
            http.post(_url(store, "filer", f"{folder}/"), files={"file": ("evil.txt", b"planted")})
        )
        _assert_refused(http.post(_url(store, "filer", f"{folder}/planted.txt"), content=b"x"))
        _assert_refused(http.delete(_url(store, "filer", path)))
    client = _admin(store)
    try:
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        listed = client.list_objects_v2(Bucket=BUCKET, Prefix=key.rsplit("/", 1)[0] + "/")
    finally:
        client.close()
    assert body == SECRET
    assert [o["Key"] for o in listed.get("Contents", [])] == [key]


def test_volume_http_refuses_reads_and_writes_without_jwt(
    stored_object: tuple[SeaweedS3, str],
) -> None:
    store, _key = stored_object
    with httpx.Client(verify=SHARED_TLS, timeout=30) as http:
        for volume_id in range(1, 8):  # file ids are guessable: volume id, needle id, cookie
            _assert_refused(http.get(_url(store, "volume", f"/{volume_id},01deadbeef")))
            _assert_refused(
                http.put(_url(store, "volume", f"/{volume_id},01deadbeef"), content=b"x")
            )
            _assert_refused(
                http.post(_url(store, "volume", f"/{volume_id},02deadbeef"), content=b"x")
            )
            _assert_refused(http.delete(_url(store, "volume", f"/{volume_id},01deadbeef")))
        _assert_refused(http.get(_url(store, "volume", "/ui/index.html")))


def test_master_http_api_is_off(stored_object: tuple[SeaweedS3, str]) -> None:
    store, key = stored_object
    with httpx.Client(verify=SHARED_TLS, timeout=30) as http:
        _assert_refused(http.get(_url(store, "master", "/dir/assign")))
        _assert_refused(http.post(_url(store, "master", "/dir/assign")))
        _assert_refused(
            http.post(_url(store, "master", "/submit"), files={"file": ("a.txt", b"planted")})
        )
        _assert_refused(http.get(_url(store, "master", "/vol/grow?count=1")))
        _assert_refused(http.get(_url(store, "master", "/dir/lookup?volumeId=1")))
        # Deleting the bucket's collection would drop every object in it.
        _assert_refused(http.get(_url(store, "master", f"/col/delete?collection={BUCKET}")))
        _assert_refused(http.post(_url(store, "master", f"/col/delete?collection={BUCKET}")))
    client = _admin(store)
    try:
        assert client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == SECRET
    finally:
        client.close()


def _grpc_answers(host: str, port: int, cert: tuple[Path, Path] | None) -> bool:
    """Whether a TLS (HTTP/2) client gets a SETTINGS frame back from a gRPC port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    try:
        with (
            socket.create_connection((host, port), timeout=30) as raw,
            context.wrap_socket(raw) as tls,
        ):
            # client preface + an empty SETTINGS frame
            tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
            frame = tls.recv(9)
    except (OSError, ssl.SSLError):
        return False
    return len(frame) == 9 and frame[3] == 4  # frame type 4: SETTINGS


@pytest.mark.parametrize(
    "service", ["master_grpc", "volume_grpc", "filer_grpc", "s3_grpc", "admin_grpc"]
)
def test_grpc_ports_need_the_client_certificate(localstack: LocalStack, service: str) -> None:
    store = _store(localstack)
    port = store.service_ports[service]
    tls = store.data_dir / "tls"
    # The components' own certificate is accepted (the port does speak TLS gRPC) ...
    assert _grpc_answers(store.host, port, (tls / "node.crt", tls / "node.key"))
    # ... a client without it is not.
    assert not _grpc_answers(store.host, port, None)


def _weed_shell(store: SeaweedS3, commands: str, cwd: Path, home: Path, timeout: float) -> str:
    """What ``weed shell``, run in ``cwd``, wrote for ``commands`` (by ``timeout`` at most)."""
    ports = store.service_ports
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEED_")}
    env["HOME"] = str(home)  # no $HOME/.seaweedfs/security.toml either
    try:
        result = subprocess.run(
            [
                str(find_weed_binary()),
                "shell",
                f"-master={store.host}:{ports['master']}.{ports['master_grpc']}",
                f"-filer={store.host}:{ports['filer']}.{ports['filer_grpc']}",
            ],
            input=commands,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=timeout,
            check=False,
        )
        return result.stdout + result.stderr
    except subprocess.TimeoutExpired as exc:  # it keeps retrying the TLS handshake
        return "".join(
            part.decode() if isinstance(part, bytes) else (part or "")
            for part in (exc.stdout, exc.stderr)
        )


def test_weed_shell_without_the_key_cannot_list_or_read(
    stored_object: tuple[SeaweedS3, str], tmp_path: Path
) -> None:
    """The attack as another local user would run it: ``weed shell`` from any directory."""
    store, key = stored_object
    commands = f"fs.ls /buckets/{BUCKET}/{key.rsplit('/', 1)[0]}\nfs.cat /buckets/{BUCKET}/{key}\n"
    # The same commands with the key (the store's security.toml, read from the working
    # directory) list and read the object at once: the attack below would succeed quickly,
    # so a refusal within a bounded wait (a multiple of the time they took) is a refusal.
    started = time.monotonic()
    control = _weed_shell(store, commands, store.data_dir, tmp_path, timeout=120)
    took = time.monotonic() - started
    assert "metadata.json" in control
    assert SECRET.decode() in control
    output = _weed_shell(store, commands, tmp_path, tmp_path, timeout=max(10.0, 10 * took))
    assert "metadata.json" not in output
    assert SECRET.decode() not in output


def test_scoped_credentials_still_scoped_and_s3_works(
    stored_object: tuple[SeaweedS3, str],
) -> None:
    store, key = stored_object
    allowed = f"ports-test/{uuid.uuid4().hex}/"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": [f"arn:aws:s3:::{BUCKET}/{allowed}*"],
            }
        ],
    }
    sts = boto3.client(
        "sts",
        endpoint_url=store.endpoint_url,
        region_name=store.region,
        aws_access_key_id=store.admin_access_key,
        aws_secret_access_key=store.admin_secret_key,
    )
    try:
        creds = sts.assume_role(
            RoleArn=store.role_arn, RoleSessionName="ports-test", Policy=json.dumps(policy)
        )["Credentials"]
    finally:
        sts.close()
    scoped = boto3.client(
        "s3",
        endpoint_url=store.endpoint_url,
        region_name=store.region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )
    admin = _admin(store)
    try:
        scoped.put_object(Bucket=BUCKET, Key=f"{allowed}ok.bin", Body=b"in scope")
        got = scoped.get_object(Bucket=BUCKET, Key=f"{allowed}ok.bin")["Body"].read()
        assert got == b"in scope"
        with pytest.raises(ClientError) as denied:
            scoped.get_object(Bucket=BUCKET, Key=key)
        assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    finally:
        admin.delete_object(Bucket=BUCKET, Key=f"{allowed}ok.bin")
        scoped.close()
        admin.close()


def test_object_store_files_are_private(localstack: LocalStack) -> None:
    """Ports, keys and data: every directory 0700, the files holding secrets or ports 0600."""
    store = _store(localstack)
    root_dir = store.data_dir
    open_dirs = [
        f"{oct(stat.S_IMODE(p.stat().st_mode))} {p.relative_to(root_dir)}"
        for p in [root_dir, *(p for p in root_dir.rglob("*") if p.is_dir() and not p.is_symlink())]
        if stat.S_IMODE(p.stat().st_mode) & 0o077
    ]
    assert open_dirs == []
    secrets_and_ports = [
        "s3-credentials.json",
        "s3.json",
        "iam.json",
        "security.toml",
        "tls/ca.crt",
        "tls/node.crt",
        "tls/node.key",
        "weed.pid",
        "weed.log",
        "store/mini.options",  # weed's own copy of its options, ports included
    ]
    modes = {
        name: oct(stat.S_IMODE((root_dir / name).stat().st_mode)) for name in secrets_and_ports
    }
    assert modes == dict.fromkeys(secrets_and_ports, "0o600")
    # weed's unix sockets (in /tmp): nobody else may connect (that needs the write bit)
    sockets = store.socket_files()
    assert sockets
    assert [str(p) for p in sockets if stat.S_IMODE(p.lstat().st_mode) & 0o022] == []
