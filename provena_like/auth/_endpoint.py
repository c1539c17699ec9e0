"""Calls to the OAuth endpoints (token, device authorization, revocation).

Private to :mod:`provena_like.auth`. Requests go out with a no-op auth so that a pooled client
whose default auth is the ``AuthManager`` itself never recurses. Nothing here logs a token, a
secret or a header.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote_plus

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from provena_like._core.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthError,
    InvalidClient,
    ResponseValidationError,
)
from provena_like._core.http import status_error
from provena_like.models.auth import OAuthError, TokenResponse

log = logging.getLogger(__name__)

SERVICE = "auth"
_E = TypeVar("_E", bound=AuthError)
_M = TypeVar("_M", bound=BaseModel)
_NO_AUTH = httpx.Auth()  # overrides a client-level auth: the token calls sign themselves


class ClientAuth:
    """How a client identifies itself: a public ``client_id``, or a secret (basic or post)."""

    def __init__(
        self,
        client_id: str,
        client_secret: SecretStr | None = None,
        method: str = "client_secret_basic",
    ) -> None:
        if method not in ("client_secret_basic", "client_secret_post"):
            raise ValueError(f"unsupported client authentication method {method!r}")
        self.client_id = client_id
        self.client_secret = client_secret
        self.method = method

    def __repr__(self) -> str:
        secret = "'**********'" if self.client_secret else "None"
        return f"ClientAuth(client_id={self.client_id!r}, client_secret={secret})"

    def apply(self, data: dict[str, str]) -> dict[str, str]:
        """Add the credentials; returns the headers to send (Basic), if any."""
        if self.client_secret is None:
            data["client_id"] = self.client_id
            return {}
        secret = self.client_secret.get_secret_value()
        if self.method == "client_secret_post":
            data["client_id"] = self.client_id
            data["client_secret"] = secret
            return {}
        # RFC 6749 §2.3.1: form-urlencode both parts, then base64.
        raw = f"{quote_plus(self.client_id)}:{quote_plus(secret)}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def _send(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send one request to the auth service, mapping transport failures to the SDK's errors."""
    try:
        response = await http.request(method, url, auth=_NO_AUTH, **kwargs)
    except httpx.TimeoutException as err:
        raise APITimeoutError(
            f"the auth service did not answer in time ({url})", service=SERVICE
        ) from err
    except httpx.TransportError as err:
        message = f"the auth service could not be reached ({url}): {type(err).__name__}"
        raise APIConnectionError(message, service=SERVICE) from err
    log.debug("%s %s -> %s", method, url, response.status_code)
    return response


async def post_form(
    http: httpx.AsyncClient,
    url: str,
    data: Mapping[str, str],
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """POST a form, mapping transport failures to the SDK's errors."""
    headers = {"Accept": "application/json", **(headers or {})}
    return await _send(http, "POST", url, data=dict(data), headers=headers)


async def get_json(http: httpx.AsyncClient, url: str) -> Any:
    """GET a JSON document (discovery), mapping failures to the SDK's errors."""
    response = await _send(http, "GET", url, headers={"Accept": "application/json"})
    if response.status_code >= 400:
        raise status_error(response, SERVICE, method="GET", url=url)
    try:
        return response.json()
    except ValueError as err:
        raise ResponseValidationError(f"{url} did not answer with JSON", service=SERVICE) from err


def oauth_error(response: httpx.Response) -> OAuthError | None:
    """The RFC 6749 §5.2 error in a 4xx response, or ``None`` if the body isn't one."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        return OAuthError.model_validate(response.json())
    except (ValueError, ValidationError):
        return None


def parse_oauth_response(
    response: httpx.Response, model: type[_M], unexpected: str
) -> _M | OAuthError:
    """A successful response as ``model``, or the OAuth error; anything else raises.

    Args:
        response: the answer of an OAuth endpoint (token, device authorization).
        model: what a 2xx body must be.
        unexpected: the message when it isn't (the body may hold secrets: it is not echoed).

    Raises:
        APIStatusError: a non-OAuth error status (5xx, a proxy's 404, ...).
        ResponseValidationError: a 2xx body that is not a ``model``.
    """
    if response.status_code >= 400:
        error = oauth_error(response)
        if error is not None:
            return error
        raise status_error(response, SERVICE, method="POST", url=str(response.request.url))
    try:
        return model.model_validate(response.json())
    except (ValueError, ValidationError):
        raise ResponseValidationError(
            unexpected, service=SERVICE, request_id=response.headers.get("x-request-id")
        ) from None


def parse_token_response(response: httpx.Response) -> TokenResponse | OAuthError:
    """A successful token response, or the OAuth error; anything else raises.

    Raises:
        APIStatusError: a non-OAuth error status (5xx, a proxy's 404, ...).
        ResponseValidationError: a 2xx body that is not a token response.
    """
    return parse_oauth_response(
        response,
        TokenResponse,
        "the token endpoint answered with a body that is not a token response",
    )


def describe(error: OAuthError) -> str:
    """``invalid_grant (The refresh token is invalid...)`` for messages."""
    if error.error_description:
        return f"{error.error} ({error.error_description})"
    return error.error


def oauth_failure(cls: type[_E], message: str, error: OAuthError) -> _E | InvalidClient:
    """The typed error for an OAuth error response: ``cls``, or :class:`InvalidClient`.

    ``invalid_client`` is a configuration problem whatever was asked for, so it always
    becomes :class:`InvalidClient`. The code, description and URI are kept as attributes
    and the message ends with ``code (description)``.
    """
    target: type[_E] | type[InvalidClient] = (
        InvalidClient if error.error == "invalid_client" else cls
    )
    return target(
        f"{message}: {describe(error)}",
        error=error.error,
        error_description=error.error_description,
        error_uri=error.error_uri,
    )
