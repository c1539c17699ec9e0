"""Bad inputs to every service answer 4xx with the error envelope, never 5xx.

A table of hostile or malformed inputs (huge and odd numbers, overflowing and odd-zoned
datetimes, NUL bytes, invalid UTF-8, deep nesting in JSON and in cursors, wrong types, path
traversal, query-syntax characters, forged cursors, bad headers, ...), each sent to the routes
it concerns on the session's real server.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from provena_like.server.errors import install_error_handlers
from provena_like.server.middleware import RequestIdMiddleware
from provena_like.server.search import service as search_service
from provena_like.server.search.service import SearchFilters
from provena_like.testing.server_thread import ServerThread
from tests.support.tls import SHARED_TLS

BIG = 2**70
INT64_MAX = 2**63 - 1


def _cursor(raw: bytes | str) -> str:
    """A cursor as the server encodes them: unpadded URL-safe base64 of ``raw``."""
    data = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _json_cursor(values: Any) -> str:
    return _cursor(json.dumps(values, separators=(",", ":")))


def _search_scope(q: str) -> str:
    """The scope digest of a plain search for ``q`` (a forged cursor must pass it)."""
    return search_service._scope(q, SearchFilters())


@dataclass(frozen=True)
class World:
    """What the cases refer to: an admin, a person item and a dataset, all theirs, and a
    second user (``victim``) whose account the cases try to change."""

    admin_name: str
    victim: str
    token: str
    item: str
    dataset: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Case:
    """One bad request. ``path`` may hold ``{item}``, ``{dataset}`` and ``{victim}``."""

    id: str
    method: str
    path: str
    params: Any = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] | None = None
    auth: bool = True
    oauth: bool = False  # the OAuth endpoints answer with RFC 6749 error bodies


CASES: list[Case] = []


def case(id: str, method: str, path: str, **kwargs: Any) -> None:
    CASES.append(Case(id, method, path, **kwargs))


# -- cursors on every listing --------------------------------------------------------------

LISTINGS = {
    "auth-users": "/auth/users",
    "auth-groups": "/auth/groups",
    "auth-clients": "/auth/clients",
    "registry-items": "/registry/items",
    "registry-history": "/registry/items/{item}/history",
    "datastore-datasets": "/datastore/datasets",
    "datastore-files": "/datastore/datasets/{dataset}/files",
    "review-reviewers": "/datastore/reviewers",
    "review-history": "/datastore/datasets/{dataset}/release/history",
    "review-awaiting": "/datastore/reviews/awaiting",
    "review-mine": "/datastore/reviews/mine",
}

GENERIC_CURSORS = {
    "not-base64": "!!!not*base64!!!",
    "base64-not-json": _cursor(b"\xff\xfe\x00garbage"),
    "json-object": _json_cursor({"a": 1}),
    "json-scalar": _json_cursor(3),
    "wrong-length": _json_cursor([1, 2, 3, 4, 5, 6, 7, 8, 9]),
    "deep-nesting": _cursor("[" * 2500 + "]" * 2500),
    "nan": _cursor("[NaN, NaN]"),
    "huge-string": _json_cursor(["x" * 20_000]),
    "empty": "",
    "nul-byte": "abc\x00def",
    "unicode": "ｃｕｒｓｏｒ☃",
}

for listing, route in LISTINGS.items():
    for kind, bad in GENERIC_CURSORS.items():
        case(f"{listing}-cursor-{kind}", "GET", route, params={"cursor": bad})
    for size in ("0", "-1", str(BIG), "1.5", "abc", "NaN", "", "1e3", "\x00"):
        case(f"{listing}-page_size-{size!r}", "GET", route, params={"page_size": size})

# cursors that pass each listing's scope check but carry a value the database can't hold
OVERFLOW_CURSORS: list[tuple[str, str, Callable[[World], str]]] = [
    (
        "registry-history-big-id",
        "/registry/items/{item}/history",
        lambda w: _json_cursor([w.item, BIG]),
    ),
    (
        "registry-history-neg-big-id",
        "/registry/items/{item}/history",
        lambda w: _json_cursor([w.item, -BIG]),
    ),
    (
        "registry-items-big-seq",
        "/registry/items",
        lambda w: _json_cursor(["created", "asc", None, None, "2024-01-01T00:00:00+00:00", BIG]),
    ),
    (
        "registry-items-overflow-datetime",
        "/registry/items",
        lambda w: _json_cursor(["created", "asc", None, None, "0001-01-01T00:00:00+14:00", 1]),
    ),
    (
        "registry-items-overflow-datetime-max",
        "/registry/items",
        lambda w: _json_cursor(["created", "asc", None, None, "9999-12-31T23:59:59-14:00", 1]),
    ),
    (
        "datastore-datasets-big-seq",
        "/datastore/datasets",
        lambda w: _json_cursor(
            ["created", "asc", None, None, None, "2024-01-01T00:00:00+00:00", BIG]
        ),
    ),
    (
        "datastore-datasets-overflow-datetime",
        "/datastore/datasets",
        lambda w: _json_cursor(
            ["created", "asc", None, None, None, "0001-01-01T00:00:00+14:00", 1]
        ),
    ),
    (
        "review-history-big-id",
        "/datastore/datasets/{dataset}/release/history",
        lambda w: _json_cursor([w.dataset, BIG]),
    ),
    (
        "review-awaiting-big-seq",
        "/datastore/reviews/awaiting",
        lambda w: _json_cursor(["awaiting", "2024-01-01T00:00:00+00:00", BIG]),
    ),
    (
        "review-mine-overflow-datetime",
        "/datastore/reviews/mine",
        lambda w: _json_cursor(["mine", "0001-01-01T00:00:00+14:00", 1]),
    ),
    ("search-big-seq", "/search/items", lambda w: _json_cursor([_search_scope("reef"), 1.0, BIG])),
    (
        "search-inf-score",
        "/search/items",
        lambda w: _cursor(f'["{_search_scope("reef")}", Infinity, 1]'),
    ),
    (
        "search-score-beyond-float",
        "/search/items",
        lambda w: _cursor(f'["{_search_scope("reef")}", 1{"0" * 400}, 1]'),
    ),
]

# -- search --------------------------------------------------------------------------------

SEARCH_QUERIES = {
    "nul": "reef\x00temperature",
    "nul-only": "\x00",
    "nul-in-phrase": '"reef\x00"',
    "too-long": "reef " * 200,
    "blank": "   ",
    "empty": "",
    "only-punctuation": '"()^:*-',
    "only-negated": "-reef",
    "too-many-terms": " ".join(f"w{i}" for i in range(40)),
}
for kind, q in SEARCH_QUERIES.items():
    case(f"search-q-{kind}", "GET", "/search/items", params={"q": q})
case(
    "datastore-register-path-reserved",
    "POST",
    "/datastore/datasets/{dataset}/files",
    json={"files": [{"path": "metadata.json", "size": 1, "sha256": "0" * 64}]},
)

# hostile but valid: the server must answer them normally (query syntax is text, never SQL)
VALID_SEARCHES = {
    "fts-syntax": "reef NEAR(a b) {col}: ^x AND OR NOT",
    "sql": "'; DROP TABLE registry_items; --",
    "control-chars": "reef\x01\x02\x1b[31m",
    "unicode-tricks": "re\u200bef \u202etxt.exe ＲＥＥＦ",
    "quotes": 'reef" "" """',
}
case("search-no-q", "GET", "/search/items")

