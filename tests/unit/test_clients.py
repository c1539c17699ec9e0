"""L2 clients and the ProvenaClient façade: routes, bodies, headers, typed results.

A MockTransport stands in for the server here only to check the exact requests the clients
build; behaviour against the real server is tested in the integration suites.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import Any

import aioboto3
import httpx
import pytest

import provena_like.auth
from provena_like import (
    AsyncPaginator,
    NotFound,
    Page,
    ProvenaClient,
    ProvenaConfig,
    UsageError,
)
from provena_like.models.auth import Group, OAuthClientCreated, User, UserInfo
from provena_like.models.registry import AccessSettings, Item, LockEvent
from provena_like.modules.datastore import Datastore

pytestmark = pytest.mark.anyio

NOW = datetime(2025, 1, 15, tzinfo=UTC).isoformat()


def item_json(item_id: str = "10378.1/42", **extra: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "subtype": "organisation",
        "display_name": "CSIRO",
        "owner": "alice",
        "created_at": NOW,
        "updated_at": NOW,
        "revision": 1,
        "record": {"name": "CSIRO"},
        "access": {"owner": "alice"},
        **extra,
    }


class Recorder:
    def __init__(self, responder: Callable[[httpx.Request], httpx.Response]) -> None:
        self.responder = responder
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responder(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)


def client_for(
    responder: Callable[[httpx.Request], httpx.Response],
) -> tuple[ProvenaClient, Recorder]:
    recorder = Recorder(responder)
    client = ProvenaClient(
        base_url="http://provena.test", auth=httpx.Auth(), transport=httpx.MockTransport(recorder)
    )
    return client, recorder


def always(status: int, body: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=body)


# -- registry ------------------------------------------------------------------------------


async def test_create_item() -> None:
    pv, rec = client_for(always(201, item_json()))
    async with pv:
        item = await pv.registry_client.create_item(
            {"subtype": "organisation", "record": {"name": "CSIRO"}}, idempotency_key="k-1"
        )
    assert isinstance(item, Item) and item.id == "10378.1/42"
    assert (rec.last.method, rec.last.url.path) == ("POST", "/registry/items")
    assert rec.last.headers["Idempotency-Key"] == "k-1"
    assert rec.last_json() == {"subtype": "organisation", "record": {"name": "CSIRO"}}


async def test_create_item_rejects_invalid_body_before_sending() -> None:
    pv, rec = client_for(always(201, item_json()))
    async with pv:
        with pytest.raises(UsageError, match="subtype"):
            await pv.registry_client.create_item({"record": {}})
    assert rec.requests == []


@pytest.mark.parametrize(
    ("include_history", "query"), [(False, b""), (True, b"include_history=true")]
)
async def test_get_item(include_history: bool, query: bytes) -> None:
    pv, rec = client_for(always(200, item_json(history=[])))
    async with pv:
        item = await pv.registry_client.get_item("10378.1/42", include_history=include_history)
    assert item.revision == 1
    assert rec.last.url.path == "/registry/items/10378.1/42"
    assert rec.last.url.query == query


@pytest.mark.parametrize(
    "bad_id", ["42", "a/b/c", "/42", "10378.1/", "", "a b/1", "a/1?x=1", "a/1#f", "../x", "a/.."]
)
async def test_item_id_must_be_a_handle(bad_id: str) -> None:
    pv, rec = client_for(always(200, item_json()))
    async with pv:
        with pytest.raises(UsageError, match="handle"):
            await pv.registry_client.get_item(bad_id)
    assert rec.requests == []


@pytest.mark.parametrize(("if_match", "header"), [(None, None), (7, '"7"')])
async def test_update_item(if_match: int | None, header: str | None) -> None:
    pv, rec = client_for(always(200, item_json(revision=8)))
    async with pv:
        item = await pv.registry_client.update_item(
            "10378.1/42", {"record": {"name": "X"}, "reason": "rename"}, if_match=if_match
        )
    assert item.revision == 8
    assert (rec.last.method, rec.last.url.path) == ("PUT", "/registry/items/10378.1/42")
    assert rec.last.headers.get("If-Match") == header
    assert "Idempotency-Key" not in rec.last.headers
    assert rec.last_json()["reason"] == "rename"


async def test_list_and_iter_items() -> None:
    def pages(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        if cursor is None:
            return httpx.Response(200, json={"items": [item_json("p/1")], "next_cursor": "c1"})
        return httpx.Response(200, json={"items": [item_json("p/2")], "next_cursor": None})

    pv, rec = client_for(pages)
    async with pv:
        page = await pv.registry_client.list_items(subtype="organisation", page_size=1)
        assert isinstance(page, Page) and page.next_cursor == "c1"
        assert dict(rec.last.url.params) == {
            "sort": "created",
            "order": "asc",
            "subtype": "organisation",
            "page_size": "1",
        }
        paginator = pv.registry_client.iter_items(order="desc", page_size=1)
        assert isinstance(paginator, AsyncPaginator)
        ids = [item.id async for item in paginator]
    assert ids == ["p/1", "p/2"]
    assert rec.requests[-1].url.params["cursor"] == "c1"
    assert rec.requests[-1].url.params["order"] == "desc"


async def test_history_and_revert() -> None:
    entry = {"id": 3, "time": NOW, "user": "alice", "reason": "create", "snapshot": {}}

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/history"):
            return httpx.Response(200, json={"items": [entry], "next_cursor": None})
        return httpx.Response(200, json=item_json(revision=3))

    pv, rec = client_for(respond)
    async with pv:
        page = await pv.registry_client.get_history("10378.1/42", page_size=5, cursor="h1")
        assert page.items[0].id == 3
        assert rec.last.url.path == "/registry/items/10378.1/42/history"
        assert dict(rec.last.url.params) == {"page_size": "5", "cursor": "h1"}
        assert [e.reason async for e in pv.registry_client.iter_history("10378.1/42")] == ["create"]
        item = await pv.registry_client.revert_item(
            "10378.1/42", {"history_id": 3, "reason": "undo"}
        )
    assert item.revision == 3
    assert (rec.last.method, rec.last.url.path) == ("POST", "/registry/items/10378.1/42/revert")
    assert rec.last_json() == {"history_id": 3, "reason": "undo"}
    assert rec.last.headers["Idempotency-Key"]


@pytest.mark.parametrize("action", ["lock", "unlock"])
async def test_lock_unlock(action: str) -> None:
    pv, rec = client_for(always(200, item_json(locked=action == "lock")))
    async with pv:
        method = getattr(pv.registry_client, f"{action}_item")
        item = await method("10378.1/42", "review")
    assert item.locked is (action == "lock")
    assert rec.last.url.path == f"/registry/items/10378.1/42/{action}"
    assert rec.last_json() == {"reason": "review"}


async def test_lock_reason_required() -> None:
    pv, rec = client_for(always(200, item_json()))
    async with pv:
        with pytest.raises(UsageError, match="reason"):
            await pv.registry_client.lock_item("10378.1/42", "")
    assert rec.requests == []


async def test_lock_history() -> None:
    events = [{"action": "lock", "time": NOW, "user": "alice", "reason": "r"}]
    pv, rec = client_for(always(200, events))
    async with pv:
        result = await pv.registry_client.get_lock_history("10378.1/42")
    assert result == [LockEvent.model_validate(events[0])]
    assert rec.last.url.path == "/registry/items/10378.1/42/lock-history"


async def test_access() -> None:
    access = {"owner": "alice", "general": ["metadata-read"], "groups": {"lab": ["admin"]}}
    pv, rec = client_for(always(200, access))
    async with pv:
        got = await pv.registry_client.get_access("10378.1/42")
        assert got == AccessSettings.model_validate(access)
        await pv.registry_client.update_access("10378.1/42", AccessSettings(owner="alice"))
    assert (rec.last.method, rec.last.url.path) == ("PUT", "/registry/items/10378.1/42/access")
    assert rec.last_json() == {"owner": "alice", "general": [], "groups": {}}  # a full document


async def test_not_found_is_typed() -> None:
    body = {"error": {"code": "not_found", "message": "Item 1/2 was not found.", "details": None}}
    pv, _ = client_for(always(404, body))
    async with pv:
        with pytest.raises(NotFound, match="was not found") as info:
            await pv.registry_client.get_item("1/2")
    assert info.value.service == "registry"


# -- auth ------------------------------------------------------------------------------------

USER = {"username": "alice", "created_at": NOW}
GROUP = {"name": "lab", "members": ["alice"], "created_at": NOW}


async def test_userinfo() -> None:
    pv, rec = client_for(always(200, {"sub": "alice", "groups": ["lab"]}))
    async with pv:
        me = await pv.auth_client.userinfo()
    assert me == UserInfo(sub="alice", groups=["lab"])
    assert rec.last.url.path == "/auth/userinfo"


async def test_create_user_sends_the_password() -> None:
    pv, rec = client_for(always(201, USER))
    async with pv:
        user = await pv.auth_client.create_user({"username": "alice", "password": "correct-horse"})
    assert isinstance(user, User)
    assert rec.last_json() == {"username": "alice", "password": "correct-horse"}
    assert rec.last.url.path == "/auth/users"


async def test_invalid_user_does_not_echo_password() -> None:
    pv, _ = client_for(always(201, USER))
    async with pv:
        with pytest.raises(UsageError, match="password") as info:
            await pv.auth_client.create_user({"username": "alice", "password": "pw-XYZ"})
    assert "pw-XYZ" not in str(info.value)


async def test_update_user_is_a_patch_of_set_fields_only() -> None:
    pv, rec = client_for(always(200, USER))
    async with pv:
        await pv.auth_client.update_user("alice", {"disabled": True})
    assert (rec.last.method, rec.last.url.path) == ("PATCH", "/auth/users/alice")
    assert rec.last_json() == {"disabled": True}


@pytest.mark.parametrize(
    ("call", "method", "path", "body"),
    [
        (lambda a: a.get_user("a@b.org"), "GET", "/auth/users/a@b.org", None),
        (lambda a: a.get_group("lab"), "GET", "/auth/groups/lab", None),
        (lambda a: a.create_group({"name": "lab"}), "POST", "/auth/groups", {"name": "lab"}),
        (
            lambda a: a.add_group_member("lab", "bob"),
            "POST",
            "/auth/groups/lab/members",
            {"username": "bob"},
        ),
    ],
)
async def test_auth_routes(call: Callable[[Any], Any], method: str, path: str, body: Any) -> None:
    response = USER if path.startswith("/auth/users") else GROUP
    pv, rec = client_for(always(200, response))
    async with pv:
        result = await call(pv.auth_client)
    assert isinstance(result, User | Group)
    assert (rec.last.method, rec.last.url.path) == (method, path)
    if body is not None:
        assert rec.last_json() == body


@pytest.mark.parametrize("name", ["", ".", "..", "   "])
async def test_names_are_checked(name: str) -> None:
    pv, rec = client_for(always(200, USER))
    async with pv:
        with pytest.raises(UsageError):
            await pv.auth_client.get_user(name)
    assert rec.requests == []


async def test_slash_in_name_is_encoded() -> None:
    pv, rec = client_for(always(200, USER))
    async with pv:
        await pv.auth_client.get_user("a/b")
    assert rec.last.url.raw_path == b"/auth/users/a%2Fb"


@pytest.mark.parametrize(
    ("method_name", "path", "item"),
    [
        ("list_users", "/auth/users", USER),
        ("list_groups", "/auth/groups", GROUP),
        (
            "list_clients",
            "/auth/clients",
            {"client_id": "c", "confidential": True, "grant_types": [], "created_at": NOW},
        ),
    ],
)
async def test_auth_lists(method_name: str, path: str, item: dict[str, Any]) -> None:
    pv, rec = client_for(always(200, {"items": [item], "next_cursor": None}))
    async with pv:
        page = await getattr(pv.auth_client, method_name)(page_size=10, cursor="c0")
        iterated = [x async for x in getattr(pv.auth_client, "iter_" + method_name[5:])()]
    assert len(page.items) == 1 and len(iterated) == 1
    assert rec.requests[0].url.path == path
    assert dict(rec.requests[0].url.params) == {"page_size": "10", "cursor": "c0"}


async def test_remove_group_member() -> None:
    pv, rec = client_for(lambda request: httpx.Response(204))
    async with pv:
        await pv.auth_client.remove_group_member("lab", "bob")
    assert (rec.last.method, rec.last.url.path) == ("DELETE", "/auth/groups/lab/members/bob")


async def test_create_and_delete_client() -> None:
    created = {
        "client_id": "pipe",
        "confidential": True,
        "grant_types": ["client_credentials"],
        "created_at": NOW,
        "client_secret": "shown-once",
    }

    def respond(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(201, json=created)

    pv, rec = client_for(respond)
    async with pv:
        result = await pv.auth_client.create_client({"client_id": "pipe"})
        assert isinstance(result, OAuthClientCreated)
        assert result.client_secret is not None
        assert result.client_secret.get_secret_value() == "shown-once"
        assert "shown-once" not in repr(result)
        await pv.auth_client.delete_client("pipe")
    assert (rec.last.method, rec.last.url.path) == ("DELETE", "/auth/clients/pipe")


# -- ProvenaClient ----------------------------------------------------------------------------


async def test_client_lifecycle_and_repr() -> None:
    pv, _ = client_for(always(200, item_json()))
    assert repr(pv) == "ProvenaClient(base_url='http://provena.test')"
    async with pv:
        await pv.registry_client.get_item("1/2")
    assert pv.is_closed
    with pytest.raises(UsageError, match="closed"):
        await pv.registry_client.get_item("1/2")
    with pytest.raises(UsageError, match="closed"):
        async with pv:
            pass


async def test_with_options_shares_pool_and_auth() -> None:
    pv, rec = client_for(always(200, item_json()))
    async with pv:
        fast = pv.with_options(timeout=1.5, max_retries=0)
        assert fast.http_core.http_client is pv.http_core.http_client
        assert fast.auth_manager is pv.auth_manager
        assert (fast.config.timeout, fast.config.max_retries) == (1.5, 0)
        assert pv.config.timeout == 30.0
        await fast.registry_client.get_item("1/2")
        assert rec.last.extensions["timeout"]["read"] == 1.5
        await fast.aclose()
        await pv.registry_client.get_item("1/2")  # the pool is still open
    with pytest.raises(UsageError):
        pv.with_options(timeout=-1)


def test_constructor_overrides() -> None:
    base = ProvenaConfig(base_url="http://a.test", max_retries=5)
    pv = ProvenaClient(base, auth=httpx.Auth(), timeout=3)
    assert (pv.config.base_url, pv.config.max_retries, pv.config.timeout) == ("http://a.test", 5, 3)
    with pytest.raises(UsageError, match="colour"):
        ProvenaClient(auth=httpx.Auth(), colour="blue")


def test_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("PROVENA_BASE_URL", "http://env.test")
    monkeypatch.delenv("PROVENA_CONFIG_FILE", raising=False)
    pv = ProvenaClient.from_env(auth=httpx.Auth(), max_retries=1)
    assert (pv.config.base_url, pv.config.max_retries) == ("http://env.test", 1)


class FakeAuthManager(httpx.Auth):
    instances: list[FakeAuthManager] = []

    def __init__(self, config: ProvenaConfig) -> None:
        self.config = config
        self.bound: httpx.AsyncClient | None = None
        self.closed = False

    @classmethod
    def from_config(cls, config: ProvenaConfig) -> FakeAuthManager:
        manager = cls(config)
        cls.instances.append(manager)
        return manager

    def bind(self, http_client: httpx.AsyncClient) -> None:
        self.bound = http_client

    async def aclose(self) -> None:
        self.closed = True

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = "Bearer fake"
        yield request


async def test_default_auth_manager_is_bound_to_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provena_like.auth, "AuthManager", FakeAuthManager, raising=False)
    recorder = Recorder(always(200, item_json()))
    pv = ProvenaClient(base_url="http://provena.test", transport=httpx.MockTransport(recorder))
    manager = pv.auth_manager
    assert isinstance(manager, FakeAuthManager)
    assert manager.config is pv.config
    assert manager.bound is pv.http_core.http_client
    async with pv:
        await pv.registry_client.get_item("1/2")
    assert recorder.last.headers["Authorization"] == "Bearer fake"
    assert manager.closed  # created by the client, so closed by it


def test_client_creates_no_aioboto3_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """Transfers make their own botocore session: a client (or a copy) builds none."""
    made: list[aioboto3.Session] = []
    original = aioboto3.Session.__init__

    def record(self: aioboto3.Session, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(aioboto3.Session, "__init__", record)
    pv = ProvenaClient(base_url="http://provena.test", auth=httpx.Auth())
    pv.with_options(timeout=5)
    assert made == []


def test_datastore_session_is_deprecated() -> None:
    pv = ProvenaClient(base_url="http://provena.test", auth=httpx.Auth())
    with pytest.warns(DeprecationWarning, match="session"):
        datastore = Datastore(pv.datastore_client, pv.search_client, session=aioboto3.Session())
    with pytest.warns(DeprecationWarning, match="session"):
        assert datastore.session is not None
