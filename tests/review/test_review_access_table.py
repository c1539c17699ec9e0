"""Every (actor, action) pair, in both states a reviewer meets, against the real server.

One fresh dataset per case, owned by ``owner``; the actor's relation to it is set up by the
case: ``general`` gets an item grant of ``metadata-read`` for everyone signed in, ``group``
is a member of a group granted ``data-write``, ``reviewer`` is the reviewer the pending
request names, ``other_reviewer`` a reviewer it doesn't name, ``stranger`` a user with no
grant and no system role, ``admin`` a system admin, ``anonymous`` sends no token.

Approving or rejecting tells the release state (409 naming it, or 403 ``not_your_review``)
only to callers who may read the dataset or were named its reviewer; everyone else gets the
same 403 ``forbidden`` in both states, so the answer doesn't reveal a pending review.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.review_helpers import (
    Refs,
    User,
    ds,
    item,
    make_refs,
    mint,
    outcome,
    record,
    request_release,
)
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio

Outcome = tuple[int, str | None]

OK: Outcome = (200, None)
UNAUTHENTICATED: Outcome = (401, "unauthenticated")
FORBIDDEN: Outcome = (403, "forbidden")
NOT_YOURS: Outcome = (403, "not_your_review")
UNDER_REVIEW: Outcome = (409, "under_review")
NOT_UNDER_REVIEW: Outcome = (409, "not_under_review")

ACTIONS = (
    "read metadata",
    "update metadata",
    "read data",
    "write data",
    "request release",
    "approve",
    "reject",
    "manage access",
    "lock",
)

A, U, F, N = OK, UNAUTHENTICATED, FORBIDDEN, NOT_YOURS
P, R = UNDER_REVIEW, NOT_UNDER_REVIEW

# fmt: off
TABLE: dict[str, dict[str, tuple[Outcome, ...]]] = {
    #                   read md  upd md  read d  write d  request  approve reject  access  lock
    "NOT_RELEASED": {
        "owner":          (A,      A,      A,      A,       A,       R,      R,      A,      A),
        "general":        (A,      F,      F,      F,       F,       R,      R,      F,      F),
        "group":          (A,      A,      A,      A,       F,       R,      R,      F,      F),
        "reviewer":       (F,      F,      F,      F,       F,       F,      F,      F,      F),
        "other_reviewer": (F,      F,      F,      F,       F,       F,      F,      F,      F),
        "stranger":       (F,      F,      F,      F,       F,       F,      F,      F,      F),
        "admin":          (A,      A,      A,      A,       A,       R,      R,      A,      A),
        "anonymous":      (U,      U,      U,      U,       U,       U,      U,      U,      U),
    },
    "PENDING": {
        "owner":          (A,      P,      A,      P,       P,       N,      N,      A,      A),
        "general":        (A,      F,      F,      F,       F,       N,      N,      F,      F),
        "group":          (A,      P,      A,      P,       F,       N,      N,      F,      F),
        "reviewer":       (A,      F,      A,      F,       F,       A,      A,      F,      F),
        "other_reviewer": (F,      F,      F,      F,       F,       F,      F,      F,      F),
        "stranger":       (F,      F,      F,      F,       F,       F,      F,      F,      F),
        "admin":          (A,      P,      A,      P,       P,       N,      N,      A,      A),
        "anonymous":      (U,      U,      U,      U,       U,       U,      U,      U,      U),
    },
}
# fmt: on

CASES = [
    pytest.param(state, actor, action, expected, id=f"{state}-{actor}-{action.replace(' ', '_')}")
    for state, rows in TABLE.items()
    for actor, outcomes in rows.items()
    for action, expected in zip(ACTIONS, outcomes, strict=True)
]


class Actors:
    """The users of the table, made once for the module."""

    def __init__(self, new_user: Callable[..., User]) -> None:
        self.group = f"table-{uuid.uuid4().hex[:8]}"
        self.users: dict[str, User | None] = {
            "owner": new_user("owner"),
            "general": new_user("general"),
            "group": new_user("member", groups=(self.group,)),
            "reviewer": new_user("reviewer", system_roles=("reviewer",)),
            "other_reviewer": new_user("other-reviewer", system_roles=("reviewer",)),
            "stranger": new_user("stranger"),
            "admin": new_user("sysadmin", system_roles=("admin",)),
            "anonymous": None,
        }

    def __getitem__(self, name: str) -> User:
        user = self.users[name]
        assert user is not None
        return user

    def grants(self, actor: str) -> dict[str, Any]:
        """The access settings that give ``actor`` their relation to a new dataset."""
        if actor == "general":
            return {"general": ["metadata-read"]}
        if actor == "group":
            return {"groups": {self.group: ["data-write"]}}
        return {}


@pytest.fixture(scope="module")
def actors(new_user: Callable[..., User]) -> Actors:
    return Actors(new_user)


@pytest.fixture(scope="module")
async def table_api(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=SHARED_TLS, base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
async def table_refs(table_api: httpx.AsyncClient, actors: Actors) -> Refs:
    return await make_refs(table_api, actors["owner"])


Action = Callable[[httpx.AsyncClient, Actors, dict[str, str], dict[str, Any]], Awaitable[Any]]


def _perform(refs: Refs) -> dict[str, Action]:
    async def read_metadata(
        api: httpx.AsyncClient, _a: Actors, h: dict[str, str], d: dict[str, Any]
    ) -> httpx.Response:
        return await api.get(ds(d["id"]), headers=h)

    async def update_metadata(
        api: httpx.AsyncClient, _a: Actors, h: dict[str, str], d: dict[str, Any]
    ) -> httpx.Response:
        body = {"record": record(refs, name="Renamed"), "reason": "table"}
        return await api.put(ds(d["id"]), json=body, headers=h)

    async def read_data(
        api: httpx.AsyncClient, _a: Actors, h: dict[str, str], d: dict[str, Any]
    ) -> httpx.Response:
        return await api.post(ds(d["id"], "/credentials"), json={"access": "read"}, headers=h)

    async def write_data(
        api: httpx.AsyncClient, _a: Actors, h: dict[str, str], d: dict[str, Any]
    ) -> httpx.Response:
        return await api.post(ds(d["id"], "/credentials"), json={"access": "write"}, headers=h)

    async def request(
        api: httpx.AsyncClient, a: Actors, h: dict[str, str], d: dict[str, Any]
    ) -> httpx.Response:
        body = {"reviewer": a["reviewer"].name, "notes": "table"}
        return await api.post(ds(d["id"], "/release/request"), json=body, headers=h)

    async def approve(
        api: httpx.AsyncClient, _a: Actors, h: dict[str, str], d: dict[str, Any]
    ) -> httpx.Response:
        return await api.post(ds(d["id"], "/release/approve"), json={"notes": "ok"}, headers=h)

    async def reject(
        api: httpx.AsyncClient, _a: Actors, h: dict[str, str], d: dict[str, Any]
    ) -> httpx.Response:
        return await api.post(ds(d["id"], "/release/reject"), json={"notes": "fix"}, headers=h)

    async def manage_access(
        api: httpx.AsyncClient, _a: Actors, h: dict[str, str], d: dict[str, Any]
    ) -> httpx.Response:
        return await api.put(item(d["id"], "/access"), json=d["access"], headers=h)

    async def lock(
        api: httpx.AsyncClient, _a: Actors, h: dict[str, str], d: dict[str, Any]
    ) -> httpx.Response:
        return await api.post(item(d["id"], "/lock"), json={"reason": "table"}, headers=h)

    return {
        "read metadata": read_metadata,
        "update metadata": update_metadata,
        "read data": read_data,
        "write data": write_data,
        "request release": request,
        "approve": approve,
        "reject": reject,
        "manage access": manage_access,
        "lock": lock,
    }


@pytest.mark.parametrize(("state", "actor", "action", "expected"), CASES)
async def test_who_may_do_what(
    table_api: httpx.AsyncClient,
    actors: Actors,
    table_refs: Refs,
    state: str,
    actor: str,
    action: str,
    expected: Outcome,
) -> None:
    owner = actors["owner"]
    dataset = await mint(table_api, owner, record(table_refs), **actors.grants(actor))
    if state == "PENDING":
        dataset = await request_release(table_api, owner, dataset["id"], actors["reviewer"])
    user = actors.users[actor]
    headers = user.headers if user is not None else {}
    r = await _perform(table_refs)[action](table_api, actors, headers, dataset)
    assert outcome(r) == expected, r.text
    if expected == OK and action in {"approve", "reject"}:
        status = "RELEASED" if action == "approve" else "NOT_RELEASED"
        assert r.json()["release_status"] == status


def test_the_table_is_complete() -> None:
    assert len(CASES) == 2 * 8 * 9
