"""Authorizers for the transfer client's globus-sdk clients, which run in worker threads.

* :class:`L1Authorizer` — against our own transfer service: the bearer token of our L1 auth
  (an :class:`httpx.Auth`, normally the :class:`~provena_like.auth.AuthManager`), refreshed as
  it refreshes. The SDK asks for a header in a worker thread; the authorizer hops back to the
  event loop (``anyio.from_thread``) where the L1 auth lives, so its locks, token store and
  HTTP pool are used as everywhere else. After a 401 it renews the token once.
* :class:`GlobusNativeLogin` — against real Globus: a native-app login (``NativeAppAuthClient``
  with explicit ``requested_scopes`` and refresh tokens), the tokens kept in our 0600
  :class:`~provena_like.auth.TokenStore` keyed by (issuer, client, scopes), and a
  ``RefreshTokenAuthorizer`` whose ``on_refresh`` writes the new tokens back.
* :class:`LockedAuthorizer` — any globus-sdk authorizer made safe to share between the
  per-thread SDK clients (globus-sdk's renewing authorizers have no locks).

No token is ever logged.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.from_thread
import anyio.to_thread
import globus_sdk
import httpx
from globus_sdk.authorizers import GlobusAuthorizer
from pydantic import SecretStr

from provena_like._core.errors import LoginRequired, UsageError
from provena_like.auth.store import TokenKey, TokenStore
from provena_like.auth.token_set import TokenSet

__all__ = [
    "GLOBUS_AUTH_ISSUER",
    "TRANSFER_RESOURCE_SERVER",
    "TRANSFER_SCOPE",
    "AuthorizerSource",
    "GlobusNativeLogin",
    "L1Authorizer",
    "LockedAuthorizer",
]

log = logging.getLogger(__name__)

GLOBUS_AUTH_ISSUER = "https://auth.globus.org"
"""The issuer under which Globus tokens are kept in the token store."""

TRANSFER_RESOURCE_SERVER = "transfer.api.globus.org"
"""The resource server whose tokens the transfer client uses."""

TRANSFER_SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"
"""The Transfer API scope."""


@runtime_checkable
class AuthorizerSource(Protocol):
    """Something that builds a globus-sdk authorizer when the client first needs one."""

    async def authorizer(self) -> GlobusAuthorizer:
        """The authorizer to sign transfer requests with (built once, then reused)."""
        ...


class LockedAuthorizer(GlobusAuthorizer):
    """A globus-sdk authorizer shared safely by the worker threads' SDK clients.

    Calls are serialised by a lock. After a 401, a thread whose header is no longer the
    current one (another thread already renewed) just retries with the new one, so N
    concurrent 401s renew once.

    Args:
        inner: the authorizer to protect (e.g. a ``RefreshTokenAuthorizer``).
    """

    def __init__(self, inner: GlobusAuthorizer) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._current: str | None = None
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"LockedAuthorizer({type(self.inner).__name__})"

    def get_authorization_header(self) -> str | None:
        """The current header (the inner authorizer renews it when it is due)."""
        with self._lock:
            header = self.inner.get_authorization_header()
            self._current = header
        self._local.sent = header
        return header

    def handle_missing_authorization(self) -> bool:
        """After a 401: renew once for all threads that sent the same token."""
        sent = getattr(self._local, "sent", None)
        with self._lock:
            if sent is not None and self._current is not None and sent != self._current:
                return True  # already renewed by another thread
            return self.inner.handle_missing_authorization()


class L1Authorizer(GlobusAuthorizer):
    """Signs globus-sdk requests with the bearer token of an :class:`httpx.Auth` (our L1).

    Must be used from worker threads started by ``anyio.to_thread.run_sync`` (the transfer
    client's): each call runs the auth's flow on the event loop for a dummy request to
    ``url`` and takes the ``Authorization`` header it sets. Any ``httpx.Auth`` works; with the
    :class:`~provena_like.auth.AuthManager` the token is refreshed before it expires and,
    after a 401, renewed once (the SDK then retries once).

    Args:
        auth: the L1 auth (``ProvenaClient.auth_manager``).
        url: the URL the token is for (the transfer service).
    """

    def __init__(self, auth: httpx.Auth, url: str) -> None:
        self.auth = auth
        self.url = url
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"L1Authorizer({type(self.auth).__name__}, url={self.url!r})"

    def get_authorization_header(self) -> str | None:
        """The current ``Bearer`` header of the L1 auth (fetched on the event loop)."""
        header: str | None = anyio.from_thread.run(self._sign)
        self._local.sent = header
        return header

    def handle_missing_authorization(self) -> bool:
        """After a 401: let the L1 auth renew the token the request carried (once)."""
        return anyio.from_thread.run(self._renew, getattr(self._local, "sent", None))

    async def _sign(self) -> str | None:
        flow = self.auth.async_auth_flow(httpx.Request("GET", self.url))
        try:
            signed = await flow.__anext__()
        finally:
            await flow.aclose()
        header: str | None = signed.headers.get("Authorization")
        return header

    async def _renew(self, sent: str | None) -> bool:
        flow = self.auth.async_auth_flow(httpx.Request("GET", self.url))
        try:
            signed = await flow.__anext__()
            current = signed.headers.get("Authorization")
            if current is not None and current != sent:
                return True  # renewed meanwhile (another thread's 401, or expiry)
            try:
                # Tell the flow its request got a 401: a renewing auth signs it again.
                again = await flow.asend(httpx.Response(401, request=signed))
            except StopAsyncIteration:
                return False  # a static token: nothing to renew
            renewed = again.headers.get("Authorization")
            return renewed is not None and renewed != sent
        finally:
            await flow.aclose()


PromptForCode = Callable[[str], str | Awaitable[str]]
"""Shows the user the authorize URL and returns the code Globus gave them (sync or async)."""


class GlobusNativeLogin:
    r"""A Globus native-app login whose tokens live in our token store.

    Args:
        client_id: the native app's client id (registered at app.globus.org).
        requested_scopes: the scopes to ask for (globus-sdk 4 sets none by default);
            :data:`TRANSFER_SCOPE`, plus a collection's ``data_access`` scope where needed.
        store: the token store (``TokenStore(config.resolved_token_dir)``): files 0600 in a
            0700 directory, keyed by (issuer, client id, scopes).
        issuer: the store key's issuer (Globus Auth).
        resource_server: whose tokens to keep (the Transfer API's).
        auth_client: a ready ``NativeAppAuthClient`` (default: built for ``client_id``).

    Example:
        ```python
        login = GlobusNativeLogin(CLIENT_ID, [TRANSFER_SCOPE], store=TokenStore(token_dir))
        if not await login.has_tokens():
            await login.login(lambda url: input(f"Open {url}\\nand paste the code: "))
        async with TransferClient(auth=login) as tc:
            listing = await tc.ls("globus://6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e/~/")
        ```
    """

    def __init__(
        self,
        client_id: str,
        requested_scopes: Sequence[str],
        *,
        store: TokenStore,
        issuer: str = GLOBUS_AUTH_ISSUER,
        resource_server: str = TRANSFER_RESOURCE_SERVER,
        auth_client: globus_sdk.NativeAppAuthClient | None = None,
    ) -> None:
        if not requested_scopes:
            raise UsageError("GlobusNativeLogin needs requested_scopes (e.g. TRANSFER_SCOPE)")
        self.client_id = client_id
        self.requested_scopes = tuple(requested_scopes)
        self.store = store
        self.issuer = issuer
        self.resource_server = resource_server
        self._own_client = auth_client is None
        self.auth_client = auth_client or globus_sdk.NativeAppAuthClient(client_id)
        self._flow_started = False

    def __repr__(self) -> str:
        return (
            f"GlobusNativeLogin(client_id={self.client_id!r}, "
            f"scopes={list(self.requested_scopes)!r}, store={self.store!r})"
        )

    @property
    def key(self) -> TokenKey:
        """Where the tokens are kept in the store."""
        return TokenKey.of(self.issuer, self.client_id, self.requested_scopes)

    def start(self, *, redirect_uri: str | None = None) -> str:
        """Start the login: return the URL the user opens to consent and get a code.

        Refresh tokens are asked for, so the login lasts beyond the access token.
        """
        self.auth_client.oauth2_start_flow(
            requested_scopes=list(self.requested_scopes),
            redirect_uri=redirect_uri if redirect_uri is not None else globus_sdk.MISSING,
            refresh_tokens=True,
        )
        self._flow_started = True
        return self.auth_client.oauth2_get_authorize_url()

    async def finish(self, auth_code: str) -> TokenSet:
        """Exchange the user's code for tokens and keep them in the store.

        Raises:
            UsageError: :meth:`start` was not called first.
            LoginRequired: the response holds no token for the resource server.
            APIStatusError: Globus Auth refused the code.
        """
        if not self._flow_started:
            raise UsageError("call start() (and show the user its URL) before finish()")
        response = await anyio.to_thread.run_sync(
            self.auth_client.oauth2_exchange_code_for_tokens, auth_code.strip()
        )
        tokens = self._token_set(response.by_resource_server, previous=None)
        await self.store.save(self.key, tokens)
        log.info("signed in to Globus as client %s; tokens stored", self.client_id)
        return tokens

    async def login(self, prompt: PromptForCode) -> TokenSet:
        """:meth:`start`, ask the user for the code with ``prompt``, then :meth:`finish`."""
        answer = prompt(self.start())
        code = await answer if inspect.isawaitable(answer) else answer
        return await self.finish(str(code))

    async def has_tokens(self) -> bool:
        """Whether the store holds tokens for this login."""
        return await self.store.load(self.key) is not None

    async def logout(self) -> bool:
        """Forget the stored tokens (revoking them at Globus Auth, best effort).

        Returns whether there were any.
        """
        tokens = await self.store.load(self.key)
        if tokens is None:
            return False
        for secret in (tokens.refresh_token, tokens.access_token):
            if secret is None:
                continue
            try:
                await anyio.to_thread.run_sync(
                    self.auth_client.oauth2_revoke_token, secret.get_secret_value()
                )
            except globus_sdk.GlobusError as err:
                log.warning("could not revoke a Globus token: %s", type(err).__name__)
        return await self.store.delete(self.key)

    async def authorizer(self) -> GlobusAuthorizer:
        """An authorizer over the stored tokens (a refreshing one when there is a refresh token).

        Raises:
            LoginRequired: nothing stored, or only an expired access token.
        """
        tokens = await self.store.load(self.key)
        if tokens is None:
            raise LoginRequired(
                f"not signed in to Globus with client {self.client_id}; call login() first"
            )
        if tokens.refresh_token is None:
            if tokens.is_expiring(0):
                raise LoginRequired("the stored Globus access token has expired; log in again")
            return LockedAuthorizer(
                globus_sdk.AccessTokenAuthorizer(tokens.access_token.get_secret_value())
            )
        refresh = tokens.refresh_token
        expires_at = int(tokens.expires_at) if tokens.expires_at is not None else None

        def build() -> GlobusAuthorizer:
            # A RefreshTokenAuthorizer without a valid access token refreshes at once (I/O).
            return globus_sdk.RefreshTokenAuthorizer(
                refresh.get_secret_value(),
                self.auth_client,
                access_token=tokens.access_token.get_secret_value() if expires_at else None,
                expires_at=expires_at,
                on_refresh=self._on_refresh,
            )

        return LockedAuthorizer(await anyio.to_thread.run_sync(build))

    def _on_refresh(self, response: globus_sdk.OAuthTokenResponse) -> None:
        """Persist refreshed tokens (runs in a worker thread, under the authorizer's lock)."""
        previous = self.store.load_sync(self.key)
        tokens = self._token_set(
            response.by_resource_server,
            previous=previous.refresh_token if previous is not None else None,
        )
        self.store.save_sync(self.key, tokens)
        log.debug("stored refreshed Globus tokens of client %s", self.client_id)

    def _token_set(
        self, by_resource_server: dict[str, dict[str, Any]], *, previous: SecretStr | None
    ) -> TokenSet:
        data = by_resource_server.get(self.resource_server)
        if data is None:
            got = ", ".join(sorted(by_resource_server)) or "none"
            raise LoginRequired(
                f"Globus Auth returned no token for {self.resource_server} (got: {got}); "
                "check requested_scopes"
            )
        refresh = data.get("refresh_token")
        expires = data.get("expires_at_seconds")
        return TokenSet(
            access_token=SecretStr(str(data["access_token"])),
            refresh_token=SecretStr(str(refresh)) if refresh else previous,
            expires_at=float(expires) if expires is not None else None,
            scope=data.get("scope"),
            issued_at=time.time(),
        )

    def close(self) -> None:
        """Close the auth client's HTTP session if this login created it."""
        if self._own_client:
            self.auth_client.close()
