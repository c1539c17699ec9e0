"""Scoped storage credentials per (dataset, access), cached until shortly before expiry.

Before asking for new *write* credentials the cache fetches the dataset and refuses, with a
typed error saying why, when its files can't change: :class:`~provena_like.Locked` for a
locked dataset, :class:`~provena_like.ReleaseStateConflict` for one that is ``PENDING``
review or ``RELEASED`` (see :func:`write_refusal`). The server refuses those too; checking
first turns a long upload's credential refresh into one clear message instead of a 409 in
the middle of a transfer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio

from provena_like._core.errors import APIStatusError, Locked, ReleaseStateConflict
from provena_like.clients.datastore import DatastoreClient
from provena_like.models.datastore import AccessLevel, Dataset, ScopedCredentials
from provena_like.storage import S3Credentials

__all__ = ["CredentialsCache", "to_s3_credentials", "write_refusal"]


def write_refusal(dataset: Dataset) -> APIStatusError | None:
    """The error that says why ``dataset``'s files can't change, or None if they can.

    Example:
        ```python
        if (err := write_refusal(await pv.datastore.fetch(dataset_id))) is not None:
            print(err)   # "Dataset 10378.1/42 is PENDING review ..."
        ```
    """
    state = dataset.release_status
    details = {"state": state}
    if dataset.locked:
        return Locked(
            f"Dataset {dataset.id} is locked, so its files can't change: no write credentials "
            "were asked for. Ask an admin of the dataset to unlock it.",
            status_code=409,
            code="locked",
            details=details,
            service="datastore",
        )
    if state == "PENDING":
        reviewer = dataset.release_reviewer or "the reviewer"
        return ReleaseStateConflict(
            f"Dataset {dataset.id} is PENDING review by {reviewer} (requested by "
            f"{dataset.release_requester or 'its admin'}), so its files can't change: no write "
            "credentials were asked for. Wait for the decision, or withdraw the request "
            "(pv.datastore.review.withdraw) to change it first.",
            status_code=409,
            code="under_review",
            details=details,
            service="datastore",
        )
    if state == "RELEASED":
        return ReleaseStateConflict(
            f"Dataset {dataset.id} is RELEASED, so its files can't change any more: no write "
            "credentials were asked for. Create a new version (ds.version(...)) to change them.",
            status_code=409,
            code="released",
            details=details,
            service="datastore",
        )
    return None


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
        """Credentials for ``dataset_id``; ``force`` asks for new ones whatever the cache holds.

        Raises:
            Locked: write access to a locked dataset (checked before asking).
            ReleaseStateConflict: write access to a dataset in review or released.
        """
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
            if access == "write":
                refusal = write_refusal(await self._client.get_dataset(dataset_id))
                if refusal is not None:
                    raise refusal
            fetched = datetime.now(UTC)
            creds = await self._client.get_credentials(dataset_id, access)
            self._cached[key] = (creds, fetched)
            return creds

    def forget(self, dataset_id: str) -> None:
        """Drop cached credentials of a dataset (e.g. after its state changed)."""
        for key in [k for k in self._cached if k[0] == dataset_id]:
            del self._cached[key]
