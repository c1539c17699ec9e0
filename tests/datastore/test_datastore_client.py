"""``DatastoreClient`` (L2) against the real stack: one call per route, typed answers."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import Conflict, NotFound, PreconditionFailed, UsageError
from provena_like.models.datastore import (
    Dataset,
    DatasetRecord,
    FileRegistration,
    ScopedCredentials,
)
from provena_like.testing.localstack import LocalStack
from tests.support.datastore_helpers import Refs, changed, record, s3_client
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio


async def make_refs(pv: ProvenaClient) -> Refs:
    org = await pv.registry_client.create_item(
        {"subtype": "organisation", "record": {"name": "Client Institute"}}
    )
    person = await pv.registry_client.create_item(
        {
            "subtype": "person",
            "record": {"first_name": "Cal", "last_name": "Client", "email": "cal@example.org"},
        }
    )
    return Refs(org.id, person.id)


async def test_every_method(localstack: LocalStack) -> None:
    assert localstack.s3 is not None
    keyword = f"kw-{uuid.uuid4().hex[:8]}"
    async with localstack.client() as pv:
        api = pv.datastore_client
        assert "DatastoreClient(url=" in repr(api)
        schema = await api.get_schema()
        assert schema["title"] == "DatasetRecord"

        refs = await make_refs(pv)
        rec = record(refs, keywords=[keyword])
        assert (await api.validate_dataset({"record": rec})).valid
        bad = record(refs, access_info={"reposited": False})
        bad["associations"]["organisation_id"] = "10378.1/999999999"
        result = await api.validate_dataset({"record": bad})
        assert not result.valid
        assert {e.field for e in result.errors} == {"record.dataset_info.access_info"}
        with pytest.raises(UsageError, match="access_info"):
            await api.mint_dataset({"record": bad})

        key = uuid.uuid4().hex
        minted = await api.mint_dataset({"record": rec}, idempotency_key=key)
        again = await api.mint_dataset({"record": rec}, idempotency_key=key)
        assert again.id == minted.id
        assert isinstance(minted.dataset.record, DatasetRecord)
        assert minted.storage.s3_uri == f"s3://{minted.storage.bucket}/{minted.storage.prefix}"

        ds = await api.get_dataset(minted.id, include_history=True)
        assert isinstance(ds, Dataset) and ds.history and ds.history[0].reason == "created"
        updated = await api.update_dataset(
            ds.id,
            {"record": changed(rec, name="Renamed"), "reason": "rename"},
            if_match=ds.revision,
        )
        assert updated.display_name == "Renamed" and updated.revision == 2
        with pytest.raises(PreconditionFailed):
            await api.update_dataset(
                ds.id, {"record": rec, "reason": "stale"}, if_match=ds.revision
            )
        history = (await api.get_dataset(ds.id, include_history=True)).history
        assert history is not None
        reverted = await api.revert_dataset(ds.id, {"history_id": history[-1].id, "reason": "undo"})
        assert reverted.display_name == "Reef temperatures" and reverted.revision == 3

        page = await api.list_datasets(keyword=keyword, page_size=1)
        assert [d.id for d in page.items] == [ds.id] and page.next_cursor is None
        seen = [d.id async for d in api.iter_datasets(keyword=keyword, sort="name", order="desc")]
        assert seen == [ds.id]

        creds = await api.get_credentials(ds.id, "write", duration_seconds=900)
        assert isinstance(creds, ScopedCredentials) and creds.prefix == ds.storage.prefix
        assert creds.session_token.get_secret_value() not in repr(creds)
        body = b"temperature\n21.5\n"
        with s3_client(
            localstack.s3,
            {
                "access_key_id": creds.access_key_id,
                "secret_access_key": creds.secret_access_key.get_secret_value(),
                "session_token": creds.session_token.get_secret_value(),
            },
        ) as s3:
            s3.put_object(Bucket=creds.bucket, Key=creds.prefix + "raw/t 1.csv", Body=body)

        registered = await api.register_files(
            ds.id,
            [
                FileRegistration(
                    path="raw/t 1.csv", size=len(body), sha256=hashlib.sha256(body).hexdigest()
                )
            ],
        )
        assert [e.path for e in registered.registered] == ["raw/t 1.csv"]
        entry = await api.get_file(ds.id, "raw/t 1.csv")
        assert entry.size == len(body)
        assert [e.path for e in (await api.list_files(ds.id, prefix="raw/")).items] == [
            "raw/t 1.csv"
        ]
        assert [e.path async for e in api.iter_files(ds.id, page_size=1)] == ["raw/t 1.csv"]
        with pytest.raises(NotFound):
            await api.get_file(ds.id, "raw/none.csv")
        with pytest.raises(UsageError):
            await api.get_file(ds.id, "../etc/passwd")

        url = await api.presign(ds.id, "raw/t 1.csv", expires_in=120)
        async with httpx.AsyncClient(verify=SHARED_TLS) as anyone:
            assert (await anyone.get(url.url)).content == body
        with pytest.raises(UsageError):
            await api.presign(ds.id, "/abs")
        with pytest.raises(NotFound):
            await api.presign(ds.id, "raw/none.csv")

        version = await api.version_dataset(ds.id, {"reason": "next", "copy_files": True})
        assert version.version == 2 and version.previous == ds.id and version.copied_files == 1
        assert (await api.get_file(version.id, "raw/t 1.csv")).sha256 == entry.sha256
        with pytest.raises(Conflict):
            await api.version_dataset(ds.id, {"reason": "again"})
        with pytest.raises(UsageError):
            await api.get_dataset("not-a-handle")
