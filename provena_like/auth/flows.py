"""Token sources: the ways to get a token from an OAuth 2.0 / OIDC provider.

* :class:`StaticToken` — a token you already have.
* :class:`ClientCredentials` — a confidential client acting as itself (RFC 6749 §4.4).
* :class:`DeviceCodeFlow` — a user signs in on another device (RFC 8628).
* :class:`RefreshTokenFlow` — trade a refresh token for new tokens (RFC 6749 §6).

Each talks to the endpoints named by OIDC discovery through the ``httpx.AsyncClient`` it is
given, so the same code works against the reference server, Keycloak or any OIDC provider.
``repr`` never shows a token or secret.
"""

from __future__ import annotations

import inspect
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import anyio
import httpx
from pydantic import SecretStr

from provena_like._core.errors import (
    AccessDenied,
    AuthError,
    DeviceCodeExpired,
    DeviceFlowError,
    LoginRequired,
    RefreshTokenInvalid,
    TokenRefreshFailed,
    UsageError,
)
from provena_like.auth._endpoint import (
    ClientAuth,
    oauth_failure,
    parse_oauth_response,
    parse_token_response,
    post_form,
)
from provena_like.auth.oidc import OIDCDiscovery
from provena_like.auth.token_set import TokenSet
from provena_like.models.auth import DEVICE_CODE_GRANT, DeviceAuthorization, OAuthError

__all__ = [
    "ClientCredentials",
    "DeviceCodeFlow",
    "DevicePrompt",
    "PromptCallback",
    "RefreshTokenFlow",
    "StaticToken",
    "TokenSource",
]

log = logging.getLogger(__name__)

_MIN_POLL_INTERVAL = 0.1
"""Never poll faster than this, even if the provider says ``interval: 0``."""


def _secret(value: str | SecretStr | None) -> SecretStr | None:
    if value is None or isinstance(value, SecretStr):
        return value
    return SecretStr(value)


def _scope(scopes: Sequence[str] | None) -> str | None:
    if not scopes:
        return None
    return " ".join(dict.fromkeys(scopes))


async def _post_grant(
    http: httpx.AsyncClient,
    endpoint: str,
    client: ClientAuth,
    data: dict[str, str],
    scopes: Sequence[str] | None,
) -> httpx.Response:
    """POST a grant form with the scopes asked for and the client's credentials."""
    if scope := _scope(scopes):
        data["scope"] = scope
    return await post_form(http, endpoint, data, client.apply(data))


class TokenSource(ABC):
    """A way to obtain a :class:`TokenSet`.

    Attributes:
        renewable: the source can be asked again, without a user, when the token runs out.
        persistent: tokens from this source are worth keeping in a :class:`TokenStore`;
            ``AuthManager`` uses a stored token before asking the source.
        interactive: the source signs a user in (it prompts); ``AuthManager`` asks it again
            when the stored sign-in has died.
    """

    renewable: ClassVar[bool] = False
    persistent: ClassVar[bool] = False
    interactive: ClassVar[bool] = False

    @abstractmethod
    async def fetch_token(self, http: httpx.AsyncClient, discovery: OIDCDiscovery) -> TokenSet:
        """Obtain a token set.

        Args:
            http: the client to talk to the provider with.
            discovery: where the provider's endpoints are.
        """

    def _client_auth(self) -> ClientAuth | None:
        """The client this source authenticates as, if it has one (for ``AuthManager``)."""
        return None


class StaticToken(TokenSource):
    """A bearer token obtained elsewhere; it is used as is and never renewed.

    Example:
        ```python
        auth = AuthManager(StaticToken(os.environ["PROVENA_ACCESS_TOKEN"]))
        ```
    """

    def __init__(self, token: str | SecretStr) -> None:
        secret = _secret(token)
        if secret is None or not secret.get_secret_value():
            raise UsageError("StaticToken needs a non-empty token")
        self._token = secret

    def __repr__(self) -> str:
        return "StaticToken(token='**********')"

    async def fetch_token(self, http: httpx.AsyncClient, discovery: OIDCDiscovery) -> TokenSet:  # noqa: ARG002
        """Return the token (no network call)."""
        return TokenSet(access_token=self._token)


