"""Scoped storage credentials per (dataset, access), cached until shortly before expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio

from provena_like.clients.datastore import DatastoreClient
from provena_like.models.datastore import AccessLevel, ScopedCredentials
from provena_like.storage import S3Credentials

__all__ = ["CredentialsCache", "to_s3_credentials"]


def to_s3_credentials(creds: ScopedCredentials) -> S3Credentials:
    """The storage engine's view of credentials minted by the datastore."""
    return S3Credentials(
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


class CredentialsCache:
    """Hands out credentials for a dataset, asking the server only when needed.

    Cached credentials are reused until ``margin`` before they expire (never past the
    halfway point of a short lifetime); one request per (dataset, access) is in flight at a
    time, so a burst of callers makes one call.
    """

    def __init__(self, client: DatastoreClient, *, margin: timedelta = timedelta(minutes=5)):
        self._client = client
        self._margin = margin
        self._cached: dict[tuple[str, AccessLevel], tuple[ScopedCredentials, datetime]] = {}
        self._locks: dict[tuple[str, AccessLevel], anyio.Lock] = {}

    def __repr__(self) -> str:
        return f"CredentialsCache({len(self._cached)} cached, margin={self._margin})"

    def _usable(self, key: tuple[str, AccessLevel], now: datetime) -> ScopedCredentials | None:
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
        """Credentials for ``dataset_id``; ``force`` asks for new ones whatever the cache holds."""
        key = (dataset_id, access)
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
            creds = await self._client.get_credentials(dataset_id, access)
            self._cached[key] = (creds, fetched)
            return creds

    def forget(self, dataset_id: str) -> None:
        """Drop cached credentials of a dataset (e.g. after its state changed)."""
        for key in [k for k in self._cached if k[0] == dataset_id]:
            del self._cached[key]
