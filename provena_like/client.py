"""``ProvenaClient``: one pool, one auth, every service.

::

    async with ProvenaClient.from_env() as pv:
        me = await pv.auth.userinfo()
        async for item in pv.registry.iter_items(subtype="person"):
            ...
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import aioboto3
import httpx

from provena_like._core.config import ProvenaConfig
from provena_like._core.http import ClientState, HTTPCore
from provena_like._core.retry import RetryPolicy
from provena_like._core.sentinels import NOT_GIVEN, NotGiven
from provena_like.clients.auth import AuthClient
from provena_like.clients.datastore import DatastoreClient
from provena_like.clients.registry import RegistryClient
from provena_like.clients.review import ReviewClient
from provena_like.clients.search import SearchClient
from provena_like.modules.datastore import Datastore

__all__ = ["ProvenaClient"]


class ProvenaClient:
    """The entry point of the SDK: the typed clients of every service over one pool.

    Args:
        config: the settings; ``None`` builds one from ``config_overrides`` and the defaults
            (use :meth:`from_env` to read ``PROVENA_*`` variables and the config file).
        auth: how to sign requests; ``None`` uses ``AuthManager.from_config(config)``
            (static token, client credentials or a stored login, as configured).
        transport: an httpx transport instead of the network (tests, ASGI apps).
        retry_policy: replaces the retry policy built from ``config`` (e.g. a fake sleep).
        **config_overrides: fields of :class:`ProvenaConfig` that replace those of ``config``.

    Attributes:
        config: the settings in use.
        registry: the registry service (:class:`~provena_like.clients.registry.RegistryClient`).
        search: the search service (:class:`~provena_like.clients.search.SearchClient`).
        auth: the auth service's JSON API (:class:`~provena_like.clients.auth.AuthClient`).
        datastore_client: the datastore service's routes, one call each
            (:class:`~provena_like.clients.datastore.DatastoreClient`).
        review_client: the review and release routes, one call each
            (:class:`~provena_like.clients.review.ReviewClient`).
        datastore: the dataset workflows (L3: mint, upload, download, search, ...;
            :class:`~provena_like.modules.datastore.Datastore`).
        auth_manager: the :class:`httpx.Auth` signing every request.

    Raises:
        UsageError: an unknown or invalid config override.

    Example:
        >>> # async with ProvenaClient(base_url="https://provena.example.org") as pv:
        >>> #     item = await pv.registry.get_item("10378.1/42")
    """

    config: ProvenaConfig
    registry: RegistryClient
    search: SearchClient
    auth: AuthClient
    datastore_client: DatastoreClient
    review_client: ReviewClient
    datastore: Datastore
    auth_manager: httpx.Auth

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
            self._setup(core, manager, aioboto3.Session())
        else:
            core = HTTPCore(config, auth=auth, transport=transport, retry_policy=retry_policy)
            self._setup(core, auth, aioboto3.Session())

    def _setup(
        self, core: HTTPCore, auth_manager: httpx.Auth, s3_session: aioboto3.Session
    ) -> None:
        self._core = core
        self.config = core.config
        self.auth_manager = auth_manager
        self.registry = RegistryClient(core)
        self.search = SearchClient(core)
        self.auth = AuthClient(core)
        self.datastore_client = DatastoreClient(core)
        self.review_client = ReviewClient(core)
        # one aioboto3 session per client: transfers reuse its loaded botocore data
        self._s3_session = s3_session
        self.datastore = Datastore(
            self.datastore_client,
            self.search,
            review_client=self.review_client,
            session=s3_session,
        )

    @classmethod
    def from_env(cls, **overrides: Any) -> ProvenaClient:
        """Build a client from keyword arguments, ``PROVENA_*`` variables and the config file.

        Same precedence as :meth:`ProvenaConfig.load`; ``config_file``, ``auth``,
        ``transport`` and ``retry_policy`` are passed through.

        Example:
            >>> # async with ProvenaClient.from_env(timeout=60) as pv:
            >>> #     me = await pv.auth.userinfo()
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
    ) -> ProvenaClient:
        """Return a copy with other timeouts or retries that shares this client's pool and auth.

        Closing the copy leaves the pool open; closing this client closes it for both.

        Args:
            timeout: seconds to wait for a response.
            connect_timeout: seconds to wait for a connection.
            max_retries: retries after the first attempt.
            max_retry_after: the longest ``Retry-After`` that is slept.

        Raises:
            UsageError: an invalid value.

        Example:
            >>> # patient = pv.with_options(timeout=300, max_retries=8)
            >>> # item = await patient.registry.get_item("10378.1/42")
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
        copy = object.__new__(ProvenaClient)
        copy._setup(core, self.auth_manager, self._s3_session)
        return copy

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

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the transfer engines kept open and the connection pool; then the client is done.

        Example:
            >>> # pv = ProvenaClient.from_env()
            >>> # try: ...
            >>> # finally: await pv.aclose()
        """
        try:
            await self.datastore.aclose()
        finally:
            await self._core.aclose()

    def __repr__(self) -> str:
        return f"ProvenaClient(base_url={self.config.base_url!r})"
