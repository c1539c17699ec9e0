"""An InteractiveDataset's transfers share one open engine per access, closed with the client.

Before, every upload, download and sync asked for new credentials (after fetching the
dataset) and opened a new S3 client and aiohttp session.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from provena_like import ProvenaClient, UsageError
from provena_like.storage import TransferEngine
from provena_like.testing.localstack import LocalStack
from tests.support.l3_helpers import make_record

pytestmark = pytest.mark.anyio


class Calls:
    """Counts the L2 calls a transfer makes to the datastore."""

    def __init__(self, pv: ProvenaClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.credentials: list[str] = []
        self.datasets = 0
        client = pv.datastore_client
        get_credentials, get_dataset = client.get_credentials, client.get_dataset

        async def counting_credentials(dataset_id: str, access: Any = "read", **kw: Any) -> Any:
            self.credentials.append(access)
            return await get_credentials(dataset_id, access, **kw)

        async def counting_dataset(dataset_id: str, *args: Any, **kw: Any) -> Any:
            self.datasets += 1
            return await get_dataset(dataset_id, *args, **kw)

        monkeypatch.setattr(client, "get_credentials", counting_credentials)
        monkeypatch.setattr(client, "get_dataset", counting_dataset)


async def test_transfers_of_a_dataset_reuse_one_engine_per_access(
    tmp_path: Path, pv: ProvenaClient, refs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = await pv.datastore.mint(make_record(refs, name=f"Reuse {uuid.uuid4().hex[:6]}"))
    (tmp_path / "a.csv").write_text("a")
    (tmp_path / "b.csv").write_text("b")
    calls = Calls(pv, monkeypatch)
    opened: list[TransferEngine] = []
    enter = TransferEngine.__aenter__

    async def counting_enter(self: TransferEngine) -> TransferEngine:
        opened.append(self)
        return await enter(self)

    monkeypatch.setattr(TransferEngine, "__aenter__", counting_enter)

    assert len((await ds.upload(tmp_path / "a.csv")).ok) == 1
    assert len((await ds.upload(tmp_path / "b.csv")).ok) == 1
    assert len((await ds.sync_up(tmp_path)).skipped) == 2
    assert len((await ds.download(tmp_path / "copy")).ok) == 2
    assert len((await ds.download(tmp_path / "again")).ok) == 2

    assert calls.credentials == ["write", "read"]  # once per access, then cached
    assert calls.datasets == 0  # the server refuses write credentials itself: no pre-fetch
    assert len(opened) == 2 and len(pv.datastore.engines) == 2

    # a state change forgets the dataset's credentials and its engines: asked again
    pv.datastore.credentials_cache.forget(ds.id)
    assert len(pv.datastore.engines) == 0
    assert len((await ds.download(tmp_path / "third")).ok) == 2
    assert calls.credentials == ["write", "read", "read"]
    assert len(opened) == 3


async def test_closing_the_client_closes_its_engines(
    tmp_path: Path, localstack: LocalStack, refs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[TransferEngine] = []
    close = TransferEngine.aclose

    async def counting_close(self: TransferEngine) -> None:
        closed.append(self)
        await close(self)

    monkeypatch.setattr(TransferEngine, "aclose", counting_close)
    (tmp_path / "a.csv").write_text("a")
    async with localstack.client() as pv:
        ds = await pv.datastore.mint(make_record(refs, name=f"Close {uuid.uuid4().hex[:6]}"))
        await ds.upload(tmp_path / "a.csv")
        await ds.download(tmp_path / "copy")
        assert closed == []  # kept open between calls
    assert len(closed) == 2
    assert all("closed" in repr(engine) for engine in closed)
    with pytest.raises(UsageError, match="closed"):
        await ds.download(tmp_path / "late")