SEARCH_DATES = {
    "min-plus-14": "0001-01-01T00:00:00+14:00",
    "max-minus-14": "9999-12-31T23:59:59-14:00",
    "min-plus-1": "0001-01-01T00:30:00+01:00",
    "year-0": "0000-01-01T00:00:00Z",
    "year-10000": "10000-01-01T00:00:00Z",
    "tz-25h": "2024-01-01T00:00:00+25:00",
    "not-a-date": "yesterday",
    "nan": "NaN",
    "huge-epoch": str(BIG),
    "nul": "2024-01-01\x00",
}
for kind, when in SEARCH_DATES.items():
    for name in ("created_after", "created_before"):
        case(f"search-{name}-{kind}", "GET", "/search/items", params={"q": "reef", name: when})

for kind, value in {
    "no-prefix": "dataset_info.keywords:coral",
    "empty-value": "record.dataset_info.keywords:",
    "bad-key": "record.../etc:passwd",
    "deep": "record" + ".a" * 50 + ":x",
    "nul": "record.a:\x00",
}.items():
    case(f"search-field-{kind}", "GET", "/search/items", params={"q": "reef", "field": value})
case("search-subtype-unknown", "GET", "/search/items", params={"q": "reef", "subtype": "nope"})
case("search-subtype-empty", "GET", "/search/items", params={"q": "reef", "subtype": ""})
case("search-page_size-big", "GET", "/search/items", params={"q": "reef", "page_size": str(BIG)})
case("search-no-auth", "GET", "/search/items", params={"q": "reef"}, auth=False)
case("search-reindex-no-auth", "POST", "/search/reindex", auth=False)

