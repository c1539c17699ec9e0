"""Scoped storage credentials per (caller, dataset, access), cached until shortly before expiry.

The caller is part of the key: one client may serve several users (a web backend whose
``httpx.Auth`` signs each request with the token of the user it serves), and one user's keys
must never reach another. The caller's identity is how the client's auth signs a request
right now (see :func:`request_identity`), kept only as a keyed digest, never as the token.

From a dataset id to a signed S3 request, the SDK takes one path:

1. :meth:`CredentialsCache.get` returns the wire model
   :class:`~provena_like.models.datastore.ScopedCredentials` (cached, or asked of the server:
   a locked dataset, or one in review or released, gets the server's own 409 as
   :class:`~provena_like.Locked` / :class:`~provena_like.ReleaseStateConflict`);
2. :meth:`CredentialsCache.source` wraps that in the storage engine's one credential source,
   a :class:`~provena_like.storage.RefreshingCredentials` (via :func:`to_s3_credentials`),
   which refreshes near expiry and hands frozen snapshots to both S3 request paths (see
   :mod:`provena_like.storage.credentials`);
3. :class:`~provena_like.modules.engines.EnginePool` keeps one open
   :class:`~provena_like.storage.TransferEngine` per (caller, dataset, access) on that source,
   reused by every transfer of an :class:`~provena_like.modules.interactive.InteractiveDataset`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import anyio
import httpx

from provena_like._core.http import PinnedHeaders, signed_with
from provena_like._core.sentinels import NOT_GIVEN, NotGiven
from provena_like.clients.datastore import DatastoreClient
from provena_like.models.datastore import AccessLevel, ScopedCredentials

if TYPE_CHECKING:  # the S3 stack (botocore) is imported when credentials are first used
    from provena_like.storage.credentials import RefreshingCredentials, S3Credentials

__all__ = ["CredentialsCache", "request_identity", "to_s3_credentials"]

_ANONYMOUS = "anonymous"
_PRUNE_ABOVE = 256
"""Expired entries are dropped once the cache holds more than this many (many users)."""


async def _signed_headers(
    http: httpx.AsyncClient, url: str, auth: httpx.Auth | None
) -> list[tuple[str, str]] | None:
    """The headers ``auth`` sets or changes on a probe request to ``url`` (nothing is sent).

    ``[]`` when there is no auth; ``None`` when the auth puts nothing on a request up front.
    """
    if auth is None or type(auth) is httpx.Auth:  # httpx's no-op auth
        return []
    probe = http.build_request("POST", url)
    before = {name.lower(): value for name, value in probe.headers.multi_items()}
    flow = auth.async_auth_flow(probe)
    try:
        signed = await flow.__anext__()
    except StopAsyncIteration:
        return None
    finally:
        await flow.aclose()
    changed = sorted(
        (name.lower(), value)
        for name, value in signed.headers.multi_items()
        if before.get(name.lower()) != value
    )
    return changed or None


def _digest(headers: list[tuple[str, str]], key: bytes) -> str:
    if not headers:
        return _ANONYMOUS
    digest = hmac.new(key, digestmod=hashlib.sha256)
    for name, value in headers:
        digest.update(f"{name}\x00{value}\x00".encode())
    return digest.hexdigest()


async def request_identity(
    http: httpx.AsyncClient, url: str, *, key: bytes, auth: httpx.Auth | None | NotGiven = NOT_GIVEN
) -> str | None:
    """Who a request signed by ``auth`` acts for: a keyed digest of the headers it puts on.

    ``auth`` (default: ``http``'s own) signs a probe request to ``url`` (nothing is sent);
    every header it sets or changes (``Authorization``, cookies, ...) goes into an
    HMAC-SHA-256 under ``key``, so the token itself is never kept. Requests signed for
    different users, or with different tokens, get different identities; an auth that signs
    each request differently never reuses anything, which is safe.

    Why not the token's subject and issuer: they would have to be read from the token
    without checking its signature (only the server can), so a forged token naming another
    user would be handed that user's cached keys. Two tokens of one user are two callers
    here: they share nothing, which costs one more request, never a leak.

    Returns:
        The digest; ``"anonymous"`` when there is no auth; ``None`` when the auth puts
        nothing on a request up front (e.g. it answers a challenge): callers can't be told
        apart then, so nothing may be shared.

    Example:
        ```python
        who = await request_identity(http, f"{base}/datastore/", key=secrets.token_bytes(32))
        ```
    """
    signed = await _signed_headers(http, url, http.auth if isinstance(auth, NotGiven) else auth)
    return None if signed is None else _digest(signed, key)


def to_s3_credentials(creds: ScopedCredentials) -> S3Credentials:
    """The storage engine's view of credentials minted by the datastore.

    The same as :meth:`S3Credentials.from_scoped <provena_like.storage.S3Credentials.from_scoped>`.
    """
    from provena_like.storage.credentials import S3Credentials

    return S3Credentials.from_scoped(creds)


_Key = tuple[str, str, AccessLevel]  # (caller identity, dataset, access)


class CredentialsCache:
    """Hands out credentials for a dataset, asking the server only when needed.

    Cached credentials are reused until ``margin`` before they expire (never past the
    halfway point of a short lifetime), and only for the caller they were issued to (see
    the module docstring); one request per (caller, dataset, access) is in flight at a
    time, so a burst of callers makes one call.

    The caller is worked out from the headers the client's auth signs a probe with, and the
    request for new credentials carries exactly those headers (it is not signed again): so
    credentials are always filed under the caller who asked for them, even if the auth
    signed for someone else a moment later (an auth object switched between users while
    requests overlap), and never handed to a caller other than the one they were issued to.
    Views of one client (:meth:`ProvenaClient.as_user <provena_like.ProvenaClient.as_user>`)
    share one cache through :meth:`scoped`.

    Args:
        client: the datastore's L2 client (its auth tells callers apart).
        margin: how long before expiry cached credentials are renewed.
        identity: who is asking now (default: :func:`request_identity` on ``client``'s
            HTTP client, under a random per-cache key); ``None`` from it means "can't tell",
            and such a caller gets fresh credentials every time, never cached ones.
    """

    def __init__(
        self,
        client: DatastoreClient,
        *,
        margin: timedelta = timedelta(minutes=5),
        identity: Callable[[], Awaitable[str | None]] | None = None,
    ):
        self._client = client
        self._margin = margin
        self._custom_identity = identity
        self._hmac_key = secrets.token_bytes(32)
        self._cached: dict[_Key, tuple[ScopedCredentials, datetime]] = {}
        self._locks: dict[_Key, anyio.Lock] = {}
        self._forget_hooks: list[Callable[[str], None]] = []

    def scoped(self, client: DatastoreClient) -> CredentialsCache:
        """This cache, seen by the callers of ``client`` (a view with another auth).

        The entries, locks and forget hooks are shared: ``client``'s callers reuse what
        was issued to them through any view, and only that. Identities come from
        ``client``'s auth (a custom ``identity`` function is not carried over).

        Example:
            ```python
            alice = pv.as_user(await pv.auth_manager.get_access_token())
            assert alice.datastore.credentials_cache is not pv.datastore.credentials_cache
            ```
        """
        copy = object.__new__(CredentialsCache)
        copy.__dict__.update(self.__dict__)
        copy._client = client
        copy._custom_identity = None
        return copy

    async def _caller(self) -> tuple[str | None, httpx.Auth | None]:
        """Who is asking, and the auth that signs their request exactly as identified."""
        if self._custom_identity is not None:
            return await self._custom_identity(), None
        core = self._client.http_core  # the client's pool and auth
        url = core.config.service_url("datastore") + "/"
        signed = await _signed_headers(core.http_client, url, core.auth)
        if signed is None:
            return None, None
        return _digest(signed, self._hmac_key), PinnedHeaders(signed)

    def __repr__(self) -> str:
        return f"CredentialsCache({len(self._cached)} cached, margin={self._margin})"

    def _usable(self, key: _Key, now: datetime) -> ScopedCredentials | None:
        entry = self._cached.get(key)
        if entry is None:
            return None
        creds, fetched = entry
        lifetime = creds.expiration - fetched
        margin = min(self._margin, lifetime / 2)
        return creds if now < creds.expiration - margin else None

    async def get(
        self, dataset_id: str, access: AccessLevel = "read", *, force: bool = False
    ) -> ScopedCredentials:
        """Credentials for ``dataset_id``; ``force`` asks for new ones whatever the cache holds.

        Raises:
            Locked: write access to a locked dataset (the server's 409 ``locked``).
            ReleaseStateConflict: write access to a dataset in review or released (409
                ``under_review`` / ``released``).
        """
        who, signed = await self._caller()
        if who is None:  # callers can't be told apart: share nothing
            return await self._fetch(dataset_id, access, None)
        key = (who, dataset_id, access)
        if not force and (hit := self._usable(key, datetime.now(UTC))) is not None:
            return hit
        lock = self._locks.setdefault(key, anyio.Lock())
        seen = self._cached.get(key)
        async with lock:
            current = self._cached.get(key)
            if current is not None and current is not seen:
                return current[0]  # someone refreshed while we waited
            if not force and (hit := self._usable(key, datetime.now(UTC))) is not None:
                return hit
            fetched = datetime.now(UTC)
            creds = await self._fetch(dataset_id, access, signed)
            self._cached[key] = (creds, fetched)
        self._prune(fetched)
        return creds

    async def _fetch(
        self, dataset_id: str, access: AccessLevel, signed: httpx.Auth | None
    ) -> ScopedCredentials:
        # the server refuses write credentials for a locked dataset, or one in review or
        # released, with a 409 that the HTTP core raises as Locked / ReleaseStateConflict;
        # ``signed`` puts on the very headers the caller was identified by
        with signed_with(signed):
            return await self._client.get_credentials(dataset_id, access)

    def source(self, dataset_id: str, access: AccessLevel = "read") -> RefreshingCredentials:
        """The engine's credential source for ``dataset_id``, fed from this cache.

        It takes the cached credentials when they are fresh enough; when it needs a refresh
        (near expiry, or after S3 said the keys expired) and the cache would hand back the
        very keys it wants replaced, it asks the server for new ones (``force``).

        Example:
            ```python
            creds = pv.datastore.credentials_cache.source(dataset_id, "write")
            async with TransferEngine(creds) as engine:
                await engine.upload("./data")
            ```
        """

        async def provider() -> S3Credentials:
            creds = await self.get(dataset_id, access)
            current = refreshing.current
            if current is not None and creds.access_key_id == current.access_key_id:
                creds = await self.get(dataset_id, access, force=True)
            return to_s3_credentials(creds)

        from provena_like.storage.credentials import RefreshingCredentials

        refreshing = RefreshingCredentials(provider, refresh_margin=self._margin)
        return refreshing

    async def identity(self) -> str | None:
        """Who is asking now (see the class docstring); ``None``: callers can't be told apart.

        Example:
            ```python
            who = await pv.datastore.credentials_cache.identity()
            ```
        """
        return (await self._caller())[0]

    def on_forget(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(dataset_id)`` whenever :meth:`forget` drops a dataset's credentials.

        Example:
            ```python
            cache.on_forget(lambda dataset_id: print("state changed:", dataset_id))
            ```
        """
        self._forget_hooks.append(callback)

    def _prune(self, now: datetime) -> None:
        """Drop expired credentials and idle locks once the cache grows (many callers)."""
        if len(self._cached) <= _PRUNE_ABOVE and len(self._locks) <= _PRUNE_ABOVE:
            return
        for key in [k for k, (creds, _) in self._cached.items() if creds.expiration <= now]:
            del self._cached[key]
        for key in [
            k
            for k, lock in self._locks.items()
            if k not in self._cached and not lock.locked() and not lock.statistics().tasks_waiting
        ]:
            del self._locks[key]

    def forget(self, dataset_id: str) -> None:
        """Drop cached credentials of a dataset, for every caller (e.g. after its state changed)."""
        for key in [k for k in self._cached if k[1] == dataset_id]:
            del self._cached[key]
        for callback in self._forget_hooks:
            callback(dataset_id)
