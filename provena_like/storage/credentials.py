"""Scoped S3 credentials and their transparent refresh: the engine's one credential source.

A dataset's files live under one prefix of one bucket. The server hands out short-lived
credentials (STS ``AssumeRole`` with a session policy limited to that prefix); the engine
sees them as :class:`S3Credentials`. Long transfers outlive them, so the engine signs every
request through one :class:`RefreshingCredentials`, which asks a :data:`CredentialsProvider`
(e.g. "call the datastore's credentials endpoint again") for new ones.

The path from a dataset id to a signed request:

1. ``pv.datastore.credentials(dataset_id, access)`` returns the wire model
   :class:`~provena_like.models.datastore.ScopedCredentials`, cached per (caller, dataset,
   access) by :class:`~provena_like.modules.credentials.CredentialsCache`;
2. :func:`~provena_like.modules.credentials.to_s3_credentials` turns it into
   :class:`S3Credentials` (plain strings, location checked);
3. a :class:`RefreshingCredentials` over that provider caches them until shortly before
   expiry, with a single refresh in flight, and hands out frozen snapshots
   (:meth:`RefreshingCredentials.frozen`);
4. both request paths sign with those snapshots: the direct path's SigV4 signer
   (:mod:`._sigv4`) directly, aiobotocore through a session whose only credential provider
   is this object (:func:`botocore_session`, a supported botocore extension point);
5. after S3 said the keys expired (``ExpiredToken``, ``InvalidAccessKeyId``), the transport
   calls :meth:`RefreshingCredentials.force_refresh`, once for all requests that failed
   together, and resends.

Example:
    ```python
    async def provider() -> S3Credentials:
        return await datastore.storage_credentials(dataset_id, access="write")
    creds = RefreshingCredentials(provider)
    async with TransferEngine(creds) as engine:
        await engine.upload(Path("./data"))
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import anyio
from aiobotocore.credentials import AioCredentialResolver, AioCredentials
from aiobotocore.session import AioSession
from botocore.credentials import CredentialProvider, ReadOnlyCredentials

from provena_like._core.errors import TransferError, UsageError

if TYPE_CHECKING:
    from provena_like.models.datastore import ScopedCredentials

__all__ = [
    "Access",
    "CredentialsProvider",
    "RefreshingCredentials",
    "S3Credentials",
    "botocore_session",
]

log = logging.getLogger(__name__)

Access = Literal["read", "write"]
"""What the credentials allow on the dataset's prefix."""

_DEFAULT_MARGIN = timedelta(minutes=5)
_METHOD = "provena-like"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _mask(value: str) -> str:
    """Show the first four and last four characters of an access key id."""
    if len(value) <= 8:
        return "****"
    return f"{value[:4]}…{value[-4:]}"


