"""The stores of the conformance suite, each started once per session (per xdist worker).

SeaweedFS is the session LocalStack's own store; JuiceFS, rclone and moto are started on
first use by :mod:`tests.support.s3_stores` and stopped at the end of the session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from provena_like import ProvenaClient
from provena_like.testing.localstack import LocalStack
from provena_like.testing.seaweed import SeaweedS3
from tests.support.auth_helpers import ADMIN_PASSWORD, CHEAP_PASSWORD_HASHING
from tests.support.s3_stores import (
    GatewayProcess,
    JuiceFsGateway,
    MotoServer,
    RcloneS3,
    StoreInfo,
    admin_s3,
)

BUCKET = "conformance"
STORES = ("seaweedfs", "juicefs", "rclone", "moto")


def _started(factory: type[GatewayProcess], tmp: pytest.TempPathFactory) -> Iterator[StoreInfo]:
    process = factory(tmp.mktemp(factory.name, numbered=True), BUCKET)
    try:
        yield process.start()
    finally:
        process.stop()


@pytest.fixture(scope="session")
def juicefs_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreInfo]:
    yield from _started(JuiceFsGateway, tmp_path_factory)


@pytest.fixture(scope="session")
def rclone_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreInfo]:
    yield from _started(RcloneS3, tmp_path_factory)


@pytest.fixture(scope="session")
def moto_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreInfo]:
    yield from _started(MotoServer, tmp_path_factory)


@pytest.fixture(scope="session")
def seaweedfs_store(localstack: LocalStack) -> StoreInfo:
    weed: SeaweedS3 | None = localstack.s3
    assert weed is not None
    info = StoreInfo(
        name="seaweedfs",
        endpoint_url=weed.endpoint_url,
        access_key=weed.admin_access_key,
        secret_key=weed.admin_secret_key,
        sts_user=(weed.admin_access_key, weed.admin_secret_key),
        role_arn=weed.role_arn,
        enforces_policies=True,
        region=weed.region,
    )
    admin = admin_s3(info)
    try:
        admin.head_bucket(Bucket=BUCKET)
    except admin.exceptions.ClientError:
        admin.create_bucket(Bucket=BUCKET)
    return info


@pytest.fixture(params=STORES)
def s3_store(request: pytest.FixtureRequest) -> StoreInfo:
    """Each store of the suite in turn."""
    info: StoreInfo = request.getfixturevalue(f"{request.param}_store")
    return info


@pytest.fixture(scope="session")
async def juicefs_stack(
    juicefs_store: StoreInfo, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    """The reference server on the JuiceFS gateway: STS and scoping done by the gateway.

    Clients are handed the gateway as ``localhost`` (``public_endpoint_url``), the server
    calls it as ``127.0.0.1``.
    """
    public = juicefs_store.endpoint_url.replace("127.0.0.1", "localhost")
    async with LocalStack(
        tmp_path_factory.mktemp("juicefs-stack"),
        # MinIO rules: bucket policies don't govern IAM users' sessions (see the guide)
        s3_settings=juicefs_store.s3_settings(
            BUCKET, public_endpoint_url=public, freeze_writes=False
        ),
        admin_password=ADMIN_PASSWORD,
        password_hashing=CHEAP_PASSWORD_HASHING,
    ) as stack:
        yield stack


@pytest.fixture
async def juicefs_pv(juicefs_stack: LocalStack) -> AsyncIterator[ProvenaClient]:
    async with juicefs_stack.client() as client:
        yield client


def local_tree(root: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` (relative path → content) under ``root``."""
    for name, data in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root
