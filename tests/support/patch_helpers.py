"""Helpers of the patch and deletion tests: a dataset held by a POSIX and an S3 repository.

The S3 repository's root is in the reference server's own bucket, so the server HEADs its
objects itself; the POSIX one is the vocabulary's (the server takes the caller's word).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from provena_like.testing.localstack import BUCKET, LocalStack
from tests.support.datastore_helpers import s3_client
from tests.support.registration_helpers import (
    Lab,
    Vocabulary,
    create_item,
    file,
    make_session,
    register,
    sha,
    unique,
)
from tests.support.users import User


@dataclass(frozen=True)
class Held:
    """A registered dataset revision with a replica in a POSIX and an S3 repository."""

    session: str
    dataset: str
    posix: str
    s3: str
    s3_prefix: str
    """The S3 repository's key prefix in the server's bucket (``prefix/``)."""
    posix_path: str
    s3_path: str
    content: str


def _store(localstack: LocalStack) -> Any:
    assert localstack.s3 is not None, "the test stack runs an object store"
    return localstack.s3


async def put_object(localstack: LocalStack, key: str, data: bytes) -> None:
    """Write ``data`` at ``key`` in the server's bucket, with its sha256 checksum stored."""
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()

    def put() -> None:
        with s3_client(_store(localstack)) as s3:
            s3.put_object(Bucket=BUCKET, Key=key, Body=data, ChecksumSHA256=digest)

    await anyio.to_thread.run_sync(put)


async def delete_object(localstack: LocalStack, key: str) -> None:
    """Delete ``key`` from the server's bucket."""

    def remove() -> None:
        with s3_client(_store(localstack)) as s3:
            s3.delete_object(Bucket=BUCKET, Key=key)

    await anyio.to_thread.run_sync(remove)


async def keys(localstack: LocalStack, prefix: str) -> list[str]:
    """The keys under ``prefix`` in the server's bucket."""

    def listing() -> list[str]:
        with s3_client(_store(localstack)) as s3:
            listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    return await anyio.to_thread.run_sync(listing)


async def s3_repository(client: httpx.AsyncClient, admin: User, **record: Any) -> tuple[str, str]:
    """A new S3 repository in the server's bucket (as the registry admin): handle, prefix."""
    prefix = f"repo-{uuid.uuid4().hex[:12]}/"
    body = {"name": unique("s3repo"), "kind": "s3", "root": f"s3://{BUCKET}/{prefix}", **record}
    item = await create_item(client, admin, "repository", body)
    return item["id"], prefix


async def hold(
    client: httpx.AsyncClient,
    localstack: LocalStack,
    lab: Lab,
    vocabulary: Vocabulary,
    s3_repo: tuple[str, str],
    content: str = "old",
) -> Held:
    """Register a file of a new session in both repositories; its bytes in the S3 one."""
    session = await make_session(client, lab)
    path = f"alf/{vocabulary.name()}"
    md5 = hashlib.md5(content.encode()).hexdigest()
    for repository in (vocabulary.repository, s3_repo[0]):
        r = await register(
            client, lab.member, session, [file(path, content, md5=md5)], repository=repository
        )
        assert r.status_code == 201, r.text
    dataset = r.json()["files"][0]["dataset"]
    paths = {f["repository"]: f["relative_path"] for f in dataset["files"]}
    held = Held(
        session,
        dataset["id"],
        vocabulary.repository,
        s3_repo[0],
        s3_repo[1],
        paths[vocabulary.repository],
        paths[s3_repo[0]],
        content,
    )
    await put_object(localstack, held.s3_prefix + held.s3_path, content.encode())
    return held


def staged(path: str, patch_id: str) -> str:
    """Where a patch stages a file's new bytes (beside it, named after the patch)."""
    return f"{path}.staged-{patch_id}"


async def stage(localstack: LocalStack, held: Held, patch_id: str, content: str) -> None:
    """Put the new bytes at the staged path in the S3 repository."""
    await put_object(localstack, held.s3_prefix + staged(held.s3_path, patch_id), content.encode())


def patch_body(
    held: Held, content: str, patch_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A patch of ``held`` to ``content`` with a location in each repository (staged paths)."""
    pid = patch_id or str(uuid.uuid4())
    size, digest = len(content), sha(content)
    return {
        "patch_id": pid,
        "files": [
            {
                "dataset": held.dataset,
                "expected_sha256": sha(held.content),
                "size": size,
                "sha256": digest,
                "locations": [
                    {
                        "repository": repository,
                        "relative_path": staged(path, pid),
                        "size": size,
                        "sha256": digest,
                    }
                    for repository, path in ((held.posix, held.posix_path), (held.s3, held.s3_path))
                ],
                **extra,
            }
        ],
    }
