"""Helpers for tests that run ``provena-like`` as a real process."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

import anyio
import httpx
from anyio.abc import ByteReceiveStream

from provena_like.testing.device_approval import approve_device_code
from provena_like.testing.localstack import LocalStack
from tests.support.tls import SHARED_TLS


async def approve_cli_login(output: ByteReceiveStream, stack: LocalStack) -> bytes:
    """Read ``provena-like login``'s prompt from ``output``, approve it as the stack's user.

    Returns:
        What was read (the prompt).
    """
    seen = b""
    with anyio.fail_after(120):
        while not re.search(rb"user_code=[A-Z0-9-]+\s", seen):
            seen += await output.receive()
    link = re.search(rb"(http://\S+user_code=[A-Z0-9-]+)", seen)
    assert link is not None, seen
    async with httpx.AsyncClient(verify=SHARED_TLS) as browser:
        await approve_device_code(
            browser, link.group(1).decode(), stack.user.username, stack.user.password
        )
    return seen


def cli_command(*args: str) -> list[str]:
    """The command line of ``provena-like ARGS`` (this interpreter, this checkout)."""
    return [sys.executable, "-m", "provena_like.cli.main", *args]


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a ``provena-like`` process, plus ``env``."""
    return {**os.environ, "COLUMNS": "200", **(env or {})}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``provena-like ARGS`` as a real process (its own umask, signals and sys.exit)."""
    return subprocess.run(
        cli_command(*args),
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def on_a_terminal(args: list[str], env: dict[str, str], answer: bytes) -> tuple[int, str]:
    """Run the command with a terminal as stdin, ``answer`` typed; exit code and stderr."""
    main, child = pty.openpty()
    try:
        os.write(main, answer)
        done = subprocess.run(
            cli_command(*args),
            stdin=child,
            capture_output=True,
            env={**os.environ, **env},
            timeout=300,
            check=False,
        )
    finally:
        os.close(main)
        os.close(child)
    return done.returncode, done.stderr.decode()
