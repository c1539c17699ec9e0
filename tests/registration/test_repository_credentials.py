"""``POST /registry/repositories/{id}/credentials``: STS credentials for its S3 prefix."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
import pytest
from botocore.exceptions import ClientError

from provena_like import ProvenaClient
from provena_like.testing.localstack import BUCKET, LocalStack
from tests.support.datastore_helpers import s3_client
from tests.support.patch_helpers import keys, s3_repository
from tests.support.registration_helpers import Lab, Vocabulary, fields
from tests.support.users import User

pytestmark = pytest.mark.anyio


async def test_credentials_follow_the_repository_items_data_roles(
    client: httpx.AsyncClient,
    localstack: LocalStack,
    lab: Lab,
    vocabulary: Vocabulary,
    registry_admin: User,
    connect: Callable[[User], ProvenaClient],
) -> None:
    repo, prefix = await s3_repository(client, registry_admin)
    url = f"/repositories/{repo}/credentials"
    member = lab.member.headers
    unseen = await client.post(url, json={"access": "read"}, headers=member)
    assert unseen.status_code == 404, unseen.text  # the member can't even read the record
    current = (await client.get(f"/items/{repo}/access", headers=registry_admin.headers)).json()
    current["groups"] = {lab.group: ["metadata-read", "data-read"]}
    granted = await client.put(
        f"/items/{repo}/access", json=current, headers=registry_admin.headers
    )
    assert granted.status_code == 200, granted.text
    async with connect(lab.member) as pv:  # the client's method: one call
        read = await pv.registry_client.get_repository_credentials(repo)
    assert (read.bucket, read.prefix, read.access) == (BUCKET, prefix, "read")
    refused = await client.post(url, json={"access": "write"}, headers=member)
    assert refused.status_code == 403, refused.text
    # the registry admin grants the lab's group data-write on the repository item
    current = (await client.get(f"/items/{repo}/access", headers=registry_admin.headers)).json()
    current["groups"] = {lab.group: ["metadata-read", "data-read", "data-write"]}
    granted = await client.put(
        f"/items/{repo}/access", json=current, headers=registry_admin.headers
    )
    assert granted.status_code == 200, granted.text
    r = await client.post(url, json={"access": "write"}, headers=member)
    assert r.status_code == 200, r.text
    creds = r.json()
    assert (creds["bucket"], creds["prefix"], creds["access"]) == (BUCKET, prefix, "write")
    assert r.headers["cache-control"] == "no-store"

    def use() -> None:
        assert localstack.s3 is not None
        with s3_client(localstack.s3, creds) as s3:
            s3.put_object(Bucket=BUCKET, Key=prefix + "a/b.bin", Body=b"abc")
            with pytest.raises(ClientError):  # outside the repository's prefix
                s3.put_object(Bucket=BUCKET, Key="elsewhere/b.bin", Body=b"abc")

    await anyio.to_thread.run_sync(use)
    assert await keys(localstack, prefix) == [prefix + "a/b.bin"]
    # a repository the server has no bucket for
    posix = await client.post(
        f"/repositories/{vocabulary.repository}/credentials",
        json={"access": "read"},
        headers=registry_admin.headers,
    )
    assert posix.status_code == 422 and fields(posix) == ["root"], posix.text
    unknown = await client.post(
        "/repositories/10378.1/99999999/credentials", json={}, headers=member
    )
    assert unknown.status_code == 404
