"""Request body limits, enforced while the body streams in, and authentication before it.

:class:`BodyLimitMiddleware` (pure ASGI, nothing buffered) looks at each request before the
app reads a byte of its body:

1. Routes that need a bearer token refuse a request that carries a body without a valid
   token (401) *before* reading it, so an anonymous client can't make the server read, parse
   or hold a large body. (The account itself is checked later, by the route's dependency.)
2. A ``Content-Length`` above the route's limit is a 413 at once.
3. A body without a length (chunked) is counted as it arrives; the first chunk past the limit
   ends the request with a 413, so at most one chunk more than the limit is ever held.

Limits come from :class:`~provena_like.server.settings.ServerSettings` (``max_body_bytes`` for
every route, ``max_file_list_body_bytes`` for the routes that take lists of file paths).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provena_like.server.errors import ServiceError, error_response, unauthenticated
from provena_like.server.security import verified_claims

__all__ = ["BodyLimitMiddleware", "BodyPolicy", "BodyTooLarge", "ErrorRenderer", "body_policy"]

ErrorRenderer = Callable[[Scope, int, str, str, dict[str, str] | None], ASGIApp]
"""Renders a refusal: (scope, status, code, message, headers) → the response to send."""


def envelope(
    scope: Scope, status: int, code: str, message: str, headers: dict[str, str] | None
) -> ASGIApp:
    """The server's ``{"error": {...}}`` envelope (the default :data:`ErrorRenderer`)."""
    del scope
    return error_response(status, code, message, None, headers)


@dataclass(frozen=True)
class BodyPolicy:
    """How one request's body is admitted.

    Attributes:
        limit: the most bytes the body may have.
        bearer_required: a valid bearer token must come with any body.
    """

    limit: int
    bearer_required: bool


class BodyTooLarge(StarletteHTTPException):
    """The body grew past the route's limit while it was read (rendered as a 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"The request body is larger than this route accepts ({limit} bytes); send less "
            "per request.",
            headers={"Connection": "close"},
        )


# OAuth endpoints authenticate clients (or users) from the form itself
_PUBLIC = frozenset(
    {
        ("POST", "/auth/token"),
        ("POST", "/auth/revoke"),
        ("POST", "/auth/device_authorization"),
        ("POST", "/auth/device"),
    }
)
_FILE_LISTS = re.compile(
    r"^(?:/datastore/datasets/[^/]+/[^/]+/files(?:/remove)?"
    r"|/registry/sessions/[^/]+/[^/]+/files(?:/check-protected)?"
    r"|/registry/patches)/?$"
)


def body_policy(
    max_body_bytes: int, max_file_list_body_bytes: int
) -> Callable[[Scope], BodyPolicy]:
    """The policy of the reference server's routes.

    Args:
        max_body_bytes: the limit of every route but the two below.
        max_file_list_body_bytes: the limit of registering and removing files (up to 1,000
            paths of up to 1,024 bytes each) and of registering ALF files of a session or
            checking their protection (up to 5,000 paths with their hashes), and of
            committing a patch (up to 1,000 files with their locations).
    """

    def policy(scope: Scope) -> BodyPolicy:
        method: str = scope["method"]
        path: str = scope["path"]
        limit = max_body_bytes
        if method == "POST" and _FILE_LISTS.match(path):
            limit = max_file_list_body_bytes
        return BodyPolicy(limit=limit, bearer_required=(method, path.rstrip("/")) not in _PUBLIC)

    return policy


def _routed(scope: Scope) -> bool:
    """Whether a route takes this method at this path.

    If none does, the router answers 404/405 without reading the body.
    """
    app = scope.get("app")
    router = getattr(app, "router", None)
    if router is None:
        return True
    return any(route.matches(scope)[0] == Match.FULL for route in router.routes)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


async def _check_bearer(scope: Scope) -> ServiceError | None:
    """The 401 for a request without a valid bearer token, or None."""
    header = _header(scope, b"authorization")
    if header is None:
        return unauthenticated()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return unauthenticated("The Authorization header must be 'Bearer <token>'.")
    app = scope.get("app")
    verifier = getattr(getattr(app, "state", None), "authenticator", None)
    if verifier is None:  # not set up yet: the route's own dependency decides
        return None
    try:
        await verified_claims(scope, verifier, token.strip())
    except ServiceError as err:
        return err
    return None


class BodyLimitMiddleware:
    """Pure ASGI middleware that caps request bodies and authenticates before reading them.

    Args:
        app: the ASGI app.
        policy: the limit and authentication rule of a request (see :func:`body_policy`).
        render: how a refusal (401, 413) is answered; the error envelope by default (the
            transfer API answers under ``/v0.10/`` with its own error bodies).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: Callable[[Scope], BodyPolicy],
        render: ErrorRenderer = envelope,
    ) -> None:
        self.app = app
        self.policy = policy
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self.policy(scope)
        length_header = _header(scope, b"content-length")
        chunked = "chunked" in (_header(scope, b"transfer-encoding") or "").lower()
        length = int(length_header) if length_header and length_header.isdigit() else None
        if (length or chunked) and policy.bearer_required and _routed(scope):
            refused = await _check_bearer(scope)
            if refused is not None:
                headers = {**(refused.headers or {}), "Connection": "close"}
                await self.render(scope, refused.status, refused.code, refused.message, headers)(
                    scope, receive, send
                )
                return
        if length is not None and length > policy.limit:
            await self._too_large(scope, policy.limit)(scope, receive, send)
            return

        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > policy.limit:
                    raise BodyTooLarge(policy.limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
            await self._too_large(scope, policy.limit)(scope, receive, send)

    def _too_large(self, scope: Scope, limit: int) -> ASGIApp:
        err = BodyTooLarge(limit)
        return self.render(scope, 413, "payload_too_large", err.detail, {"Connection": "close"})
