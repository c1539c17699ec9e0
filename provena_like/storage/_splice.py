"""Ranged GETs whose body the kernel moves from the socket into the file (Linux ``splice``).

The parts of a large download after its first (see :mod:`._download`) are written at their
offset in the temp file. Through ``aiohttp`` each byte is copied from the kernel into a
Python ``bytes`` and back into the page cache by ``pwritev``, with the event loop, a thread
hop and the interpreter's work per piece in between. Here a worker thread sends the signed
request on a connection of its own (``Connection: close``) and, once the answer is a
``206`` of exactly the range asked for, ``splice(2)`` moves the body from the socket into a
pipe and from the pipe into the file at its offset: no copy in the process, a few calls per
MiB. Measured on the 2-core loopback machine against SeaweedFS (``benchmarks/
transfer_service.py``, a transfer task downloading 1 GiB without checking its sha256): the
server process's CPU 1.47-1.55 s through ``aiohttp``, 0.78-0.92 s spliced (``rclone copy``:
0.70-0.77 s); the task 1.72-1.83 s → 1.15-1.25 s (``rclone copy``: 1.02-1.23 s).

Plain HTTP only (the bytes of a TLS connection must be decrypted in the process) and Linux
only (:data:`AVAILABLE`); elsewhere the download streams through ``aiohttp``. Failures look
like the direct path's (:mod:`._direct`), so the same retry policy applies: a refused,
reset or dropped connection raises :class:`aiohttp.ClientConnectionError` (a body that
broke off: :class:`aiohttp.ServerDisconnectedError`), a connect or a wait for bytes that
takes longer than its timeout :class:`TimeoutError`. A retried part is written again from
its start, over what the failed attempt wrote. The waits check for cancellation of the task
that started the thread (:func:`anyio.from_thread.check_cancelled`) every
:data:`_WAIT_STEP` seconds, so a cancelled download stops within that and never leaves a
thread writing into a file that was removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import sys
import threading
from typing import Final

import aiohttp
import anyio
import anyio.from_thread
from multidict import CIMultiDict, CIMultiDictProxy

from provena_like._core.errors import TransferError
from provena_like.storage._heads import parse_head

__all__ = ["AVAILABLE", "RangeAnswer", "SpliceUnsupported", "get_range_into"]

AVAILABLE: Final = sys.platform == "linux" and hasattr(os, "splice")
"""Whether ranged GETs can be spliced here (tests switch it off to cover the other path)."""

RangeAnswer = tuple[int, str, CIMultiDictProxy[str], bytes]
"""Status, reason, headers and body (empty once spliced: the body is in the file)."""

_PIPE_SIZE: Final = 1024 * 1024
"""The pipe's capacity asked for (Linux allows unprivileged pipes up to 1 MiB by default);
each ``splice`` moves at most this much."""
_HEAD_MOST: Final = 64 * 1024
"""The longest status line and headers read (longer: a connection error)."""
_ERROR_MOST: Final = 1024 * 1024
"""The longest body read into memory from an answer that is not the range (an error)."""
_WAIT_STEP: Final = 0.25
"""Seconds between checks for cancellation while waiting for the socket."""
_UNSUPPORTED: Final = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP})
"""What ``splice`` into a file answers where the file system can't take it (some FUSE
and network file systems)."""


class SpliceUnsupported(Exception):
    """The destination's file system takes no ``splice``: stream the download instead."""


