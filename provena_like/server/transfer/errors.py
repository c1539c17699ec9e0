"""Globus "Type Zero" errors for everything answered under ``/v0.10/``.

The Globus Transfer API answers an error with ``{"code", "message", "request_id",
"resource"}`` (globus-sdk's ``GlobusAPIError`` recognises this shape by a string ``code`` and
a string ``message``). Under ``/v0.10/`` this server answers the same way, whatever failed:

- a :class:`TransferAPIError` raised by the transfer service itself, with a Globus code
  (``ClientError.NotFound``, ``EndpointPermissionDenied``, ``ExternalError.MkdirFailed.Exists``);
- the server's own errors met on the way (a missing or bad token is a 401
  ``AuthenticationFailed``, a refused request body a 400 ``ClientError.BadRequest``, ...):
  :func:`globus_code` maps each status (and the server's code) to a Globus code;
- a route or method the service doesn't have: a 501 ``NotImplemented`` naming it, so that a
  client using a part of the Globus API this subset lacks fails loudly.

``resource`` is the request path and ``request_id`` the id of
:class:`~provena_like.server.middleware.RequestIdMiddleware` (also sent as ``X-Request-ID``).
The rest of the server keeps its ``{"error": {...}}`` envelope: :func:`install_type_zero`
wraps the app's handlers and switches on the path, and :func:`render_refusal` does the same
for the refusals of the body-limit middleware (a body sent without a valid token, a body too
large).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Scope

from provena_like.server.body_limit import envelope
from provena_like.server.errors import ServiceError, collapse_group, unrepresentable_value
from provena_like.server.middleware import current_request_id

log = logging.getLogger(__name__)

__all__ = [
    "API_PREFIX",
    "ERROR_RESPONSES",
    "TransferAPIError",
    "TypeZeroBody",
    "bad_request",
    "from_service_error",
    "globus_code",
    "install_type_zero",
    "is_transfer_path",
    "not_found",
    "permission_denied",
    "render_refusal",
    "type_zero_body",
    "type_zero_response",
]

API_PREFIX = "/v0.10/"
"""Where the Globus-compatible transfer API is mounted (the root of the server + this)."""

_BY_STATUS = {
    400: "ClientError.BadRequest",
    401: "AuthenticationFailed",
    403: "PermissionDenied",
    404: "ClientError.NotFound",
    405: "NotImplemented",
    409: "ClientError.Conflict",
    412: "ClientError.PreconditionFailed",
    413: "ClientError.RequestTooLarge",
    415: "ClientError.BadRequest.UnsupportedMediaType",
    422: "ClientError.BadRequest",
    429: "ClientError.RequestLimitExceeded",
    500: "ServerError.InternalError",
    501: "NotImplemented",
    502: "ExternalError",
    503: "ServiceUnavailable",
}


class TypeZeroBody(BaseModel):
    """The body of every error under ``/v0.10/`` (for the OpenAPI document)."""

    code: str
    message: str
    request_id: str | None
    resource: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": TypeZeroBody} for status in (400, 401, 403, 404, 409, 413, 501, 502, 503)
}
"""The error responses of a transfer route, for ``APIRouter(responses=...)``."""


class TransferAPIError(Exception):
    """Raise from the transfer service to answer with a Type-Zero error.

    Args:
        status: HTTP status.
        code: the Globus code (``ClientError.NotFound``, ``EndpointPermissionDenied``, ...).
        message: what went wrong, for humans.

    Example:
        ```python
        err = TransferAPIError(404, "ClientError.NotFound", "No such file: /data/x.bin")
        assert err.status == 404
        ```
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(what: str) -> TransferAPIError:
    """404 ``ClientError.NotFound`` for ``what`` (a path, a collection, a task)."""
    return TransferAPIError(404, "ClientError.NotFound", f"{what} was not found.")


def permission_denied(message: str) -> TransferAPIError:
    """403 ``EndpointPermissionDenied``: the caller may not use the collection this way."""
    return TransferAPIError(403, "EndpointPermissionDenied", message)


def bad_request(message: str, *, detail: str = "") -> TransferAPIError:
    """400 ``ClientError.BadRequest`` (``ClientError.BadRequest.<detail>`` when given)."""
    code = f"ClientError.BadRequest.{detail}" if detail else "ClientError.BadRequest"
    return TransferAPIError(400, code, message)


def is_transfer_path(path: str) -> bool:
    """Whether ``path`` (a request path) belongs to the transfer API."""
    return path.startswith(API_PREFIX) or path == API_PREFIX.rstrip("/")


