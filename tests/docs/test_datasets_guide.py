"""The datasets guide's two mints, run as the guide writes them, on the real stack."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from provena_like import Conflict, ProvenaClient, Unprocessable
from provena_like.modules.interactive import InteractiveDataset
from provena_like.testing.localstack import LocalStack
from tests.support.l3_helpers import make_record

pytestmark = pytest.mark.anyio


@pytest.fixture
async def pv(localstack: LocalStack) -> AsyncIterator[ProvenaClient]:
    async with localstack.client() as client:
        yield client


async def test_the_guides_mints_need_the_group_and_one_key_each(
    localstack: LocalStack, pv: ProvenaClient
) -> None:
    tag = uuid.uuid4().hex[:8]  # the session's stack is shared: names of this test only
    lab, run_key, shared_key = (
        f"reef-lab-{tag}",
        f"reef-2023-run-7-{tag}",
        f"reef-2023-shared-{tag}",
    )
    org = await pv.registry_client.create_item(
        {"subtype": "organisation", "record": {"name": f"Reef Institute {tag}"}}
    )
    person = await pv.registry_client.create_item(
        {
            "subtype": "person",
            "record": {"first_name": "Ada", "last_name": "Ocean", "email": "ada@example.org"},
        }
    )
    record = make_record({"organisation": org.id, "person": person.id})

    async def shared_mint(key: str) -> InteractiveDataset:
        return await pv.datastore.mint(
            record, general=["metadata-read"], groups={lab: ["data-read"]}, idempotency_key=key
        )

    # the group is not there yet: the mint is refused and nothing is made
    with pytest.raises(Unprocessable):
        await shared_mint(shared_key)

    async with localstack.client(localstack.admin.username) as admin:  # as the guide says
        await admin.auth_client.create_group({"name": lab})
        await admin.auth_client.add_group_member(lab, localstack.user.username)

    first = await pv.datastore.mint(record, idempotency_key=run_key)
    second = await shared_mint(shared_key)
    assert first.id != second.id
    access = await pv.registry_client.get_access(second.id)
    assert access.groups == {lab: ["data-read"]}
    # a retry with the same key replays; one key for the two different requests is refused
    assert (await pv.datastore.mint(record, idempotency_key=run_key)).id == first.id
    with pytest.raises(Conflict) as reused:
        await shared_mint(run_key)
    assert reused.value.code == "idempotency_key_reused"
