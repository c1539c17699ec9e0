"""The console script's entry: hides type-ahead before the heavy imports, then runs the CLI.

A password typed before its prompt appears is echoed by the terminal (the prompt's hidden
input starts only when the prompt does). For a command that will prompt for a password,
echo is turned off here, first thing, and restored on exit; the prompt itself (getpass)
then discards what was typed ahead, so it is neither shown nor used.

It also keeps httpx's own command line (``httpx._main``) from loading: ``import httpx``
imports it whenever click, rich and pygments are installed (they are here, for typer and
rich), which pulls in click, pygments and half of rich for a tool this program never runs;
a ``None`` in :data:`sys.modules` makes that import fail, and httpx then falls back to its
stub ``httpx.main`` (see :data:`_NOT_LOADED`). And the wire models of a client command
build their validators on first use (:mod:`provena_like._core.model_builds`). Only in this
process: a program that imports the SDK keeps httpx and its models as they are.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

__all__ = ["main", "will_prompt_for_password"]

_NOT_LOADED = ("httpx._main",)
"""Modules the console script never uses, kept from loading (``None`` in :data:`sys.modules`
makes their import raise :class:`ImportError`, which ``httpx/__init__`` catches): httpx's CLI
costs ~60 modules (click, pygments, rich.syntax, ...) of a client command's start-up."""

_SERVER_COMMANDS = ("serve", "demo")
"""Commands that run the server in this process: its models build at import, as always (see
:mod:`provena_like._core.model_builds`); every other command's build on first use."""

_PASSWORD_PROMPTS = {("admin", "create-user"): "--password"}
"""Commands whose password option prompts when left out → that option."""


def will_prompt_for_password(args: Sequence[str]) -> bool:
    """Whether ``args`` run a command that will prompt for a password."""
    for command, option in _PASSWORD_PROMPTS.items():
        n = len(command)
        runs = any(tuple(args[i : i + n]) == command for i in range(len(args)))
        given = any(a == option or a.startswith(option + "=") for a in args)
        if runs and not given:
            return True
    return False


def _hide_typeahead() -> Callable[[], None]:
    """Turn terminal echo off now; return how to turn it back on."""
    try:
        import termios
    except ImportError:  # pragma: no cover - not a POSIX terminal
        return lambda: None
    if not sys.stdin.isatty():
        return lambda: None
    fd = sys.stdin.fileno()
    before = termios.tcgetattr(fd)
    quiet = list(before)
    quiet[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    return lambda: termios.tcsetattr(fd, termios.TCSANOW, before)


def main() -> None:
    """Run ``provena-like``."""
    restore = _hide_typeahead() if will_prompt_for_password(sys.argv[1:]) else (lambda: None)
    for name in _NOT_LOADED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    if sys.argv[1:2] != [] and sys.argv[1] not in _SERVER_COMMANDS:
        from provena_like._core.model_builds import defer_model_builds

        defer_model_builds()
    try:
        from provena_like.cli._startup import console_script_starts, imports_without_gc

        console_script_starts()
        with imports_without_gc():
            from provena_like.cli.main import main as run
        run()
    finally:
        restore()
