"""Run the reference server in a background thread with its own event loop.

Used by :class:`~provena_like.testing.LocalStack`; tests can reach into the running app
(for example to inject a fault) with :meth:`ServerThread.call`, which runs a coroutine on the
server's own loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

T = TypeVar("T")

log = logging.getLogger(__name__)


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bind a listening TCP socket (port 0 → a free port), to learn the URL before serving."""
    # IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say TCP (else +40 ms a reply)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class ServerThread:
    """A uvicorn server for ``app`` on a free loopback port, in a daemon thread.

    Example:
        ```python
        srv = ServerThread(create_app(settings))
        srv.start()
        print(srv.url)
        srv.stop()
        ```
    """

    def __init__(
        self,
        app: FastAPI,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
    ) -> None:
        self.app = app
        self._sock = sock if sock is not None else bind_socket(host, port)
        self.host, self.port = self._sock.getsockname()[:2]
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self._server = uvicorn.Server(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def settings(self) -> Any:
        """The app's settings (``app.state.settings``)."""
        return self.app.state.settings

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._server.serve(sockets=[self._sock]))
        except BaseException as err:  # surfaced by start()
            self._error = err
        finally:
            loop.close()

    def start(self, timeout: float = 30.0) -> None:
        """Start serving and wait until the app's lifespan has completed start-up."""
        self._thread = threading.Thread(target=self._run, name="provena-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the reference server failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the reference server did not start in time")
            time.sleep(0.01)

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the server to exit and wait for the thread (runs the lifespan shutdown)."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
            self._thread = None
        self._sock.close()

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        """Run ``fn()`` on the server's loop and return its result (blocking)."""
        if self._loop is None:
            raise RuntimeError("the server is not running")

        async def runner() -> T:
            return await fn()

        fut: Future[T] = asyncio.run_coroutine_threadsafe(runner(), self._loop)
        return fut.result(timeout)
