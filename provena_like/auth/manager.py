"""``AuthManager``: an :class:`httpx.Auth` that keeps a valid access token on every request.

* Attaches ``Authorization: Bearer <token>``.
* Refreshes ``refresh_margin`` seconds (default 60) before expiry, but never more than half
  the token's lifetime early (a 30 s token is refreshed after 15 s, not at once), with only
  one refresh in flight: concurrent requests wait for it and reuse its result (or its error).
* With a token store, holds the store's cross-process lock around read-refresh-write and
  re-reads the store under it: when another process (or another manager) has just
  refreshed, its token is used and the (already used) refresh token is never presented.
* On a 401 it renews the token once and retries the request once (the
  ``handle_missing_authorization`` idea of globus-sdk); a static token can't be renewed, so
  its 401 is returned as is.
* Persists refreshed tokens to a :class:`TokenStore` when one is configured, before they are
  used, so a rotated refresh token is never lost. A stored sign-in is used before a
  persistent source (a device flow prompts only when there is none).
* Raises :class:`LoginRequired` when there is no token to be had and
  :class:`TokenRefreshFailed` when the provider refuses a refresh. A refresh token the
  provider rejects (``invalid_grant``) is removed from the store and forgotten, and
  :class:`RefreshTokenInvalid` (a ``LoginRequired``) is raised once; later requests raise
  ``LoginRequired`` without calling the provider (an interactive source signs in again).

Tokens and secrets never appear in ``repr``, logs or error messages.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Generator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

import anyio
import httpx
from pydantic import SecretStr

from provena_like._core.errors import LoginRequired, RefreshTokenInvalid, UsageError
from provena_like._core.lifecycle import AsyncCloseable
from provena_like.auth._endpoint import ClientAuth, post_form
from provena_like.auth.flows import (
    ClientCredentials,
    DeviceCodeFlow,
    PromptCallback,
    RefreshTokenFlow,
    StaticToken,
    TokenSource,
)
from provena_like.auth.loopback import AuthorizationCodeFlow, BrowserCallback
from provena_like.auth.oidc import OIDCDiscovery
from provena_like.auth.store import TokenKey, TokenStore
from provena_like.auth.token_set import TokenSet
from provena_like.models.auth import OIDCConfiguration

if TYPE_CHECKING:
    from provena_like._core.config import ProvenaConfig

__all__ = ["AuthManager", "with_remembered_sign_in"]

log = logging.getLogger(__name__)

_LOGIN_HINT = "run `provena-like login` (or configure a client secret or an access token)"

_MAX_MARGIN_FRACTION = 0.5
"""The refresh margin is at most this fraction of the token's lifetime (as for S3 keys)."""


def with_remembered_sign_in(config: ProvenaConfig) -> ProvenaConfig:
    """``config`` signing in where ``provena-like login --issuer`` last did for its server.

    When ``config`` names no ``issuer``, static token or client secret, and the token store
    remembers an issuer for the server (:meth:`TokenStore.sign_in_for`), the copy has that
    issuer and its client id; otherwise ``config`` is returned as is. An issuer in the
    config (or ``PROVENA_ISSUER``) always wins.

    Example:
        ```python
        config = with_remembered_sign_in(ProvenaConfig.load())
        config.resolved_issuer   # the institution's issuer after `login --issuer uni`
        ```
    """
    if config.issuer is not None or config.access_token or config.client_secret:
        return config
    store = TokenStore(config.resolved_token_dir)
    sign_in = store.sign_in_for_sync(config.service_url("auth"))
    if sign_in is None:
        return config
    return config.replace(issuer=sign_in.issuer, client_id=sign_in.client_id)


class _NoIssuer(OIDCDiscovery):
    """Stands in for discovery when there is no issuer (a static token needs none)."""

    def __init__(self) -> None:
        super().__init__("")

    async def get(self, http: httpx.AsyncClient) -> OIDCConfiguration:  # noqa: ARG002
        """Refuse: there is no provider to ask."""
        raise UsageError("AuthManager has no issuer, so it can't reach the token endpoint")