@dataclass(frozen=True, kw_only=True, repr=False)
class S3Credentials:
    """Keys for one dataset's prefix on one S3 endpoint.

    Secrets never appear in ``repr`` (the access key id is shown masked).

    Attributes:
        access_key_id: The access key id.
        secret_access_key: The secret access key.
        session_token: The STS session token; ``None`` for static keys.
        expiration: When the keys stop working (timezone-aware), ``None`` if they don't expire.
        endpoint_url: The S3 endpoint, e.g. ``http://127.0.0.1:8333``; ``None`` for AWS.
        region: The region requests are signed for.
        bucket: The bucket holding the dataset.
        prefix: The dataset's prefix inside the bucket; ``""`` or ending with ``/``.
        access: ``"read"`` or ``"write"``.

    Example:
        ```python
        creds = S3Credentials(
            access_key_id="ASIAEXAMPLE12345",
            secret_access_key="wJalrXUtnFEMI",
            session_token="token",
            expiration=None,
            endpoint_url="http://127.0.0.1:8333",
            region="us-east-1",
            bucket="provena",
            prefix="datasets/10378.1-42/",
            access="write",
        )
        assert not "wJalrXUtnFEMI" in repr(creds)
        ```
    """

    access_key_id: str
    secret_access_key: str
    session_token: str | None
    expiration: datetime | None
    endpoint_url: str | None
    region: str
    bucket: str
    prefix: str
    access: Access = "read"

    def __post_init__(self) -> None:
        if not self.access_key_id or not self.secret_access_key:
            raise UsageError("S3Credentials need an access key id and a secret access key")
        if not self.bucket:
            raise UsageError("S3Credentials need a bucket")
        if self.prefix and (not self.prefix.endswith("/") or self.prefix.startswith("/")):
            raise UsageError(
                f"the dataset prefix must be empty or end with '/' (and not start with it), "
                f"got {self.prefix!r}"
            )
        if self.expiration is not None and self.expiration.utcoffset() is None:
            raise UsageError("S3Credentials.expiration must be timezone-aware")
        if self.access not in ("read", "write"):
            raise UsageError(f"access must be 'read' or 'write', got {self.access!r}")

    @classmethod
    def from_scoped(cls, creds: ScopedCredentials) -> S3Credentials:
        """The engine's view of credentials the server minted (a dataset's or a repository's).

        Args:
            creds: The wire model, e.g. from ``pv.datastore.credentials(...)`` or
                ``pv.registry_client.get_repository_credentials(...)``.

        Example:
            ```python
            scoped = await pv.registry_client.get_repository_credentials(repository_id)
            creds = S3Credentials.from_scoped(scoped)
            assert creds.prefix == scoped.prefix
            ```
        """
        return cls(
            access_key_id=creds.access_key_id,
            secret_access_key=creds.secret_access_key.get_secret_value(),
            session_token=creds.session_token.get_secret_value(),
            expiration=creds.expiration,
            endpoint_url=creds.endpoint_url,
            region=creds.region,
            bucket=creds.bucket,
            prefix=creds.prefix,
            access=creds.access,
        )

    def __repr__(self) -> str:
        expires = "never" if self.expiration is None else self.expiration.isoformat()
        return (
            f"S3Credentials(access_key_id={_mask(self.access_key_id)!r}, <secrets hidden>, "
            f"endpoint_url={self.endpoint_url!r}, bucket={self.bucket!r}, "
            f"prefix={self.prefix!r}, access={self.access!r}, expiration={expires})"
        )

    def seconds_left(self, now: datetime | None = None) -> float | None:
        """Seconds until expiry (negative once expired), ``None`` if they don't expire.

        Example:
            ```python
            assert creds.seconds_left() is None
            ```
        """
        if self.expiration is None:
            return None
        return (self.expiration - (now or _utcnow())).total_seconds()

    def same_location(self, other: S3Credentials) -> bool:
        """Whether ``other`` addresses the same endpoint, region, bucket and prefix.

        Example:
            ```python
            assert creds.same_location(dataclasses.replace(creds, access="read"))
            ```
        """
        return (self.endpoint_url, self.region, self.bucket, self.prefix) == (
            other.endpoint_url,
            other.region,
            other.bucket,
            other.prefix,
        )

    @classmethod
    def from_sts(
        cls,
        credentials: dict[str, Any],
        *,
        endpoint_url: str | None,
        region: str,
        bucket: str,
        prefix: str,
        access: Access = "read",
    ) -> S3Credentials:
        """Build from the ``Credentials`` member of an STS ``AssumeRole`` response.

        Example:
            ```python
            response = sts.assume_role(RoleArn=arn, RoleSessionName="s", Policy=policy)

            S3Credentials.from_sts(response["Credentials"], endpoint_url=url,
                region="us-east-1", bucket="provena", prefix="ds/1/")
            ```
        """
        expiration = credentials.get("Expiration")
        if isinstance(expiration, str):
            expiration = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
        return cls(
            access_key_id=credentials["AccessKeyId"],
            secret_access_key=credentials["SecretAccessKey"],
            session_token=credentials.get("SessionToken"),
            expiration=expiration,
            endpoint_url=endpoint_url,
            region=region,
            bucket=bucket,
            prefix=prefix,
            access=access,
        )


CredentialsProvider = Callable[[], Awaitable[S3Credentials]]
"""An async callable that returns fresh credentials for the same dataset and access."""


