"""Processes of tests: a free port, ``provena-like serve`` in a process of its own, waiting for
a started server to answer, whether a process is alive, and setup commands."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest

__all__ = ["alive", "free_port", "run_setup", "serve_process", "wait_until_serving"]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not; Linux ``/proc``)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"}


@contextlib.contextmanager
def serve_process(
    args: Sequence[str], env: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``provena-like serve ARGS`` (stdout piped, stderr to ``log``); killed on the way out."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from provena_like.cli.main import main; main()", "serve",
             *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=out, env=dict(env),
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()


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


def run_setup(
    command: Sequence[str],
    *,
    what: str,
    needs: str,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run a setup ``command`` (an install); fail the test, saying what it ``needs``, unless
    it exits 0 within ``timeout`` seconds (with the end of its output)."""
    try:
        done = subprocess.run(
            list(command),
            cwd=cwd,
            env=None if env is None else dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} took more than {timeout:.0f} s; it needs {needs}: is it reachable?")
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        pytest.fail(f"{what} failed; it needs {needs}:\n{tail}")
