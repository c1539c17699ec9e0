"""``ProvenaClient``: one pool, one auth, every service.

Its attribute names say their layer (see :class:`ProvenaClient` and ``docs/architecture.md``):
a bare noun is an L3 module (``pv.datastore``), a ``_client`` suffix an L2 client, one per
service (``pv.registry_client``), and ``pv.auth_manager`` the L1 auth.

Example:
    ```python
    async with ProvenaClient.from_env() as pv:
        me = await pv.auth_client.userinfo()
        async for item in pv.registry_client.iter_items(subtype="person"):
            ...
    ```
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

import httpx
from pydantic import SecretStr

from provena_like._core.config import ProvenaConfig
from provena_like._core.errors import UsageError
from provena_like._core.http import ClientState, HTTPCore
from provena_like._core.lifecycle import AsyncCloseable
from provena_like._core.retry import RetryPolicy
from provena_like._core.sentinels import NOT_GIVEN, NotGiven

if TYPE_CHECKING:
    from provena_like.auth import AuthManager, TokenProvider
    from provena_like.clients.auth import AuthClient
    from provena_like.clients.crawl import CrawlClient
    from provena_like.clients.datastore import DatastoreClient
    from provena_like.clients.registry import RegistryClient
    from provena_like.clients.review import ReviewClient
    from provena_like.clients.search import SearchClient
    from provena_like.clients.transfer import TransferClient
    from provena_like.modules.archive import Archive
    from provena_like.modules.crawl_jobs import Crawler
    from provena_like.modules.datastore import Datastore
    from provena_like.modules.patcher import Patcher
    from provena_like.modules.registration import Registration

__all__ = ["ProvenaClient"]

_DEPRECATED_NAMES = {
    "registry": "registry_client",
    "search": "search_client",
    "auth": "auth_client",
}
"""Old attribute names (L2 clients without the suffix) → the names that say their layer."""


def _registry_client(pv: ProvenaClient) -> RegistryClient:
    from provena_like.clients.registry import RegistryClient

    return RegistryClient(pv.http_core)


def _search_client(pv: ProvenaClient) -> SearchClient:
    from provena_like.clients.search import SearchClient

    return SearchClient(pv.http_core)


def _auth_client(pv: ProvenaClient) -> AuthClient:
    from provena_like.clients.auth import AuthClient

    return AuthClient(pv.http_core)


def _datastore_client(pv: ProvenaClient) -> DatastoreClient:
    from provena_like.clients.datastore import DatastoreClient

    return DatastoreClient(pv.http_core)


def _review_client(pv: ProvenaClient) -> ReviewClient:
    from provena_like.clients.review import ReviewClient

    return ReviewClient(pv.http_core)


def _crawl_client(pv: ProvenaClient) -> CrawlClient:
    from provena_like.clients.crawl import CrawlClient

    return CrawlClient(pv.http_core)


def _crawler(pv: ProvenaClient) -> Crawler:
    from provena_like.modules.crawl_jobs import Crawler

    return Crawler(pv.crawl_client)


def _datastore(pv: ProvenaClient) -> Datastore:
    origin = pv._origin
    if origin is not None:  # a view: the origin's caches and engines, keyed by caller
        return origin.datastore.scoped(pv.datastore_client, pv.search_client, pv.review_client)
    from provena_like.modules.datastore import Datastore

    return Datastore(pv.datastore_client, pv.search_client, review_client=pv.review_client)


def _registration(pv: ProvenaClient) -> Registration:
    from provena_like.modules.registration import Registration

    return Registration(pv.registry_client)


def _patcher(pv: ProvenaClient) -> Patcher:
    from provena_like.modules.patcher import Patcher

    patcher = Patcher(pv.registry_client, pv.registration)
    # the transfer client is created only when a Globus repository is opened
    patcher.transfer = lambda: pv.transfer_client
    return patcher


def _archive(pv: ProvenaClient) -> Archive:
    from provena_like.clients.archive import ArchiveClient
    from provena_like.modules.archive import Archive

    # the transfer client is created only when files move or a location is listed
    return Archive(pv.registry_client, ArchiveClient(pv.http_core), lambda: pv.transfer_client)


_BUILT_ON_FIRST_USE: dict[str, Callable[[ProvenaClient], object]] = {
    "registry_client": _registry_client,
    "search_client": _search_client,
    "auth_client": _auth_client,
    "datastore_client": _datastore_client,
    "review_client": _review_client,
    "crawl_client": _crawl_client,
    "datastore": _datastore,
    "registration": _registration,
    "patcher": _patcher,
    "archive": _archive,
    "crawler": _crawler,
}
"""The service clients and modules, each built (and its models imported) on first access.

