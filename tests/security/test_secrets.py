"""Secrets stay out of logs, reprs and world-readable files (issue 9, item 20).

(a) DEBUG logs of a real upload with scoped credentials hold neither the secret key nor the
session token; (b) a presigned URL's ``repr``/``str`` hide its signature; (c) the server's
data directory and database are private; (d) the generated admin password is shown once
and kept on disk only until the admin first signs in.
"""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.redaction import install_log_redaction, redact_text, redact_url
from provena_like.testing.localstack import LocalStack

pytestmark = pytest.mark.anyio

_APPROVALS = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")


async def _dataset_record(pv: ProvenaClient) -> dict[str, Any]:
    org = await pv.registry.create_item(
        {"subtype": "organisation", "record": {"name": f"Secrets Lab {uuid.uuid4().hex[:6]}"}}
    )
    person = await pv.registry.create_item(
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
    async with httpx.AsyncClient() as http:
        assert (await http.get(link.url)).text == "a,b\n"
    assert link.model_dump()["url"] == link.url


def test_redact_url_keeps_the_rest() -> None:
    url = "http://h:1/b/k%20x?X-Amz-Date=20250101T000000Z&X-Amz-Signature=ab12&X-Amz-Expires=60"
    shown = redact_url(url)
    assert "ab12" not in shown
    assert shown.startswith("http://h:1/b/k%20x?")
    assert "X-Amz-Expires=60" in shown and "X-Amz-Date=20250101T000000Z" in shown
    assert redact_url("http://h/b/k") == "http://h/b/k"