# -- registry ------------------------------------------------------------------------------

for kind, value in {
    "big": BIG,
    "int64-max-plus-1": INT64_MAX + 1,
    "neg-big": -BIG,
    "negative": -1,
    "zero": 0,
    "float": 1.5,
    "string": "1",
    "nan-string": "NaN",
    "bool": True,
    "null": None,
    "list": [1],
}.items():
    case(
        f"registry-revert-history_id-{kind}",
        "POST",
        "/registry/items/{item}/revert",
        json={"history_id": value, "reason": "bad input"},
    )
    case(
        f"datastore-revert-history_id-{kind}",
        "POST",
        "/datastore/datasets/{dataset}/revert",
        json={"history_id": value, "reason": "bad input"},
    )
for kind, value in {"big": BIG, "neg-big": -BIG, "float": 2.5, "string": "x"}.items():
    case(
        f"registry-put-expected_revision-{kind}",
        "PUT",
        "/registry/items/{item}",
        json={"record": {}, "reason": "r", "expected_revision": value},
    )
    case(
        f"registry-access-expected_revision-{kind}",
        "PUT",
        "/registry/items/{item}/access",
        json={"owner": "x", "expected_revision": value},
    )
for kind, value in {
    "letters": "abc",
    "big": f'"{BIG}"',
    "negative": '"-1"',
    "two": '"1", "2"',
    "unquoted-junk": "1; 2",
    "empty": "",
    "weak-junk": 'W/"x"',
}.items():
    case(
        f"registry-if-match-{kind}",
        "PUT",
        "/registry/items/{item}",
        json={"record": {}, "reason": "r"},
        headers={"If-Match": value},
    )
    case(
        f"datastore-lock-if-match-{kind}",
        "POST",
        "/registry/items/{item}/lock",
        json={"reason": "r"},
        headers={"If-Match": value},
    )
for kind, value in {"empty": "", "too-long": "k" * 300}.items():
    case(
        f"registry-create-idempotency-{kind}",
        "POST",
        "/registry/items",
        json={"subtype": "person", "record": {}},
        headers={"Idempotency-Key": value},
    )
    case(
        f"auth-create-group-idempotency-{kind}",
        "POST",
        "/auth/groups",
        json={"name": f"g-{uuid.uuid4().hex[:8]}"},
        headers={"Idempotency-Key": value},
    )
for kind, body in {
    "not-json": b"{not json",
    "invalid-utf8": b'{"subtype": "person", "record": {"name": "\xff\xfe"}}',
    "lone-surrogate": b'{"subtype": "person", "record": {"name": "\\ud800"}}',
    "deep-nesting": b'{"subtype": "person", "record": '
    + b'{"a":' * 5000
    + b"1"
    + b"}" * 5000
    + b"}",
    "deep-array": b'{"subtype": "person", "record": {"a": '
    + b"[" * 100_000
    + b"]" * 100_000
    + b"}}",
    "nul-in-json": b'{"subtype": "person\\u0000", "record": {}}',
    "huge-number": b'{"subtype": "person", "record": {"n": 1' + b"0" * 5000 + b"}}",
    "nan-literal": b'{"subtype": "person", "record": {"n": NaN}}',
    "empty": b"",
    "array": b"[]",
    "null": b"null",
}.items():
    case(
        f"registry-create-body-{kind}",
        "POST",
        "/registry/items",
        content=body,
        headers={"Content-Type": "application/json"},
    )
