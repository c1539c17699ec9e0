"""HEADs on keep-alive connections of our own (:mod:`provena_like.storage._heads`).

Against a real HTTP server (aiohttp's) on loopback: connections are reused, a connection the
server closed while idle is replaced, an answer that says ``Connection: close`` is honoured,
and failures raise what the retry policy retries. Through the engine against SeaweedFS: a
dropped HEAD is retried.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import inspect
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from provena_like.storage import S3Credentials, TransferEngine
from provena_like.storage._heads import HeadPool
from provena_like.storage.retry import S3RetryPolicy
from tests.support.storage_helpers import BUCKET, FaultProxy

pytestmark = pytest.mark.anyio

Handler = Callable[[web.Request], web.StreamResponse | Awaitable[web.StreamResponse]]


class Served:
    """A real HTTP server answering every request with ``handler``; counts connections."""

    def __init__(self, handler: Handler, **runner: float) -> None:
        self.handler = handler
        self.peers: set[tuple[str, int]] = set()
        self.origin = ""
        self._runner_options = runner
        self.runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        self.peers.add(request.transport.get_extra_info("peername"))
        answer = self.handler(request)
        return await answer if inspect.isawaitable(answer) else answer

    async def __aenter__(self) -> Served:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None, **self._runner_options)  # type: ignore[arg-type]
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.origin = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def _ok(request: web.Request) -> web.StreamResponse:
    return web.Response(
        status=200, headers={"X-Path": request.path_qs, "X-Host": request.headers["Host"]}
    )


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with Served(_ok) as server:
        yield server


def _host(origin: str) -> dict[str, str]:
    return {"Host": origin.removeprefix("http://")}


async def test_answers_are_parsed_and_connections_reused(served: Served) -> None:
    pool = HeadPool(served.origin, max_connections=2)
    try:
        for i in range(6):
            status, reason, headers = await pool.head(f"/b/k%20{i}?x=1", _host(served.origin))
            assert (status, reason) == (200, "OK")
            assert headers["x-path"] == f"/b/k%20{i}?x=1"  # sent as given, already encoded
            assert headers["X-Host"] == served.origin.removeprefix("http://")
        assert len(served.peers) == 1  # one after the other: one connection
        await asyncio.gather(*(pool.head("/b/k", _host(served.origin)) for _ in range(8)))
        assert len(served.peers) <= 3  # at most max_connections more
    finally:
        await pool.aclose()


async def test_an_error_status_is_an_answer(served: Served) -> None:
    served.handler = lambda _request: web.Response(status=404, reason="Not Found")
    pool = HeadPool(served.origin, max_connections=1)
    try:
        status, reason, _ = await pool.head("/b/missing", _host(served.origin))
        assert (status, reason) == (404, "Not Found")
        status, _, _ = await pool.head("/b/missing", _host(served.origin))
        assert status == 404 and len(served.peers) == 1
    finally:
        await pool.aclose()


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    async with Served(_ok, keepalive_timeout=0.05) as served:
        pool = HeadPool(served.origin, max_connections=1)
        try:
            assert (await pool.head("/b/k", _host(served.origin)))[0] == 200
            await asyncio.sleep(0.3)  # the server closes the idle connection
            assert (await pool.head("/b/k", _host(served.origin)))[0] == 200
            assert len(served.peers) == 2
        finally:
            await pool.aclose()


async def test_connection_close_is_honoured(served: Served) -> None:
    served.handler = lambda _request: web.Response(status=200, headers={"Connection": "close"})
    pool = HeadPool(served.origin, max_connections=1)
    try:
        for _ in range(3):
            assert (await pool.head("/b/k", _host(served.origin)))[0] == 200
        assert len(served.peers) == 3
    finally:
        await pool.aclose()


async def test_failures_raise_what_the_retry_policy_retries() -> None:
    policy = S3RetryPolicy()
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    pool = HeadPool(f"http://127.0.0.1:{port}", max_connections=1)
    with pytest.raises(aiohttp.ClientConnectionError) as refused:
        await pool.head("/b/k", {"Host": f"127.0.0.1:{port}"})
    assert policy.is_retryable(refused.value)

    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read(1)  # reads the request, never answers

    async def dropping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read(1)
        writer.close()  # drops the connection without an answer

    for serve, expected in ((silent, TimeoutError), (dropping, aiohttp.ServerDisconnectedError)):
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = HeadPool(f"http://127.0.0.1:{port}", max_connections=1, read_timeout=0.2)
        try:
            with pytest.raises(expected) as failed:
                await pool.head("/b/k", {"Host": f"127.0.0.1:{port}"})
            assert policy.is_retryable(failed.value)
        finally:
            await pool.aclose()
            for writer in accepted:
                writer.close()
            server.close()
            await server.wait_closed()


async def test_a_dropped_head_is_retried_by_the_engine(
    tmp_path: Path, creds: S3Credentials, proxy: FaultProxy, prefix: str
) -> None:
    (tmp_path / "a.bin").write_bytes(b"0123456789")
    drops: list[str] = []
    proxy.fault = lambda request: drops.pop() if request.method == "HEAD" and drops else None
    async with TransferEngine(dataclasses.replace(creds, endpoint_url=proxy.url)) as engine:
        (await engine.upload([(tmp_path / "a.bin", "a.bin")])).raise_for_failures()
        heads = proxy.seen[("HEAD", f"/{BUCKET}/{prefix}a.bin")]
        drops.append("drop")
        found = await engine.stat("a.bin")  # (the proxy answers HEADs without their size)
        assert found is not None and found.sha256 == hashlib.sha256(b"0123456789").hexdigest()
        assert await engine.stat("nope.bin") is None  # a 404 answer: no object
    assert not drops
    assert proxy.seen[("HEAD", f"/{BUCKET}/{prefix}a.bin")] == heads + 2  # dropped, then again


async def test_a_get_reads_the_body_by_length_or_chunks_on_one_connection(served: Served) -> None:
    body = bytes(range(256)) * 300  # 75 KiB: longer than the headers' limit

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for at in range(0, len(body), 10_000):
            await response.write(body[at : at + 10_000])
        await response.write_eof()
        return response

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.path == "/b/chunked":
            return await chunked(request)
        if request.path == "/b/missing":
            return web.Response(status=404, body=b"<Error><Code>NoSuchKey</Code></Error>")
        return web.Response(body=body, headers={"X-Range": request.headers.get("Range", "")})

    served.handler = answer
    pool = HeadPool(served.origin, max_connections=1)
    try:
        status, _, headers, data = await pool.get("/b/k", {**_host(served.origin), "Range": "x"})
        assert (status, data, headers["X-Range"]) == (200, body, "x")
        assert (await pool.get("/b/chunked", _host(served.origin)))[3] == body
        status, _, _, data = await pool.get("/b/missing", _host(served.origin))
        assert (status, data) == (404, b"<Error><Code>NoSuchKey</Code></Error>")
        assert (await pool.head("/b/k", _host(served.origin)))[0] == 200
        assert (await pool.get("/b/k", _host(served.origin)))[3] == body
        assert len(served.peers) == 1  # every body read to its end: the connection reused
    finally:
        await pool.aclose()


async def test_a_get_body_up_to_the_connection_end_or_broken_off() -> None:
    async def unframed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nall of it")
        writer.close()

    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nten bytes.")
        writer.close()

    for serve in (unframed, short):
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = HeadPool(f"http://127.0.0.1:{port}", max_connections=1)
        try:
            if serve is unframed:
                got = await pool.get("/b/k", {"Host": f"127.0.0.1:{port}"})
                assert got[3] == b"all of it"
                assert not pool._idle  # not reusable: its end was the connection's
            else:
                with pytest.raises(aiohttp.ServerDisconnectedError):
                    await pool.get("/b/k", {"Host": f"127.0.0.1:{port}"})
        finally:
            await pool.aclose()
            server.close()
            await server.wait_closed()
