"""Run the reference server as several worker processes sharing one listening socket.

What ``provena-like serve --workers N`` runs, and what tests use to check that the server
works across processes. Each worker is a process of its own (started with ``spawn``, so it
inherits no threads or open connections of the parent) running uvicorn on a duplicate of the
parent's bound socket; the kernel hands each new connection to one of them. Everything the
workers share lives in the database and the data dir (see the guide "Running the server").
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import queue
import socket
import time
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provena_like.server.settings import ServerSettings

__all__ = ["ServerWorkers"]

log = logging.getLogger(__name__)


def _worker(settings: ServerSettings, sock: socket.socket, ready: Any, parent: int) -> None:
    """The body of one worker process: serve ``sock`` until SIGINT, SIGTERM or orphaned.

    A worker whose parent died (killed with SIGKILL, say) stops too rather than keep the
    port: it checks every second that ``parent`` is still its parent.
    """
    import uvicorn

    from provena_like.server.app import create_app

    config = uvicorn.Config(
        create_app(settings), log_level="warning", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            ready.put(os.getpid())
        while not task.done():
            if os.getppid() != parent:
                server.should_exit = True
            await asyncio.wait({task}, timeout=1.0)
        await task

    asyncio.run(serve())


class ServerWorkers:
    """``workers`` server processes for ``settings`` on one socket (a free loopback port).

    Args:
        settings: The server's settings (every worker gets the same; they share its data dir
            and database).
        workers: How many processes (at least 1).
        sock: A bound socket to serve; a new one on a free loopback port when ``None``.

    Example:
        ```python
        srv = ServerWorkers(settings, workers=2)
        srv.start()
        print(srv.url, srv.pids)
        srv.stop()
        ```
    """

    def __init__(
        self,
        settings: ServerSettings,
        *,
        workers: int = 2,
        sock: socket.socket | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        from provena_like.testing.server_thread import bind_socket

        self.settings = settings
        self.workers = workers
        self._sock = sock if sock is not None else bind_socket()
        self.host, self.port = self._sock.getsockname()[:2]
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[BaseProcess] = []
        self.pids: list[int] = []

    @property
    def url(self) -> str:
        """The base URL, ``http://HOST:PORT``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        """Start the workers and wait until each has completed its start-up.

        Raises:
            RuntimeError: a worker exited or did not start within ``timeout`` seconds
                (the others are stopped).
        """
        self._sock.listen(2048)
        ready = self._context.Queue()
        for number in range(self.workers):
            process = self._context.Process(
                target=_worker,
                args=(self.settings, self._sock, ready, os.getpid()),
                name=f"provena-worker-{number}",
                daemon=True,
            )
            process.start()
            self._processes.append(process)
        deadline = time.monotonic() + timeout
        while len(self.pids) < self.workers:
            try:
                self.pids.append(ready.get(timeout=0.1))
            except queue.Empty:
                dead = [p for p in self._processes if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    self.stop()
                    why = f"exited with {dead[0].exitcode}" if dead else "did not start in time"
                    raise RuntimeError(f"a server worker {why}") from None

    def stop(self, timeout: float = 15.0) -> None:
        """Ask every worker to exit (SIGTERM: uvicorn's graceful shutdown) and wait."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in self._processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("server worker %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join(timeout)
        self._processes = []
        self.pids = []
        self._sock.close()
