"""A query parameter that takes one value, sent twice, is a 422 naming it (never "the last one").

Found by the OpenAPI contract test: ``GET /registry/registered-datasets?name=a&name=b`` was
answered 200 as if only ``name=b`` had been sent. Parameters declared as lists still repeat.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.tls import SHARED_TLS


@pytest.fixture(scope="module")
def http(server: ServerThread, make_token: Callable[..., str]) -> Iterator[httpx.Client]:
    token = make_token(f"repeated-query-{uuid.uuid4().hex[:8]}")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(
        verify=SHARED_TLS, base_url=server.url, timeout=120, headers=headers
    ) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/registry/registered-datasets", [("name", "a"), ("name", "b")]),
        ("/registry/items", [("page_size", "5"), ("page_size", "500")]),
        ("/search/items", [("q", "reef"), ("q", "coral")]),
    ],
)
def test_a_repeated_single_value_parameter_is_refused(
    http: httpx.Client, path: str, params: list[tuple[str, str]]
) -> None:
    r = http.get(path, params=params)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    name = params[0][0]
    assert [d["field"] for d in error["details"]] == [f"query.{name}"]
    assert "send it once" in error["details"][0]["message"]


def test_once_is_fine_and_a_list_parameter_may_repeat(http: httpx.Client) -> None:
    assert http.get("/registry/registered-datasets", params={"name": "a"}).status_code == 200
    r = http.get(
        "/search/items", params=[("q", "reef"), ("subtype", "person"), ("subtype", "dataset")]
    )
    assert r.status_code == 200, r.text


def test_under_the_transfer_api_it_is_a_type_zero_error(http: httpx.Client) -> None:
    r = http.get("/v0.10/endpoint_search", params=[("limit", "5"), ("limit", "7")])
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) >= {"code", "message", "request_id", "resource"}
    assert "limit" in body["message"]