def globus_code(status: int, server_code: str | None = None) -> str:
    """The Globus code for an error of the rest of the server (status and its own code).

    Example:
        ```python
        assert globus_code(401) == "AuthenticationFailed"
        assert globus_code(409, "locked") == "ClientError.Conflict.Locked"
        ```
    """
    base = _BY_STATUS.get(status, "ServerError" if status >= 500 else "ClientError")
    if status == 409 and server_code and server_code != "conflict":
        words = server_code.replace("-", "_").split("_")
        return f"{base}.{''.join(w.capitalize() for w in words)}"
    return base


def from_service_error(err: ServiceError) -> TransferAPIError:
    """The Type-Zero form of an error of the rest of the server (the datastore's 409s).

    Example:
        ```python
        locked = ServiceError(409, "locked", "Dataset 10378.1/7 is locked.")
        assert from_service_error(locked).code == "ClientError.Conflict.Locked"
        ```
    """
    # Globus answers a request it can't accept with 400; it has no 422
    status = 400 if err.status == 422 else err.status
    return TransferAPIError(status, globus_code(err.status, err.code), err.message)


def type_zero_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The Type-Zero body ``{code, message, request_id, resource}`` for ``request``."""
    body = type_zero_body(request.url.path, status, code, message)
    return JSONResponse(body, status_code=status, headers=headers)


def type_zero_body(path: str, status: int, code: str, message: str) -> dict[str, Any]:
    """The Type-Zero body for an error of the request to ``path``, with the request id."""
    del status
    return {
        "code": code,
        "message": message,
        "request_id": current_request_id(),
        "resource": path,
    }


def render_refusal(
    scope: Scope, status: int, code: str, message: str, headers: dict[str, str] | None
) -> ASGIApp:
    """The body-limit middleware's refusals (401 before the body, 413) in either format.

    Under ``/v0.10/`` a Type-Zero body (``code`` mapped by :func:`globus_code`); elsewhere the
    server's envelope.
    """
    path: str = scope["path"]
    if is_transfer_path(path):
        body = type_zero_body(path, status, globus_code(status, code), message)
        return JSONResponse(body, status_code=status, headers=headers)
    return envelope(scope, status, code, message, headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts) + "."


def _type_zero(request: Request, exc: BaseException) -> Response | None:
    """The Type-Zero answer for ``exc``, or None when it isn't one of the expected errors."""
    if isinstance(exc, BaseExceptionGroup):
        exc = collapse_group(exc)
    if isinstance(exc, TransferAPIError):
        return type_zero_response(request, exc.status, exc.code, exc.message)
    if isinstance(exc, ServiceError):
        converted = from_service_error(exc)
        return type_zero_response(
            request, converted.status, converted.code, converted.message, exc.headers
        )
    if isinstance(exc, RequestValidationError):
        return type_zero_response(request, 400, "ClientError.BadRequest", _validation_message(exc))
    refusal = unrepresentable_value(exc)
    if refusal is not None:
        log.warning("request refused: %r", exc)
        return type_zero_response(request, 400, "ClientError.BadRequest", refusal)
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code in (404, 405):
            # no route matched: a part of the Globus API this service doesn't implement
            message = (
                f"{request.method} {request.url.path} is not implemented by this transfer "
                "service (a subset of the Globus Transfer API v0.10)."
            )
            return type_zero_response(request, 501, "NotImplemented", message)
        headers = dict(exc.headers) if exc.headers else None
        return type_zero_response(
            request, exc.status_code, globus_code(exc.status_code), str(exc.detail), headers
        )
    return None


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _wrap(original: Handler | None, *, unexpected: bool) -> Handler:
    async def handler(request: Request, exc: Exception) -> Response:
        if is_transfer_path(request.url.path):
            answer = _type_zero(request, exc)
            if answer is not None:
                return answer
            if unexpected:
                if original is not None:
                    await original(request, exc)  # logs it, like every other 500
                message = "The server failed; the request id helps find out why."
                headers = {"Connection": "close"}
                return type_zero_response(
                    request, 500, "ServerError.InternalError", message, headers
                )
        if original is None:
            raise exc
        return await original(request, exc)

    return handler


def install_type_zero(app: FastAPI) -> None:
    """Answer errors under ``/v0.10/`` as Type-Zero bodies; elsewhere as before.

    Call it after :func:`~provena_like.server.errors.install_error_handlers`: it wraps each
    handler installed there (and adds one for :class:`TransferAPIError`).
    """
    handlers: dict[Any, Handler] = app.exception_handlers  # type: ignore[assignment]
    for cls in (
        ServiceError,
        ExceptionGroup,
        RequestValidationError,
        StarletteHTTPException,
        405,  # a status handler, looked up before the class handlers
        OverflowError,
        RecursionError,
        DBAPIError,
        Exception,
    ):
        handlers[cls] = _wrap(handlers.get(cls), unexpected=cls in (DBAPIError, Exception))
    handlers[TransferAPIError] = _wrap(None, unexpected=False)