def _replayable(request: httpx.Request) -> bool:
    """Whether the request body can be sent a second time (bytes, not a one-shot stream)."""
    return isinstance(request.stream, httpx.ByteStream)


class AuthManager(httpx.Auth, AsyncCloseable):
    """Keeps a valid access token for an :class:`httpx.AsyncClient`.

    Args:
        source: how to get the first token (``None``: from the token store, or after
            :meth:`login_device` / :meth:`login_browser`). A persistent source
            (:class:`DeviceCodeFlow`, :class:`AuthorizationCodeFlow`,
            :class:`RefreshTokenFlow`) is asked only when the store holds no usable sign-in.
        issuer: the OIDC issuer (needed for everything but a static token).
        client_id: the OAuth client, for refreshes, the store key and :meth:`login_device`.
        client_secret: its secret, for a confidential client.
        scopes: the scopes asked for (part of the store key).
        store: where to load and keep tokens; ``None`` keeps them in memory only.
        refresh_margin: refresh this many seconds before the token expires, at most half
            the token's lifetime (see :meth:`effective_margin`).
        http: the client for token and discovery calls (see :meth:`bind`).
        server: the URL of the auth service the tokens are used with (part of the store
            key: a sign-in is kept per server and issuer); ``None`` keys by issuer only.

    ``client_id``, ``client_secret`` and ``scopes`` default to those of ``source`` (a
    :class:`DeviceCodeFlow`, :class:`AuthorizationCodeFlow`, :class:`ClientCredentials` or
    :class:`RefreshTokenFlow`).

    Example:
        ```python
        auth = AuthManager.from_config(ProvenaConfig.load())
        async with httpx.AsyncClient(auth=auth) as http:
            auth.bind(http)
            me = (await http.get(f"{issuer}/userinfo")).json()
        await auth.aclose()
        ```
    """

    requires_request_body = False
    requires_response_body = False

    def __init__(
        self,
        source: TokenSource | None = None,
        *,
        issuer: str | None = None,
        client_id: str | None = None,
        client_secret: str | SecretStr | None = None,
        scopes: Sequence[str] = (),
        store: TokenStore | None = None,
        refresh_margin: float = 60.0,
        http: httpx.AsyncClient | None = None,
        server: str | None = None,
    ) -> None:
        if refresh_margin < 0:
            raise UsageError("refresh_margin must be >= 0 seconds")
        client = source._client_auth() if source is not None else None
        if client is not None:
            client_id = client_id if client_id is not None else client.client_id
            client_secret = client_secret if client_secret is not None else client.client_secret
        if not scopes and isinstance(
            source, DeviceCodeFlow | AuthorizationCodeFlow | ClientCredentials
        ):
            scopes = source.scopes
        if issuer is None and not isinstance(source, StaticToken):
            raise UsageError("AuthManager needs the OIDC issuer unless it has a static token")
        if store is not None and client_id is None:
            raise UsageError("a token store needs the client_id (part of the store key)")
        self.source = source
        self.issuer = issuer.rstrip("/") if issuer else None
        self.client_id = client_id
        self.scopes = tuple(scopes)
        self.store = store
        self.server = server.rstrip("/") if server else None
        self.refresh_margin = refresh_margin
        self._client_secret = (
            SecretStr(client_secret) if isinstance(client_secret, str) else client_secret
        )
        self._discovery = OIDCDiscovery(self.issuer) if self.issuer else None
        self._http = http
        self._own_http: httpx.AsyncClient | None = None
        self._closed = False
        self._token: TokenSet | None = None
        self._lock = anyio.Lock()
        self._generation = 0
        self._last_error: Exception | None = None
        self._source_spent = False  # a RefreshTokenFlow source whose session has died

    @classmethod
    def from_config(cls, config: ProvenaConfig, *, require_token: bool = False) -> AuthManager:
        """Pick the token source that ``config`` describes.

        ``access_token`` → :class:`StaticToken`; ``client_secret`` → :class:`ClientCredentials`;
        otherwise the token stored for (server, issuer, client_id, scopes) in
        ``config.resolved_token_dir`` (the server being ``config.service_url("auth")``),
        refreshed with its refresh token. Without one, the first request raises
        :class:`LoginRequired`. A config that names no issuer uses the one ``provena-like
        login --issuer`` remembered for the server, if any (:func:`with_remembered_sign_in`).

        Args:
            config: the SDK configuration.
            require_token: raise :class:`LoginRequired` now, rather than at the first request,
                when there is no static token, no client secret and no stored token file
                (one ``stat`` call; nothing is read).

        Raises:
            LoginRequired: with ``require_token=True``, when no token can be had.

        Example:
            ```python
            auth = AuthManager.from_config(ProvenaConfig(base_url="https://provena.example.org"))
            ```
        """
        config = with_remembered_sign_in(config)
        issuer = config.resolved_issuer
        margin = config.token_refresh_margin
        if config.access_token is not None:
            return cls(
                StaticToken(config.access_token),
                issuer=issuer,
                client_id=config.client_id,
                refresh_margin=margin,
            )
        if config.client_secret is not None:
            source = ClientCredentials(config.client_id, config.client_secret, config.scopes)
            return cls(
                source,
                issuer=issuer,
                client_id=config.client_id,
                client_secret=config.client_secret,
                scopes=config.scopes,
                refresh_margin=margin,
            )
        manager = cls(
            issuer=issuer,
            client_id=config.client_id,
            scopes=config.scopes,
            store=TokenStore(config.resolved_token_dir),
            refresh_margin=margin,
            server=config.service_url("auth"),
        )
        key = manager.key
        if require_token and key is not None and manager.store is not None:
            if not manager.store.exists_sync(key):
                raise LoginRequired(f"not signed in to {issuer}; {_LOGIN_HINT}")
        return manager

    def __repr__(self) -> str:
        token = self._token
        if token is None:
            state = "none"
        else:
            left = token.expires_in()
            state = "valid" if left is None else ("expired" if left <= 0 else f"{left:.0f}s left")
        return (
            f"AuthManager(issuer={self.issuer!r}, client_id={self.client_id!r}, "
            f"source={self.source!r}, store={self.store!r}, token={state})"
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def bind(self, http_client: httpx.AsyncClient) -> None:
        """Use ``http_client`` (the pooled client) for token and discovery calls.

        Example:
            ```python
            auth.bind(http)  # ProvenaClient does this with its own pool
            ```
        """
        self._http = http_client

    async def aclose(self) -> None:
        """Close the HTTP client this manager created for itself, if any (not a bound one).

        Afterwards the manager creates no HTTP client of its own again: calls that need the
        token endpoint go through a bound, open client or raise :class:`UsageError`. Tokens
        it already holds keep signing requests until they expire.

        Example:
            ```python
            await auth.aclose()
            ```
        """
        self._closed = True
        own, self._own_http = self._own_http, None
        if own is not None:
            await own.aclose()

    def _client(self) -> httpx.AsyncClient:
        if self._http is not None and not self._http.is_closed:
            return self._http
        if self._closed:
            raise UsageError(
                "AuthManager is closed (and so is the HTTP client bound to it); create a new one"
            )
        if self._own_http is None:
            self._own_http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0))
        return self._own_http

    def _oidc(self) -> OIDCDiscovery:
        return self._discovery if self._discovery is not None else _NoIssuer()

    async def provider_metadata(self) -> OIDCConfiguration:
        """The issuer's OIDC discovery document (fetched once, then cached).

        Tells which sign-ins the provider offers: ``device_authorization_endpoint`` (the
        device flow, :meth:`login_device`), ``authorization_endpoint`` (a browser sign-in,
        :meth:`login_browser`).

        Raises:
            UsageError: the manager has no issuer (a static token).
            APIError: the document could not be fetched.

        Example:
            ```python
            metadata = await auth.provider_metadata()
            use_device_flow = metadata.device_authorization_endpoint is not None
            ```
        """
        return await self._oidc().get(self._client())

    @property
    def key(self) -> TokenKey | None:
        """The token store key (server, issuer, client_id, scopes), if there is a store."""
        if self.store is None or self.issuer is None or self.client_id is None:
            return None
        return TokenKey.of(self.issuer, self.client_id, self.scopes, server=self.server)

    # -- httpx.Auth --------------------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Not supported: the manager does its I/O asynchronously.

        Raises:
            UsageError: always; use an :class:`httpx.AsyncClient`.
        """
        raise UsageError("AuthManager works with httpx.AsyncClient only")
        yield request  # pragma: no cover

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Sign the request; after a 401, renew the token once and retry once."""
        token = await self._valid_token()
        request.headers["Authorization"] = token.authorization()
        response = yield request
        if response.status_code != 401 or not self._can_renew(token):
            return
        if not _replayable(request):
            log.debug("401 on a streamed request; not retrying %s %s", request.method, request.url)
            return
        log.debug(
            "401 from %s %s; renewing the token and retrying once", request.method, request.url
        )
        token = await self._renew(stale=token)
        request.headers["Authorization"] = token.authorization()
        yield request

    # -- tokens ------------------------------------------------------------------------------

    async def get_access_token(self) -> SecretStr:
        """A valid access token (refreshed first if it is about to expire).

        Raises:
            LoginRequired: there is no token and none can be had without the user.
            TokenRefreshFailed: the provider refused the refresh.

        Example:
            ```python
            token = await auth.get_access_token()
            headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
            ```
        """
        return (await self._valid_token()).access_token

    def effective_margin(self, token: TokenSet) -> float:
        """The refresh margin applied to ``token``: ``refresh_margin``, at most half its lifetime.

        A token that lives less than twice the margin would be due for renewal the moment it
        arrives (every request would refresh); capped, it is renewed once per half-life.
        The lifetime is the ``expires_in`` the provider gave, so clock skew plays no part.

        Example:
            ```python
            auth = AuthManager(StaticToken("t"), refresh_margin=60)
            auth.effective_margin(
                TokenSet(SecretStr("a"), expires_at=1030.0, issued_at=1000.0)
            )
            # 15.0
            ```
        """
        lifetime = token.lifetime
        if lifetime is None:
            return self.refresh_margin
        return min(self.refresh_margin, lifetime * _MAX_MARGIN_FRACTION)

    def _fresh(self, token: TokenSet) -> bool:
        return not token.is_expiring(self.effective_margin(token))

    def _can_renew(self, token: TokenSet) -> bool:
        return token.refresh_token is not None or (
            self.source is not None and self.source.renewable
        )

    def _can_sign_in_again(self) -> bool:
        """Whether the source gets a new sign-in without the (dead) refresh token."""
        source = self.source
        if source is None or isinstance(source, RefreshTokenFlow):
            return False
        return source.interactive or source.renewable

    async def _valid_token(self) -> TokenSet:
        token = self._token
        if token is not None and self._fresh(token):
            return token
        if token is not None and not self._can_renew(token):
            if not token.is_expiring(0):
                return token  # can't refresh: use it while it lasts
            raise LoginRequired(f"the access token has expired; {_LOGIN_HINT}")
        return await self._renew(stale=token)

    async def _renew(self, stale: TokenSet | None) -> TokenSet:
        """Replace ``stale`` (or get the first token); one renewal at a time."""
        generation = self._generation
        async with self._lock:
            if self._generation != generation:  # renewed (or failed) while we waited
                if self._last_error is not None:
                    raise self._last_error
                if self._token is not None:
                    return self._token
            if self._token is not None and self._token is not stale:
                return self._token  # renewed before we even asked
            try:
                token = await self._obtain(stale)
            except Exception as err:
                if isinstance(err, LoginRequired):
                    self._token = None  # never present a dead token again
                self._last_error = err
                self._generation += 1
                raise
            self._token = token
            self._last_error = None
            self._generation += 1
            return token

    async def _obtain(self, stale: TokenSet | None) -> TokenSet:
        http = self._client()
        if stale is None:
            source = self.source
            if source is not None and not source.persistent:
                log.debug("getting a first token from %r", source)
                return await self._from_source(http)
            # A stored sign-in comes first: a device flow prompts only when there is none,
            # and a refresh-token source continues from the newest (rotated) token.
            stored = await self._load()
            if stored is not None:
                if self._fresh(stored):
                    return stored
                if stored.refresh_token is not None:
                    stale = stored
                elif not stored.is_expiring(0):
                    return stored  # can't refresh: use it while it lasts
            if stale is None:
                if source is not None and not self._source_spent:
                    log.debug("getting a first token from %r", source)
                    return await self._from_source(http)
                if stored is not None:
                    raise LoginRequired(f"the stored token has expired; {_LOGIN_HINT}")
                raise LoginRequired(f"not signed in; {_LOGIN_HINT}")
        if stale.refresh_token is not None:
            try:
                return await self._refresh(http, stale)
            except RefreshTokenInvalid:
                if self._can_sign_in_again():
                    log.info(
                        "the refresh token was rejected; signing in again with %r", self.source
                    )
                    return await self._from_source(http)
                if isinstance(self.source, RefreshTokenFlow):
                    self._source_spent = True  # its token belongs to the dead session
                raise
        if self.source is not None and self.source.renewable:
            log.debug("getting a new token from %r", self.source)
            return await self._from_source(http)
        raise LoginRequired(f"the access token can't be renewed; {_LOGIN_HINT}")

    async def _from_source(self, http: httpx.AsyncClient) -> TokenSet:
        assert self.source is not None
        token = await self.source.fetch_token(http, self._oidc())
        if self.source.persistent:
            async with self._store_lock():
                await self._save(token)
        return token

    async def _refresh(self, http: httpx.AsyncClient, stale: TokenSet) -> TokenSet:
        async with self._store_lock():
            # Re-read under the lock: another process (or manager) may have refreshed while
            # we waited. Its token is then the newest; ours was already used, and presenting
            # it again would trip the provider's reuse detection and end the session.
            stored = await self._load()
            if stored is not None and stored.refresh_token != stale.refresh_token:
                if self._fresh(stored) or (
                    stored.refresh_token is None and not stored.is_expiring(0)
                ):
                    log.debug("the token store holds a newer token; using it")
                    return stored
                if stored.refresh_token is not None:
                    stale = stored
            if stale.refresh_token is None or self.client_id is None:
                raise LoginRequired(f"the access token can't be refreshed; {_LOGIN_HINT}")
            log.debug("refreshing the access token of client %s", self.client_id)
            flow = RefreshTokenFlow(stale.refresh_token, self.client_id, self._client_secret)
            # Shielded: once the provider has rotated the refresh token, a cancelled caller
            # must not stop us from keeping (and storing) the new one. httpx timeouts apply.
            with anyio.CancelScope(shield=True):
                try:
                    token = await flow.fetch_token(http, self._oidc())
                except RefreshTokenInvalid:
                    await self._discard(stale)
                    raise
                await self._save(token)
        left = token.expires_in()
        log.debug(
            "refreshed; the new token expires in %s s", "?" if left is None else f"{left:.0f}"
        )
        return token

    def _store_lock(self) -> AbstractAsyncContextManager[None]:
        key = self.key
        if key is None or self.store is None:
            return contextlib.nullcontext()
        return self.store.lock(key)

    async def _discard(self, dead: TokenSet) -> None:
        """Remove the stored token if it still holds ``dead``'s refresh token (lock held)."""
        key = self.key
        if key is None or self.store is None:
            return
        stored = await self.store.load(key)
        if stored is not None and stored.refresh_token == dead.refresh_token:
            await self.store.delete(key)
            log.info("removed the rejected token of client %s from the store", key.client_id)

    async def _load(self) -> TokenSet | None:
        key = self.key
        if key is None or self.store is None:
            return None
        return await self.store.load(key)

    async def _save(self, token: TokenSet) -> None:
        key = self.key
        if key is not None and self.store is not None:
            await self.store.save(key, token)

    # -- sign in and out ---------------------------------------------------------------------

    async def login_device(self, prompt: PromptCallback) -> None:
        """Sign in with the device flow and keep the tokens (in the store, if any).

        Args:
            prompt: shows the user the code and link (sync or async).

        Raises:
            DeviceCodeExpired: the user did not answer in time.
            AccessDenied: the user denied the request.

        Example:
            ```python
            await auth.login_device(lambda p: print(p.verification_uri_complete))
            ```
        """
        if self.client_id is None:
            raise UsageError("login_device needs a client_id")
        flow = DeviceCodeFlow(
            self.client_id, self.scopes, prompt, client_secret=self._client_secret
        )
        await self._login(flow)

    async def login_browser(self, open_browser: BrowserCallback, *, timeout: float = 300.0) -> None:
        """Sign in in a browser (authorization code + PKCE, loopback redirect); keep the tokens.

        See :class:`~provena_like.auth.loopback.AuthorizationCodeFlow`: the client must be
        registered as a native app with the redirect URI ``http://127.0.0.1/callback``.

        Args:
            open_browser: opens the :class:`BrowserPrompt`'s ``authorization_url`` in a
                browser, or shows it to the user (sync or async).
            timeout: seconds to wait for the browser to come back.

        Raises:
            AuthorizationTimeout: the browser did not come back in time.
            AccessDenied: the user denied the request.
            AuthorizationFlowError: the answer did not match the request, or the provider
                refused.

        Example:
            ```python
            await auth.login_browser(lambda p: webbrowser.open(p.authorization_url))
            ```
        """
        if self.client_id is None:
            raise UsageError("login_browser needs a client_id")
        flow = AuthorizationCodeFlow(
            self.client_id,
            self.scopes,
            open_browser,
            client_secret=self._client_secret,
            timeout=timeout,
        )
        await self._login(flow)

    async def _login(self, flow: TokenSource) -> None:
        token = await flow.fetch_token(self._client(), self._oidc())
        async with self._lock:
            async with self._store_lock():
                await self._save(token)
            self._token = token
            self._last_error = None
            self._source_spent = False
            self._generation += 1
        log.debug("signed in with %r", flow)

    async def logout(self) -> None:
        """Revoke the refresh token (if the provider can) and delete the stored token.

        Revocation is best effort: a failure is logged, and the local token is removed anyway.

        Example:
            ```python
            await auth.logout()
            ```
        """
        async with self._lock, self._store_lock():
            stored = await self._load()
            token = self._token
            self._token = None
            self._generation += 1
            held = {
                t.refresh_token.get_secret_value() for t in (token, stored) if t and t.refresh_token
            }
            for refresh_token in held:  # ours, and a newer one another process stored
                await self._revoke(SecretStr(refresh_token))
            key = self.key
            if key is not None and self.store is not None:
                await self.store.delete(key)

    async def _revoke(self, refresh_token: SecretStr) -> None:
        if self._discovery is None or self.client_id is None:
            return
        try:
            http = self._client()
            endpoint = (await self._discovery.get(http)).revocation_endpoint
            if not endpoint:
                return
            data = {"token": refresh_token.get_secret_value(), "token_type_hint": "refresh_token"}
            headers = ClientAuth(self.client_id, self._client_secret).apply(data)
            response = await post_form(http, endpoint, data, headers)
            if response.status_code >= 400:
                log.warning(
                    "the provider refused to revoke the token (HTTP %s)", response.status_code
                )
        except Exception as err:  # best effort: signing out locally must still work
            log.warning("could not revoke the refresh token: %s", type(err).__name__)
