"""``RepositoryResolver``: registry handles to open repositories, or a clear refusal."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like.repositories import (
    OpenRepositories,
    PosixRepository,
    RepositoryResolver,
    RepositoryUnavailable,
    S3Repository,
)
from provena_like.testing.localstack import BUCKET
from tests.support.patch_helpers import s3_repository
from tests.support.patcher_helpers import Bench, grant_data_roles
from tests.support.users import User

pytestmark = pytest.mark.anyio


async def test_s3_and_posix_repositories_open_where_they_are(
    pv: ProvenaClient, bench: Bench, repos: OpenRepositories, tmp_path: object
) -> None:
    s3, posix = repos[bench.s3], repos[bench.posix]
    assert isinstance(s3, S3Repository) and isinstance(posix, PosixRepository)
    assert (s3.bucket, s3.prefix, s3.name) == (BUCKET, bench.s3_prefix, bench.s3)
    assert posix.root == bench.posix_root.absolute()
    local = bench.posix_root.parent / "a.bin"
    local.write_bytes(b"abc")
    for repo in (s3, posix):
        await repo.put(local, "x/a.bin")
        info = await repo.stat("x/a.bin", verify=True)
        assert info is not None and info.size == 3
        assert [o.path async for o in repo.list()] == ["x/a.bin"]
        await repo.delete("x/a.bin")
    assert set(repos) == {bench.s3, bench.posix} and len(repos) == 2


async def test_a_repository_that_cant_be_opened_here_is_named(
    client: httpx.AsyncClient,
    pv: ProvenaClient,
    bench: Bench,
    registry_admin: User,
    new_user: Callable[..., User],
) -> None:
    bare = RepositoryResolver(pv.registry_client)  # no local roots
    with pytest.raises(RepositoryUnavailable, match=bench.posix) as err:
        await bare.repository(bench.posix)
    assert err.value.repository == bench.posix and "local_roots" in str(err.value)
    gone = RepositoryResolver(
        pv.registry_client, local_roots={bench.posix: bench.posix_root / "missing"}
    )
    with pytest.raises(RepositoryUnavailable, match="not a directory"):
        await gone.repository(bench.posix)
    # an S3 repository on which the lab has data-read only: write refused, read fine
    read_only, _ = await s3_repository(client, registry_admin)
    await grant_data_roles(client, registry_admin, read_only, bench.lab.group, write=False)
    with pytest.raises(RepositoryUnavailable, match=read_only):
        await bare.repository(read_only, "write")
    async with await bare.open([read_only], access="read") as opened:
        assert [o async for o in opened[read_only].list()] == []
    # one with no grant at all: the member can't even read the item
    hidden, _ = await s3_repository(client, registry_admin)
    with pytest.raises(RepositoryUnavailable, match=hidden):
        await bare.repository(hidden)
    with pytest.raises(RepositoryUnavailable, match="not a repository"):
        await bare.repository(bench.lab.id)
    # open() is all or nothing: the S3 one opened first is closed again
    with pytest.raises(RepositoryUnavailable, match=bench.posix):
        await bare.open([read_only, bench.posix])