A command that only asks who the user is doesn't load the datastore's models, nor a script
that only reads the registry the S3 stack.
"""


class ProvenaClient(AsyncCloseable):
    """The entry point of the SDK: the typed clients of every service over one pool.

    Args:
        config: the settings; ``None`` builds one from ``config_overrides`` and the defaults
            (use :meth:`from_env` to read ``PROVENA_*`` variables and the config file).
        auth: how to sign requests; ``None`` uses ``AuthManager.from_config(config)``
            (static token, client credentials or a stored login, as configured).
        transport: an httpx transport instead of the network (tests, ASGI apps).
        retry_policy: replaces the retry policy built from ``config`` (e.g. a fake sleep).
        **config_overrides: fields of :class:`ProvenaConfig` that replace those of ``config``.

    The attribute names say their layer:

    * a bare noun is an **L3 module**, named after the user's job: ``datastore`` (with
      ``datastore.review`` for the release workflow), ``registration`` (sessions and
      their files, ALF-style), ``patcher`` (replace registered files in every
      repository holding them), ``archive`` and ``crawler`` (server-side crawl jobs);
    * a ``_client`` suffix is an **L2 client**, one per service, one method per route:
      ``registry_client``, ``search_client``, ``auth_client``, ``datastore_client``,
      ``review_client``, ``crawl_client``, and ``transfer_client`` (the
      Globus-compatible transfer service, over globus-sdk; created on first use);
    * ``auth_manager`` is the **L1** auth that signs every request.

    The clients and modules are built on first access, so building a client is cheap: the
    S3 stack (aioboto3, botocore) is imported when a transfer first needs it, and a service's
    models when its client is first used.

    The old names ``registry``, ``search`` and ``auth`` still return the L2 clients, with a
    :class:`DeprecationWarning`; they are kept free for L3 modules of those jobs.

    Attributes:
        config: the settings in use.
        datastore: the dataset workflows (L3: mint, upload, download, search, review, ...;
            :class:`~provena_like.modules.datastore.Datastore`).
        registration: sessions, their files, weighings (L3: ONE's registration;
            :class:`~provena_like.modules.registration.Registration`).
        patcher: replace registered files in every repository holding them, staged,
            verified and resumable (L3; :class:`~provena_like.modules.patcher.Patcher`).
        archive: archive raw data to storage locations, discover, retrieve (L3;
            :class:`~provena_like.modules.archive.Archive`).
        crawler: server-side crawl jobs of datasets and transfer collections: start, wait,
            read the records with acknowledged delivery (L3;
            :class:`~provena_like.modules.crawl_jobs.Crawler`).
        registry_client: the registry service
            (:class:`~provena_like.clients.registry.RegistryClient`).
        search_client: the search service (:class:`~provena_like.clients.search.SearchClient`).
        auth_client: the auth service's JSON API (:class:`~provena_like.clients.auth.AuthClient`).
        datastore_client: the datastore service's routes, one call each
            (:class:`~provena_like.clients.datastore.DatastoreClient`).
        review_client: the review and release routes, one call each
            (:class:`~provena_like.clients.review.ReviewClient`).
        crawl_client: the crawl-job routes, one call each
            (:class:`~provena_like.clients.crawl.CrawlClient`).
        transfer_client: the transfer service (Globus Transfer API), signed by
            ``auth_manager``, with ``config.transfer_locations`` as its labels
            (:class:`~provena_like.clients.transfer.TransferClient`; created on first use).
        auth_manager: the :class:`httpx.Auth` signing every request (L1).

    Raises:
        UsageError: an unknown or invalid config override.

    Example:
        ```python
        async with ProvenaClient(base_url="https://provena.example.org") as pv:
            item = await pv.registry_client.get_item("10378.1/42")
        ```
    """

    config: ProvenaConfig
    registry_client: RegistryClient
    search_client: SearchClient
    auth_client: AuthClient
    datastore_client: DatastoreClient
    review_client: ReviewClient
    crawl_client: CrawlClient
    datastore: Datastore
    registration: Registration
    patcher: Patcher
    archive: Archive
    crawler: Crawler
    auth_manager: httpx.Auth
    _created_auth: AuthManager | None
    _origin: ProvenaClient | None

    def __init__(
        self,
        config: ProvenaConfig | None = None,
        *,
        auth: httpx.Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_policy: RetryPolicy | None = None,
        **config_overrides: Any,
    ) -> None:
        if config is None:
            config = ProvenaConfig().replace(**config_overrides)
        elif config_overrides:
            config = config.replace(**config_overrides)
        if auth is None:
            from provena_like.auth import AuthManager

            manager = AuthManager.from_config(config)
            core = HTTPCore(config, auth=manager, transport=transport, retry_policy=retry_policy)
            # Token endpoint calls go through the same pool as everything else.
            manager.bind(core.http_client)
            # Created here, so closed here (and only here: a user's ``auth`` is theirs).
            self._setup(core, manager, created_auth=manager)
        else:
            core = HTTPCore(config, auth=auth, transport=transport, retry_policy=retry_policy)
            self._setup(core, auth, created_auth=None)

    def _setup(
        self,
        core: HTTPCore,
        auth_manager: httpx.Auth,
        *,
        created_auth: AuthManager | None,
        origin: ProvenaClient | None = None,
    ) -> None:
        self._core = core
        self._created_auth = created_auth
        self._transfer_client: TransferClient | None = None
        self.config = core.config
        self.auth_manager = auth_manager
        self._origin = origin
        self._is_view = core.is_view
        # the service clients and modules are built on first access (see ``__getattr__``)

    if not TYPE_CHECKING:  # type checkers see the attributes declared on the class

        def __getattr__(self, name: str) -> Any:
            build = _BUILT_ON_FIRST_USE.get(name)
            if build is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            value = build(self)
            setattr(self, name, value)  # found in the instance from now on
            return value

    @classmethod
    def from_env(cls, **overrides: Any) -> ProvenaClient:
        """Build a client from keyword arguments, ``PROVENA_*`` variables and the config file.

        Same precedence as :meth:`ProvenaConfig.load`; ``config_file``, ``auth``,
        ``transport`` and ``retry_policy`` are passed through.

        Example:
            ```python
            async with ProvenaClient.from_env(timeout=60) as pv:
                me = await pv.auth_client.userinfo()
            ```
        """
        auth = overrides.pop("auth", None)
        transport = overrides.pop("transport", None)
        retry_policy = overrides.pop("retry_policy", None)
        config_file = overrides.pop("config_file", None)
        config = ProvenaConfig.load(config_file, **overrides)
        return cls(config, auth=auth, transport=transport, retry_policy=retry_policy)

    def with_options(
        self,
        *,
        timeout: float | NotGiven = NOT_GIVEN,
        connect_timeout: float | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        max_retry_after: float | NotGiven = NOT_GIVEN,
        access_token: str | SecretStr | TokenProvider | NotGiven = NOT_GIVEN,
    ) -> ProvenaClient:
        """Return a copy with other timeouts or retries that shares this client's pool and auth.

        Closing the copy leaves the pool open; closing this client closes it for both.

        Args:
            timeout: seconds to wait for a response.
            connect_timeout: seconds to wait for a connection.
            max_retries: retries after the first attempt.
            max_retry_after: the longest ``Retry-After`` that is slept.
            access_token: act as the user of this token (or of a token provider): the
                copy is a view, as :meth:`as_user` makes.

        Raises:
            UsageError: an invalid value.

        Example:
            ```python
            patient = pv.with_options(timeout=300, max_retries=8)
            item = await patient.registry_client.get_item("10378.1/42")
            ```
        """
        changes: dict[str, Any] = {
            name: value
            for name, value in {
                "timeout": timeout,
                "connect_timeout": connect_timeout,
                "max_retries": max_retries,
                "max_retry_after": max_retry_after,
            }.items()
            if not isinstance(value, NotGiven)
        }
        core = self._core.with_config(self.config.replace(**changes))
        if not isinstance(access_token, NotGiven):
            return self._view(core, access_token)
        copy = object.__new__(ProvenaClient)
        # the original closes the auth it created; the copy closes its own engines
        copy._setup(core, self.auth_manager, created_auth=None)
        return copy

    def as_user(self, token: str | SecretStr | TokenProvider | httpx.Auth) -> ProvenaClient:
        """A view of this client that acts for one user: its own auth, this client's pool.

        For a web backend serving many users with one client: give each request a view
        with the token of the user it serves. Making one is cheap (no connection, no HTTP
        client, no token request). Its requests carry only its auth; what it caches for
        its user (scoped S3 credentials, open transfer engines) is filed under that
        identity and never handed to a caller with another token. A view owns nothing:
        closing it does nothing, and it works until this client is closed.

        The auth of the client itself can't be switched between users (changing the HTTP
        client's ``auth`` or ``headers`` raises :class:`~provena_like.UsageError`): that
        sent one user's requests with another's token when requests overlapped.

        Args:
            token: the user's access token; or a function (sync or async) returning their
                current token, called before each request; or any :class:`httpx.Auth`
                that signs each request for that one user.

        Raises:
            UsageError: an empty token.

        Example:
            ```python
            async with ProvenaClient.from_env() as pv:
                alice_token = await pv.auth_manager.get_access_token()  # a request's, in a backend
                alice = pv.as_user(alice_token)
                me = await alice.auth_client.userinfo()
                assert alice.http_core.http_client is pv.http_core.http_client
            ```
        """
        return self._view(self._core, token)

    def _view(
        self, core: HTTPCore, token: str | SecretStr | TokenProvider | httpx.Auth
    ) -> ProvenaClient:
        from provena_like.auth import BearerAuth

        auth = token if isinstance(token, httpx.Auth) else BearerAuth(token)
        view = object.__new__(ProvenaClient)
        # owns nothing, so it never closes: the engines it opens stay usable in this
        # client's pool (their credentials are refreshed through the view) until it closes
        view._setup(core.with_auth(auth), auth, created_auth=None, origin=self)
        return view

    @property
    def is_view(self) -> bool:
        """Whether this client is a view acting for one user (see :meth:`as_user`)."""
        return self._is_view

    def _deprecated(self, old: str) -> None:
        new = _DEPRECATED_NAMES[old]
        warnings.warn(
            f"ProvenaClient.{old} is deprecated; use ProvenaClient.{new} (L2 clients carry "
            "a '_client' suffix, bare names are L3 modules)",
            DeprecationWarning,
            stacklevel=3,
        )

    @property
    def registry(self) -> RegistryClient:
        """Deprecated: use :attr:`registry_client`."""
        self._deprecated("registry")
        return self.registry_client

    @property
    def search(self) -> SearchClient:
        """Deprecated: use :attr:`search_client`."""
        self._deprecated("search")
        return self.search_client

    @property
    def auth(self) -> AuthClient:
        """Deprecated: use :attr:`auth_client`."""
        self._deprecated("auth")
        return self.auth_client

    @property
    def transfer_client(self) -> TransferClient:
        """The transfer service's L2 client, created on first use and closed with this client.

        It talks to ``config.service_url("transfer")`` (``base_url`` by default) through
        globus-sdk, signed with this client's auth; ``config.transfer_locations`` are its
        location labels. Its requests go through globus-sdk's own ``requests`` sessions,
        not this client's httpx pool (so a ``transport=`` given here does not apply). For
        real Globus build a :class:`~provena_like.clients.transfer.TransferClient` with a
        Globus login instead.

        Raises:
            UsageError: the client is closed, or is a view from :meth:`as_user` (a view owns
                nothing, so it can't keep a transfer client open: open one per request).

        Example:
            ```python
            listing = await pv.transfer_client.ls("lab-server:subjects")
            ```
        """
        if self._transfer_client is None:
            if self.is_closed:
                raise UsageError("the ProvenaClient is closed")
            if self._is_view:
                # a view owns nothing and is never closed: its transfer client's threads
                # and sessions would outlive every request
                raise UsageError(
                    "a view from as_user() has no transfer_client; open one for the request: "
                    "`async with TransferClient(base_url=..., auth=view.auth_manager) as tc:`"
                )
            from provena_like.clients.transfer import TransferClient

            self._transfer_client = TransferClient(
                base_url=self.config.service_url("transfer") + "/",
                auth=self.auth_manager,
                locations=self.config.transfer_locations,
                http_timeout=self.config.timeout,
                max_retries=self.config.max_retries,
            )
        return self._transfer_client

    @property
    def http_core(self) -> HTTPCore:
        """The HTTP core shared by the service clients (for new L2 clients and L3 modules)."""
        return self._core

    @property
    def is_closed(self) -> bool:
        """Whether the client was closed (it cannot be reopened)."""
        return self._core.state is ClientState.CLOSED

    async def __aenter__(self) -> Self:
        await self._core.__aenter__()
        return self

    async def aclose(self) -> None:
        """Close the transfer engines kept open, the pool and everything else this client created.

        That is the engines of :attr:`datastore`, the :attr:`transfer_client` (if it was
        used), the pool and, when ``auth`` was not given,
        the ``AuthManager`` built from the config (with any HTTP client of its own). An
        ``auth`` or ``transport`` passed in is left open: close what you created. A copy from
        :meth:`with_options` closes nothing but itself, and a view from :meth:`as_user`
        nothing at all (it works until this client is closed). The client can't be used
        afterwards.

        Example:
            ```python
            pv = ProvenaClient.from_env()
            try:
                me = await pv.auth_client.userinfo()
            finally:
                await pv.aclose()
            ```
        """
        try:
            transfer, self._transfer_client = self._transfer_client, None
            if transfer is not None:
                await transfer.aclose()
            datastore: Datastore | None = vars(self).get("datastore")
            if datastore is not None:  # never used, nothing to close
                await datastore.aclose()
        finally:
            try:
                await self._core.aclose()
            finally:
                created, self._created_auth = self._created_auth, None
                if created is not None:
                    await created.aclose()

    def __repr__(self) -> str:
        view = ", view" if self._is_view else ""
        return f"ProvenaClient(base_url={self.config.base_url!r}{view})"
