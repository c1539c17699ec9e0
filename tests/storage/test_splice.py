"""Ranged GETs spliced from the socket into the file (:mod:`provena_like.storage._splice`).

Against servers that answer what each case needs, byte for byte: split headers, a body that
breaks off, a stall, an error's chunked XML, a wrong length. Spliced downloads from
SeaweedFS itself are covered by ``test_ranged_download.py`` and ``test_transfer.py``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import anyio
import pytest

from provena_like._core.errors import TransferError
from provena_like.storage import _splice

pytestmark = pytest.mark.skipif(not _splice.AVAILABLE, reason="splice(2) is Linux only")

Answer = Callable[[socket.socket], None]

STOPPING = threading.Event()
"""Set when a test's servers stop: what a stalled answer waits for."""


class _Server:
    """Answers each connection with ``answer`` after reading its request's head, then
    ends the answer (shuts its side down) and waits for the client to close."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.closed = threading.Event()  # the client closed a connection it was answered on
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    more = conn.recv(4096)
                    if not more:
                        break
                    head += more
                self.requests.append(head)
                try:
                    self.answer(conn)
                    conn.shutdown(socket.SHUT_WR)  # the answer ends here
                    conn.settimeout(10)
                    while conn.recv(4096):
                        pass
                except OSError:
                    pass
                self.closed.set()

    def stop(self) -> None:
        STOPPING.set()  # stalled answers end
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (closing doesn't)
        self._listener.close()
        self._thread.join(5)
        assert not self._thread.is_alive()


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], _Server]]:
    servers: list[_Server] = []

    def start(answer: Answer) -> _Server:
        servers.append(_Server(answer))
        return servers[-1]

    STOPPING.clear()
    yield start
    for server in servers:
        server.stop()


def _get(
    server: _Server, fd: int, offset: int, length: int, *, read_timeout: float = 5
) -> _splice.RangeAnswer:
    request = b"GET /b/k HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    return _splice.get_range_into(
        "127.0.0.1",
        server.port,
        request,
        fd,
        offset,
        length,
        threading.Lock(),
        connect_timeout=5,
        read_timeout=read_timeout,
    )


def _head(status: str, length: int, extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {length}\r\n{extra}\r\n".encode()


def test_a_206_lands_at_its_offset_whatever_pieces_it_comes_in(
    serve: Callable[[Answer], _Server], tmp_path: Path
) -> None:
    body = os.urandom(3 * 1024 * 1024 + 17)

    def answer(conn: socket.socket) -> None:
        # headers arrive in two pieces, the first body bytes with the second
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 206 Partial")
        time.sleep(0.05)
        head = _head("", len(body), 'Content-Range: bytes 10-/99\r\nETag: "e"\r\n')
        conn.sendall(head.removeprefix(b"HTTP/1.1 ") + body[:1000])
        for at in range(1000, len(body), 700_000):
            conn.sendall(body[at : at + 700_000])
            time.sleep(0.01)

    server = serve(answer)
    path = tmp_path / "out.bin"
    path.write_bytes(b"a" * 10 + b"\0" * len(body) + b"z" * 5)
    fd = os.open(path, os.O_RDWR)
    try:
        status, _, headers, data = _get(server, fd, 10, len(body))
    finally:
        os.close(fd)
    assert (status, headers["ETag"], data) == (206, '"e"', b"")
    assert path.read_bytes() == b"a" * 10 + body + b"z" * 5  # nothing outside the range
    assert server.requests[0].startswith(b"GET /b/k HTTP/1.1\r\n")


def test_a_body_that_breaks_off_is_a_disconnect(
    serve: Callable[[Answer], _Server], tmp_path: Path
) -> None:
    server = serve(lambda conn: conn.sendall(_head("206 Partial Content", 1000) + b"x" * 600))
    fd = os.open(tmp_path / "out.bin", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(aiohttp.ServerDisconnectedError, match="broke off 400 bytes"):
            _get(server, fd, 0, 1000)
    finally:
        os.close(fd)


def test_an_error_comes_back_with_its_body_and_nothing_written(
    serve: Callable[[Answer], _Server], tmp_path: Path
) -> None:
    xml = b"<Error><Code>PreconditionFailed</Code><Message>no</Message></Error>"
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, xml[:10], len(xml) - 10, xml[10:])
    head = b"HTTP/1.1 412 Precondition Failed\r\nTransfer-Encoding: chunked\r\n\r\n"
    server = serve(lambda conn: conn.sendall(head + chunked))
    path = tmp_path / "out.bin"
    path.write_bytes(b"keep")
    fd = os.open(path, os.O_RDWR)
    try:
        status, reason, _, data = _get(server, fd, 0, 4)
    finally:
        os.close(fd)
    assert (status, reason, data) == (412, "Precondition Failed", xml)
    assert path.read_bytes() == b"keep"


def test_a_206_of_another_length_is_refused(
    serve: Callable[[Answer], _Server], tmp_path: Path
) -> None:
    server = serve(lambda conn: conn.sendall(_head("206 Partial Content", 5) + b"12345"))
    fd = os.open(tmp_path / "out.bin", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(TransferError, match="asked for 4 bytes.*Content-Length 5"):
            _get(server, fd, 0, 4)
    finally:
        os.close(fd)
    assert (tmp_path / "out.bin").read_bytes() == b""


def test_headers_without_end_and_answers_that_are_no_http_are_connection_errors(
    serve: Callable[[Answer], _Server], tmp_path: Path
) -> None:
    fd = os.open(tmp_path / "out.bin", os.O_RDWR | os.O_CREAT)
    try:
        endless = serve(lambda conn: conn.sendall(b"HTTP/1.1 206 OK\r\n" + b"X: y\r\n" * 20_000))
        with pytest.raises(aiohttp.ClientConnectionError, match="longer than"):
            _get(endless, fd, 0, 4)
        garbage = serve(lambda conn: conn.sendall(b"SSH-2.0-OpenSSH\r\n\r\n"))
        with pytest.raises(aiohttp.ClientConnectionError, match="not an HTTP"):
            _get(garbage, fd, 0, 4)
        silent = serve(lambda conn: None)  # closes without a byte
        with pytest.raises(aiohttp.ServerDisconnectedError, match="closed the connection"):
            _get(silent, fd, 0, 4)
    finally:
        os.close(fd)


def test_a_refused_connection_is_a_connection_error(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    fd = os.open(tmp_path / "out.bin", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(aiohttp.ClientConnectionError, match="cannot connect"):
            _splice.get_range_into(
                "127.0.0.1",
                port,
                b"GET / HTTP/1.1\r\n\r\n",
                fd,
                0,
                4,
                threading.Lock(),
                connect_timeout=5,
                read_timeout=5,
            )
    finally:
        os.close(fd)


def test_a_stalled_body_times_out(serve: Callable[[Answer], _Server], tmp_path: Path) -> None:
    def stall(conn: socket.socket) -> None:
        conn.sendall(_head("206 Partial Content", 1000) + b"x" * 10)
        STOPPING.wait(3)

    server = serve(stall)
    fd = os.open(tmp_path / "out.bin", os.O_RDWR | os.O_CREAT)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match="no answer from the store for 0.5 s"):
            _get(server, fd, 0, 1000, read_timeout=0.5)
    finally:
        os.close(fd)
    assert time.monotonic() - started < 2


@pytest.mark.anyio
async def test_a_cancelled_download_stops_its_thread_within_a_wait_step(
    serve: Callable[[Answer], _Server], tmp_path: Path
) -> None:
    """The thread notices the cancellation at its next wait step: no writer left behind."""

    def stall(conn: socket.socket) -> None:
        conn.sendall(_head("206 Partial Content", 1000) + b"x" * 10)
        STOPPING.wait(10)

    server = serve(stall)
    fd = os.open(tmp_path / "out.bin", os.O_RDWR | os.O_CREAT)
    try:
        started = time.monotonic()
        with anyio.move_on_after(0.3):
            await anyio.to_thread.run_sync(lambda: _get(server, fd, 0, 1000, read_timeout=60))
        elapsed = time.monotonic() - started
    finally:
        os.close(fd)
    # cancelled at 0.3 s, seen at the next step (0.25 s), the thread done when it returns
    assert elapsed < 0.3 + 2 * _splice._WAIT_STEP + 0.5


def test_a_file_that_cant_be_written_raises_its_own_error(
    serve: Callable[[Answer], _Server], tmp_path: Path
) -> None:
    """Not a connection error (which the retry policy would retry): the file's OSError."""
    body = os.urandom(200_000)
    server = serve(lambda conn: conn.sendall(_head("206 Partial Content", len(body)) + body))
    path = tmp_path / "out.bin"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDONLY)  # splice into it: EBADF
    try:
        with pytest.raises(OSError) as caught:
            _get(server, fd, 0, len(body))
    finally:
        os.close(fd)
    assert not isinstance(caught.value, aiohttp.ClientError)
    assert caught.value.errno == errno.EBADF
