"""HEADs and small GETs on keep-alive connections of our own, without an HTTP client library.

A HEAD answer is a status line and headers, never a body (RFC 9112 §6.3), so sending one
and reading its answer is a write and one read up to the blank line. Measured on loopback
against SeaweedFS (1,000 HEADs, 32 at once): ``aiohttp`` spends 0.2-0.4 ms of CPU per
request on its request and response objects, URL handling, auto headers and connector
bookkeeping; this pool 0.08-0.11 ms. The server HEADs every staged object of a patch
before committing it (:mod:`provena_like.server.registration.replicas`), and engines HEAD
objects to compare them: both are bound by that CPU.

Failures look like the direct path's (:mod:`._direct`), so the same retry policy applies:
a refused, reset or dropped connection raises :class:`aiohttp.ClientConnectionError`, a
connect or read that takes too long :class:`TimeoutError`. A connection taken from the
idle ones that turns out closed by the server before it answered (the keep-alive race) is
replaced by a new one once, at once: a HEAD changes nothing, so sending it again is safe.

GETs of small objects (read whole into memory) come this way too, for the same reason: a
batch of 4 KiB downloads is bound by the client's CPU, most of it aiohttp's per request.
The body is framed by ``Content-Length``, else chunked, else by the connection's end. The
same holds for a GET: it changes nothing either.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["GetAnswer", "HeadAnswer", "HeadPool", "parse_head", "request_head"]

HeadAnswer = tuple[int, str, CIMultiDictProxy[str]]
"""A HEAD's status, reason phrase and headers."""
GetAnswer = tuple[int, str, CIMultiDictProxy[str], bytes]
"""A GET's status, reason phrase, headers and body."""

_HEAD_MOST: Final = 64 * 1024
"""The longest status line and headers read (longer: a connection error)."""

_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _read_body(reader: asyncio.StreamReader, headers: CIMultiDict[str]) -> tuple[bytes, bool]:
    """The body after ``headers``, and whether its end was framed (else the connection ended).

    By ``Content-Length``, else chunked (RFC 9112 §7.1; trailers are read and dropped), else
    up to the end of the connection.
    """
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        pieces: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # a trailer field
                return b"".join(pieces), True
            pieces.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = headers.get("Content-Length")
    if length is not None:
        return await reader.readexactly(int(length)), True
    return await reader.read(), False


def request_head(method: str, target: str, headers: Mapping[str, str]) -> bytes:
    r"""An HTTP/1.1 request's line and headers, ending in the blank line (no body).

    Example:
        ```python
        assert request_head("GET", "/b/k", {"host": "h"}) == b"GET /b/k HTTP/1.1\r\nhost: h\r\n\r\n"
        ```
    """
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"{method} {target} HTTP/1.1\r\n{lines}\r\n".encode("latin-1")


class _Stale(Exception):
    """A reused connection was closed before any byte of the answer came."""


def parse_head(head: bytes) -> tuple[int, str, CIMultiDict[str], bool]:
    r"""Status, reason, headers and whether the connection may be reused.

    Example:
        ```python
        status, reason, headers, keep = parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: 1\r\nx-a: 2\r\n\r\n"
        )
        assert (status, reason, headers.getall("X-A"), keep) == (200, "OK", ["1", "2"], True)
        assert parse_head(b"HTTP/1.0 404 Not Found\r\n\r\n")[3] is False
        ```
    """
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise aiohttp.ClientConnectionError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.add(name.strip(), value.strip())
    tokens = {t.strip().lower() for t in headers.get("Connection", "").split(",")}
    keep = "close" not in tokens and (version != "HTTP/1.0" or "keep-alive" in tokens)
    return int(code), reason, headers, keep


