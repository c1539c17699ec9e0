"""``BearerAuth``: sign requests with a token someone else obtained (one user of a web backend).

A web backend that calls Provena on behalf of its signed-in users has each user's token
already (from its own sign-in, or forwarded by the browser). It gives that token, or a
function that returns a current one, to :meth:`ProvenaClient.as_user
<provena_like.ProvenaClient.as_user>`, which signs that view's requests with a
:class:`BearerAuth`. Unlike :class:`~provena_like.auth.AuthManager` it never renews or stores
anything itself: renewing is the provider function's job.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator

import httpx
from pydantic import SecretStr

from provena_like._core.errors import UsageError

__all__ = ["BearerAuth", "TokenProvider"]

TokenProvider = Callable[[], Awaitable[str | SecretStr] | str | SecretStr]
"""A function (sync or async) returning the user's current access token."""


def _text(token: str | SecretStr) -> str:
    value = token.get_secret_value() if isinstance(token, SecretStr) else token
    if not isinstance(value, str) or not value:
        raise UsageError("an access token must be a non-empty string")
    return value


class BearerAuth(httpx.Auth):
    """Puts ``Authorization: Bearer <token>`` on every request.

    Args:
        token: the access token, or a provider called before each request (sync or
            async) that returns the current one (e.g. a session store that refreshes it).

    Raises:
        UsageError: an empty token (now, or from the provider at a request).

    Example:
        ```python
        auth = BearerAuth("eyJhbGciOi...")
        auth = BearerAuth(lambda: session["access_token"])  # refreshed elsewhere
        ```
    """

    requires_request_body = False
    requires_response_body = False

    def __init__(self, token: str | SecretStr | TokenProvider) -> None:
        self._provider: TokenProvider | None = None
        self._token: str | None = None
        if callable(token):
            self._provider = token
        else:
            self._token = _text(token)

    def __repr__(self) -> str:
        kind = "provider" if self._provider is not None else "token='**********'"
        return f"BearerAuth({kind})"

    async def _current(self) -> str:
        if self._provider is None:
            assert self._token is not None
            return self._token
        got = self._provider()
        if inspect.isawaitable(got):
            got = await got
        return _text(got)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Sign with a static token (a provider needs the async client).

        Raises:
            UsageError: the token comes from a provider.
        """
        if self._provider is not None:
            raise UsageError("a BearerAuth with a token provider works with httpx.AsyncClient")
        assert self._token is not None
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Sign the request with the current token and send it once."""
        request.headers["Authorization"] = f"Bearer {await self._current()}"
        yield request
