"""Exit codes and the one place that turns an exception into a message and an exit code.

Every command ends through :func:`describe`: an SDK error, a validation error, a usage
error or an interrupt becomes a :class:`CliFailure` (exit code, kind, message), printed as
one line on stderr, or as a JSON error object on stdout under ``--json``. Expected errors
never show a traceback; a validation error never echoes the value it refused (it may be a
password).

This module imports nothing heavy: the SDK's error classes are imported only when an error
has to be described.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator, Mapping
from enum import IntEnum
from typing import Any

__all__ = ["EXIT_CODES_HELP", "CliFailure", "ExitCode", "describe", "validation_message"]


class ExitCode(IntEnum):
    """The exit status of every ``provena-like`` command."""

    OK = 0
    """Everything was done."""
    FAILED = 1
    """Some items failed (a file, a check), or the server refused the change (conflict,
    locked, released, rate limited, server error)."""
    USAGE = 2
    """Wrong usage: a bad option or argument, an invalid record or configuration."""
    AUTH = 3
    """Not signed in, the sign-in expired or was refused: run ``provena-like login``."""
    NOT_FOUND = 4
    """No such item, or you may not see or change it."""
    UNREACHABLE = 5
    """The server could not be reached (down, wrong URL, network)."""
    TIMED_OUT = 6
    """A waited-for transfer task was still running when the wait ended: wait again."""
    INACTIVE = 7
    """A waited-for transfer task is paused (INACTIVE): not done, not failed."""
    STUCK = 8
    """A waited-for transfer task is active but has kept retrying errors (faults)."""
    INTERRUPTED = 130
    """Interrupted (Ctrl-C)."""


EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 some items failed (or the server refused the change), "
    "2 usage (bad option, invalid record), 3 not signed in / sign-in refused, "
    "4 not found or no permission, 5 server unreachable (down or wrong URL), "
    "6/7/8 a waited-for transfer task timed out / is paused / is stuck, 130 interrupted."
)

_KIND_BY_CODE: Mapping[ExitCode, str] = {
    ExitCode.FAILED: "failed",
    ExitCode.USAGE: "usage",
    ExitCode.AUTH: "auth",
    ExitCode.NOT_FOUND: "not_found",
    ExitCode.UNREACHABLE: "unreachable",
    ExitCode.TIMED_OUT: "timed_out",
    ExitCode.INACTIVE: "inactive",
    ExitCode.STUCK: "stuck",
    ExitCode.INTERRUPTED: "interrupted",
}


class CliFailure(Exception):
    """An expected failure of a command: its exit code, a short kind and a message.

    Commands raise it for failures they detect themselves (a port in use, a refused
    confirmation); :func:`describe` builds one for every other error.

    Args:
        code: the exit code.
        message: one or two sentences for a person: what failed and what to do.
        kind: machine-readable kind for ``--json`` (defaults from ``code``).
        extra: more fields for the JSON error object (``status``, ``request_id``, ...).
    """

    def __init__(
        self, code: ExitCode, message: str, /, *, kind: str | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.kind = kind or _KIND_BY_CODE.get(code, "error")
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def as_json(self) -> dict[str, Any]:
        """The JSON error object printed under ``--json``."""
        return {
            "error": {
                "kind": self.kind,
                "exit_code": int(self.code),
                "message": self.message,
                **self.extra,
            }
        }


def validation_message(errors: list[Any]) -> str:
    """Pydantic's errors as ``field: problem; ...``, without the refused values."""
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e.get("loc", ())) or "value"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


