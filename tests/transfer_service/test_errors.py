"""Errors under /v0.10/ are Globus "Type Zero" bodies; the rest of the server keeps its envelope."""

from __future__ import annotations

import uuid

import httpx
import pytest

from provena_like.server.errors import ServiceError
from provena_like.server.transfer.errors import from_service_error, globus_code
from tests.support.users import User

pytestmark = pytest.mark.anyio

TYPE_ZERO = {"code", "message", "request_id", "resource"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v0.10/endpoint_manager/task_list"),
        ("POST", "/v0.10/endpoint/abc/autoactivate"),
        ("GET", "/v0.10/no/such/thing"),
        ("DELETE", "/v0.10/"),
        ("GET", "/v0.10"),
        # a route this service has, with a method it doesn't implement
        ("DELETE", "/v0.10/submission_id"),
        ("TRACE", "/v0.10/endpoint_search"),
        ("PUT", "/v0.10/operation/endpoint/abc/mkdir"),
    ],
)
async def test_unknown_routes_are_a_loud_501(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    r = await http.request(method, path)
    assert r.status_code == 501, r.text
    body = r.json()
    assert set(body) == TYPE_ZERO
    assert body["code"] == "NotImplemented"
    assert f"{method} {path}" in body["message"]
    assert body["resource"] == path
    assert body["request_id"] == r.headers["x-request-id"]


async def test_the_request_id_is_the_callers(http: httpx.AsyncClient) -> None:
    r = await http.get("/v0.10/nothing-here", headers={"X-Request-ID": "my-request-0001"})
    assert r.json()["request_id"] == "my-request-0001"


async def test_the_rest_of_the_server_keeps_its_envelope(http: httpx.AsyncClient) -> None:
    r = await http.get("/registry/no-such-route")
    assert r.status_code == 404
    assert set(r.json()) == {"error"} and r.json()["error"]["code"] == "not_found"
    r = await http.get("/v0.100/x")  # not the transfer API's prefix
    assert r.status_code == 404 and "error" in r.json()
    r = await http.get("/registry/items")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"


def test_server_codes_map_to_globus_codes() -> None:
    assert globus_code(401, "unauthenticated") == "AuthenticationFailed"
    assert globus_code(403, "forbidden") == "PermissionDenied"
    assert globus_code(404, "not_found") == "ClientError.NotFound"
    assert globus_code(422, "validation_error") == "ClientError.BadRequest"
    assert globus_code(409, "conflict") == "ClientError.Conflict"
    assert globus_code(409, "under_review") == "ClientError.Conflict.UnderReview"
    assert globus_code(502, "object_store_error") == "ExternalError"
    assert globus_code(599) == "ServerError"
    err = from_service_error(ServiceError(409, "released", "Dataset 1 is RELEASED."))
    assert (err.status, err.code, err.message) == (
        409,
        "ClientError.Conflict.Released",
        "Dataset 1 is RELEASED.",
    )


@pytest.mark.parametrize("route", ["/v0.10/task_list", "/v0.10/task/{task}/event_list"])
async def test_an_offset_past_what_a_database_integer_holds_is_a_type_zero_400(
    http: httpx.AsyncClient, admin: User, route: str
) -> None:
    """Found by the schemathesis contract test: SQLite raised OverflowError on such an offset."""
    path = route.format(task=uuid.uuid4())
    for offset in (2**62 + 1, 4872979820406983870945375027200):
        r = await http.get(path, params={"offset": offset}, headers=admin.headers)
        assert r.status_code == 400, r.text
        body = r.json()
        assert set(body) == TYPE_ZERO and body["code"] == "ClientError.BadRequest", body
        assert "offset" in body["message"]
    r = await http.get("/v0.10/task_list", params={"offset": 2**62}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["DATA"] == [], r.text


@pytest.mark.parametrize(
    ("method", "route", "field"),
    [
        ("GET", "/v0.10/task_list", "filter"),
        ("GET", "/v0.10/endpoint_search", "filter_fulltext"),
    ],
)
async def test_a_nul_character_is_a_type_zero_answer_on_every_database(
    http: httpx.AsyncClient, admin: User, method: str, route: str, field: str
) -> None:
    """Found by the contract test on PostgreSQL, which can't hold a NUL in text: its refusal
    (400 ``unrepresentable_text``) came in the rest of the server's envelope under /v0.10/."""
    value = "label:a\x00b" if field == "filter" else "a\x00b"
    r = await http.request(method, route, params={field: value}, headers=admin.headers)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:  # PostgreSQL
        body = r.json()
        assert set(body) == TYPE_ZERO and body["code"] == "ClientError.BadRequest", body
        assert "NUL" in body["message"]