class ClientCredentials(TokenSource):
    """The client credentials grant: a confidential client gets a token for itself.

    Args:
        client_id: the client id.
        client_secret: the client secret.
        scopes: the scopes to ask for (the provider's default when empty).
        auth_method: ``client_secret_basic`` (default) or ``client_secret_post``.

    Example:
        ```python
        source = ClientCredentials("pipeline", os.environ["PIPELINE_SECRET"], ["openid"])
        tokens = await source.fetch_token(http, OIDCDiscovery(issuer))
        ```
    """

    renewable = True

    def __init__(
        self,
        client_id: str,
        client_secret: str | SecretStr,
        scopes: Sequence[str] = (),
        *,
        auth_method: str = "client_secret_basic",
    ) -> None:
        secret = _secret(client_secret)
        if secret is None or not secret.get_secret_value():
            raise UsageError("ClientCredentials needs a client secret")
        try:
            self._client = ClientAuth(client_id, secret, auth_method)
        except ValueError as err:
            raise UsageError(str(err)) from None
        self.client_id = client_id
        self.scopes = tuple(scopes)

    def __repr__(self) -> str:
        return (
            f"ClientCredentials(client_id={self.client_id!r}, client_secret='**********', "
            f"scopes={self.scopes!r})"
        )

    async def fetch_token(self, http: httpx.AsyncClient, discovery: OIDCDiscovery) -> TokenSet:
        """Ask the token endpoint for a token.

        Raises:
            InvalidClient: the provider did not accept the client id or secret.
            AuthError: any other refusal (``.error`` holds the OAuth error code).
            APIError: the provider could not be reached or answered unexpectedly.
        """
        endpoint = (await discovery.get(http)).token_endpoint
        log.debug("requesting a token for client %s (client credentials)", self.client_id)
        data = {"grant_type": "client_credentials"}
        response = await _post_grant(http, endpoint, self._client, data, self.scopes)
        outcome = parse_token_response(response)
        if isinstance(outcome, OAuthError):
            raise oauth_failure(
                AuthError,
                f"the identity provider refused the client credentials of {self.client_id!r}",
                outcome,
            )
        return TokenSet.from_response(outcome)

    def _client_auth(self) -> ClientAuth:
        return self._client


class RefreshTokenFlow(TokenSource):
    """Trade a refresh token for new tokens (the provider may rotate the refresh token).

    Args:
        refresh_token: the refresh token.
        client_id: the client the token was issued to.
        client_secret: its secret, for a confidential client.
        scopes: narrow the scope of the new access token (default: as granted).

    Example:
        ```python
        tokens = await RefreshTokenFlow(old.refresh_token, "provena-like-cli").fetch_token(
            http, discovery
        )
        ```
    """

    renewable = True
    persistent = True

    def __init__(
        self,
        refresh_token: str | SecretStr,
        client_id: str,
        client_secret: str | SecretStr | None = None,
        *,
        scopes: Sequence[str] | None = None,
    ) -> None:
        token = _secret(refresh_token)
        if token is None or not token.get_secret_value():
            raise UsageError("RefreshTokenFlow needs a refresh token")
        self._refresh_token = token
        self._client = ClientAuth(client_id, _secret(client_secret))
        self.client_id = client_id
        self.scopes = tuple(scopes) if scopes else None
        self._dead = False

    def __repr__(self) -> str:
        return f"RefreshTokenFlow(client_id={self.client_id!r}, refresh_token='**********')"

    async def fetch_token(self, http: httpx.AsyncClient, discovery: OIDCDiscovery) -> TokenSet:
        """Refresh.

        Raises:
            RefreshTokenInvalid: the provider answered ``invalid_grant`` (the token expired,
                was revoked or was already used). The flow remembers it: calling again raises
                :class:`LoginRequired` without sending the dead token.
            InvalidClient: the provider did not accept the client.
            TokenRefreshFailed: any other refusal (``.error`` holds the OAuth error code;
                the token is never in the message).
            APIError: the provider could not be reached or answered unexpectedly.
        """
        if self._dead:
            raise LoginRequired(
                "the refresh token was rejected before (invalid_grant); "
                "sign in again (provena-like login)"
            )
        endpoint = (await discovery.get(http)).token_endpoint
        log.debug("refreshing the token of client %s", self.client_id)
        data = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token.get_secret_value(),
        }
        response = await _post_grant(http, endpoint, self._client, data, self.scopes)
        outcome = parse_token_response(response)
        if isinstance(outcome, OAuthError):
            if outcome.error == "invalid_grant":
                self._dead = True
                raise oauth_failure(
                    RefreshTokenInvalid,
                    "the identity provider rejected the refresh token; "
                    "sign in again (provena-like login)",
                    outcome,
                )
            raise oauth_failure(
                TokenRefreshFailed, "the identity provider refused to refresh the token", outcome
            )
        return TokenSet.from_response(outcome, previous_refresh=self._refresh_token)

    def _client_auth(self) -> ClientAuth:
        return self._client


@dataclass(frozen=True)
class DevicePrompt:
    """What to show the user during the device flow.

    Attributes:
        user_code: the code to type in (``ABCD-EFGH``).
        verification_uri: where to type it.
        verification_uri_complete: a link that already holds the code, if the provider gave one.
        expires_in: seconds until the code expires.
    """

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int