class RefreshingCredentials:
    """Credentials from a provider, cached until shortly before they expire.

    The cache is refreshed ``refresh_margin`` before expiry; for credentials that live less
    than twice the margin (e.g. a 15-minute STS session with a 10-minute margin, or 3-second
    test credentials), the margin shrinks to half their lifetime so that a refresh is not
    attempted on every request. At most one call to the provider is in flight at a time.

    Every refreshed set must address the same endpoint, region, bucket and prefix as the
    first one (:class:`~provena_like.TransferError` otherwise).

    Args:
        provider: Returns new credentials when called.
        refresh_margin: How long before expiry to refresh.

    Example:
        ```python
        margin = timedelta(minutes=2)
        creds = RefreshingCredentials(provider, refresh_margin=margin)
        first = await creds.get()
        again = await creds.get()  # cached: the provider is not called
        ```
    """

    def __init__(
        self,
        provider: CredentialsProvider,
        *,
        refresh_margin: timedelta = _DEFAULT_MARGIN,
    ) -> None:
        if refresh_margin < timedelta(0):
            raise UsageError("refresh_margin must not be negative")
        self._provider = provider
        self._margin = refresh_margin
        self._lock = anyio.Lock()
        self._current: S3Credentials | None = None
        self._refresh_after: datetime | None = None
        self._generation = 0
        self._snapshot: ReadOnlyCredentials | None = None

    def __repr__(self) -> str:
        return (
            f"RefreshingCredentials(current={self._current!r}, generation={self._generation}, "
            f"refresh_margin={self._margin})"
        )

    @property
    def current(self) -> S3Credentials | None:
        """The cached credentials (``None`` before the first :meth:`get`)."""
        return self._current

    @property
    def generation(self) -> int:
        """How many times credentials were obtained; grows by one per provider call."""
        return self._generation

    @property
    def refresh_margin(self) -> timedelta:
        """How long before expiry credentials are refreshed (before shrinking)."""
        return self._margin

    def _fresh(self, now: datetime) -> bool:
        if self._current is None:
            return False
        return self._refresh_after is None or now < self._refresh_after

    async def get(self) -> S3Credentials:
        """Return valid credentials, calling the provider only when needed.

        Returns:
            The cached credentials, or new ones if they were about to expire.

        Raises:
            TransferError: If the provider returned credentials for another location.
            Exception: Whatever the provider raises.
        """
        current = self._current
        if current is not None and self._fresh(_utcnow()):
            return current
        async with self._lock:
            current = self._current
            if current is not None and self._fresh(_utcnow()):
                return current
            return await self._refresh_locked()

    async def force_refresh(self, *, seen_generation: int | None = None) -> S3Credentials:
        """Get new credentials now, e.g. after the server answered ``ExpiredToken``.

        Args:
            seen_generation: The :attr:`generation` the failed request was signed with. When
                credentials were refreshed since (another request already did it), they are
                returned without calling the provider again.

        Returns:
            The new credentials.
        """
        async with self._lock:
            current = self._current
            if (
                current is not None
                and seen_generation is not None
                and self._generation > seen_generation
            ):
                return current
            return await self._refresh_locked()

    async def _refresh_locked(self) -> S3Credentials:
        new = await self._provider()
        if not isinstance(new, S3Credentials):
            raise UsageError(
                f"the credentials provider must return S3Credentials, got {type(new).__name__}"
            )
        if self._current is not None and not new.same_location(self._current):
            raise TransferError(
                "the credentials provider returned credentials for another location "
                f"({new.bucket}/{new.prefix} instead of "
                f"{self._current.bucket}/{self._current.prefix})"
            )
        now = _utcnow()
        self._current = new
        self._generation += 1
        self._refresh_after = self._refresh_time(new, now)
        left = new.seconds_left(now)
        log.debug(
            "obtained S3 credentials #%d for %s/%s (%s)",
            self._generation,
            new.bucket,
            new.prefix,
            "no expiry" if left is None else f"expire in {left:.0f}s",
        )
        self._snapshot = ReadOnlyCredentials(
            new.access_key_id, new.secret_access_key, new.session_token
        )
        return new

    async def frozen(self) -> ReadOnlyCredentials:
        """The keys to sign the next request with: a snapshot of :meth:`get`'s credentials.

        Both request paths of the engine call this for every request (the direct path's
        signer, and aiobotocore's through :func:`botocore_session`), so a refresh reaches
        both at once.

        Example:
            ```python
            keys = await creds.frozen()
            print(keys.access_key)
            ```
        """
        await self.get()
        assert self._snapshot is not None  # set with every new set of credentials
        return self._snapshot

    @classmethod
    def fixed(cls, credentials: S3Credentials) -> RefreshingCredentials:
        """Credentials that are never refreshed (the provider hands out ``credentials``).

        Example:
            ```python
            static = RefreshingCredentials.fixed(creds)
            ```
        """

        async def same() -> S3Credentials:
            return credentials

        return cls(same)

    def effective_margin(self, creds: S3Credentials, now: datetime | None = None) -> timedelta:
        """The refresh margin applied to ``creds``: at most half their remaining lifetime.

        Example:
            ```python
            refreshing.effective_margin(three_second_creds)
            # datetime.timedelta(seconds=1, microseconds=500000)
            ```
        """
        left = creds.seconds_left(now)
        if left is None:
            return self._margin
        return min(self._margin, timedelta(seconds=max(left, 0.0) / 2))

    def _refresh_time(self, creds: S3Credentials, now: datetime) -> datetime | None:
        if creds.expiration is None:
            return None
        return creds.expiration - self.effective_margin(creds, now)


