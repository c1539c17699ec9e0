"""A real SeaweedFS for the storage tests (session-scoped), a fresh prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provena_like.storage import S3Credentials
from provena_like.testing.seaweed import SeaweedS3
from tests.support.storage_helpers import BUCKET, FaultProxy, admin_client, mint


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    instance = SeaweedS3(tmp_path_factory.mktemp("storage-s3") / "s3")
    instance.start()
    try:
        instance.create_bucket(BUCKET)
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def prefix() -> str:
    """A fresh dataset prefix per test."""
    return f"datasets/{uuid.uuid4().hex[:12]}/"


@pytest.fixture
def creds(store: SeaweedS3, prefix: str) -> S3Credentials:
    return mint(store, prefix)


@pytest.fixture
def admin(store: SeaweedS3) -> Iterator[Any]:
    client = admin_client(store)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def make_tree() -> Callable[..., dict[str, bytes]]:
    """Write files (relative path -> bytes) under a root; return the mapping."""

    def make(root: Path, files: dict[str, bytes]) -> dict[str, bytes]:
        for relative, data in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return files

    return make


@pytest.fixture
async def proxy(store: SeaweedS3) -> AsyncIterator[FaultProxy]:
    """A fault-injecting proxy in front of the store (see :class:`FaultProxy`)."""
    instance = FaultProxy(store.endpoint_url)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()
