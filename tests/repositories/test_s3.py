"""What only S3 has: the root against the credentials, and where credentials come from."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from provena_like import ProvenaClient, UsageError
from provena_like.models.datastore import ScopedCredentials
from provena_like.modules.credentials import to_s3_credentials
from provena_like.repositories import S3Repository, parse_s3_root
from provena_like.storage import S3Credentials

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://bucket/a", ("bucket", "a/")),
        ("s3://bucket/a/b/", ("bucket", "a/b/")),
    ],
)
def test_parse_s3_root(root: str, expected: tuple[str, str]) -> None:
    assert parse_s3_root(root) == expected


@pytest.mark.parametrize(
    "root", ["bucket/a", "http://bucket/a", "s3://", "s3:///a", "s3://b/../a", "s3://b/a//c"]
)
def test_parse_s3_root_refuses(root: str) -> None:
    with pytest.raises(UsageError):
        parse_s3_root(root)


async def test_credentials_from_a_provider_or_fixed(
    pv: ProvenaClient, dataset_id: str, scoped: ScopedCredentials, tmp_path: Path
) -> None:
    calls: list[int] = []

    async def provider() -> S3Credentials:
        calls.append(1)
        return to_s3_credentials(await pv.datastore.credentials(dataset_id, "write"))

    root = f"s3://{scoped.bucket}/{scoped.prefix}p-{uuid.uuid4().hex[:8]}"
    local = tmp_path / "a.txt"
    local.write_bytes(b"abc")
    async with S3Repository(root, provider) as repo:
        assert repo.name == root + "/"
        await repo.put(local, "a.txt")
        assert repo.key("a.txt").endswith("/a.txt") and not repo.key("a.txt").startswith("/")
    assert calls == [1]
    fixed = to_s3_credentials(scoped)
    async with S3Repository(root, fixed, name="mirror") as repo:
        assert [o.path async for o in repo.list()] == ["a.txt"]
        await repo.delete("a.txt")
        assert [o.path async for o in repo.list()] == []


@pytest.mark.parametrize("where", ["other-bucket", "other-prefix"])
async def test_a_root_outside_the_credentials_is_refused(
    scoped: ScopedCredentials, where: str
) -> None:
    fixed = to_s3_credentials(scoped)
    if where == "other-bucket":
        root = f"s3://not-{scoped.bucket}/{scoped.prefix}"
    else:
        root = f"s3://{scoped.bucket}/datasets/someone-else/"
    repo = S3Repository(root, fixed)
    with pytest.raises(UsageError, match="outside what its credentials cover"):
        async with repo:
            pass


def test_credentials_must_be_credentials() -> None:
    with pytest.raises(UsageError):
        S3Repository("s3://b/a", "not credentials")  # type: ignore[arg-type]


async def test_an_unopened_repository_says_so(scoped: ScopedCredentials) -> None:
    repo = S3Repository(f"s3://{scoped.bucket}/{scoped.prefix}", to_s3_credentials(scoped))
    with pytest.raises(UsageError, match="async with"):
        repo.key("a.txt")
    with pytest.raises(UsageError, match="async with"):
        await repo.stat("a.txt")
    with pytest.raises(UsageError, match="async with"):
        [o async for o in repo.list()]