for kind, payload in {
    "subtype-empty": {"subtype": "", "record": {}},
    "subtype-unknown": {"subtype": "../../etc", "record": {}},
    "subtype-nul": {"subtype": "person\x00", "record": {}},
    "record-list": {"subtype": "person", "record": []},
    "record-string": {"subtype": "person", "record": "x"},
    "general-bad-role": {"subtype": "person", "record": {}, "general": ["root"]},
    "display-name-long": {"subtype": "person", "record": {}, "display_name": "x" * 100_000},
}.items():
    case(f"registry-create-{kind}", "POST", "/registry/items", json=payload)
for kind, sub in {
    "encoded-traversal": "%2e%2e/%2e%2e",
    "nul": "10378.1/1%00",
    "big-number": f"10378.1/{BIG}",
    "unicode": "10378.1/１２３",
    "sql": "10378.1/1' OR '1'='1",
}.items():
    case(f"registry-get-id-{kind}", "GET", "/registry/items/" + sub)
for params in ({"sort": "nope"}, {"order": "sideways"}, {"subtype": ""}, {"subtype": "nope"}):
    case(
        f"registry-list-{next(iter(params))}-{next(iter(params.values()))}",
        "GET",
        "/registry/items",
        params=params,
    )
case("registry-no-auth", "GET", "/registry/items", auth=False)
case(
    "registry-bad-bearer",
    "GET",
    "/registry/items",
    auth=False,
    headers={"Authorization": "Bearer not.a.token"},
)
case(
    "registry-basic-auth",
    "GET",
    "/registry/items",
    auth=False,
    headers={"Authorization": "Basic eDp5"},
)

# -- datastore -----------------------------------------------------------------------------

for kind, value in {
    "big": BIG,
    "int64-max-plus-1": INT64_MAX + 1,
    "negative": -1,
    "float": 1.5,
}.items():
    case(
        f"datastore-files-size-{kind}",
        "POST",
        "/datastore/datasets/{dataset}/files",
        json={"files": [{"path": "a.csv", "size": value, "sha256": "0" * 64}]},
    )
for kind, path in {
    "traversal": "../other/secret",
    "absolute": "/etc/passwd",
    "nul": "a\x00b.csv",
    "backslash": "..\\..\\x",
    "empty": "",
    "long": "a/" * 3000 + "x",
}.items():
    case(
        f"datastore-presign-path-{kind}",
        "POST",
        "/datastore/datasets/{dataset}/presign",
        json={"path": path, "method": "GET"},
    )
    case(
        f"datastore-register-path-{kind}",
        "POST",
        "/datastore/datasets/{dataset}/files",
        json={"files": [{"path": path, "size": 1, "sha256": "0" * 64}]},
    )
for kind, value in {"zero": 0, "big": BIG, "negative": -5, "string": "soon", "float": 1.5}.items():
    case(
        f"datastore-presign-expires-{kind}",
        "POST",
        "/datastore/datasets/{dataset}/presign",
        json={"path": "a.csv", "method": "GET", "expires_in": value},
    )
    case(
        f"datastore-credentials-duration-{kind}",
        "POST",
        "/datastore/datasets/{dataset}/credentials",
        json={"access": "read", "duration_seconds": value},
    )
case(
    "datastore-credentials-access-bad",
    "POST",
    "/datastore/datasets/{dataset}/credentials",
    json={"access": "root"},
)
case(
    "datastore-presign-method-bad",
    "POST",
    "/datastore/datasets/{dataset}/presign",
    json={"path": "a.csv", "method": "DELETE"},
)
for kind, value in {"bad": "x", "nul": "\x00", "unknown": "DELETED"}.items():
    case(
        f"datastore-list-release_status-{kind}",
        "GET",
        "/datastore/datasets",
        params={"release_status": value},
    )