class _FileFailed(Exception):
    """Writing into the file failed (not the connection): its ``OSError`` is raised as is."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def get_range_into(
    host: str,
    port: int,
    request: bytes,
    fd: int,
    offset: int,
    length: int,
    lock: threading.Lock,
    *,
    connect_timeout: float,
    read_timeout: float,
) -> RangeAnswer:
    """Send ``request`` (a GET of ``length`` bytes) and splice its body to ``offset``.

    Blocking: call it in a worker thread started by anyio. Writes into ``fd`` take ``lock``
    (the writers of one file take turns: see :meth:`._download._TempFile.write_at`).

    Returns:
        The answer. A ``206`` (or ``200``: ``rclone serve s3`` answers ranges so, with their
        ``Content-Range``) of ``length`` bytes is in the file; any other status comes with
        its body (an error's XML), nothing written. The caller checks ``Content-Range``.

    Raises:
        TransferError: A ``206`` or ``200`` of another length than asked for.
        SpliceUnsupported: The file's file system refuses ``splice`` (nothing retried:
            the caller streams the range instead).
        OSError: Writing into the file failed (a full disk): the error itself.
        aiohttp.ClientConnectionError: The connection failed or the answer is no HTTP.
        TimeoutError: Connecting, or waiting for bytes, took too long.
    """
    try:
        sock = socket.create_connection((host, port), timeout=connect_timeout)
    except TimeoutError:
        raise
    except OSError as exc:
        raise aiohttp.ClientConnectionError(f"cannot connect to {host}:{port}: {exc}") from exc
    with sock:
        sock.setblocking(False)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        try:
            _send_all(sock, request, read_timeout)
            status, reason, headers, rest = _read_head(sock, poller, read_timeout)
            if status not in (200, 206):  # (some stores answer a range with a 200)
                body = _read_small_body(sock, poller, headers, rest, read_timeout)
                return status, reason, CIMultiDictProxy(headers), body
            sent = headers.get("Content-Length")
            if sent is None or not sent.isdigit() or int(sent) != length:
                raise TransferError(
                    f"asked for {length} bytes, the store answered Content-Length {sent}"
                )
            if len(rest) > length:
                raise aiohttp.ClientConnectionError("more bytes than the answer's length")
            if rest:
                with lock:
                    try:
                        _pwrite_all(fd, rest, offset)
                    except OSError as exc:
                        raise _FileFailed(exc) from exc
            at, left = offset + len(rest), length - len(rest)
            _splice_body(sock, poller, fd, at, left, lock, read_timeout)
        except _FileFailed as failed:
            raise failed.error from None
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise aiohttp.ServerDisconnectedError(str(exc)) from exc
        except (TimeoutError, TransferError, SpliceUnsupported, aiohttp.ClientError):
            raise
        except OSError as exc:
            raise aiohttp.ClientConnectionError(str(exc)) from exc
        return status, reason, CIMultiDictProxy(headers), b""


def _wait(poller: select.poll, timeout: float) -> None:
    """Until the socket is ready, checking every :data:`_WAIT_STEP` s whether to stop."""
    waited = 0.0
    while not poller.poll(int(_WAIT_STEP * 1000)):
        with contextlib.suppress(anyio.NoEventLoopError):  # not an anyio worker thread
            anyio.from_thread.check_cancelled()
        waited += _WAIT_STEP
        if waited >= timeout:
            raise TimeoutError(f"no answer from the store for {timeout:g} s")


def _send_all(sock: socket.socket, data: bytes, timeout: float) -> None:
    view = memoryview(data)
    out = select.poll()
    out.register(sock, select.POLLOUT)
    while view:
        try:
            view = view[sock.send(view) :]
        except BlockingIOError:
            _wait(out, timeout)


def _recv(sock: socket.socket, poller: select.poll, timeout: float) -> bytes:
    while True:
        try:
            return sock.recv(_HEAD_MOST)
        except BlockingIOError:
            _wait(poller, timeout)


def _read_head(
    sock: socket.socket, poller: select.poll, timeout: float
) -> tuple[int, str, CIMultiDict[str], bytes]:
    """The final answer's status, reason and headers, and the bytes read past them."""
    data = b""
    while True:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > _HEAD_MOST:
                raise aiohttp.ClientConnectionError(
                    f"an answer's headers are longer than {_HEAD_MOST} bytes"
                )
            more = _recv(sock, poller, timeout)
            if not more:
                raise aiohttp.ServerDisconnectedError("the store closed the connection")
            data += more
            continue
        status, reason, headers, _ = parse_head(data[: end + 4])
        data = data[end + 4 :]
        if status >= 200:  # 1xx: informational, the answer follows
            return status, reason, headers, data


def _read_small_body(
    sock: socket.socket,
    poller: select.poll,
    headers: CIMultiDict[str],
    rest: bytes,
    timeout: float,
) -> bytes:
    """An error's body: up to the connection's end (``Connection: close``), de-chunked."""
    pieces = [rest]
    held = len(rest)
    while held <= _ERROR_MOST and (more := _recv(sock, poller, timeout)):
        pieces.append(more)
        held += len(more)
    data = b"".join(pieces)[:_ERROR_MOST]
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return _dechunk(data)
    length = headers.get("Content-Length")
    return data[: int(length)] if length is not None and length.isdigit() else data


def _dechunk(data: bytes) -> bytes:
    r"""A chunked body's bytes (what of it arrived).

    Example:
        ```python
        assert _dechunk(b"3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n") == b"abcde"
        ```
    """
    out: list[bytes] = []
    at = 0
    while (line_end := data.find(b"\r\n", at)) >= 0:
        size_text = data[at:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            break
        if size == 0:
            break
        out.append(data[line_end + 2 : line_end + 2 + size])
        at = line_end + 2 + size + 2
    return b"".join(out)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _splice_body(
    sock: socket.socket,
    poller: select.poll,
    fd: int,
    offset: int,
    length: int,
    lock: threading.Lock,
    timeout: float,
) -> None:
    """Move ``length`` bytes from the socket to ``fd`` at ``offset``, through a pipe."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        pipe_size = 64 * 1024
        with contextlib.suppress(OSError):  # a smaller pipe (the system's limit) still works
            import fcntl  # here: not on Windows, where this module only says AVAILABLE False

            pipe_size = fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        source = sock.fileno()
        flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
        while length:
            try:
                n = os.splice(source, write_end, min(length, pipe_size), flags=flags)
            except BlockingIOError:
                _wait(poller, timeout)
                continue
            if n == 0:
                raise aiohttp.ServerDisconnectedError(
                    f"the answer's body broke off {length} bytes before its end"
                )
            with lock:
                moved = 0
                while moved < n:
                    try:
                        m = os.splice(read_end, fd, n - moved, offset_dst=offset + moved)
                    except OSError as exc:
                        if exc.errno in _UNSUPPORTED:
                            raise SpliceUnsupported(str(exc)) from exc
                        raise _FileFailed(exc) from exc
                    if m == 0:  # pragma: no cover - a pipe holding bytes always gives some
                        raise _FileFailed(OSError("splice moved nothing from a full pipe"))
                    moved += m
            offset += n
            length -= n
    finally:
        os.close(read_end)
        os.close(write_end)
