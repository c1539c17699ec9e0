"""A failing object store answers 502 with the error body, never 500.

The registry route checks every file with concurrent HEADs in an anyio task group, so a store
failure arrives as an ``ExceptionGroup``; it must still be rendered as the store's 502
``object_store_error``. A dedicated LocalStack whose SeaweedFS is stopped mid-test is the
failing store: real refused connections, no mocks.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import ServerError
from provena_like.testing.localstack import LocalStack
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio


def _record(org: str, person: str) -> dict[str, object]:
    approvals = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")
    return {
        "associations": {"organisation_id": org, "point_of_contact": person},
        "approvals": {a: {"relevant": False, "obtained": False} for a in approvals},
        "dataset_info": {
            "name": f"Store failure {uuid.uuid4().hex[:6]}",
            "description": "Files registered while the object store is down.",
            "access_info": {"reposited": True},
            "publisher_id": org,
            "created_date": "2024-01-01",
            "published_date": "2024-06-30",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["store"],
        },
    }


@pytest.fixture(scope="module")
async def doomed_stack(anyio_backend: str) -> AsyncIterator[LocalStack]:
    """A stack of its own: its object store gets stopped by the test."""
    del anyio_backend
    async with LocalStack() as stack:
        yield stack


async def _mint(pv: ProvenaClient) -> str:
    org = await pv.registry_client.create_item(
        {"subtype": "organisation", "record": {"name": f"Org {uuid.uuid4().hex[:6]}"}}
    )
    person = await pv.registry_client.create_item(
        {
            "subtype": "person",
            "record": {"first_name": "Ada", "last_name": "Ocean", "email": "ada@example.org"},
        }
    )
    ds = await pv.datastore.mint(_record(org.id, person.id))
    return ds.id


async def test_registration_against_a_dead_store_is_502_with_the_error_body(
    tmp_path: Path, doomed_stack: LocalStack
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.csv", "b.csv", "c.csv"):
        (src / name).write_text(f"{name}\n")
    async with doomed_stack.client() as pv:
        dataset_id = await _mint(pv)
        ds = await pv.datastore.interactive(dataset_id)
        uploaded = await ds.upload(src)
        assert len(uploaded.ok) == 3, [f.reason for f in uploaded.failed]
        files = [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in uploaded.ok]

        assert doomed_stack.s3 is not None
        await anyio.to_thread.run_sync(doomed_stack.s3.stop)

        once = pv.with_options(max_retries=0, timeout=120)
        with pytest.raises(ServerError) as caught:
            await once.datastore_client.register_files(dataset_id, files)
        err = caught.value
        assert err.status_code == 502, err
        assert err.code == "object_store_error"
        assert isinstance(err.body, dict)
        assert err.body["error"]["code"] == "object_store_error"
        assert err.body["error"]["request_id"]
        assert "object store" in err.body["error"]["message"]

        # the server is still healthy: the same request again gets the same answer
        token = (await pv.auth_manager.get_access_token()).get_secret_value()  # type: ignore[attr-defined]
        async with httpx.AsyncClient(verify=SHARED_TLS, timeout=120) as http:
            response = await http.post(
                f"{doomed_stack.url}/datastore/datasets/{dataset_id}/files",
                json={"files": files},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "object_store_error"


def test_only_expected_errors_collapse_out_of_a_group() -> None:
    from provena_like.server.errors import ServiceError, collapse_group

    first = ServiceError(502, "object_store_error", "down")
    second = ServiceError(502, "object_store_error", "down too")
    assert collapse_group(ExceptionGroup("tasks", [first])) is first
    assert collapse_group(ExceptionGroup("tasks", [ExceptionGroup("inner", [first])])) is first
    assert collapse_group(ExceptionGroup("tasks", [first, second])) is first
    # a bug next to an expected error stays visible (answered 500 and logged)
    mixed = ExceptionGroup("tasks", [first, TypeError("bug")])
    assert collapse_group(mixed) is mixed