case(
    "datastore-mint-record-empty",
    "POST",
    "/datastore/datasets",
    json={"record": {}},
)
case(
    "datastore-validate-record-wrong-type",
    "POST",
    "/datastore/datasets/validate",
    json={"record": "x"},
)
case("datastore-get-file-traversal", "GET", "/datastore/datasets/{dataset}/files/..%2F..%2Fx")
case("datastore-get-dataset-nul", "GET", "/datastore/datasets/10378.1/%00")

# -- review --------------------------------------------------------------------------------

for kind, reviewer in {
    "nul": "a\x00b",
    "empty": "",
    "long": "r" * 10_000,
    "unknown": "nobody-here",
}.items():
    case(
        f"review-request-reviewer-{kind}",
        "POST",
        "/datastore/datasets/{dataset}/release/request",
        json={"reviewer": reviewer, "notes": "n"},
    )
    case(f"review-add-reviewer-{kind}", "POST", "/datastore/reviewers", json={"username": reviewer})
case("review-approve-not-pending", "POST", "/datastore/datasets/{dataset}/release/approve", json={})
case(
    "review-reject-notes-wrong-type",
    "POST",
    "/datastore/datasets/{dataset}/release/reject",
    json={"notes": 1},
)

# -- auth ----------------------------------------------------------------------------------

for kind, value in {"int-zero": 0, "int-one": 1, "string": "false", "null-string": "null"}.items():
    case(f"auth-patch-disabled-{kind}", "PATCH", "/auth/users/{victim}", json={"disabled": value})
for kind, name in {
    "traversal": "../x",
    "nul": "a\x00b",
    "empty": "",
    "long": "u" * 1000,
    "unicode": "ädmin",
    "space": "a b",
}.items():
    case(
        f"auth-create-user-{kind}",
        "POST",
        "/auth/users",
        json={"username": name, "password": "long-enough-password"},
    )
    case(f"auth-create-group-{kind}", "POST", "/auth/groups", json={"name": name})
case(
    "auth-create-user-short-password",
    "POST",
    "/auth/users",
    json={"username": "shorty", "password": "x"},
)
case("auth-get-user-nul", "GET", "/auth/users/a%00b")
case("auth-get-user-unknown", "GET", "/auth/users/" + "z" * 500)
case(
    "auth-token-bad-grant",
    "POST",
    "/auth/token",
    form={"grant_type": "nope"},
    auth=False,
    oauth=True,
)
case(
    "auth-token-nul",
    "POST",
    "/auth/token",
    form={"grant_type": "client_credentials", "client_id": "a\x00", "client_secret": "x"},
    auth=False,
    oauth=True,
)
case(
    "auth-token-json",
    "POST",
    "/auth/token",
    json={"grant_type": "client_credentials"},
    auth=False,
    oauth=True,
)
case(
    "auth-revoke-missing-token",
    "POST",
    "/auth/revoke",
    form={},
    auth=False,
    oauth=True,
)
case(
    "auth-device-authorization-unknown-client",
    "POST",
    "/auth/device_authorization",
    form={"client_id": "\x00" * 10},
    auth=False,
    oauth=True,
)
case("auth-userinfo-no-auth", "GET", "/auth/userinfo", auth=False)
case("auth-users-no-auth", "GET", "/auth/users", auth=False)


@pytest.fixture(scope="module")
def world(server: ServerThread, make_token: Callable[..., str]) -> Iterator[World]:
    """An admin who owns a person item and a dataset."""
    name = f"bad-inputs-{uuid.uuid4().hex[:8]}"
    token = make_token(name, system_roles=("admin",))
    victim = f"bad-inputs-victim-{uuid.uuid4().hex[:8]}"
    make_token(victim)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(verify=SHARED_TLS, base_url=server.url, timeout=120, headers=headers) as http:
        org = http.post(
            "/registry/items",
            json={"subtype": "organisation", "record": {"name": "Reef Institute"}},
        )
        assert org.status_code == 201, org.text
        person = http.post(
            "/registry/items",
            json={
                "subtype": "person",
                "record": {"first_name": "Ada", "last_name": "L", "email": "ada@example.org"},
            },
        )
        assert person.status_code == 201, person.text
        record = {
            "associations": {
                "organisation_id": org.json()["id"],
                "point_of_contact": person.json()["id"],
            },
            "approvals": {
                a: {"relevant": False, "obtained": False}
                for a in (
                    "ethics_registration",
                    "ethics_access",
                    "indigenous_knowledge",
                    "export_controls",
                )
            },
            "dataset_info": {
                "name": "Reef temperatures",
                "description": "Logger readings.",
                "access_info": {"reposited": True},
                "publisher_id": org.json()["id"],
                "created_date": "2024-01-01",
                "published_date": "2024-06-30",
                "license": "https://creativecommons.org/licenses/by/4.0/",
                "keywords": ["reef"],
            },
        }
        dataset = http.post("/datastore/datasets", json={"record": record})
        assert dataset.status_code == 201, dataset.text
        yield World(name, victim, token, person.json()["id"], dataset.json()["dataset"]["id"])