class HeadPool:
    """HEADs against one origin through at most ``max_connections`` kept-alive connections.

    Args:
        origin: ``scheme://host[:port]`` (``http`` or ``https``, verified as ``aiohttp``
            verifies by default).
        max_connections: The most connections open at once (requests beyond wait).
        connect_timeout: Seconds to connect.
        read_timeout: Seconds to wait for the answer.
    """

    def __init__(
        self,
        origin: str,
        *,
        max_connections: int,
        connect_timeout: float = 10,
        read_timeout: float = 60,
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tls = parts.scheme == "https"
        self._ssl: ssl.SSLContext | None = None  # made at the first TLS connection (costly)
        self._slots = asyncio.Semaphore(max(1, max_connections))
        self._idle: list[_Connection] = []
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._closed = False

    async def aclose(self) -> None:
        """Close the idle connections (those in use close when their request ends)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()

    async def head(self, target: str, headers: Mapping[str, str]) -> HeadAnswer:
        """Send ``HEAD target`` (an encoded path and query) with ``headers``; the answer.

        ``headers`` must include ``Host`` (the signed requests of :mod:`._direct` do).
        Any status is an answer; a failed connection or a timeout raises.
        """
        status, reason, answer, _ = await self._send("HEAD", target, headers)
        return status, reason, answer

    async def get(self, target: str, headers: Mapping[str, str]) -> GetAnswer:
        """Send ``GET target`` as :meth:`head` does; the answer and its whole body.

        For small bodies (a small object, an error): the body is read whole into memory.
        """
        return await self._send("GET", target, headers)

    async def _send(self, method: str, target: str, headers: Mapping[str, str]) -> GetAnswer:
        request = request_head(method, target, headers)
        body = method != "HEAD"
        async with self._slots:
            if self._idle:
                try:
                    return await self._exchange(self._idle.pop(), request, body, reused=True)
                except _Stale:
                    pass
            try:
                return await self._exchange(await self._connect(), request, body, reused=False)
            except _Stale as exc:
                raise aiohttp.ServerDisconnectedError(str(exc)) from None

    async def _connect(self) -> _Connection:
        context: ssl.SSLContext | None = None
        if self._tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await asyncio.open_connection(
                    self._host, self._port, ssl=context, limit=_HEAD_MOST
                )
        except TimeoutError:
            raise
        except OSError as exc:
            raise aiohttp.ClientConnectionError(
                f"cannot connect to {self._host}:{self._port}: {exc}"
            ) from exc

    async def _exchange(
        self, connection: _Connection, request: bytes, body: bool, *, reused: bool
    ) -> GetAnswer:
        """One request and its answer on ``connection``, kept for the next when it may be.

        With ``body``, the answer's body is read (a HEAD's answer has none).
        """
        reader, writer = connection
        kept = False
        try:
            async with asyncio.timeout(self._read_timeout):
                writer.write(request)
                while True:
                    try:
                        head = await reader.readuntil(b"\r\n\r\n")
                    except asyncio.IncompleteReadError as exc:
                        if not exc.partial:
                            raise _Stale("the server closed the connection") from None
                        raise aiohttp.ServerDisconnectedError("the answer broke off") from None
                    status, reason, answer, keep = parse_head(head)
                    if status >= 200:  # 1xx: informational, the answer follows
                        break
                data = b""
                if body and status not in (204, 304):
                    data, framed = await _read_body(reader, answer)
                    keep = keep and framed
            kept = keep and not self._closed
            return status, reason, CIMultiDictProxy(answer), data
        except TimeoutError:
            raise
        except (ConnectionResetError, BrokenPipeError) as exc:
            if reused:
                raise _Stale(str(exc)) from exc
            raise aiohttp.ServerDisconnectedError(str(exc)) from exc
        except asyncio.IncompleteReadError:
            raise aiohttp.ServerDisconnectedError("the answer's body broke off") from None
        except asyncio.LimitOverrunError:
            raise aiohttp.ClientConnectionError(
                f"an answer's headers are longer than {_HEAD_MOST} bytes"
            ) from None
        except OSError as exc:
            raise aiohttp.ClientConnectionError(str(exc)) from exc
        except ValueError as exc:  # a body's length or a chunk's size that is no number
            raise aiohttp.ClientConnectionError(f"a malformed answer: {exc}") from None
        finally:
            if kept:
                self._idle.append(connection)
            else:
                writer.close()
