"""Server processes of tests: a free port, and waiting for a started server to answer."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

import httpx

__all__ = ["free_port", "wait_until_serving"]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(
    proc: subprocess.Popen[bytes], url: str, log: Path, *, timeout: float, what: str = "serve"
) -> None:
    """Wait until ``url`` answers 200; fail with the end of ``log`` if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(
                f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