def _assert_error(r: httpx.Response, *, oauth: bool = False) -> None:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    body = r.json()
    if oauth and isinstance(body.get("error"), str):
        return  # RFC 6749 §5.2 error body
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details", "request_id"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["error"]["request_id"] == r.headers["x-request-id"]


def _send(http: httpx.Client, world: World, c: Case, path: str, params: Any) -> httpx.Response:
    headers = {**(world.auth if c.auth else {}), **c.headers}
    return http.request(
        c.method,
        path,
        params=params,
        json=c.json,
        content=c.content,
        data=c.form,
        headers=headers,
    )


@pytest.fixture(scope="module")
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(verify=SHARED_TLS, base_url=server.url, timeout=120) as client:
        yield client


def _fill(path: str, world: World) -> str:
    return path.format(item=world.item, dataset=world.dataset, victim=world.victim)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_client_error(c: Case, world: World, http: httpx.Client) -> None:
    r = _send(http, world, c, _fill(c.path, world), c.params)
    _assert_error(r, oauth=c.oauth)


@pytest.mark.parametrize(
    ("path", "make"),
    [(p, m) for _, p, m in OVERFLOW_CURSORS],
    ids=[i for i, _, _ in OVERFLOW_CURSORS],
)
def test_cursor_the_database_cannot_hold_is_a_400(
    path: str, make: Callable[[World], str], world: World, http: httpx.Client
) -> None:
    params: dict[str, str] = {"cursor": make(world)}
    if path.startswith("/search"):
        params["q"] = "reef"
    r = http.get(_fill(path, world), params=params, headers=world.auth)
    _assert_error(r)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_cursor"


@pytest.mark.parametrize("q", list(VALID_SEARCHES.values()), ids=list(VALID_SEARCHES))
def test_hostile_but_valid_search_is_answered(q: str, world: World, http: httpx.Client) -> None:
    r = http.get("/search/items", params={"q": q}, headers=world.auth)
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["items"], list)


def test_the_table_is_large() -> None:
    """The attack found 135 kinds of bad input; the table covers at least as many requests."""
    assert len(CASES) + len(OVERFLOW_CURSORS) + len(VALID_SEARCHES) >= 135


@pytest.mark.anyio
@pytest.mark.parametrize(
    "fault", [OverflowError("date value out of range"), RecursionError("too deep")], ids=repr
)
async def test_safety_net_turns_out_of_range_errors_into_a_400(fault: Exception) -> None:
    """Behind the checks of each route: an input Python can't represent is still a 4xx."""
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)

    @app.get("/fault")
    async def fault_route() -> None:
        raise fault

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/fault")
    assert r.status_code == 400, r.text
    _assert_error(r)
    assert r.json()["error"]["code"] == "out_of_range"


# -- NUL characters: looked up, they match nothing; stored, they are refused -----------------
#
# PostgreSQL refuses any statement that sends a NUL, SQLite compares and stores it: both
# databases must answer as for any other unknown value, and refuse to store one alike.

