"""Secrets stay out of logs, reprs and world-readable files (issue 9, item 20).

(a) DEBUG logs of a real upload with scoped credentials hold neither the secret key nor the
session token; (b) a presigned URL's ``repr``/``str`` hide its signature; (c) the server's
data directory and database are private; (d) the generated admin password is shown once
and kept on disk only until the admin first signs in.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from pydantic import SecretStr

from provena_like import ProvenaClient
from provena_like._core.config import ProvenaConfig
from provena_like._core.errors import DeviceFlowError
from provena_like._redaction import install_log_redaction, redact_text, redact_url
from provena_like.auth import AuthManager, DevicePrompt
from provena_like.server.app import create_app
from provena_like.server.auth.bootstrap import PASSWORD_FILE, forget_initial_password
from provena_like.server.db.base import secure_data_dir
from provena_like.server.settings import ServerSettings
from provena_like.testing.device_approval import approve_device_code
from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread, bind_socket
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio

_APPROVALS = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")


async def _dataset_record(pv: ProvenaClient) -> dict[str, Any]:
    org = await pv.registry_client.create_item(
        {"subtype": "organisation", "record": {"name": f"Secrets Lab {uuid.uuid4().hex[:6]}"}}
    )
    person = await pv.registry_client.create_item(
        {
            "subtype": "person",
            "record": {"first_name": "Sam", "last_name": "Secret", "email": "sam@example.org"},
        }
    )
    return {
        "associations": {"organisation_id": org.id, "point_of_contact": person.id},
        "approvals": {a: {"relevant": False, "obtained": False} for a in _APPROVALS},
        "dataset_info": {
            "name": f"Secrets {uuid.uuid4().hex[:6]}",
            "description": "Files uploaded with DEBUG logging on.",
            "access_info": {"reposited": True},
            "publisher_id": org.id,
            "created_date": "2024-01-01",
            "published_date": "2024-06-30",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["secrets"],
        },
    }


def _secret(value: Any) -> str:
    return str(value.get_secret_value() if hasattr(value, "get_secret_value") else value)


# ----------------------------------------------------------------------------- (a) logs


async def test_debug_logs_of_a_real_upload_hold_no_secrets(
    localstack: LocalStack, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "raw").mkdir(parents=True)
    (src / "raw" / "a.csv").write_text("x,y\n1,2\n")
    (src / "big.bin").write_bytes(b"\x07" * (9 * 1024 * 1024))  # multipart too
    caplog.set_level(logging.DEBUG)  # root: botocore, aiobotocore, urllib3, ... all at DEBUG
    async with localstack.client() as pv:
        ds = await pv.datastore.mint(await _dataset_record(pv))
        result = await ds.upload(src)
        assert len(result.ok) == 2 and not result.failed
        creds = await ds.credentials("write")  # cached: the ones the upload signed with
        read = await ds.credentials("read")
        link = await ds.presigned_url("raw/a.csv", expires_in=60)
        downloaded = await ds.download(tmp_path / "back")
        assert len(downloaded.ok) == 2
    messages = [record.getMessage() for record in caplog.records]
    text = "\n".join(messages)
    # The SDK's libraries did log the signed requests (the test looks at real output) ...
    assert any(r.name.startswith(("botocore", "aiobotocore")) for r in caplog.records)
    assert re.search(r"x-amz-security-token", text, re.IGNORECASE)
    # ... but no secret reached a record.
    for value in (
        _secret(creds.secret_access_key),
        _secret(creds.session_token),
        _secret(read.secret_access_key),
        _secret(read.session_token),
    ):
        assert value not in text
    signature = re.search(r"X-Amz-Signature=([0-9a-f]{64})", link.url)
    assert signature is not None
    assert signature.group(1) not in text
    assert not re.search(r"Signature=[0-9a-f]{64}", text)


def test_filter_covers_loggers_created_later(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    late = logging.getLogger(f"botocore.late{uuid.uuid4().hex}")
    install_log_redaction()  # what the SDK does each time it creates S3 clients
    caplog.set_level(logging.DEBUG)
    late.debug("headers=%s", {"X-Amz-Security-Token": b"FwoGZXIvYXdzEJr//tok"})
    assert "FwoGZXIvYXdzEJr" not in caplog.text
    assert "X-Amz-Security-Token" in caplog.text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("{'X-Amz-Security-Token': b'IQoJb3JpZ2luX2Vj//abc='}", "IQoJb3JpZ2luX2Vj"),
        ("Authorization: AWS4-HMAC-SHA256 Credential=AK/x, Signature=0123abcd", "0123abcd"),
        ("'Authorization': b'AWS4-HMAC-SHA256 Credential=AK/x, Signature=9f9f'", "9f9f"),
        ("x-amz-security-token:TOKEN.XYZ\n", "TOKEN.XYZ"),
        ("Signature:\n0123456789abcdef", "0123456789abcdef"),
        ("<SecretAccessKey>sec/ret+</SecretAccessKey>", "sec/ret+"),
        ("<SessionToken>eyJh.eyJz.sig</SessionToken>", "eyJh.eyJz.sig"),
        ('{"secret_access_key": "wJalrXUt", "x": 1}', "wJalrXUt"),
        ("aws_session_token='tok-en'", "tok-en"),
        ("GET /b/k?X-Amz-Signature=abc123&X-Amz-Date=1", "abc123"),
        ("Authorization: Bearer eyJhbGciOi.J9.sig", "eyJhbGciOi.J9.sig"),
    ],
)
def test_redact_text(text: str, secret: str) -> None:
    assert secret not in redact_text(text)


# ----------------------------------------------------------------------------- (b) repr


async def test_presigned_url_repr_hides_the_signature(
    localstack: LocalStack, tmp_path: Path
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "t.csv").write_text("a,b\n")
    async with localstack.client() as pv:
        ds = await pv.datastore.mint(await _dataset_record(pv))
        await ds.upload(tmp_path / "d")
        link = await ds.presigned_url("t.csv", expires_in=60)
    signature = re.search(r"X-Amz-Signature=([0-9a-f]+)", link.url)
    assert signature is not None
    for shown in (repr(link), str(link), f"{link}", link.redacted_url):
        assert signature.group(1) not in shown
        assert "X-Amz-Signature=***" in shown
        assert "t.csv" in shown
    token = re.search(r"X-Amz-Security-Token=([^&]+)", link.url)
    if token is not None:
        assert token.group(1) not in repr(link)
    # the real URL stays usable, and on the wire
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        assert (await http.get(link.url)).text == "a,b\n"
    assert link.model_dump()["url"] == link.url


def test_redact_url_keeps_the_rest() -> None:
    url = "http://h:1/b/k%20x?X-Amz-Date=20250101T000000Z&X-Amz-Signature=ab12&X-Amz-Expires=60"
    shown = redact_url(url)
    assert "ab12" not in shown
    assert shown.startswith("http://h:1/b/k%20x?")
    assert "X-Amz-Expires=60" in shown and "X-Amz-Date=20250101T000000Z" in shown
    assert redact_url("http://h/b/k") == "http://h/b/k"


# ----------------------------------------------------------------------------- helpers


@contextlib.asynccontextmanager
async def _server(data_dir: Path, **settings: Any) -> AsyncIterator[ServerThread]:
    """The reference server alone (no object store) on ``data_dir``."""
    sock = bind_socket()
    host, port = sock.getsockname()[:2]
    config = ServerSettings(
        data_dir=data_dir, public_url=f"http://{host}:{port}", device_poll_interval=0, **settings
    )
    server = ServerThread(create_app(config), sock=sock)
    await anyio.to_thread.run_sync(server.start)
    try:
        yield server
    finally:
        await anyio.to_thread.run_sync(server.stop)


async def _sign_in(url: str, token_dir: Path, username: str, password: str) -> None:
    """The device flow, approved on the verification page as a browser would."""
    config = ProvenaConfig(base_url=url, token_dir=token_dir)
    async with httpx.AsyncClient(verify=SHARED_TLS) as browser:

        async def prompt(p: DevicePrompt) -> None:
            assert p.verification_uri_complete is not None
            await approve_device_code(browser, p.verification_uri_complete, username, password)

        manager = AuthManager.from_config(config, require_token=False)
        try:
            await manager.login_device(prompt)
        finally:
            await manager.aclose()


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


# ----------------------------------------------------------------------------- (c) files


async def test_server_data_dir_and_database_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "server"
    async with _server(data_dir, initial_admin_password=SecretStr("pw-for-this-test-1")) as srv:
        await _sign_in(srv.url, tmp_path / "tokens", "admin", "pw-for-this-test-1")
        db = data_dir / "provena.db"
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(f.exists() for f in files)  # WAL mode: all three are there while open
        modes = {f.name: _mode(f) for f in files}
        assert modes == dict.fromkeys(modes, "0o600")
    assert _mode(data_dir) == "0o700"
    exposed = [
        f"{_mode(p)} {p.name}"
        for p in data_dir.rglob("*")
        if p.is_file() and stat.S_IMODE(p.stat().st_mode) & 0o077
    ]
    assert exposed == []


async def test_files_left_readable_by_an_older_version_are_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "server"
    async with _server(data_dir, initial_admin_password=SecretStr("pw-for-this-test-2")):
        pass
    os.chmod(data_dir, 0o755)
    for f in data_dir.glob("provena.db*"):
        os.chmod(f, 0o644)
    async with _server(data_dir, initial_admin_password=SecretStr("pw-for-this-test-2")):
        assert _mode(data_dir) == "0o700"
        assert {_mode(f) for f in data_dir.glob("provena.db*")} == {"0o600"}


def test_secure_data_dir_leaves_other_databases_alone(tmp_path: Path) -> None:
    secure_data_dir(tmp_path / "d", "postgresql+asyncpg://u@h/db")
    secure_data_dir(tmp_path / "e", "sqlite+aiosqlite:///:memory:")
    assert _mode(tmp_path / "d") == "0o700"
    assert not any((tmp_path / "d").iterdir())
    assert not any((tmp_path / "e").iterdir())


# ----------------------------------------------------------------------------- (d) admin


async def test_generated_admin_password_is_kept_only_until_the_first_sign_in(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "server"
    password_file = data_dir / PASSWORD_FILE
    async with _server(data_dir) as srv:  # no configured password: one is generated
        assert _mode(password_file) == "0o600"
        stored = json.loads(password_file.read_text())
        assert stored["username"] == "admin"
        # a wrong password proves nothing: the file stays
        with pytest.raises(DeviceFlowError):
            await _sign_in(srv.url, tmp_path / "t1", "admin", stored["password"] + "x")
        assert password_file.exists()
        # so does another user's sign-in
        assert not await forget_initial_password(srv.app.state.settings, "researcher")
        assert password_file.exists()
        await _sign_in(srv.url, tmp_path / "t2", "admin", stored["password"])
        assert not password_file.exists()
    # a restart neither brings it back nor makes a new password
    async with _server(data_dir) as srv:
        assert not password_file.exists()
        await _sign_in(srv.url, tmp_path / "t3", "admin", stored["password"])


async def test_configured_admin_password_is_never_written(tmp_path: Path) -> None:
    async with _server(tmp_path / "server", initial_admin_password=SecretStr("configured-pw")):
        assert not (tmp_path / "server" / PASSWORD_FILE).exists()


def _run_serve_until_up(data_dir: Path, out: Path) -> str:
    """Start ``provena-like serve``, wait for it, stop it with SIGTERM; return its output."""
    port = bind_socket()
    number = port.getsockname()[1]
    port.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROVENA_", "WEED_"))}
    env.update(COLUMNS="400", PROVENA_CACHE_DIR=str(data_dir.parent / "cache"))
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from provena_like.cli.main import main; main()",
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                str(number),
            ],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 180
        while "Press Ctrl+C to stop" not in out.read_text():
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    return out.read_text()


def test_serve_prints_the_password_once_and_keeps_its_files_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "server"
    first = _run_serve_until_up(data_dir, tmp_path / "first.log")
    password = json.loads((data_dir / PASSWORD_FILE).read_text())["password"]
    assert password in first
    second = _run_serve_until_up(data_dir, tmp_path / "second.log")
    assert password not in second
    # serve's umask: nothing it (or the object store) created is open to others. SeaweedFS
    # chmods its volume info files (*.vif) to 0644 itself; they sit in 0700 directories.
    exposed = [
        f"{_mode(p)} {p.relative_to(data_dir)}"
        for p in [data_dir, *data_dir.rglob("*")]
        if not p.is_symlink()
        and not stat.S_ISSOCK(p.stat().st_mode)
        and stat.S_IMODE(p.stat().st_mode) & 0o077
        and not (p.is_file() and p.suffix == ".vif")
    ]
    assert exposed == []
    assert all(_mode(p) == "0o700" for p in [data_dir, *data_dir.rglob("*")] if p.is_dir())
