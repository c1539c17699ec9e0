"""Credentials that expire mid-transfer: 3-second STS sessions on a real SeaweedFS."""

from __future__ import annotations

import dataclasses
import logging
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from provena_like.storage import (
    FileStarted,
    RefreshingCredentials,
    S3Credentials,
    TransferEngine,
    TransferEvent,
)
from provena_like.testing.seaweed import SeaweedS3
from tests.support.storage_helpers import BUCKET, mint

pytestmark = pytest.mark.anyio

FILES = 48
LIFETIME = 3.0


@pytest.fixture(scope="module")
def short_lived_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    instance = SeaweedS3(tmp_path_factory.mktemp("expiry-s3") / "s3", token_duration="3s")
    instance.start()
    try:
        instance.create_bucket(BUCKET)
        yield instance
    finally:
        instance.stop()


class Minter:
    """A provider that mints a fresh 3-second session each time (as the datastore would).

    With ``hide_expiry`` it claims the credentials last an hour, so nothing refreshes them
    ahead of time and every refresh is forced by the server's 403.
    """

    def __init__(self, store: SeaweedS3, prefix: str, *, hide_expiry: bool = False) -> None:
        self.store = store
        self.prefix = prefix
        self.hide_expiry = hide_expiry
        self.calls = 0

    async def __call__(self) -> S3Credentials:
        self.calls += 1
        creds = await anyio.to_thread.run_sync(lambda: mint(self.store, self.prefix, duration=None))
        left = creds.seconds_left()
        assert left is not None and left <= LIFETIME + 1
        if self.hide_expiry:
            assert creds.expiration is not None
            creds = dataclasses.replace(creds, expiration=creds.expiration + timedelta(hours=1))
        return creds


def slow_start(seconds: float):  # type: ignore[no-untyped-def]
    """A progress callback that spreads the batch's requests over time."""

    async def on_event(event: TransferEvent) -> None:
        if isinstance(event, FileStarted):
            await anyio.sleep(seconds)

    return on_event


async def run_batch_outliving_credentials(
    tmp_path: Path, provider: Minter, caplog: pytest.LogCaptureFixture
) -> float:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(FILES):
        (src / f"f{i:02d}.bin").write_bytes(os.urandom(1000 + i))
    refreshing = RefreshingCredentials(provider)
    started = anyio.current_time()
    caplog.set_level(logging.INFO, logger="provena_like.storage")
    # 4 files at a time, each waiting 0.3 s: 12 rounds ~ 3.6 s per batch, > the 3 s lifetime
    async with TransferEngine(refreshing, max_concurrency=2) as engine:
        up = await engine.upload(src, progress=slow_start(0.3))
        down = await engine.download("", tmp_path / "dst", progress=slow_start(0.3))
    elapsed = anyio.current_time() - started
    assert up.failed == [] and len(up.ok) == FILES
    assert down.failed == [] and len(down.ok) == FILES
    for f in down.ok:
        assert (tmp_path / "dst" / f.path).read_bytes() == (src / f.path).read_bytes()
    return elapsed


async def test_credentials_refreshed_ahead_of_expiry(
    tmp_path: Path, short_lived_store: SeaweedS3, caplog: pytest.LogCaptureFixture
) -> None:
    provider = Minter(short_lived_store, f"ds/{uuid.uuid4().hex[:8]}/")
    elapsed = await run_batch_outliving_credentials(tmp_path, provider, caplog)
    assert elapsed > 2 * LIFETIME
    assert provider.calls >= 3  # refreshed by aiobotocore through RefreshingCredentials
    assert "credentials expired" not in caplog.text  # ... before the server refused them


async def test_expired_credentials_are_refreshed_and_the_request_retried(
    tmp_path: Path, short_lived_store: SeaweedS3, caplog: pytest.LogCaptureFixture
) -> None:
    provider = Minter(short_lived_store, f"ds/{uuid.uuid4().hex[:8]}/", hide_expiry=True)
    elapsed = await run_batch_outliving_credentials(tmp_path, provider, caplog)
    assert elapsed > 2 * LIFETIME
    assert provider.calls >= 3
    assert "S3 credentials expired (InvalidAccessKeyId)" in caplog.text


async def test_a_real_denial_costs_one_refresh_however_many_requests_it_refuses(
    tmp_path: Path, store: SeaweedS3, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # SeaweedFS answers some requests signed just before expiry with AccessDenied, so a
    # denial refreshes the keys once; when fresh keys are denied too, it is a real denial
    calls = 0

    async def provider() -> S3Credentials:
        nonlocal calls
        calls += 1
        return await anyio.to_thread.run_sync(
            lambda: mint(store, prefix, allowed=prefix + "allowed/")
        )

    for i in range(12):
        (tmp_path / f"f{i:02d}.bin").write_bytes(os.urandom(100 + i))
    caplog.set_level(logging.INFO, logger="provena_like.storage")
    async with TransferEngine(RefreshingCredentials(provider), max_concurrency=4) as engine:
        denied = await engine.upload(tmp_path, prefix="denied")
        allowed = await engine.upload(tmp_path, prefix="allowed")
        denied_again = await engine.upload(tmp_path, prefix="denied")
    assert len(allowed.ok) == 12
    for result in (denied, denied_again):
        assert len(result.failed) == 12
        assert all((f.reason or "").startswith("AccessDenied") for f in result.failed)
    assert calls == 2  # the first keys, and one refresh that showed the denial was real
    assert caplog.text.count("S3 credentials expired (AccessDenied)") >= 1
