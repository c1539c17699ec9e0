"""S3Credentials and RefreshingCredentials: secrets hidden, cache, one refresh in flight."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from provena_like import TransferError, UsageError
from provena_like.storage import RefreshingCredentials, S3Credentials
from provena_like.storage.credentials import botocore_session


def make(
    n: int = 0, *, lifetime: float | None = 3600, prefix: str = "ds/1/", access: str = "write"
) -> S3Credentials:
    expiration = None if lifetime is None else datetime.now(UTC) + timedelta(seconds=lifetime)
    return S3Credentials(
        access_key_id=f"ASIAKEY{n:09d}",
        secret_access_key=f"super-secret-{n}",
        session_token=f"session-token-{n}",
        expiration=expiration,
        endpoint_url="http://127.0.0.1:1",
        region="us-east-1",
        bucket="b",
        prefix=prefix,
        access="write" if access == "write" else "read",
    )


class Provider:
    def __init__(self, lifetime: float | None = 3600, delay: float = 0.0) -> None:
        self.calls = 0
        self.lifetime = lifetime
        self.delay = delay
        self.prefix = "ds/1/"

    async def __call__(self) -> S3Credentials:
        self.calls += 1
        await anyio.sleep(self.delay)
        return make(self.calls, lifetime=self.lifetime, prefix=self.prefix)


def test_repr_hides_secrets() -> None:
    creds = make(7)
    text = repr(creds)
    assert "super-secret" not in text
    assert "session-token" not in text
    assert "ASIAKEY000000007" not in text  # masked
    assert "ds/1/" in text
    refreshing = RefreshingCredentials(Provider())
    assert "super-secret" not in repr(refreshing)


def test_validation() -> None:
    with pytest.raises(UsageError, match="prefix"):
        make(prefix="ds/1")
    with pytest.raises(UsageError, match="timezone"):
        dataclasses.replace(make(), expiration=datetime(2030, 1, 1))
    with pytest.raises(UsageError, match="access"):
        dataclasses.replace(make(), access="admin")  # type: ignore[arg-type]
    assert dataclasses.replace(make(), prefix="").prefix == ""
    assert make(lifetime=None).seconds_left() is None


def test_from_sts_accepts_the_response_shape() -> None:
    expiration = datetime(2030, 1, 1, tzinfo=UTC)
    response = {"AccessKeyId": "AK", "SecretAccessKey": "SK", "SessionToken": "T"}
    creds = S3Credentials.from_sts(
        {**response, "Expiration": expiration},
        endpoint_url=None,
        region="eu-west-1",
        bucket="b",
        prefix="p/",
    )
    assert (creds.session_token, creds.expiration, creds.access) == ("T", expiration, "read")
    iso = S3Credentials.from_sts(
        {"AccessKeyId": "AK", "SecretAccessKey": "SK", "Expiration": "2030-01-01T00:00:00Z"},
        endpoint_url=None,
        region="eu-west-1",
        bucket="b",
        prefix="p/",
    )
    assert iso.expiration == expiration
    assert iso.session_token is None


@pytest.mark.anyio
async def test_cached_until_the_margin_and_one_refresh_in_flight() -> None:
    provider = Provider(lifetime=3600, delay=0.05)
    refreshing = RefreshingCredentials(provider, refresh_margin=timedelta(minutes=5))
    results: list[S3Credentials] = []

    async def get() -> None:
        results.append(await refreshing.get())

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(get)
    assert provider.calls == 1
    assert len({r.access_key_id for r in results}) == 1
    assert await refreshing.get() is results[0]
    assert refreshing.generation == 1


@pytest.mark.anyio
async def test_refreshes_inside_the_margin() -> None:
    provider = Provider(lifetime=200)  # less than the 5-minute margin ...
    refreshing = RefreshingCredentials(provider)
    first = await refreshing.get()
    # ... so the margin shrinks to half the lifetime: still cached, not one refresh per call
    assert await refreshing.get() is first
    assert refreshing.effective_margin(first) <= timedelta(seconds=100)
    provider.lifetime = 0.2  # credentials that must be refreshed after ~0.1 s
    await refreshing.force_refresh()
    await anyio.sleep(0.15)
    third = await refreshing.get()
    assert provider.calls == 3
    assert third.access_key_id.endswith("3")


@pytest.mark.anyio
async def test_force_refresh_is_shared_by_requests_that_failed_together() -> None:
    provider = Provider(delay=0.05)
    refreshing = RefreshingCredentials(provider)
    await refreshing.get()
    seen = refreshing.generation

    async def failed_request() -> None:
        await refreshing.force_refresh(seen_generation=seen)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(failed_request)
    assert provider.calls == 2
    await refreshing.force_refresh()  # without a generation: always refreshes
    assert provider.calls == 3


@pytest.mark.anyio
async def test_a_provider_that_changes_location_is_refused() -> None:
    provider = Provider()
    refreshing = RefreshingCredentials(provider)
    await refreshing.get()
    provider.prefix = "ds/2/"
    with pytest.raises(TransferError, match="another location"):
        await refreshing.force_refresh()


@pytest.mark.anyio
async def test_botocore_sessions_sign_with_the_current_snapshot_after_forced_refreshes() -> None:
    provider = Provider()
    refreshing = RefreshingCredentials(provider)
    session = await botocore_session(refreshing)
    aio = await session.get_credentials()  # what its clients' request signers hold
    assert aio is not None
    frozen = await aio.get_frozen_credentials()
    assert frozen.access_key == "ASIAKEY000000001"
    await refreshing.force_refresh()
    frozen = await aio.get_frozen_credentials()
    assert (frozen.access_key, frozen.token) == ("ASIAKEY000000002", "session-token-2")
    assert frozen == await refreshing.frozen()
    assert "super-secret" not in repr(aio)


@pytest.mark.anyio
async def test_botocore_sessions_refresh_near_expiry_through_the_one_source() -> None:
    provider = Provider(lifetime=0.6)  # margin 0.3 s
    refreshing = RefreshingCredentials(provider)
    aio = await (await botocore_session(refreshing)).get_credentials()
    assert aio is not None
    assert (await aio.get_frozen_credentials()).access_key.endswith("1")
    await anyio.sleep(0.4)
    assert (await aio.get_frozen_credentials()).access_key.endswith("2")
    assert (await refreshing.frozen()).access_key.endswith("2")
    assert provider.calls == 2


@pytest.mark.anyio
async def test_botocore_sessions_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMTHEENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    session = await botocore_session(RefreshingCredentials(Provider()))
    aio = await session.get_credentials()
    assert aio is not None
    assert (await aio.get_frozen_credentials()).access_key == "ASIAKEY000000001"
