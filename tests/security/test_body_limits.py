"""Request bodies are capped per route (413) and never read before authentication.

The session's server runs in a thread of this process, so the process's resident set size is
the server's: a body the server buffers shows up in it.
"""

from __future__ import annotations

import json
import select
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from provena_like.server.body_limit import BodyPolicy, body_policy
from provena_like.testing.server_thread import ServerThread
from tests.support.tls import SHARED_TLS

MiB = 1024 * 1024
CHUNK = 64 * 1024


def _rss() -> int:
    """The resident set size of this process (the test server's too), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@dataclass
class RawResult:
    """What a streamed request got: the bytes it managed to send, the answer, the peak RSS."""

    sent: int
    status: int | None
    body: bytes
    peak_rss: int
    seconds: float


def _parse(raw: bytes) -> tuple[int | None, bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return None, b""
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2 :]
        body = out
    return status, body


def _stream(url: str, path: str, total: int, headers: dict[str, str]) -> RawResult:
    """POST ``total`` bytes of chunked body over a raw socket, stopping when the server answers.

    The same 64 KiB chunk is sent again and again, so the client holds almost nothing.
    """
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=60)
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", "Transfer-Encoding: chunked"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    chunk = f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n"
    sent, answer, peak = 0, b"", _rss()
    started = time.monotonic()
    try:
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(chunk)
            sent += CHUNK
            if sent % (8 * MiB) == 0:
                peak = max(peak, _rss())
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        sock.settimeout(60)
        while True:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
            status, body = _parse(answer)
            if status is not None and body:
                break
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        sock.close()
    peak = max(peak, _rss())
    status, body = _parse(answer)
    return RawResult(sent, status, body, peak, time.monotonic() - started)


def _assert_envelope(body: bytes, code: str) -> None:
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details", "request_id"}, error
    assert error["code"] == code, error
    assert error["message"], error


@pytest.fixture(scope="module")
def token(make_token: Callable[..., str]) -> str:
    return make_token(f"body-limits-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(verify=SHARED_TLS, base_url=server.url, timeout=120) as client:
        yield client


def test_unauthenticated_200_mb_chunked_post_is_refused_before_it_is_read(
    server: ServerThread,
) -> None:
    before = _rss()
    result = _stream(server.url, "/registry/items", 200 * MiB, {"Content-Type": "application/json"})
    growth = result.peak_rss - before
    assert result.status == 401, result
    _assert_envelope(result.body, "unauthenticated")
    # refused at the headers: what got out is what the kernel buffers held, not 200 MB
    assert result.sent < 64 * MiB, result.sent
    assert growth < 48 * MiB, f"the server's RSS grew by {growth / MiB:.0f} MiB"


def test_forged_token_is_refused_before_the_body_is_read(server: ServerThread) -> None:
    before = _rss()
    result = _stream(
        server.url,
        "/datastore/datasets",
        200 * MiB,
        {"Content-Type": "application/json", "Authorization": "Bearer not.a.token"},
    )
    assert result.status == 401, result
    _assert_envelope(result.body, "unauthenticated")
    assert result.sent < 64 * MiB, result.sent
    assert result.peak_rss - before < 48 * MiB


def test_authenticated_chunked_body_past_the_limit_is_a_413(
    server: ServerThread, token: str
) -> None:
    limit = server.settings.max_body_bytes
    before = _rss()
    result = _stream(
        server.url,
        "/registry/items",
        200 * MiB,
        {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    assert result.status == 413, result
    _assert_envelope(result.body, "payload_too_large")
    assert str(limit) in json.loads(result.body)["error"]["message"]
    assert result.sent < 64 * MiB, result.sent
    assert result.peak_rss - before < 48 * MiB


def test_authenticated_json_body_over_the_limit_is_a_413(
    server: ServerThread, token: str, http: httpx.Client
) -> None:
    limit = server.settings.max_body_bytes
    record = {"first_name": "A", "last_name": "B", "email": "a@example.org", "pad": "x" * limit}
    r = http.post(
        "/registry/items",
        json={"subtype": "person", "record": record},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 413, r.text
    _assert_envelope(r.content, "payload_too_large")
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_a_body_just_under_the_limit_works(
    server: ServerThread, token: str, http: httpx.Client
) -> None:
    record = {"first_name": "A", "last_name": "B", "email": "a@example.org"}
    body = json.dumps({"subtype": "person", "record": record}).encode()
    body += b" " * (server.settings.max_body_bytes - len(body))  # JSON allows the whitespace
    r = http.post(
        "/registry/items",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text


def test_file_lists_have_the_larger_limit(
    server: ServerThread, token: str, http: httpx.Client
) -> None:
    """1,000 long paths don't fit 1 MiB; registering them is not refused for its size."""
    assert server.settings.max_file_list_body_bytes > 2 * server.settings.max_body_bytes
    files = [
        {"path": f"{'d' * 1000}/{i:04d}.csv", "size": 1, "sha256": "0" * 64} for i in range(1000)
    ]
    body = json.dumps({"files": files}).encode()
    assert len(body) > server.settings.max_body_bytes
    r = http.post(
        "/datastore/datasets/10378.1/999999999/files",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert r.status_code == 404, r.text  # no such dataset: the body was read and parsed


def test_oauth_token_endpoint_reads_its_form_without_a_bearer_token(http: httpx.Client) -> None:
    r = http.post("/auth/token", data={"grant_type": "client_credentials"})
    assert r.status_code in (400, 401), r.text
    assert isinstance(r.json()["error"], str)  # RFC 6749 error, not the bearer check


def test_policy_limits_and_public_routes() -> None:
    policy = body_policy(2048, 8192)

    def of(method: str, path: str) -> BodyPolicy:
        return policy({"type": "http", "method": method, "path": path})

    assert of("POST", "/registry/items") == BodyPolicy(limit=2048, bearer_required=True)
    assert of("POST", "/datastore/datasets/10378.1/7/files").limit == 8192
    assert of("POST", "/datastore/datasets/10378.1/7/files/remove").limit == 8192
    assert of("POST", "/registry/patches").limit == 8192
    assert of("PUT", "/datastore/datasets/10378.1/7").limit == 2048
    for public in ("/auth/token", "/auth/revoke", "/auth/device_authorization", "/auth/device"):
        assert not of("POST", public).bearer_required
