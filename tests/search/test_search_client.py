"""``SearchClient`` request encoding, against a mock transport (no server)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

import provena_like.clients.search as search_module
from provena_like import ProvenaClient
from provena_like.clients.search import SearchClient

pytestmark = pytest.mark.anyio

ITEM = {
    "id": "10378.1/42",
    "subtype": "organisation",
    "display_name": "Reef Institute",
    "owner": "alice",
    "created_at": "2025-01-15T00:00:00+00:00",
    "updated_at": "2025-01-15T00:00:00+00:00",
    "revision": 1,
    "record": {"name": "Reef Institute"},
    "access": {"owner": "alice"},
}


def test_exports() -> None:
    for name in search_module.__all__:
        assert hasattr(search_module, name)


async def test_search_items_encodes_every_filter() -> None:
    requests: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        cursor = None if request.url.params.get("cursor") else "c1"
        hit = {"item": ITEM, "score": 1.5, "highlights": {"display_name": "<mark>Reef</mark>"}}
        return httpx.Response(200, json={"items": [hit], "next_cursor": cursor})

    transport = httpx.MockTransport(respond)
    async with ProvenaClient(
        base_url="http://provena.test", auth=httpx.Auth(), transport=transport
    ) as pv:
        assert isinstance(pv.search_client, SearchClient)
        assert repr(pv.search_client) == "SearchClient(url='http://provena.test/search')"
        page = await pv.search_client.search_items(
            "reef",
            subtype=["dataset", "organisation"],
            owner="alice",
            created_after=datetime(2025, 1, 1, tzinfo=UTC),
            fields={"dataset_info.keywords": "coral", "record.name": "x:y"},
            page_size=5,
        )
        assert page.items[0].item.id == "10378.1/42" and page.items[0].score == 1.5
        assert page.next_cursor == "c1"
        sent = requests[-1]
        assert sent.method == "GET" and sent.url.path == "/search/items"
        params = sent.url.params
        assert params["q"] == "reef" and params["owner"] == "alice"
        assert params.get_list("subtype") == ["dataset", "organisation"]
        assert params["created_after"] == "2025-01-01T00:00:00+00:00"
        assert params.get_list("field") == ["record.dataset_info.keywords:coral", "record.name:x:y"]
        assert (
            params["page_size"] == "5" and "cursor" not in params and "created_before" not in params
        )

        hits = [hit async for hit in pv.search_client.iter_search_items("reef", subtype="dataset")]
        assert len(hits) == 2
        assert requests[-1].url.params["cursor"] == "c1"
        assert requests[-1].url.params.get_list("subtype") == ["dataset"]

        await pv.search_client.search_items("reef")
        assert set(requests[-1].url.params) == {"q", "page_size"}