def _leaf(exc: BaseException) -> BaseException:
    """The single error inside (nested) exception groups, else ``exc`` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every error behind it (causes, contexts, members of groups)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        cur = todo.pop(0)
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        todo += [e for e in (cur.__cause__, cur.__context__) if e is not None]
        if isinstance(cur, BaseExceptionGroup):
            todo += list(cur.exceptions)


def _connection_message(exc: BaseException) -> str:
    """Which URL could not be reached, and how (refused, unknown host, timeout)."""
    url = None
    how = str(exc) or type(exc).__name__
    for cause in _chain(exc):
        request = getattr(cause, "_request", None)
        if url is None and request is not None:
            url = f"{request.url.scheme}://{request.url.netloc.decode()}"
        if isinstance(cause, ConnectionRefusedError):
            how = "connection refused: is the server running, and on this port?"
        elif isinstance(cause, socket.gaierror):
            how = "unknown host name: check the URL"
        elif isinstance(cause, TimeoutError) or "timeout" in type(cause).__name__.lower():
            how = "no answer in time"
    where = f" at {url}" if url else ""
    return f"cannot reach the server{where} ({how}); check --url or PROVENA_BASE_URL"


def describe(exc: BaseException) -> CliFailure | None:
    """The failure an exception stands for, or ``None`` for an unexpected error (a bug).

    Args:
        exc: what a command raised.

    Returns:
        The exit code, kind and message to report; ``None`` when the error is not one a
        user can act on (its traceback should be shown).
    """
    exc = _leaf(exc)
    if isinstance(exc, CliFailure):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return CliFailure(ExitCode.INTERRUPTED, "interrupted")
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return CliFailure(
            ExitCode.USAGE,
            f"invalid {exc.title}: {validation_message(exc.errors(include_input=False))}",
            kind="invalid",
        )
    from provena_like._core import errors as e

    if isinstance(exc, e.APIConnectionError):
        return CliFailure(ExitCode.UNREACHABLE, _connection_message(exc))
    if isinstance(exc, e.APIStatusError):
        return _status_failure(exc, e)
    if isinstance(exc, e.AuthError):
        hint = (
            ""
            if "login" in str(exc) or isinstance(exc, e.InvalidClient)
            else " (run provena-like login)"
        )
        return CliFailure(ExitCode.AUTH, f"authentication failed: {exc}{hint}", error=exc.error)
    if isinstance(exc, e.UsageError):
        return CliFailure(ExitCode.USAGE, str(exc))
    if isinstance(exc, e.ProvenaError):
        return CliFailure(ExitCode.FAILED, str(exc), kind=type(exc).__name__)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOENT, errno.EACCES, errno.EISDIR):
        return CliFailure(ExitCode.USAGE, f"{exc.strerror}: {exc.filename}")
    return None


def _status_failure(exc: Any, e: Any) -> CliFailure:
    """Exit code and message for an error status from the server."""
    status: int = exc.status_code
    extra = {"status": status, "code": exc.code, "request_id": exc.request_id}
    if exc.code is None and status == 404:
        # Not one of our JSON errors: the URL leads to some other web server.
        return CliFailure(
            ExitCode.UNREACHABLE,
            f"{status} from a server that is not provena_like ({exc}); check --url or "
            "PROVENA_BASE_URL",
            kind="wrong_url",
            **extra,
        )
    text = f"{status} {exc.code or ''}: {exc}".replace(" :", ":")
    if isinstance(exc, e.Unauthorized):
        return CliFailure(ExitCode.AUTH, f"{text} (run provena-like login)", **extra)
    if isinstance(exc, e.NotFound | e.Forbidden):
        return CliFailure(ExitCode.NOT_FOUND, text, **extra)
    if isinstance(exc, e.BadRequest | e.Unprocessable):
        return CliFailure(ExitCode.USAGE, text, kind="invalid", details=exc.details, **extra)
    if exc.code and exc.code.startswith("ExternalError."):
        # The transfer service was reached; the storage behind it refused (Globus: 502).
        if exc.code.endswith(".NotDirectory"):
            return CliFailure(ExitCode.USAGE, text, kind="not_a_directory", **extra)
        return CliFailure(ExitCode.FAILED, text, kind=exc.code, **extra)
    if status in (502, 503, 504):
        return CliFailure(ExitCode.UNREACHABLE, text, **extra)
    return CliFailure(ExitCode.FAILED, text, kind=exc.code or "refused", **extra)