PromptCallback = Callable[[DevicePrompt], Awaitable[None] | None]
"""Called once with the :class:`DevicePrompt`; may be sync or async."""


class DeviceCodeFlow(TokenSource):
    """The device authorization grant (RFC 8628): the user approves on another device.

    The ``prompt`` callback shows the user the code and link (the library never prints or
    opens a browser itself). Polling honours the provider's ``interval`` and adds 5 s on every
    ``slow_down``.

    Args:
        client_id: a client allowed to use the device grant (``provena-like-cli``).
        scopes: the scopes to ask for; include ``offline_access`` for a refresh token.
        prompt: called with a :class:`DevicePrompt` before polling starts.
        client_secret: the secret, if the client is confidential.
        sleep: waits between polls (default :func:`anyio.sleep`; tests pass a fake).

    Example:
        ```python
        def show(p: DevicePrompt) -> None:
            print(f"Open {p.verification_uri} and enter {p.user_code}")

        flow = DeviceCodeFlow("provena-like-cli", ["openid", "offline_access"], show)
        tokens = await flow.fetch_token(http, OIDCDiscovery(issuer))
        ```
    """

    persistent = True
    interactive = True

    def __init__(
        self,
        client_id: str,
        scopes: Sequence[str],
        prompt: PromptCallback,
        *,
        client_secret: str | SecretStr | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._client = ClientAuth(client_id, _secret(client_secret))
        self.client_id = client_id
        self.scopes = tuple(scopes)
        self._prompt = prompt
        self._sleep = sleep

    def __repr__(self) -> str:
        secret = ", client_secret='**********'" if self._client.client_secret else ""
        return f"DeviceCodeFlow(client_id={self.client_id!r}, scopes={self.scopes!r}{secret})"

    async def fetch_token(self, http: httpx.AsyncClient, discovery: OIDCDiscovery) -> TokenSet:
        """Run the flow: start it, prompt the user, poll until they answer.

        Raises:
            DeviceCodeExpired: the user did not answer in time (``expired_token``).
            AccessDenied: the user denied the request (``access_denied``).
            DeviceFlowError: any other refusal.
            APIError: the provider could not be reached or answered unexpectedly.
        """
        config = await discovery.get(http)
        if not config.device_authorization_endpoint:
            raise AuthError(f"the provider {discovery.issuer} does not support the device flow")
        start = await self._start(http, config.device_authorization_endpoint)
        prompt = DevicePrompt(
            user_code=start.user_code,
            verification_uri=start.verification_uri,
            verification_uri_complete=start.verification_uri_complete,
            expires_in=start.expires_in,
        )
        shown = self._prompt(prompt)
        if inspect.isawaitable(shown):
            await shown
        return await self._poll(http, config.token_endpoint, start)

    def _client_auth(self) -> ClientAuth:
        return self._client

    async def _start(self, http: httpx.AsyncClient, endpoint: str) -> DeviceAuthorization:
        response = await _post_grant(http, endpoint, self._client, {}, self.scopes)
        outcome = parse_oauth_response(
            response,
            DeviceAuthorization,
            "the device authorization endpoint answered with an unexpected body",
        )
        if isinstance(outcome, OAuthError):
            raise oauth_failure(DeviceFlowError, "the device authorization was refused", outcome)
        return outcome

    async def _poll(
        self, http: httpx.AsyncClient, endpoint: str, start: DeviceAuthorization
    ) -> TokenSet:
        deadline = time.monotonic() + start.expires_in
        interval = float(max(start.interval, 0))
        data = {
            "grant_type": DEVICE_CODE_GRANT,
            "device_code": start.device_code.get_secret_value(),
        }
        headers = self._client.apply(data)
        while True:
            await self._sleep(max(interval, _MIN_POLL_INTERVAL))
            outcome = parse_token_response(await post_form(http, endpoint, data, headers))
            if not isinstance(outcome, OAuthError):
                log.debug("device flow of client %s completed", self.client_id)
                return TokenSet.from_response(outcome)
            if outcome.error == "slow_down":
                interval += 5
                log.debug("device flow: slow_down, polling every %.0f s now", interval)
            elif outcome.error == "expired_token":
                raise oauth_failure(
                    DeviceCodeExpired, "the device code expired before it was approved", outcome
                )
            elif outcome.error == "access_denied":
                raise oauth_failure(AccessDenied, "the sign-in request was denied", outcome)
            elif outcome.error != "authorization_pending":
                raise oauth_failure(DeviceFlowError, "the device flow failed", outcome)
            if time.monotonic() >= deadline:
                raise DeviceCodeExpired("the device code expired before it was approved")
