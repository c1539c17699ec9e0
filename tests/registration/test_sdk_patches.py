"""The registry client's patch and deletion methods: one HTTP call each, typed answers."""

from __future__ import annotations

import uuid

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import Conflict, NotFound, UsageError
from provena_like.testing.localstack import LocalStack
from tests.support.patch_helpers import delete_object, hold, patch_body, s3_repository, stage
from tests.support.registration_helpers import Lab, Vocabulary, sha
from tests.support.users import User

pytestmark = pytest.mark.anyio


async def test_patch_then_delete_through_the_client(
    client: httpx.AsyncClient,
    localstack: LocalStack,
    lab: Lab,
    vocabulary: Vocabulary,
    registry_admin: User,
    pv: ProvenaClient,
) -> None:
    held = await hold(
        client, localstack, lab, vocabulary, await s3_repository(client, registry_admin)
    )
    rc = pv.registry_client
    body = patch_body(held, "new")
    await stage(localstack, held, body["patch_id"], "new")
    with pytest.raises(NotFound):
        await rc.get_patch(body["patch_id"])
    result = await rc.commit_patch(body)
    assert result.files[0].dataset.sha256 == sha("new")
    assert {o.repository for o in result.files[0].old_locations} == {held.posix, held.s3}
    assert await rc.commit_patch(body) == result  # the same request answers the same
    assert await rc.get_patch(uuid.UUID(body["patch_id"])) == result
    page = await rc.list_dataset_patches(held.dataset)
    assert [e.patch_id for e in page.items] == [body["patch_id"]]
    assert [e.new_sha256 async for e in rc.iter_dataset_patches(held.dataset)] == [sha("new")]
    with pytest.raises(UsageError):
        await rc.get_patch("not-a-uuid")
    # delete: mark, take each replica away, then the records
    marked = await rc.mark_deleting(held.dataset)
    assert marked.state == "deleting"
    with pytest.raises(Conflict) as err:
        await rc.delete_registered_dataset(held.dataset)
    assert err.value.code == "replicas_remain"
    s3_record = next(f for f in result.files[0].dataset.files if f.repository == held.s3)
    await delete_object(localstack, held.s3_prefix + s3_record.relative_path)
    for repository in (held.posix, held.s3):
        await rc.update_file_record(held.dataset, repository, exists=False)
    await rc.delete_registered_dataset(held.dataset)
    with pytest.raises(NotFound):
        await rc.get_registered_dataset(held.dataset)
