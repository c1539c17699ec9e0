"""The reference server on a SeaweedFS cluster: master, two volume servers (replication
``001``), filer and S3 gateway as separate processes, as the guide "Production: SeaweedFS
cluster" lays them out."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

from provena_like import ProvenaClient
from provena_like.modules.credentials import to_s3_credentials
from provena_like.testing.localstack import LocalStack
from tests.support.auth_helpers import ADMIN_PASSWORD, CHEAP_PASSWORD_HASHING
from tests.support.l3_helpers import mint_dataset
from tests.support.s3_stores import admin_s3, refused, scoped_s3
from tests.support.seaweed_cluster import SeaweedCluster

pytestmark = pytest.mark.anyio


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SeaweedCluster]:
    weed = SeaweedCluster(tmp_path / "cluster")
    weed.start()
    try:
        yield weed
    finally:
        weed.stop()
        assert weed.leftovers() == []


@pytest.fixture
async def cluster_pv(cluster: SeaweedCluster, tmp_path: Path) -> AsyncIterator[ProvenaClient]:
    async with (
        LocalStack(
            tmp_path / "stack",
            s3_settings=cluster.s3_settings(),
            admin_password=ADMIN_PASSWORD,
            password_hashing=CHEAP_PASSWORD_HASHING,
        ) as stack,
        stack.client() as client,
    ):
        yield client


async def test_the_server_runs_on_a_cluster_and_reads_survive_a_volume_server(
    cluster_pv: ProvenaClient, cluster: SeaweedCluster, tmp_path: Path
) -> None:
    pv = cluster_pv
    a = await mint_dataset(pv, "A")
    b = await mint_dataset(pv, "B")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    files = {"big.bin": os.urandom(6 * 1024 * 1024), "sub/small.csv": b"x,y\n1,2\n"}
    for name, data in files.items():
        (src / name).write_bytes(data)
    # upload through the SDK: write credentials from the cluster's STS, multipart for big.bin
    up = await a.sync_up(src)
    assert sorted(f.path for f in up.ok) == sorted(files)
    await b.sync_up(src)

    write = await a.credentials("write")
    assert write.endpoint_url == cluster.endpoint_url
    assert write.session_token  # STS session credentials, not the server's keys
    pa, pb = write.prefix, (await b.credentials("read")).prefix
    assert pa != pb
    bucket = cluster.bucket
    s3 = scoped_s3(to_s3_credentials(write))
    s3.put_object(Bucket=bucket, Key=f"{pa}extra.bin", Body=b"extra")
    assert s3.get_object(Bucket=bucket, Key=f"{pa}sub/small.csv")["Body"].read() == b"x,y\n1,2\n"
    read = scoped_s3(to_s3_credentials(await a.credentials("read")))
    cases = {
        "write: get from B": lambda: s3.get_object(Bucket=bucket, Key=f"{pb}sub/small.csv"),
        "write: put in B": lambda: s3.put_object(Bucket=bucket, Key=f"{pb}x", Body=b"no"),
        "write: delete in B": lambda: s3.delete_object(Bucket=bucket, Key=f"{pb}big.bin"),
        "write: list B": lambda: s3.list_objects_v2(Bucket=bucket, Prefix=pb),
        "read: get from B": lambda: read.get_object(Bucket=bucket, Key=f"{pb}sub/small.csv"),
        "read: list B": lambda: read.list_objects_v2(Bucket=bucket, Prefix=pb),
        "read: put in A": lambda: read.put_object(Bucket=bucket, Key=f"{pa}y", Body=b"no"),
    }
    for name, call in cases.items():
        assert refused(call) in {"AccessDenied", "403"}, name
    admin = admin_s3(cluster.store_info())
    assert admin.get_object(Bucket=bucket, Key=f"{pb}big.bin")["Body"].read() == files["big.bin"]

    down = await a.sync_down(tmp_path / "down")
    assert sorted(f.path for f in down.ok) == sorted(files)  # the registered files
    for name, data in files.items():
        assert (tmp_path / "down" / name).read_bytes() == data

    # freeze_writes on (the default): the gateway's bucket policy stops B's write credentials
    # minted before the lock
    b_write = scoped_s3(to_s3_credentials(await b.credentials("write")))
    b_write.put_object(Bucket=bucket, Key=f"{pb}before.bin", Body=b"ok")
    await pv.registry_client.lock_item(b.id, "frozen")
    assert refused(lambda: b_write.put_object(Bucket=bucket, Key=f"{pb}after.bin", Body=b"no")) in {
        "AccessDenied",
        "403",
    }

    # replication 001: every volume has a copy on each of the two volume servers, so reads
    # (through the server's credentials and the SDK's engine) go on without either of them
    await anyio.to_thread.run_sync(cluster.kill, "volume0")
    again = await a.sync_down(tmp_path / "after-kill")
    assert sorted(f.path for f in again.ok) == sorted(files)  # the registered files
    for name, data in files.items():
        assert (tmp_path / "after-kill" / name).read_bytes() == data
    assert read.get_object(Bucket=bucket, Key=f"{pa}extra.bin")["Body"].read() == b"extra"