class _Snapshots(AioCredentials):
    """aiobotocore credentials whose every signature uses :meth:`RefreshingCredentials.frozen`.

    ``get_frozen_credentials`` is the public method aiobotocore's request signer calls
    before each signature; overriding it keeps one refresh logic (ours) for both paths.
    """

    def __init__(self, owner: RefreshingCredentials, first: S3Credentials) -> None:
        super().__init__(
            access_key=first.access_key_id,
            secret_key=first.secret_access_key,
            token=first.session_token,
            method=_METHOD,
        )
        self._owner = owner

    def __repr__(self) -> str:
        return "<provena-like S3 credentials (secrets hidden)>"

    # aiobotocore's signer awaits it (AioCredentials.get_frozen_credentials is async); the
    # stubs only know botocore's synchronous base method
    async def get_frozen_credentials(self) -> ReadOnlyCredentials:  # type: ignore[override]
        return await self._owner.frozen()


class _Provider(CredentialProvider):
    """The only entry of an engine session's credential chain."""

    METHOD = _METHOD
    CANONICAL_NAME = "custom-provena-like"

    def __init__(self, credentials: _Snapshots) -> None:
        super().__init__()
        self._credentials = credentials

    async def load(self) -> _Snapshots:  # aiobotocore's resolver awaits ``load``
        return self._credentials


async def botocore_session(
    credentials: RefreshingCredentials, *, models_from: AioSession | None = None
) -> AioSession:
    """A new aiobotocore session whose clients sign with ``credentials``, refreshed as due.

    The session's credential chain (botocore's ``credential_provider`` component, replaced
    through the public ``register_component``) holds one provider: ours. Environment
    variables, profiles and instance metadata are never consulted. Each session resolves
    credentials once, so every engine gets its own; ``models_from`` shares the botocore
    data loader of another session, so that a client is made in ~10 ms instead of loading
    botocore's JSON models again (~100 ms).

    Args:
        credentials: Where the keys come from.
        models_from: A session whose loaded models to reuse.

    Returns:
        The session; make clients with ``session.create_client("s3", ...)`` without keys.

    Example:
        ```python
        session = await botocore_session(creds)
        async with session.create_client("s3", endpoint_url=url) as s3:
            await s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        ```
    """
    first = await credentials.get()
    session = AioSession()
    if models_from is not None:
        session.register_component("data_loader", models_from.get_component("data_loader"))
    resolver = AioCredentialResolver([_Provider(_Snapshots(credentials, first))])
    session.register_component("credential_provider", resolver)
    return session
