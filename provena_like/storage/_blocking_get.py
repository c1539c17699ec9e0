"""Ranged GETs read by worker threads over blocking sockets (``http.client``).

A big object's ranged download spends most of its event-loop time receiving bytes: aiohttp
hands every piece the socket gives to the loop, which passes it on to a worker thread to be
written. Here the thread that writes a range also receives it: :meth:`BlockingResponse.readinto`
reads straight into a reusable buffer (``recv_into``, no intermediate ``bytes``), and the
caller writes that buffer at its offset (``pwrite``); both release the GIL, so several ranges
move on several cores while the event loop only coordinates. Requests are signed on the
event loop (:func:`~provena_like.storage._sigv4.sign`, the same credentials as every other
request); only opening and reading happen in threads.

Connections are kept in a small pool per origin (:class:`BlockingConnections`) and reused
once a response was read to its end; a response closed early closes its connection.
:meth:`BlockingResponse.abort` shuts the socket down from any thread, so that a reader
blocked in ``recv`` returns at once (cancellation).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from urllib.parse import urlsplit

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["BlockingConnections", "BlockingResponse"]


class BlockingResponse:
    """One response being read by a worker thread: status, headers and the body.

    Attributes:
        status: The HTTP status.
        reason: The HTTP reason phrase.
        headers: The response headers (case-insensitive).
    """

    def __init__(
        self,
        pool: BlockingConnections,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
    ) -> None:
        self._pool = pool
        self._connection = connection
        self._response = response
        self._done = False
        self.status = response.status
        self.reason = response.reason
        self.headers = CIMultiDictProxy(CIMultiDict(response.getheaders()))

    def readinto(self, buffer: memoryview) -> int:
        """Read the next bytes of the body into ``buffer`` (blocking); 0 at its end."""
        return self._response.readinto(buffer)

    def read(self) -> bytes:
        """The rest of the body (an error response's; blocking)."""
        return self._response.read()

    @property
    def remaining(self) -> int | None:
        """Body bytes not read yet (``None``: the length is unknown)."""
        return self._response.length

    def abort(self) -> None:
        """Shut the connection's socket down: a thread blocked reading it returns. Any thread."""
        sock = self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Done with the response (blocking, but brief).

        The connection goes back to the pool if the body was read to its end, else it is
        closed.
        """
        if self._done:
            return
        self._done = True
        reusable = self._response.length == 0 and not self._response.will_close
        self._response.close()
        if reusable:
            self._pool.put(self._connection)
        else:
            self._connection.close()


class BlockingConnections:
    """A pool of ``http.client`` connections to one origin, shared by worker threads.

    Args:
        origin: ``scheme://host[:port]``.
        connect_timeout: Seconds to connect.
        read_timeout: Seconds a read may wait for bytes.
        keep: Idle connections kept at most.
    """

    def __init__(
        self, origin: str, *, connect_timeout: float, read_timeout: float, keep: int = 8
    ) -> None:
        parts = urlsplit(origin)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._keep = keep
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._context = ssl.create_default_context() if self._https else None

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._connect_timeout, context=self._context
            )
        else:
            connection = http.client.HTTPConnection(
                self._host, self._port, timeout=self._connect_timeout
            )
        connection.connect()
        assert connection.sock is not None
        connection.sock.settimeout(self._read_timeout)
        return connection

    def open(self, method: str, target: str, headers: dict[str, str]) -> BlockingResponse:
        """Send a request and read its status and headers. Blocking.

        ``target`` is the encoded path and query. A pooled connection the server closed
        meanwhile is replaced once.
        """
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is not None:
            try:
                return self._send(connection, method, target, headers)
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                connection.close()  # went stale in the pool: one fresh try
        return self._send(self._connect(), method, target, headers)

    def _send(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        target: str,
        headers: dict[str, str],
    ) -> BlockingResponse:
        try:
            # the Host header is among the signed ones: http.client adds no other
            connection.request(method, target, headers=headers)
            response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        return BlockingResponse(self, connection, response)

    def put(self, connection: http.client.HTTPConnection) -> None:
        """Give back a connection whose last response was read to its end."""
        with self._lock:
            if not self._closed and len(self._idle) < self._keep:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        """Close every idle connection; those in use close when their responses do."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
