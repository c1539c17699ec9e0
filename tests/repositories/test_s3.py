"""What only S3 has: the root against the credentials, and where credentials come from."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from provena_like import ProvenaClient, UsageError
from provena_like.models.datastore import ScopedCredentials
from provena_like.modules.credentials import to_s3_credentials
from provena_like.repositories import S3Repository, parse_s3_root
from provena_like.repositories import s3 as s3_module
from provena_like.storage import S3Credentials, hash_file

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


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


async def test_confirm_many_trusts_the_stores_md5_and_reads_back_the_rest(
    scoped: ScopedCredentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single-part object whose ETag is the expected md5 costs one HEAD; others a GET."""
    root = f"s3://{scoped.bucket}/{scoped.prefix}c-{uuid.uuid4().hex[:8]}"
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(10_000))
    big = tmp_path / "big.bin"  # uploaded in two parts: its ETag is no md5
    big.write_bytes(os.urandom(6 * MiB))
    creds = to_s3_credentials(scoped)
    async with S3Repository(root, creds, multipart_threshold=5 * MiB, part_size=5 * MiB) as repo:
        await repo.put_many([(small, "a/small.bin"), (big, "a/big.bin")])
        head = await repo.stat("a/big.bin")
        assert head is not None and head.etag is not None and head.etag.endswith("-2")
        read: list[str] = []
        real = repo.engine.read_back

        async def counted(key: str) -> Any:
            read.append(key.rsplit("/", 1)[-1])
            return await real(key)

        monkeypatch.setattr(repo.engine, "read_back", counted)
        wanted = [hash_file(small, md5=True), hash_file(big, md5=True)]
        found = await repo.confirm_many(["a/small.bin", "a/big.bin"], wanted)
        assert [(i.size, i.sha256) if i else None for i in found] == [
            (w.size, w.sha256) for w in wanted
        ]
        assert read == ["big.bin"]  # the small one: its ETag, the store's md5, sufficed
        # the md5 expected is not the store's: the bytes are read back and tell
        other = replace(wanted[0], md5="0" * 32)
        (again,) = await repo.confirm_many(["a/small.bin"], [other])
        assert again is not None and again.sha256 == wanted[0].sha256
        assert read == ["big.bin", "small.bin"]
        await repo.delete_many(["a/small.bin", "a/big.bin"])


async def test_confirm_many_lists_a_folder_instead_of_heading_each(
    scoped: ScopedCredentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paths of one folder: their ETags from one listing of the range they span."""
    root = f"s3://{scoped.bucket}/{scoped.prefix}l-{uuid.uuid4().hex[:8]}"
    local = {f"f{i:02}.bin": tmp_path / f"f{i:02}.bin" for i in range(12)}
    for path in local.values():
        path.write_bytes(os.urandom(1000))
    async with S3Repository(root, to_s3_credentials(scoped)) as repo:
        # f00..f11 in folder s/, and others' keys inside and around their range
        await repo.put_many([(p, f"s/{name}") for name, p in local.items() if name != "f05.bin"])
        await repo.put_many([(local["f00.bin"], k) for k in ("s/f03a.bin", "s/a.bin", "s/z.bin")])
        (tmp_path / "bad.bin").write_bytes(b"not f07")
        await repo.put(tmp_path / "bad.bin", "s/f07.bin")
        calls: dict[str, list[str]] = {"head": [], "get": []}
        real_stat, real_read = repo.engine.stat, repo.engine.read_back

        async def head(key: str) -> Any:
            calls["head"].append(key.rsplit("/", 1)[-1])
            return await real_stat(key)

        async def get(key: str) -> Any:
            calls["get"].append(key.rsplit("/", 1)[-1])
            return await real_read(key)

        monkeypatch.setattr(repo.engine, "stat", head)
        monkeypatch.setattr(repo.engine, "read_back", get)
        names = sorted(local)
        wanted = [hash_file(local[name], md5=True) for name in names]
        found = await repo.confirm_many([f"s/{name}" for name in names], wanted)
        expected = [
            None if name == "f05.bin" else (1000, w.sha256)
            for name, w in zip(names, wanted, strict=True)
        ]
        expected[7] = (7, hash_file(tmp_path / "bad.bin").sha256)  # the bytes the store holds
        assert [(i.size, i.sha256) if i else None for i in found] == expected
        assert calls == {"head": ["f05.bin"], "get": ["f07.bin"]}  # unlisted; not the md5

        # a listing stops once it read more keys than worth it: the rest get a HEAD each
        monkeypatch.setattr(s3_module, "_LIST_SLACK", 0)
        calls["head"].clear()
        calls["get"].clear()
        keep = [n for n in names if n not in ("f05.bin", "f07.bin")]
        found = await repo.confirm_many(
            [f"s/{n}" for n in keep], [hash_file(local[n], md5=True) for n in keep]
        )
        assert all(
            i is not None and i.sha256 == sha
            for i, sha in zip(found, [hash_file(local[n]).sha256 for n in keep], strict=True)
        )
        # 10 keys asked, no slack: f00-f04, others' f03a, f06, f07, f08, f09 read; f10, f11 HEADed
        assert calls == {"head": ["f10.bin", "f11.bin"], "get": []}


async def test_confirm_many_lists_few_files_in_many_folders_under_their_common_folder(
    scoped: ScopedCredentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two paths in each of 6 folders (fewer than a folder's listing is worth): one listing."""
    root = f"s3://{scoped.bucket}/{scoped.prefix}m-{uuid.uuid4().hex[:8]}"
    paths = [f"s/alf/c{c}/o{i}.bin" for c in range(6) for i in range(2)]
    local = {path: tmp_path / path.replace("/", "_") for path in paths}
    for file in local.values():
        file.write_bytes(os.urandom(500))
    async with S3Repository(root, to_s3_credentials(scoped)) as repo:
        await repo.put_many([(file, path) for path, file in local.items() if path != paths[3]])
        await repo.put(local[paths[0]], "s/alf/c2/o0a.bin")  # someone else's key in the range
        await repo.put(local[paths[0]], "s/other.bin")  # and one outside it
        heads: list[str] = []
        lists: list[str] = []
        real_stat, real_list = repo.engine.stat, repo.engine.list

        async def head(key: str) -> Any:
            heads.append(key)
            return await real_stat(key)

        def listing(prefix: str = "", **kwargs: Any) -> Any:
            lists.append(prefix)
            return real_list(prefix, **kwargs)

        monkeypatch.setattr(repo.engine, "stat", head)
        monkeypatch.setattr(repo.engine, "list", listing)
        wanted = [hash_file(local[path], md5=True) for path in paths]
        found = await repo.confirm_many(paths, wanted)
        assert [(i.size, i.sha256) if i else None for i in found] == [
            None if path == paths[3] else (500, w.sha256)
            for path, w in zip(paths, wanted, strict=True)
        ]
        # the deepest folder holding them all
        assert lists == [repo.key(paths[0]).removesuffix("c0/o0.bin")]
        assert heads == [repo.key(paths[3])]  # the one missing: not listed, so asked
