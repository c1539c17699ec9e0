"""A password typed before its prompt appears is not echoed (nor one typed at the prompt)."""

from __future__ import annotations

import os
import pty
import select
import sys
import termios
import time

import pytest

from provena_like.cli._entry import will_prompt_for_password

ENTRY = "import sys; from provena_like.cli._entry import main; sys.argv[0] = 'provena-like'; main()"


def test_which_commands_prompt() -> None:
    assert will_prompt_for_password(["admin", "create-user", "bob"])
    assert will_prompt_for_password(["--url", "http://x", "admin", "create-user", "bob"])
    assert not will_prompt_for_password(["admin", "create-user", "bob", "--password", "p"])
    assert not will_prompt_for_password(["admin", "create-user", "bob", "--password=p"])
    assert not will_prompt_for_password(["admin", "list-users"])


def _read(fd: int, until: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while until not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def _exit_code(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    return None


@pytest.mark.skipif(not hasattr(pty, "fork"), reason="needs a POSIX terminal")
def test_typeahead_password_is_not_echoed() -> None:
    env = {**os.environ, "COLUMNS": "200", "PROVENA_BASE_URL": "http://127.0.0.1:9"}
    args = [sys.executable, "-c", ENTRY, "admin", "create-user", "cli-typeahead"]
    pid, main = pty.fork()  # the child's controlling terminal is the pty, as in a shell
    if pid == 0:  # pragma: no cover - the child
        os.execve(sys.executable, args, env)
    code = None
    try:
        # Wait until the command has turned echo off (it does so before its imports), then
        # type the password before the prompt is shown, as an impatient user would.
        deadline = time.monotonic() + 120
        while termios.tcgetattr(main)[3] & termios.ECHO:
            assert time.monotonic() < deadline, "echo was never turned off"
            time.sleep(0.005)
        os.write(main, b"early-secret-1\n")
        # the prompt's trailing space comes from getpass, once input is hidden (and flushed)
        out = _read(main, b"Password: ", 120)
        assert b"Password: " in out, out
        os.write(main, b"tiny7\n")  # too short: refused after the confirmation
        out += _read(main, b"confirmation: ", 60)
        os.write(main, b"tiny7\n")
        out += _read(main, b"validation", 60)
        code = _exit_code(pid, 60)
    finally:
        if code is None:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(main)
    assert code == 2, out
    assert b"early-secret" not in out and b"tiny7" not in out, out
    assert b"password" in out.lower() and b"Traceback" not in out
