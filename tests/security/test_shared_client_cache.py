"""One client shared by several users (a web backend) never hands one user's S3 keys to another.

The backend signs each request with the token of the user it serves (an ``httpx.Auth`` that
reads a context variable, set per request). The dataset-credential cache must be keyed by
who is asking, so a user without access to a dataset gets the server's 403/404, never the
keys another user's request left in the cache.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import Forbidden, NotFound
from provena_like.testing.server_thread import ServerThread

pytestmark = pytest.mark.anyio

_APPROVALS = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")


class PerRequestToken(httpx.Auth):
    """Signs each request with the token of the user the current request serves."""

    def __init__(self) -> None:
        self.token: ContextVar[str | None] = ContextVar("token", default=None)

    @contextmanager
    def acting_as(self, token: str) -> Iterator[None]:
        reset = self.token.set(token)
        try:
            yield
        finally:
            self.token.reset(reset)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = self.token.get()
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


class ChallengeToken(PerRequestToken):
    """Signs a request only after the server answered 401 (nothing to tell callers apart by)."""

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        response = yield request
        token = self.token.get()
        if response.status_code == 401 and token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


def _record(org: str, person: str) -> dict[str, object]:
    return {
        "associations": {"organisation_id": org, "point_of_contact": person},
        "approvals": {a: {"relevant": False, "obtained": False} for a in _APPROVALS},
        "dataset_info": {
            "name": f"Private data {uuid.uuid4().hex[:6]}",
            "description": "Only its owner may read it.",
            "access_info": {"reposited": True},
            "publisher_id": org,
            "created_date": "2024-01-01",
            "published_date": "2024-06-30",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["private"],
        },
    }


@pytest.mark.parametrize("auth_class", [PerRequestToken, ChallengeToken])
async def test_a_shared_client_never_gives_one_users_keys_to_another(
    server: ServerThread, make_token: Callable[..., str], auth_class: type[PerRequestToken]
) -> None:
    suffix = uuid.uuid4().hex[:6]
    alice = make_token(f"alice-{suffix}")
    bob = make_token(f"bob-{suffix}")
    auth = auth_class()
    shares = auth_class is PerRequestToken  # a challenge auth can't be told apart: no reuse
    async with ProvenaClient(base_url=server.url, auth=auth) as pv:
        with auth.acting_as(alice):
            org = await pv.registry_client.create_item(
                {"subtype": "organisation", "record": {"name": f"Alice's lab {suffix}"}}
            )
            person = await pv.registry_client.create_item(
                {
                    "subtype": "person",
                    "record": {"first_name": "Alice", "last_name": "A", "email": "a@example.org"},
                }
            )
            ds = await pv.datastore.mint(_record(org.id, person.id))
            alice_read = await pv.datastore.credentials(ds.id, "read")
            alice_write = await ds.credentials("write")
            # the cache works for Alice (when it can tell her apart): the same keys again
            again = await pv.datastore.credentials(ds.id, "read")
            assert (again is alice_read) is shares

        with auth.acting_as(bob):
            for access in ("read", "write"):
                with pytest.raises((Forbidden, NotFound)):
                    await pv.datastore.credentials(ds.id, access)  # type: ignore[arg-type]
            with pytest.raises((Forbidden, NotFound)):
                await ds.credentials("read")  # Alice's InteractiveDataset, Bob's request
            with pytest.raises((Forbidden, NotFound)):
                await ds.path("anything.csv")

        with auth.acting_as(alice):
            # Bob's refusals didn't evict or replace Alice's cached keys
            read = await pv.datastore.credentials(ds.id, "read")
            write = await pv.datastore.credentials(ds.id, "write")
            assert (read is alice_read) is shares
            assert (write is alice_write) is shares
            assert read.prefix == alice_read.prefix and write.access == "write"

        # nothing signs the request: the server refuses, the cache gives nothing away
        with pytest.raises(Exception) as caught:
            await pv.datastore.credentials(ds.id, "read")
        assert getattr(caught.value, "status_code", None) == 401


@pytest.mark.parametrize("auth_class", [PerRequestToken, ChallengeToken])
async def test_a_shared_client_never_lends_one_users_open_engine_to_another(
    server: ServerThread,
    make_token: Callable[..., str],
    auth_class: type[PerRequestToken],
    tmp_path: Path,
) -> None:
    suffix = uuid.uuid4().hex[:6]
    alice = make_token(f"alice-{suffix}")
    bob = make_token(f"bob-{suffix}")
    auth = auth_class()
    shares = auth_class is PerRequestToken
    (tmp_path / "a.csv").write_text("alice's data")
    async with ProvenaClient(base_url=server.url, auth=auth) as pv:
        with auth.acting_as(alice):
            org = await pv.registry_client.create_item(
                {"subtype": "organisation", "record": {"name": f"Alice's lab {suffix}"}}
            )
            person = await pv.registry_client.create_item(
                {
                    "subtype": "person",
                    "record": {"first_name": "Alice", "last_name": "A", "email": "a@example.org"},
                }
            )
            ds = await pv.datastore.mint(_record(org.id, person.id))
            assert len((await ds.upload(tmp_path / "a.csv")).ok) == 1
            assert len((await ds.download(tmp_path / "alice")).ok) == 1
            # kept open for Alice (when she can be told apart), read and write
            assert len(pv.datastore.engines) == (2 if shares else 0)

        with auth.acting_as(bob):
            # Alice's InteractiveDataset, Bob's requests: the server decides, not her engines
            with pytest.raises((Forbidden, NotFound)):
                await ds.upload(tmp_path / "a.csv")
            with pytest.raises((Forbidden, NotFound)):
                await ds.download(tmp_path / "bob")
        assert not (tmp_path / "bob" / "a.csv").exists()

        with auth.acting_as(alice):
            assert len((await ds.download(tmp_path / "again")).ok) == 1
            assert len(pv.datastore.engines) == (2 if shares else 0)