NUL_LOOKUPS: list[tuple[str, str, str, dict[str, str] | None, Any, int]] = [
    ("item", "GET", "/registry/items/10378.1/a%00b", None, None, 404),
    ("item-access", "GET", "/registry/items/10378.1/a%00b/access", None, None, 404),
    ("dataset", "GET", "/datastore/datasets/10378.1/a%00b", None, None, 404),
    ("user", "GET", "/auth/users/a%00b", None, None, 404),
    ("user-groups", "GET", "/auth/users/a%00b/groups", None, None, 404),
    ("group", "GET", "/auth/groups/a%00b", None, None, 404),
    ("group-member", "DELETE", "/auth/groups/a%00b/members/c%00d", None, None, 404),
    ("client", "DELETE", "/auth/clients/a%00b", None, None, 404),
    ("reviewer-remove", "DELETE", "/datastore/reviewers/a%00b", None, None, 404),
    ("reviewer-add", "POST", "/datastore/reviewers", None, {"username": "a\x00b"}, 404),
    ("crawl-job", "GET", "/crawl/jobs/a%00b", None, None, 404),
    ("crawl-job-cancel", "POST", "/crawl/jobs/a%00b/cancel", None, None, 404),
    ("user-update", "PATCH", "/auth/users/a%00b", None, {"disabled": True}, 404),
    ("group-add-member", "POST", "/auth/groups/a%00b/members", None, {"username": "x"}, 404),
    ("task", "GET", "/v0.10/task/a%00b", None, None, 404),
    ("task-cancel", "POST", "/v0.10/task/a%00b/cancel", None, None, 404),
    (
        "archived-files",
        "GET",
        "/registry/storage-locations/10378.1/a%00b/archived-files",
        None,
        None,
        404,
    ),
    (
        "extraction-run",
        "POST",
        "/datastore/datasets/{dataset}/extracted-metadata/runs/a%00b/commit",
        None,
        None,
        404,
    ),
    ("items-owner", "GET", "/registry/items", {"owner": "a\x00"}, None, 200),
    ("datasets-owner", "GET", "/datastore/datasets", {"owner": "a\x00"}, None, 200),
    ("datasets-keyword", "GET", "/datastore/datasets", {"keyword": "reef\x00"}, None, 200),
    ("search-owner", "GET", "/search/items", {"q": "reef", "owner": "a\x00"}, None, 200),
    ("files-prefix", "GET", "/datastore/datasets/{dataset}/files", {"prefix": "a\x00"}, None, 200),
    (
        "extracted-prefix",
        "GET",
        "/datastore/datasets/{dataset}/extracted-metadata",
        {"prefix": "a\x00"},
        None,
        200,
    ),
    ("registered-name", "GET", "/registry/registered-datasets", {"name": "a\x00"}, None, 200),
    ("sessions-subject", "GET", "/registry/sessions", {"subject": "a\x00"}, None, 200),
]


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "status"),
    [row[1:] for row in NUL_LOOKUPS],
    ids=[row[0] for row in NUL_LOOKUPS],
)
def test_a_lookup_by_a_value_with_nul_matches_nothing(
    method: str,
    path: str,
    params: dict[str, str] | None,
    body: Any,
    status: int,
    world: World,
    http: httpx.Client,
) -> None:
    """The answer to an unknown value (a 404, an empty page) on every database, not a 400."""
    r = http.request(method, _fill(path, world), params=params, json=body, headers=world.auth)
    assert r.status_code == status, r.text
    if status == 200:
        page = r.json()
        assert page.get("items", page.get("datasets", page.get("files"))) == [], page


@pytest.mark.parametrize(
    "body",
    [
        {"subtype": "organisation", "record": {"name": "a\x00b"}},
        {"subtype": "organisation", "display_name": "a\x00b", "record": {"name": "ab"}},
    ],
    ids=["record-value", "display-name"],
)
def test_storing_a_nul_is_a_400_on_every_database(
    body: dict[str, Any], world: World, http: httpx.Client
) -> None:
    r = http.post("/registry/items", json=body, headers=world.auth)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "unrepresentable_text"
    # an escaped NUL that is only text (a backslash, then u0000) is stored
    safe = {"subtype": "organisation", "record": {"name": "a\\u0000b"}}
    r = http.post("/registry/items", json=safe, headers=world.auth)
    assert r.status_code == 201, r.text
    assert r.json()["record"]["name"] == "a\\u0000b"
