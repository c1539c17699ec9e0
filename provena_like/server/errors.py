"""Server-side errors and the handlers that render them as ``{"error": {...}}`` bodies.

Work that runs concurrently goes through :func:`task_group`: when its tasks fail, it raises
the error they stand for (an :class:`ObjectStoreError <provena_like.server.datastore.storage.
ObjectStoreError>` stays one, and keeps its 502) instead of anyio's ``ExceptionGroup``. A group
that escapes anyway is unwrapped the same way by the handlers, so an expected error is never
answered with a 500.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import TaskGroup
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from provena_like.server.db.nul_text import UnstorableText
from provena_like.server.middleware import current_request_id

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


class ServiceError(Exception):
    """Raise from a route or service to answer with an error envelope.

    Args:
        status: HTTP status.
        code: stable machine-readable code (``locked``, ``stale_revision``, ...).
        message: what went wrong and what to do, for humans.
        details: structured details (e.g. the offending fields).
        headers: extra response headers (``WWW-Authenticate``, ``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


_REALM = 'Bearer realm="provena-like"'


def unauthenticated(message: str = "Authentication required: send a Bearer token.") -> ServiceError:
    """401 with a ``WWW-Authenticate`` challenge."""
    return ServiceError(401, "unauthenticated", message, headers={"WWW-Authenticate": _REALM})


def invalid_token(description: str) -> ServiceError:
    """401 whose challenge says ``invalid_token`` and why (RFC 6750 §3)."""
    quoted = description.replace("\\", "\\\\").replace('"', "'")
    return ServiceError(
        401,
        "unauthenticated",
        description,
        headers={
            "WWW-Authenticate": f'{_REALM}, error="invalid_token", error_description="{quoted}"'
        },
    )


def forbidden(message: str) -> ServiceError:
    """403: authenticated, but the role is missing."""
    return ServiceError(403, "forbidden", message)


def not_found(what: str) -> ServiceError:
    """404 for a named thing."""
    return ServiceError(404, "not_found", f"{what} was not found.")


def leaf_errors(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    """The exceptions of a (possibly nested) exception group, depth first, in order."""
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out.extend(leaf_errors(exc))
        else:
            out.append(exc)
    return out


def collapse_group(group: BaseExceptionGroup[Any]) -> BaseException:
    """The one error an exception group stands for, or the group itself.

    One leaf is that leaf. Several leaves collapse to the first when they are all
    :class:`ServiceError` (concurrent tasks that met the same failure, e.g. an unreachable
    object store) or all of the first one's type; any other mix stays a group (a bug must
    not hide behind an expected error).

    Example:
        ```python
        err = ServiceError(502, "object_store_error", "down")
        assert collapse_group(ExceptionGroup("tasks", [err])) is err
        ```
    """
    leaves = leaf_errors(group)
    if not leaves:
        return group
    first = leaves[0]
    if len(leaves) == 1:
        return first
    if all(isinstance(e, ServiceError) for e in leaves) or all(
        type(e) is type(first) for e in leaves
    ):
        for other in leaves[1:]:
            log.debug("a concurrent task failed too: %r", other)
        return first
    return group


@asynccontextmanager
async def task_group() -> AsyncIterator[TaskGroup]:
    """An anyio task group that raises its tasks' error itself, not an ``ExceptionGroup``.

    See :func:`collapse_group` for which error that is; a mix of unrelated errors is raised
    as the group.

    Example:
        ```python
        async with task_group() as group:
            for key in keys:
                group.start_soon(head_one, key)
        ```
    """
    try:
        async with anyio.create_task_group() as group:
            yield group
    except BaseExceptionGroup as failed:
        error = collapse_group(failed)
        if error is failed:
            raise
        raise error from error.__cause__  # keeps its own cause (e.g. the botocore error)


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Render the common error envelope with the current request id."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": details,
            "request_id": current_request_id(),
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def field_name(loc: Sequence[str | int]) -> str:
    """The ``field`` of a validation error at ``loc``: the one rule every service follows.

    A value in the JSON body is named from the body's root (``record.email``,
    ``groups.staff``, ``paths.0``); any other value by where it was sent and its name
    (``query.cursor``, ``path.path``, ``header.If-Match``). The body itself, missing or not
    JSON, is ``body``.

    Example:
        ```python
        assert field_name(("body", "record", "email")) == "record.email"
        assert field_name(("query", "page_size")) == "query.page_size"
        ```
    """
    parts = [str(p) for p in loc]
    if parts[:1] == ["body"] and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)


def field_errors(
    errors: Iterable[Mapping[str, Any]], *, within: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The ``details`` of a validation error from pydantic's (or FastAPI's) error list.

    Args:
        errors: ``ValidationError.errors()`` or ``RequestValidationError.errors()``.
        within: where the validated value sits, for a value validated on its own
            (``("record",)`` for an item's record); FastAPI's errors carry their location.

    Returns:
        One ``{"field", "message", "type"}`` per error, ``field`` by :func:`field_name`.
    """
    return [
        {
            "field": field_name([*within, *err.get("loc", ())]),
            "message": err.get("msg", ""),
            "type": err.get("type"),
        }
        for err in errors
    ]


def validation_error(
    details: list[dict[str, Any]], *, what: str = "request", message: str | None = None
) -> ServiceError:
    """The 422 ``validation_error`` for ``details``, as every service answers it.

    Each detail is ``{"field", "message", "type"}`` (more keys allowed), ``field`` named by
    the rule of :func:`field_name`.

    Args:
        details: the problems, at least one.
        what: what was invalid, for the default message ("Invalid dataset record: check
            record.name.").
        message: a message of its own instead of the default.
    """
    if message is None:
        fields = ", ".join(str(d["field"]) for d in details[:5])
        more = f" and {len(details) - 5} more" if len(details) > 5 else ""
        message = f"Invalid {what}: check {fields}{more}."
    return ServiceError(422, "validation_error", message, details=details)


#: PostgreSQL's SQLSTATEs for text it cannot store: a NUL character in a text value
#: (character_not_in_repertoire) or ``\u0000`` in JSON (untranslatable_character).
#: SQLite stores both.
_UNREPRESENTABLE_TEXT = frozenset({"22021", "22P05"})


def unrepresentable_text(exc: BaseException) -> bool:
    """Whether a text value of the request can't be stored: it holds a NUL character.

    Refused before the database by :mod:`provena_like.server.db.nul_text` (on every
    database), or by PostgreSQL itself.
    """
    if isinstance(exc, UnstorableText):
        return True
    return isinstance(exc, DBAPIError) and (
        getattr(exc.orig, "sqlstate", None) in _UNREPRESENTABLE_TEXT
    )


#: The message of the 400 ``out_of_range``.
OUT_OF_RANGE_MESSAGE = "A value in the request is out of range or nested too deeply."
#: The message of the 400 ``unrepresentable_text``.
UNREPRESENTABLE_TEXT_MESSAGE = (
    "A text value in the request holds a NUL character, which can't be stored."
)


def unrepresentable_value(exc: BaseException) -> str | None:
    """The message of the 400 for a value of the request that can't be represented, or None.

    A safety net behind the checks of each route: an integer past 64 bits or a time past
    year 9999 in UTC (:class:`OverflowError`), nesting too deep (:class:`RecursionError`),
    text PostgreSQL can't store (a NUL character).
    """
    if isinstance(exc, OverflowError | RecursionError):
        return OUT_OF_RANGE_MESSAGE
    if unrepresentable_text(exc):
        return UNREPRESENTABLE_TEXT_MESSAGE
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, expected or not, answer with the envelope."""

    async def on_service_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return await on_service_error(_request, validation_error(field_errors(exc.errors())))

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _CODES.get(exc.status_code, "error")
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, str(exc.detail), None, headers)

    async def on_out_of_range(_request: Request, exc: Exception) -> JSONResponse:
        # A safety net behind the checks of each route: a value of the request that Python or
        # the database can't represent (an integer past 64 bits, a time past year 9999 in
        # UTC) or that is nested too deeply is the caller's error, not the server's.
        log.warning("request refused: %r", exc, exc_info=exc)
        return error_response(400, "out_of_range", OUT_OF_RANGE_MESSAGE)

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        if not unrepresentable_text(exc):
            return await on_unexpected(request, exc)
        # The transaction was rolled back; nothing of the request was written.
        log.warning("request refused: %r", exc)
        return error_response(400, "unrepresentable_text", UNREPRESENTABLE_TEXT_MESSAGE)

    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        message = "The server failed; the request id helps find out why."
        # Starlette re-raises after this response and uvicorn then closes the connection:
        # say so, or a client reuses the dying connection for its next request
        return error_response(500, "internal", message, headers={"Connection": "close"})

    async def on_group(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BaseExceptionGroup)
        error = collapse_group(exc)
        if isinstance(error, ServiceError):
            return await on_service_error(request, error)
        if isinstance(error, RequestValidationError):
            return await on_validation(request, error)
        if isinstance(error, StarletteHTTPException):
            return await on_http(request, error)
        if isinstance(error, Exception) and unrepresentable_text(error):
            return await on_database_error(request, error)
        raise exc  # unexpected: the 500 handler logs it and answers

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(ExceptionGroup, on_group)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(OverflowError, on_out_of_range)
    app.add_exception_handler(RecursionError, on_out_of_range)
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(UnstorableText, on_database_error)
    app.add_exception_handler(Exception, on_unexpected)
