"""One ``ProvenaClient`` shared by the users of a web backend never mixes their credentials.

The audit's leak: a backend kept one client and switched its auth to the token of each
request's user. When two requests overlapped, the request for S3 credentials was signed
with the other user's token and the answer filed under the first caller: a user with no
access to a dataset got its owner's S3 keys (HTTP 200). Now the credentials request carries
exactly the headers its caller was identified by, switching the client's own auth or
headers is refused, and views (``pv.as_user``) give each request its own auth.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

from provena_like import APIStatusError, ProvenaClient, UsageError
from provena_like.clients.datastore import DatastoreClient
from provena_like.modules.interactive import InteractiveDataset
from provena_like.testing.localstack import LocalStack
from tests.embedding.conftest import Owner

pytestmark = pytest.mark.anyio

REQUESTS_PER_USER = 20


class SwitchedBearer(httpx.Auth):
    """A backend's shared auth, set to the token of each request's user before its calls."""

    token = ""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def _switching_backend(pv: ProvenaClient, auth: SwitchedBearer) -> FastAPI:
    """A web backend as one was written before views: one client, its token switched."""
    app = FastAPI()

    @app.get("/read-access/{dataset_id:path}")
    async def read_access(dataset_id: str, authorization: str = Header()) -> Any:
        auth.token = authorization.removeprefix("Bearer ")
        try:
            creds = await pv.datastore.credentials(dataset_id, "read")
        except APIStatusError as err:
            return JSONResponse({"error": err.code}, status_code=err.status_code)
        return {"access_key_id": creds.access_key_id, "prefix": creds.prefix}

    return app


async def _burst(app: FastAPI, calls: list[tuple[str, str]]) -> list[tuple[str, httpx.Response]]:
    """Send every (token, path) at once through the ASGI app; (token, response) in order."""
    results: list[tuple[str, httpx.Response] | None] = [None] * len(calls)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://backend") as http:

        async def one(i: int, token: str, path: str) -> None:
            r = await http.get(path, headers={"Authorization": f"Bearer {token}"})
            results[i] = (token, r)

        async with anyio.create_task_group() as tg:
            for i, (token, path) in enumerate(calls):
                tg.start_soon(one, i, token, path)
    return [r for r in results if r is not None]


async def test_a_switched_shared_auth_never_hands_one_users_keys_to_another(
    localstack: LocalStack, alice: Owner, bob: Owner
) -> None:
    auth = SwitchedBearer()
    async with ProvenaClient(localstack.config(), auth=auth) as pv:
        app = _switching_backend(pv, auth)
        path = f"/read-access/{alice.dataset_id}"
        # bob first: his requests wait on the cache while alice's switch the token last
        calls = [(bob.user.token, path), (alice.user.token, path)] * REQUESTS_PER_USER
        results = await _burst(app, calls)

    for_alice = [r for token, r in results if token == alice.user.token]
    for_bob = [r for token, r in results if token == bob.user.token]
    assert len(for_alice) == len(for_bob) == REQUESTS_PER_USER
    # bob may not read alice's dataset: he never gets keys, whoever asked at the same time
    assert [r.status_code for r in for_bob] == [403] * REQUESTS_PER_USER, [
        r.json() for r in for_bob
    ]
    # and alice's own requests are never signed with bob's token
    assert [r.status_code for r in for_alice] == [200] * REQUESTS_PER_USER
    assert len({r.json()["access_key_id"] for r in for_alice}) == 1  # asked once, then cached


async def test_the_shared_clients_auth_headers_and_cookies_cannot_be_changed(
    localstack: LocalStack, alice: Owner
) -> None:
    async with ProvenaClient(localstack.config(access_token=alice.user.token)) as pv:
        http = pv.http_core.http_client
        with pytest.raises(UsageError, match="as_user"):
            http.auth = httpx.Auth()
        with pytest.raises(UsageError, match="as_user"):
            http.headers["Authorization"] = "Bearer someone-else"
        with pytest.raises(UsageError, match="as_user"):
            http.headers.update({"Authorization": "Bearer someone-else"})
        with pytest.raises(UsageError, match="as_user"):
            http.headers = {"Authorization": "Bearer someone-else"}
        with pytest.raises(UsageError, match="as_user"):
            http.cookies = {"session": "someone-else"}
        # still alice's client
        assert (await pv.datastore.fetch(alice.dataset_id)).id == alice.dataset_id


async def test_views_never_share_credentials_even_when_all_ask_at_once(
    localstack: LocalStack, alice: Owner, bob: Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    original = DatastoreClient.get_credentials

    async def counting(self: DatastoreClient, dataset_id: str, *args: Any, **kw: Any) -> Any:
        asked.append(dataset_id)
        return await original(self, dataset_id, *args, **kw)

    monkeypatch.setattr(DatastoreClient, "get_credentials", counting)
    got: dict[tuple[str, str], list[Any]] = {}

    async with ProvenaClient(localstack.config()) as pv:

        async def ask(owner: Owner, dataset: Owner) -> None:
            view = pv.as_user(owner.user.token)  # a new view per request
            try:
                answer: Any = await view.datastore.credentials(dataset.dataset_id, "read")
            except APIStatusError as err:
                answer = err.status_code
            got.setdefault((owner.user.name, dataset.dataset_id), []).append(answer)

        async with anyio.create_task_group() as tg:
            for _ in range(REQUESTS_PER_USER):
                for owner in (alice, bob):
                    for dataset in (alice, bob):
                        tg.start_soon(ask, owner, dataset)

    mine_a = got[(alice.user.name, alice.dataset_id)]
    mine_b = got[(bob.user.name, bob.dataset_id)]
    # each owner's burst was one request to the server, shared by all their views...
    assert all(c is mine_a[0] for c in mine_a) and all(c is mine_b[0] for c in mine_b)
    assert mine_a[0].prefix != mine_b[0].prefix
    assert asked.count(alice.dataset_id) == 1 + REQUESTS_PER_USER  # alice once, bob each time
    assert asked.count(bob.dataset_id) == 1 + REQUESTS_PER_USER
    # ...and never reached the other user, who got the server's refusal every time
    assert got[(bob.user.name, alice.dataset_id)] == [403] * REQUESTS_PER_USER
    assert got[(alice.user.name, bob.dataset_id)] == [403] * REQUESTS_PER_USER


async def test_a_view_shares_the_pool_and_owns_nothing(
    localstack: LocalStack, alice: Owner
) -> None:
    made: list[httpx.AsyncClient] = []
    pv = ProvenaClient(localstack.config())
    async with pv:
        original = httpx.AsyncClient.__init__

        def record(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            made.append(self)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(httpx.AsyncClient, "__init__", record)
            view = pv.as_user(alice.user.token)
            assert (await view.auth_client.userinfo()).preferred_username == alice.user.name
            copy = pv.with_options(access_token=alice.user.token, timeout=120)
            assert (await copy.datastore.fetch(alice.dataset_id)).id == alice.dataset_id
        assert made == []  # no HTTP client, no pool per view
        assert view.is_view and copy.is_view and not pv.is_view
        assert view.http_core.http_client is pv.http_core.http_client
        assert copy.config.timeout == 120
        assert "view" in repr(view) and alice.user.token not in repr(view.auth_manager)
        with pytest.raises(UsageError):
            pv.as_user("")

        await view.aclose()  # owns nothing: still works, and so does the client
        assert not view.is_closed
        assert (await view.datastore.fetch(alice.dataset_id)).id == alice.dataset_id
    assert view.is_closed  # the client's pool is closed
    with pytest.raises(UsageError):
        await view.datastore.fetch(alice.dataset_id)


async def test_a_token_provider_is_asked_before_each_request(
    localstack: LocalStack, alice: Owner
) -> None:
    calls = 0

    async def current_token() -> str:
        nonlocal calls
        calls += 1
        return alice.user.token

    async with ProvenaClient(localstack.config()) as pv:
        view = pv.as_user(current_token)
        await view.auth_client.userinfo()
        await view.datastore.fetch(alice.dataset_id)
        assert calls == 2
        sync_view = pv.as_user(lambda: alice.user.token)
        assert (await sync_view.auth_client.userinfo()).preferred_username == alice.user.name


async def test_views_share_open_engines_only_with_their_own_caller(
    localstack: LocalStack, alice: Owner, bob: Owner, tmp_path: Path
) -> None:
    (tmp_path / "a.csv").write_text("alice's data")
    async with ProvenaClient(localstack.config()) as pv:
        first = await pv.as_user(alice.user.token).datastore.interactive(alice.dataset_id)
        assert len((await first.upload(tmp_path / "a.csv")).ok) == 1
        assert len(pv.datastore.engines) == 1  # the view's engine is the client's to close

        # another request of alice's: a new view, the same open engine
        second = await pv.as_user(alice.user.token).datastore.interactive(alice.dataset_id)
        assert len((await second.download(tmp_path / "down")).ok) == 1
        assert len((await second.download(tmp_path / "again")).ok) == 1
        assert len(pv.datastore.engines) == 2  # write and read, both alice's

        # bob's request for alice's dataset: the server refuses, alice's engines stay hers
        bobs = pv.as_user(bob.user.token).datastore
        with pytest.raises(APIStatusError) as refused:
            await bobs.interactive(alice.dataset_id)
        assert refused.value.status_code == 403
        with pytest.raises(APIStatusError):
            await InteractiveDataset(bobs, first.dataset).download(tmp_path / "bob")
        assert not (tmp_path / "bob" / "a.csv").exists()
        await bobs.aclose()  # a view's module closes nothing of the client's
        assert len(pv.datastore.engines) == 2
    assert len(pv.datastore.engines) == 0  # closed with the client


async def test_a_view_has_no_transfer_client_of_its_own(localstack: LocalStack) -> None:
    # a view is never closed, so a transfer client it opened would outlive the request
    async with ProvenaClient(localstack.config()) as pv:
        view = pv.as_user("some-token")
        with pytest.raises(UsageError, match="as_user"):
            _ = view.transfer_client
