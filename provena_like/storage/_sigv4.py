"""AWS Signature Version 4 for the direct request path, with an unsigned payload.

botocore's signer (:class:`botocore.auth.S3SigV4Auth`) is generic: it re-parses the URL,
keeps headers in an ``email.message`` object and derives the signing key on every call,
~0.1 ms per request, a third of the direct path's CPU per small file. This module signs the
requests :mod:`._direct` builds (already-encoded path and query, a handful of headers) in
~15 µs, with the signing key cached per day, region and secret (as an HMAC object to copy: no
call here releases the GIL, see :func:`_signing_key`). Its output is checked
against botocore's for the same inputs by the unit tests, and every storage test runs
through it against SeaweedFS, which verifies each signature.

The payload is ``UNSIGNED-PAYLOAD``, as for the aiobotocore client: a body is covered by the
signed ``x-amz-checksum-*`` header instead.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import urlsplit

from botocore.credentials import ReadOnlyCredentials

__all__ = ["UNSIGNED_PAYLOAD", "host_header", "sign"]

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_ALGORITHM = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_header(url: str) -> str:
    """The ``Host`` header for ``url``: the default port left out (as botocore signs it).

    Example:
        ```python
        assert host_header("http://127.0.0.1:8333/b/k") == "127.0.0.1:8333"
        assert host_header("https://s3.amazonaws.com/b") == "s3.amazonaws.com"
        ```
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


@lru_cache(maxsize=16)
def _signing_key(secret: str, date: str, region: str, service: str) -> hmac.HMAC:
    """The signing key as an HMAC-SHA256 object to copy for each signature.

    A copy, ``update`` and ``digest`` of it keep the GIL for a short message (OpenSSL's
    HMAC object releases it only for updates of 2 KiB or more); ``hmac.digest`` releases it
    around OpenSSL's ``HMAC()`` whatever the size, so with worker threads busy (file
    writes, the database's thread) the event loop waited for the GIL back once per request.
    """
    key = hmac.digest(f"AWS4{secret}".encode(), date.encode(), "sha256")
    for part in (region, service, "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return hmac.new(key, digestmod="sha256")


_HELD = 1024
"""Bytes hashed per ``update`` while signing: ``hashlib`` releases the GIL for an update of
2 KiB or more, and a canonical request with a session token is often longer: the event loop
then waited for the GIL behind worker threads at each request (16 % of a small download's
loop samples in the bare engine)."""


def _sha256_hex(data: bytes) -> str:
    """The sha256 of ``data`` (hex), fed in pieces the GIL stays held for."""
    digest = hashlib.sha256()
    view = memoryview(data)
    for start in range(0, len(view), _HELD):
        digest.update(view[start : start + _HELD])
    return digest.hexdigest()


def sign(
    method: str,
    path: str,
    query: str,
    host: str,
    headers: Mapping[str, str],
    credentials: ReadOnlyCredentials,
    region: str,
    *,
    service: str = "s3",
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers of a signed request: ``headers`` plus the SigV4 ones.

    Args:
        method: ``GET``, ``PUT``, ``HEAD``...
        path: The URL path exactly as sent (percent-encoded).
        query: The query string exactly as sent: RFC 3986-encoded, sorted by name.
        host: The ``Host`` header (see :func:`host_header`); it is sent as signed.
        headers: Headers to send, all of them signed.
        credentials: The keys (and session token) to sign with.
        region: The signing region.
        service: The signing service.
        now: The signing time (tests); the current time otherwise.

    Returns:
        The headers to send, ``Authorization`` included.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    signed: dict[str, str] = {
        name.lower(): " ".join(str(value).split()) for name, value in headers.items()
    }
    signed["host"] = host
    signed["x-amz-date"] = amz_date
    signed["x-amz-content-sha256"] = UNSIGNED_PAYLOAD
    if credentials.token:
        signed["x-amz-security-token"] = credentials.token
    names = sorted(signed)
    canonical = "\n".join(
        (
            method,
            path or "/",
            query,
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            UNSIGNED_PAYLOAD,
        )
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = f"{_ALGORITHM}\n{amz_date}\n{scope}\n{_sha256_hex(canonical.encode())}"
    mac = _signing_key(credentials.secret_key, date, region, service).copy()
    mac.update(to_sign.encode())
    signature = mac.hexdigest()
    signed["authorization"] = (
        f"{_ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return signed
