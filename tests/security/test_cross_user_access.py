"""Cross-user access on every route of the reference server, from one explicit table.

User A owns an organisation, a person, a dataset with a registered file (``D1``), a dataset
awaiting review (``D2``), a group, a lab of that group with a subject and a session, and an
OAuth refresh token; every piece of A's private data
carries the marker ``SECRET``. The attackers are:

- ``anonymous``: no token;
- ``stranger``: signed in, no role on anything of A's;
- ``md``, ``dr``, ``dw``, ``ad``: members of groups A granted ``metadata-read``,
  ``data-read``, ``data-write`` and ``admin`` on the organisation, D1 and D2 (a role implies
  the weaker ones; an item admin is still not its owner);
- ``reviewer``: a system reviewer, the one named in D2's release request (so they read D2's
  metadata and data, and nothing else of A's).

:data:`TABLE` has an entry for every (method, path) the app serves - the first test fails
when a route is added without one - saying who owns what the route touches and what each
attacker gets. Every refusal is checked for its status (401 with a Bearer challenge, 403),
its error body, and that it carries none of A's data and no credentials; listings and search
must not show an attacker what they can't read; and the last test re-reads everything as A
to check that no refused write changed anything.

Attempts that the table *allows* are only made when they can't change anything (reads);
the allowed writes are the business of the services' own tests.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import boto3
import httpx
import pytest
from botocore.config import Config
from fastapi.routing import iter_route_contexts

from provena_like.server.transfer.index import collection_id
from provena_like.testing.device_approval import approve_device_code
from provena_like.testing.server_thread import ServerThread
from tests.support.tls import SHARED_TLS
from tests.support.users import User

pytestmark = pytest.mark.anyio

ROLE_ORDER = ("metadata-read", "metadata-write", "data-read", "data-write", "admin")
ACTORS = ("anonymous", "stranger", "md", "dr", "dw", "ad", "reviewer")
CLI = "provena-like-cli"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
APPROVALS = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")
CREDENTIAL_MARKERS = ("access_key_id", "secret_access_key", "session_token", "X-Amz-Signature")

Kind = Literal[
    "public",
    "oauth",
    "signed-in",
    "admin",
    "role",
    "refers",
    "decide",
    "listing",
    "lab",
    "transfer",
    "transfer-listing",
    "task",
    "task-listing",
    "crawl-job",
    "crawl-listing",
]
Target = Literal["org", "person", "D1", "D2"]


# -- the world A owns ------------------------------------------------------------------------


@dataclass
class World:
    """A's resources, the attackers, and what A saw before the attack."""

    secret: str
    admin: User
    a: User
    actors: dict[str, User]
    groups: dict[str, str]  # md, dr, dw, ad → group name; "a" → A's own group
    org: str
    person: str
    org_history_id: int
    file_path: str  # of the file registered in D1
    # set up once the above exist
    d1: str = ""
    d2: str = ""
    d1_history_id: int = 0
    file_size: int = 0
    file_sha256: str = ""
    client_id: str = ""  # an OAuth client the system admin registered
    refresh_token: str = ""  # A's, from a device-flow sign-in
    password: str = ""  # A's
    lab: str = ""  # A's lab (of A's group), its private subject and a session of it
    subject: str = ""
    session: str = ""
    rds: str = ""  # a file registered in A's session (its version is the secret)
    rds_path: str = ""
    tag: str = ""  # a tag record (the vocabulary is an admin's)
    repository: str = ""  # a POSIX repository record (an admin's)
    storage: str = ""  # a storage location (an admin's; A's group may write its records)
    patch: str = ""  # A's patch of ``rds`` (into ``repository``; its version is the secret)
    task: str = ""  # A's transfer-service task (a delete on D1; its label is the secret)
    run: str = ""  # A's committed extraction run of D1 (its file's terms hold the secret)
    crawl_job: str = ""  # A's crawl job of D1 (finished before the attacks)
    before: dict[str, Any] = field(default_factory=dict)  # what A saw before the attacks

    def target_id(self, target: Target) -> str:
        return {"org": self.org, "person": self.person, "D1": self.d1, "D2": self.d2}[target]

    def record(self, name: str) -> dict[str, Any]:
        """A dataset record referring to A's organisation and (private) person."""
        return {
            "associations": {"organisation_id": self.org, "point_of_contact": self.person},
            "approvals": {a: {"relevant": False, "obtained": False} for a in APPROVALS},
            "dataset_info": {
                "name": name,
                "description": f"Readings, {self.secret}.",
                "access_info": {"reposited": True},
                "publisher_id": self.org,
                "created_date": "2024-01-01",
                "published_date": "2024-06-30",
                "license": "https://creativecommons.org/licenses/by/4.0/",
                "keywords": ["reef", self.secret],
            },
        }


def roles_of(actor: str, target: Target) -> set[str]:
    """The roles each attacker holds on each of A's items (the policy under test)."""
    if target == "person" or actor in ("anonymous", "stranger"):
        return set()
    if actor == "reviewer":
        return {"metadata-read", "data-read"} if target == "D2" else set()
    level = {"md": 1, "dr": 3, "dw": 4, "ad": 5}[actor]
    return set(ROLE_ORDER[:level])


def readable(actor: str) -> set[Target]:
    return {t for t in ("org", "person", "D1", "D2") if "metadata-read" in roles_of(actor, t)}


def _s3(creds: dict[str, Any]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=creds["endpoint_url"],
        region_name=creds["region"],
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        aws_session_token=creds["session_token"],
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )


async def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, (r.request.method, r.request.url, r.text[:500])
    return r.json() if r.content else None


async def _sign_in(api: httpx.AsyncClient, username: str, password: str) -> dict[str, Any]:
    """A device-flow sign-in with ``offline_access`` through the approval page."""
    grant = await _ok(
        await api.post(
            "/auth/device_authorization",
            data={"client_id": CLI, "scope": "openid offline_access"},
        )
    )
    async with httpx.AsyncClient(verify=SHARED_TLS, timeout=60) as browser:
        await approve_device_code(browser, grant["verification_uri_complete"], username, password)
    form = {"grant_type": DEVICE_GRANT, "device_code": grant["device_code"], "client_id": CLI}
    tokens: dict[str, Any] = await _ok(await api.post("/auth/token", data=form))
    return tokens


async def _snapshot(api: httpx.AsyncClient, w: World) -> dict[str, Any]:
    """Everything of A's an attack could change, read as A (and as an admin)."""
    a, admin = w.a.headers, w.admin.headers
    out: dict[str, Any] = {}
    items = (("org", w.org), ("person", w.person), ("subject", w.subject), ("session", w.session))
    for name, item in items:
        out[name] = await _ok(await api.get(f"/registry/items/{item}", headers=a))
        out[f"{name}-lock-history"] = await _ok(
            await api.get(f"/registry/items/{item}/lock-history", headers=a)
        )
    out["registered"] = await _ok(
        await api.get(f"/registry/registered-datasets/{w.rds}", headers=a)
    )
    out["patches"] = await _ok(
        await api.get(f"/registry/registered-datasets/{w.rds}/patches", headers=a)
    )
    for name, ds in (("D1", w.d1), ("D2", w.d2)):
        out[name] = await _ok(await api.get(f"/datastore/datasets/{ds}", headers=a))
        out[f"{name}-files"] = await _ok(
            await api.get(f"/datastore/datasets/{ds}/files", headers=a)
        )
        out[f"{name}-release"] = await _ok(
            await api.get(f"/datastore/datasets/{ds}/release/history", headers=a)
        )
        out[f"{name}-extracted"] = await _ok(
            await api.get(f"/datastore/datasets/{ds}/extracted-metadata", headers=a)
        )
    if w.crawl_job:  # finished before the attacks: nothing of it may change
        job = await _ok(await api.get(f"/crawl/jobs/{w.crawl_job}", headers=a))
        out["crawl-job"] = (job["state"], job["unacked"], job["records"], len(job["events"]))
    if w.task:  # its status moves on by itself; its label and not being canceled don't
        task = await _ok(await api.get(f"/v0.10/task/{w.task}", headers=a))
        out["task"] = (task["label"], (task["fatal_error"] or {}).get("code") == "CANCELED")
    for user in (w.a, *w.actors.values()):
        out[f"user-{user.name}"] = await _ok(
            await api.get(f"/auth/users/{user.name}", headers=admin)
        )
        out[f"groups-{user.name}"] = await _ok(
            await api.get(f"/auth/users/{user.name}/groups", headers=admin)
        )
    for group in w.groups.values():
        out[f"group-{group}"] = await _ok(await api.get(f"/auth/groups/{group}", headers=admin))
    reviewers = await _ok(await api.get("/datastore/reviewers?page_size=1000", headers=admin))
    out["reviewers"] = sorted(r["username"] for r in reviewers["items"])
    clients = await _ok(await api.get("/auth/clients?page_size=1000", headers=admin))
    out["clients"] = sorted(c["client_id"] for c in clients["items"])
    creds = await _ok(await api.post(f"/datastore/datasets/{w.d1}/credentials", json={}, headers=a))
    s3 = _s3(creds)
    try:
        listed = s3.list_objects_v2(Bucket=creds["bucket"], Prefix=creds["prefix"])
    finally:
        s3.close()
    out["objects"] = sorted((o["Key"], o["ETag"], o["Size"]) for o in listed.get("Contents", []))
    return out


@pytest.fixture(scope="module")
async def api(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=SHARED_TLS, base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
async def world(api: httpx.AsyncClient, make_token: Callable[..., str]) -> World:
    tag = uuid.uuid4().hex[:8]
    secret = f"SECRET{uuid.uuid4().hex}"

    def user(role: str, **kwargs: Any) -> User:
        name = f"xu-{role}-{tag}"
        return User(name, make_token(name, **kwargs))

    groups = {g: f"xu-{g}-{tag}" for g in ("md", "dr", "dw", "ad", "a")}
    admin = user("admin", system_roles=("admin",))
    a = user("owner")
    actors = {
        "stranger": user("stranger"),
        "md": user("md", groups=(groups["md"],)),
        "dr": user("dr", groups=(groups["dr"],)),
        "dw": user("dw", groups=(groups["dw"],)),
        "ad": user("ad", groups=(groups["ad"],)),
        "reviewer": user("reviewer", system_roles=("reviewer",)),
    }
    make_token(f"xu-helper-{tag}", groups=(groups["a"],))  # A's group exists, with a member
    password = uuid.uuid4().hex
    await _ok(
        await api.patch(
            f"/auth/users/{a.name}",
            json={
                "display_name": f"Alice {secret}",
                "email": f"{secret}@example.org",
                "password": password,
            },
            headers=admin.headers,
        )
    )
    await _ok(
        await api.post(
            f"/auth/groups/{groups['a']}/members", json={"username": a.name}, headers=admin.headers
        )
    )
    grants = {
        groups["md"]: ["metadata-read"],
        groups["dr"]: ["data-read"],
        groups["dw"]: ["data-write"],
        groups["ad"]: ["admin"],
    }
    org = await _ok(
        await api.post(
            "/registry/items",
            json={
                "subtype": "organisation",
                "record": {"name": f"Institute {secret}"},
                "display_name": f"Institute {secret}",
                "groups": grants,
            },
            headers=a.headers,
        ),
        201,
    )
    await _ok(
        await api.put(
            f"/registry/items/{org['id']}",
            json={"record": {"name": f"Institute {secret} (renamed)"}, "reason": secret},
            headers=a.headers,
        )
    )
    org_history = await _ok(
        await api.get(f"/registry/items/{org['id']}/history", headers=a.headers)
    )
    person = await _ok(
        await api.post(
            "/registry/items",
            json={
                "subtype": "person",
                "record": {
                    "first_name": "Ada",
                    "last_name": secret,
                    "email": f"ada.{secret}@example.org",
                },
            },
            headers=a.headers,
        ),
        201,
    )
    w = World(
        secret=secret,
        admin=admin,
        a=a,
        actors=actors,
        groups=groups,
        org=org["id"],
        person=person["id"],
        org_history_id=org_history["items"][-1]["id"],
        file_path=f"data/{secret}.csv",
    )
    d1 = await _ok(
        await api.post(
            "/datastore/datasets",
            json={"record": w.record(f"Reef {secret}"), "groups": grants},
            headers=a.headers,
        ),
        201,
    )
    w.d1 = d1["dataset"]["id"]
    await _ok(
        await api.put(
            f"/datastore/datasets/{w.d1}",
            json={"record": w.record(f"Reef {secret} v2"), "reason": secret},
            headers=a.headers,
        )
    )
    d1_history = await _ok(await api.get(f"/registry/items/{w.d1}/history", headers=a.headers))
    w.d1_history_id = d1_history["items"][-1]["id"]
    # a file, uploaded with A's write credentials and registered
    content = f"t,temp\n0,{secret}\n".encode()
    w.file_size, w.file_sha256 = len(content), hashlib.sha256(content).hexdigest()
    creds = await _ok(
        await api.post(
            f"/datastore/datasets/{w.d1}/credentials", json={"access": "write"}, headers=a.headers
        )
    )
    s3 = _s3(creds)
    try:
        s3.put_object(Bucket=creds["bucket"], Key=creds["prefix"] + w.file_path, Body=content)
    finally:
        s3.close()
    await _ok(
        await api.post(
            f"/datastore/datasets/{w.d1}/files",
            json={"files": [{"path": w.file_path, "size": w.file_size, "sha256": w.file_sha256}]},
            headers=a.headers,
        )
    )
    # extracted metadata of that file, committed: its column is the secret
    extracted = f"/datastore/datasets/{w.d1}/extracted-metadata/runs"
    w.run = (await _ok(await api.post(extracted, json={}, headers=a.headers), 201))["run_id"]
    await _ok(
        await api.post(
            f"{extracted}/{w.run}/files",
            json={"files": [{"path": w.file_path, "terms": ["t", secret],
                             "metadata": {"tabular": {"columns": ["t", secret]}}}]},
            headers=a.headers,
        )
    )  # fmt: skip
    await _ok(await api.post(f"{extracted}/{w.run}/commit", headers=a.headers))
    d2 = await _ok(
        await api.post(
            "/datastore/datasets",
            json={"record": w.record(f"Lagoon {secret}"), "groups": grants},
            headers=a.headers,
        ),
        201,
    )
    w.d2 = d2["dataset"]["id"]
    await _ok(
        await api.post(
            f"/datastore/datasets/{w.d2}/release/request",
            json={"reviewer": actors["reviewer"].name, "notes": secret},
            headers=a.headers,
        )
    )
    client = await _ok(
        await api.post(
            "/auth/clients",
            json={
                "client_id": f"xu-client-{tag}",
                "name": secret,
                "grant_types": ["client_credentials"],
            },
            headers=admin.headers,
        ),
        201,
    )
    w.client_id = client["client_id"]
    w.password = password
    lab = await _ok(
        await api.post(
            "/registry/items",
            json={
                "subtype": "lab",
                "record": {"name": f"lab_{tag}", "group": groups["a"], "institution": secret},
            },
            headers=a.headers,
        ),
        201,
    )
    subject = await _ok(
        await api.post(
            "/registry/items",
            json={"subtype": "subject", "record": {"nickname": secret, "lab": lab["id"]}},
            headers=a.headers,
        ),
        201,
    )
    session = await _ok(
        await api.post(
            "/registry/sessions",
            json={"subject": subject["id"], "date": "2026-12-06", "task_protocol": secret},
            headers=a.headers,
        ),
        201,
    )
    w.lab, w.subject, w.session = lab["id"], subject["id"], session["id"]
    # a file registered in A's session, with the vocabulary a registry admin keeps
    obj, ext = f"o{tag}", f".x{tag}"[:12]
    for subtype, record in (
        ("dataset_type", {"name": f"{obj}.times", "filename_pattern": f"*{obj}.times*"}),
        ("data_format", {"name": f"fmt_{tag}", "file_extension": ext}),
        ("tag", {"name": f"tag_{tag}", "protected": False}),
    ):
        made = await _ok(
            await api.post(
                "/registry/items",
                json={"subtype": subtype, "record": record},
                headers=admin.headers,
            ),
            201,
        )
    w.tag = made["id"]
    w.rds_path = f"alf/{obj}.times{ext}"
    registered = await _ok(
        await api.post(
            f"/registry/sessions/{w.session}/files",
            json={
                "files": [{"path": w.rds_path, "size": 3, "sha256": "a" * 64, "version": secret}]
            },
            headers=a.headers,
        ),
        201,
    )
    w.rds = registered["files"][0]["dataset"]["id"]
    repository = await _ok(
        await api.post(
            "/registry/items",
            json={
                "subtype": "repository",
                "record": {"name": f"repo_{tag}", "kind": "posix", "root": "/data"},
            },
            headers=admin.headers,
        ),
        201,
    )
    w.repository, w.patch = repository["id"], str(uuid.uuid4())
    storage = await _ok(
        await api.post(
            "/registry/items",
            json={
                "subtype": "storage_location",
                "record": {
                    "name": f"archive_{tag}",
                    "kind": "raw-ephys",
                    "collection": str(uuid.uuid4()),
                    "layout": "{lab}/{subject}/{date}/{number:03d}",
                },
                "groups": {w.groups["a"]: ["data-write"]},
            },
            headers=admin.headers,
        ),
        201,
    )
    w.storage = storage["id"]
    archived = {"session": w.session, "path": f"{secret}/a.bin", "size": 3, "sha256": "b" * 64}
    await _ok(
        await api.post(
            f"/registry/storage-locations/{w.storage}/archived-files",
            json={"files": [archived]},
            headers=a.headers,
        ),
        200,
    )
    patched = {"size": 3, "sha256": "c" * 64}
    location = {"repository": w.repository, "relative_path": f"{tag}/{w.rds_path}", **patched}
    await _ok(
        await api.post(
            "/registry/patches",
            json={
                "patch_id": w.patch,
                "files": [
                    {
                        "dataset": w.rds,
                        "expected_sha256": "a" * 64,
                        "version": secret,
                        "locations": [location],
                        **patched,
                    }
                ],
            },
            headers=a.headers,
        ),
        201,
    )
    # a task of A's on the transfer service: deletes nothing (ignore_missing)
    accepted = await _ok(
        await api.post(
            "/v0.10/delete",
            json={
                "DATA_TYPE": "delete",
                "endpoint": collection_id(w.d1),
                "submission_id": str(uuid.uuid4()),
                "label": secret,
                "ignore_missing": True,
                "DATA": [{"DATA_TYPE": "delete_item", "path": f"/{secret}-nothing-here"}],
            },
            headers=a.headers,
        )
    )
    w.task = accepted["task_id"]
    # a crawl job of A's over D1, finished (its records undelivered) before the attacks
    job = await _ok(
        await api.post("/crawl/jobs", json={"source": {"dataset": w.d1}}, headers=a.headers), 201
    )
    w.crawl_job = job["id"]
    deadline = time.monotonic() + 120
    while job["state"] not in ("succeeded", "failed", "canceled"):
        assert time.monotonic() < deadline, job
        await anyio.sleep(0.1)
        job = await _ok(await api.get(f"/crawl/jobs/{w.crawl_job}", headers=a.headers))
    assert job["state"] == "succeeded" and job["files"] >= 1, job
    w.refresh_token = (await _sign_in(api, a.name, password))["refresh_token"]
    w.before = await _snapshot(api, w)
    return w


# -- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    url: str
    json: Any = None
    data: dict[str, str] | None = None


Build = Callable[[World, str], Req]
"""(world, attacker) → the request the attacker sends."""


@dataclass(frozen=True)
class Case:
    """What one route touches and who may do it.

    Args:
        kind: ``public`` (anyone, ``status``), ``oauth`` (authenticates a client, not a
            bearer: 401 ``invalid_client`` without one), ``signed-in`` (any signed-in caller,
            ``status``; nothing of anyone else's in the answer), ``admin`` (system admins
            only), ``role`` (``role`` on A's ``target``), ``refers`` (a new item of the
            caller's that refers to A's private items: 422), ``decide`` (only the reviewer a
            pending request names), ``listing`` (filtered to what the caller may read),
            ``lab`` (only members of A's lab, which no attacker is: 403, or 404 where the
            caller may not even read A's session), ``transfer`` (the Globus-compatible
            transfer API on A's ``target`` as a collection: ``role`` needed, refusals are
            Type-Zero bodies, 401 ``AuthenticationFailed`` / 403
            ``EndpointPermissionDenied``), ``transfer-listing`` (``endpoint_search``: only
            the collections the caller may read data of), ``task`` (A's task: anyone else
            gets a Type-Zero 404, as if it didn't exist), ``task-listing`` (``task_list``:
            never A's task), ``crawl-job`` (A's crawl job: anyone else gets a 404, as if it
            didn't exist), ``crawl-listing`` (``/crawl/jobs``: never A's job).
        owner: who owns what the route touches, for the reader.
        build: the attacker's request.
        role: the role needed (``role`` cases).
        target: which of A's items (``role`` cases).
        status: the answer to a caller allowed in (``public``, ``signed-in``).
        reads: whether an allowed attempt changes nothing (so it is made and must succeed).
        field: the field a ``refers`` case's 422 names as ``unreadable_item``.
    """

    kind: Kind
    owner: str
    build: Build
    role: str | None = None
    target: Target | None = None
    status: int = 200
    reads: bool = False
    field: str = "record.associations.point_of_contact"


def _item(tail: str = "", target: Target = "org") -> Callable[[World, str], str]:
    return lambda w, _a: f"/registry/items/{w.target_id(target)}{tail}"


def _ds(tail: str = "", target: Target = "D1") -> Callable[[World, str], str]:
    return lambda w, _a: f"/datastore/datasets/{w.target_id(target)}{tail}"


def _op(tail: str, target: Target = "D1") -> Callable[[World, str], str]:
    """A transfer-API operation on A's dataset ``target`` as a collection."""
    return lambda w, _a: f"/v0.10/operation/endpoint/{collection_id(w.target_id(target))}/{tail}"


def transfer(role_needed: str, build: Build, *, reads: bool = False) -> Case:
    return Case(
        "transfer",
        "A (dataset D1 as a collection)",
        build,
        role=role_needed,
        target="D1",
        reads=reads,
    )


def at(url: Callable[[World, str], str] | str) -> Build:
    return lambda w, a: Req(url if isinstance(url, str) else url(w, a))


def send(url: Callable[[World, str], str] | str, body: Callable[[World, str], Any]) -> Build:
    return lambda w, a: Req(url if isinstance(url, str) else url(w, a), json=body(w, a))


def form(url: str, body: Callable[[World, str], dict[str, str]]) -> Build:
    return lambda w, a: Req(url, data=body(w, a))


def caller(w: World, actor: str) -> str:
    return w.actors[actor].name if actor in w.actors else w.a.name


def role(role_needed: str, build: Build, target: Target = "org", *, reads: bool = False) -> Case:
    owner = {
        "org": "A (organisation)",
        "person": "A (person)",
        "D1": "A (dataset D1)",
        "D2": "A (dataset D2, pending review)",
    }[target]
    return Case("role", owner, build, role=role_needed, target=target, reads=reads)


def public(build: Build, status: int = 200) -> Case:
    return Case("public", "nobody: public", build, status=status)


def admin(owner: str, build: Build) -> Case:
    return Case("admin", owner, build)


# fmt: off
TABLE: dict[tuple[str, str], Case] = {
    # -- public: docs, health, discovery, keys, the device page --------------------------------
    ("GET", "/openapi.json"): public(at("/openapi.json")),
    ("HEAD", "/openapi.json"): public(at("/openapi.json")),
    ("GET", "/docs"): public(at("/docs")),
    ("HEAD", "/docs"): public(at("/docs")),
    ("GET", "/docs/oauth2-redirect"): public(at("/docs/oauth2-redirect")),
    ("HEAD", "/docs/oauth2-redirect"): public(at("/docs/oauth2-redirect")),
    ("GET", "/redoc"): public(at("/redoc")),
    ("HEAD", "/redoc"): public(at("/redoc")),
    ("GET", "/healthz"): public(at("/healthz")),
    ("GET", "/auth/.well-known/openid-configuration"):
        public(at("/auth/.well-known/openid-configuration")),
    ("GET", "/auth/jwks"): public(at("/auth/jwks")),
    ("GET", "/auth/issuers"): public(at("/auth/issuers")),
    ("GET", "/auth/device"): public(at("/auth/device")),
    # approving a device code as A without the page's cookie and form token: refused
    ("POST", "/auth/device"): public(form("/auth/device", lambda w, _a: {
        "user_code": "ABCD-EFGH", "action": "approve", "username": w.a.name,
        "password": "guess", "form_token": "0" * 64}), status=403),
    # -- OAuth endpoints: client authentication, a bearer token is not one ---------------------
    ("POST", "/auth/token"): Case("oauth", "A (refresh token)", form("/auth/token", lambda w, _a: {
        "grant_type": "refresh_token", "refresh_token": w.refresh_token})),
    ("POST", "/auth/revoke"): Case("oauth", "A (refresh token)", form(
        "/auth/revoke", lambda w, _a: {"token": w.refresh_token})),
    ("POST", "/auth/device_authorization"): Case("oauth", "nobody: starts a sign-in", form(
        "/auth/device_authorization", lambda _w, _a: {"scope": "openid"})),
    # -- any signed-in caller, about themselves or the system ---------------------------------
    ("GET", "/auth/userinfo"): Case("signed-in", "the caller", at("/auth/userinfo")),
    ("GET", "/registry/subtypes"): Case("signed-in", "system", at("/registry/subtypes")),
    ("GET", "/datastore/schema"): Case("signed-in", "system", at("/datastore/schema")),
    ("GET", "/datastore/reviewers"): Case("signed-in", "system", at("/datastore/reviewers")),
    ("GET", "/registry/items/{prefix}/{suffix}/my-access"):
        Case("signed-in", "A (organisation): the caller's own roles", at(_item("/my-access"))),
    ("POST", "/registry/items"): Case("signed-in", "the caller (a new item)", send(
        "/registry/items", lambda w, a: {"subtype": "organisation",
                                         "record": {"name": f"{a}'s own"}}), status=201),
    # -- system admins only --------------------------------------------------------------------
    ("POST", "/auth/users"): admin("system", send("/auth/users", lambda w, a: {
        "username": f"{caller(w, a)}-2", "password": "password-123",
        "system_roles": ["admin"]})),
    ("GET", "/auth/users"): admin("system", at("/auth/users")),
    ("GET", "/auth/users/{username}"): admin(
        "A (their account; also readable by A)", at(lambda w, _a: f"/auth/users/{w.a.name}")),
    ("GET", "/auth/users/{username}/groups"): admin(
        "A (their groups; also readable by A)",
        at(lambda w, _a: f"/auth/users/{w.a.name}/groups")),
    ("PATCH", "/auth/users/{username}"): admin("the caller (making itself an admin)", send(
        lambda w, a: f"/auth/users/{caller(w, a)}", lambda _w, _a: {"system_roles": ["admin"]})),
    ("POST", "/auth/groups"): admin("system", send("/auth/groups", lambda w, a: {
        "name": f"{caller(w, a)}-group"})),
    ("GET", "/auth/groups"): admin("system", at("/auth/groups")),
    ("GET", "/auth/groups/{name}"): admin(
        "A (their group)", at(lambda w, _a: f"/auth/groups/{w.groups['a']}")),
    ("POST", "/auth/groups/{name}/members"): admin("A (the data-write group of A's items)", send(
        lambda w, _a: f"/auth/groups/{w.groups['dw']}/members",
        lambda w, a: {"username": caller(w, a)})),
    ("DELETE", "/auth/groups/{name}/members/{username}"): admin("A (their group)", at(
        lambda w, _a: f"/auth/groups/{w.groups['a']}/members/{w.a.name}")),
    ("POST", "/auth/clients"): admin("system", send("/auth/clients", lambda w, a: {
        "client_id": f"{caller(w, a)}-client", "system_roles": ["admin"],
        "grant_types": ["client_credentials"]})),
    ("GET", "/auth/clients"): admin("system", at("/auth/clients")),
    ("DELETE", "/auth/clients/{client_id}"): admin(
        "system (a client)", at(lambda w, _a: f"/auth/clients/{w.client_id}")),
    ("POST", "/datastore/reviewers"): admin("system", send(
        "/datastore/reviewers", lambda w, a: {"username": caller(w, a)})),
    ("DELETE", "/datastore/reviewers/{username}"): admin("system (the reviewer of D2)", at(
        lambda w, _a: f"/datastore/reviewers/{w.actors['reviewer'].name}")),
    ("POST", "/search/reindex"): admin("system", at("/search/reindex")),
    # -- registry items: A's organisation ------------------------------------------------------
    ("GET", "/registry/items/{prefix}/{suffix}"): role("metadata-read", at(_item()), reads=True),
    ("PUT", "/registry/items/{prefix}/{suffix}"): role("metadata-write", send(
        _item(), lambda _w, a: {"record": {"name": f"taken by {a}"}, "reason": "mine"})),
    ("GET", "/registry/items/{prefix}/{suffix}/history"):
        role("metadata-read", at(_item("/history")), reads=True),
    ("POST", "/registry/items/{prefix}/{suffix}/revert"): role("metadata-write", send(
        _item("/revert"), lambda w, _a: {"history_id": w.org_history_id, "reason": "x"})),
    ("POST", "/registry/items/{prefix}/{suffix}/lock"): role("admin", send(
        _item("/lock"), lambda _w, _a: {"reason": "mine"})),
    ("POST", "/registry/items/{prefix}/{suffix}/unlock"): role("admin", send(
        _item("/unlock"), lambda _w, _a: {"reason": "mine"})),
    ("GET", "/registry/items/{prefix}/{suffix}/lock-history"):
        role("metadata-read", at(_item("/lock-history")), reads=True),
    ("GET", "/registry/items/{prefix}/{suffix}/access"):
        role("metadata-read", at(_item("/access")), reads=True),
    ("PUT", "/registry/items/{prefix}/{suffix}/access"): role("admin", send(
        _item("/access"), lambda w, _a: {"owner": w.a.name, "general": ["admin"]})),
    # -- datasets: A's D1 ----------------------------------------------------------------------
    ("POST", "/datastore/datasets/validate"): Case(
        "refers", "the caller (refers to A's private person)",
        send("/datastore/datasets/validate", lambda w, _a: {"record": w.record("mine")})),
    ("POST", "/datastore/datasets"): Case(
        "refers", "the caller (refers to A's private person)",
        send("/datastore/datasets", lambda w, _a: {"record": w.record("mine")})),
    ("GET", "/datastore/datasets/{id_prefix}/{id_suffix}"):
        role("metadata-read", at(_ds()), "D1", reads=True),
    ("PUT", "/datastore/datasets/{id_prefix}/{id_suffix}"): role("metadata-write", send(
        _ds(), lambda w, a: {"record": w.record(f"taken by {a}"), "reason": "mine"}), "D1"),
    ("POST", "/datastore/datasets/{id_prefix}/{id_suffix}/revert"): role("metadata-write", send(
        _ds("/revert"), lambda w, _a: {"history_id": w.d1_history_id, "reason": "x"}), "D1"),
    ("POST", "/datastore/datasets/{id_prefix}/{id_suffix}/version"): role("admin", send(
        _ds("/version"), lambda _w, _a: {"reason": "mine", "copy_files": True}), "D1"),
    ("POST", "/datastore/datasets/{id_prefix}/{id_suffix}/credentials"): role("data-read", send(
        _ds("/credentials"), lambda _w, _a: {"access": "read"}), "D1"),
    ("POST", "/datastore/datasets/{id_prefix}/{id_suffix}/presign"): role("data-read", send(
        _ds("/presign"), lambda w, _a: {"path": w.file_path}), "D1"),
    ("POST", "/datastore/datasets/{id_prefix}/{id_suffix}/files"): role("data-write", send(
        _ds("/files"), lambda w, _a: {"files": [
            {"path": w.file_path, "size": w.file_size, "sha256": w.file_sha256}]}), "D1"),
    ("POST", "/datastore/datasets/{id_prefix}/{id_suffix}/files/remove"): role("data-write", send(
        _ds("/files/remove"), lambda w, _a: {"paths": [w.file_path]}), "D1"),
    ("GET", "/datastore/datasets/{id_prefix}/{id_suffix}/files"):
        role("data-read", at(_ds("/files")), "D1", reads=True),
    ("GET", "/datastore/datasets/{id_prefix}/{id_suffix}/files/{path:path}"):
        role("data-read", at(lambda w, _a: f"/datastore/datasets/{w.d1}/files/{w.file_path}"),
             "D1", reads=True),
    ("GET", "/datastore/datasets/{id_prefix}/{id_suffix}/extracted-metadata"):
        role("metadata-read", at(_ds("/extracted-metadata")), "D1", reads=True),
    ("DELETE", "/datastore/datasets/{id_prefix}/{id_suffix}/extracted-metadata"):
        role("metadata-write", at(_ds("/extracted-metadata")), "D1"),
    ("POST", "/datastore/datasets/{id_prefix}/{id_suffix}/extracted-metadata/runs"):
        role("metadata-write", send(_ds("/extracted-metadata/runs"), lambda _w, _a: {}), "D1"),
    ("POST", "/datastore/datasets/{id_prefix}/{id_suffix}/extracted-metadata/runs/{run_id}/files"):
        role("metadata-write", send(
            lambda w, _a: f"/datastore/datasets/{w.d1}/extracted-metadata/runs/{w.run}/files",
            lambda w, a: {"files": [{"path": w.file_path, "terms": [f"taken by {a}"]}]}), "D1"),
    ("POST", "/datastore/datasets/{id_prefix}/{id_suffix}/extracted-metadata/runs/{run_id}/commit"):
        role("metadata-write", at(
            lambda w, _a: f"/datastore/datasets/{w.d1}/extracted-metadata/runs/{w.run}/commit"),
            "D1"),
    ("POST", "/datastore/datasets/{id_prefix}/{id_suffix}/release/request"): role("admin", send(
        _ds("/release/request"), lambda w, _a: {"reviewer": w.actors["reviewer"].name}), "D1"),
    # -- review: A's D2, pending, names the reviewer -------------------------------------------
    ("POST", "/datastore/datasets/{id_prefix}/{id_suffix}/release/approve"): Case(
        "decide", "A (dataset D2, pending review)",
        send(_ds("/release/approve", "D2"), lambda _w, _a: {"notes": "ok"})),
    ("POST", "/datastore/datasets/{id_prefix}/{id_suffix}/release/reject"): Case(
        "decide", "A (dataset D2, pending review)",
        send(_ds("/release/reject", "D2"), lambda _w, _a: {"notes": "no"})),
    ("POST", "/datastore/datasets/{id_prefix}/{id_suffix}/release/withdraw"): role("admin", send(
        _ds("/release/withdraw", "D2"), lambda _w, _a: {"notes": "mine"}), "D2"),
    ("GET", "/datastore/datasets/{id_prefix}/{id_suffix}/release/history"):
        role("metadata-read", at(_ds("/release/history", "D2")), "D2", reads=True),
    # -- sessions: A's lab, A's private subject ------------------------------------------------
    ("POST", "/registry/sessions"): Case(
        "refers", "the caller (a session of A's private subject, in A's lab)",
        send("/registry/sessions", lambda w, _a: {
            "subject": w.subject, "lab": w.lab, "date": "2026-12-06"}), field="subject"),
    # -- registered files of A's session: A's lab members only ---------------------------------
    ("POST", "/registry/sessions/{prefix}/{suffix}/files"): Case("lab", "A (A's session)", send(
        lambda w, _a: f"/registry/sessions/{w.session}/files",
        lambda w, _a: {"files": [{"path": w.rds_path, "size": 1, "sha256": "b" * 64}]})),
    ("POST", "/registry/sessions/{prefix}/{suffix}/files/check-protected"): Case(
        "lab", "A (A's session)", send(
            lambda w, _a: f"/registry/sessions/{w.session}/files/check-protected",
            lambda w, _a: {"paths": [w.rds_path]})),
    ("POST", "/registry/sessions/{prefix}/{suffix}/files/check-unchanged"): Case(
        "lab", "A (A's session)", send(
            lambda w, _a: f"/registry/sessions/{w.session}/files/check-unchanged",
            lambda w, _a: {"count": 1, "digest": "b" * 64})),
    ("GET", "/registry/registered-datasets/{dataset_id}"): Case(
        "lab", "A (a file of A's session)",
        at(lambda w, _a: f"/registry/registered-datasets/{w.rds}")),
    ("POST", "/registry/registered-datasets/{dataset_id}/default"): Case(
        "lab", "A (a file of A's session)", send(
            lambda w, _a: f"/registry/registered-datasets/{w.rds}/default",
            lambda _w, _a: {"revision": None})),
    ("POST", "/registry/registered-datasets/{dataset_id}/tags"): Case(
        "lab", "A (a file of A's session)", send(
            lambda w, _a: f"/registry/registered-datasets/{w.rds}/tags",
            lambda w, _a: {"tag": w.tag})),
    ("DELETE", "/registry/registered-datasets/{dataset_id}/tags/{prefix}/{suffix}"): Case(
        "lab", "A (a file of A's session)",
        at(lambda w, _a: f"/registry/registered-datasets/{w.rds}/tags/{w.tag}")),
    ("POST", "/registry/patches"): Case("lab", "A (a file of A's session)", send(
        "/registry/patches", lambda w, _a: {"patch_id": str(uuid.uuid4()), "files": [{
            "dataset": w.rds, "expected_sha256": "c" * 64, "size": 1, "sha256": "b" * 64,
            "locations": [{"repository": w.repository, "relative_path": "x", "size": 1,
                           "sha256": "b" * 64}]}]})),
    ("GET", "/registry/patches/{patch_id}"): Case(
        "lab", "A (A's patch of a file of A's session)",
        at(lambda w, _a: f"/registry/patches/{w.patch}")),
    ("GET", "/registry/registered-datasets/{dataset_id}/patches"): Case(
        "lab", "A (a file of A's session)",
        at(lambda w, _a: f"/registry/registered-datasets/{w.rds}/patches")),
    ("POST", "/registry/registered-datasets/{dataset_id}/deletion"): Case(
        "lab", "A (a file of A's session)",
        at(lambda w, _a: f"/registry/registered-datasets/{w.rds}/deletion")),
    ("PUT", "/registry/registered-datasets/{dataset_id}/files/{prefix}/{suffix}"): Case(
        "lab", "A (a file of A's session)", send(
            lambda w, _a: f"/registry/registered-datasets/{w.rds}/files/{w.repository}",
            lambda _w, _a: {"exists": False})),
    ("DELETE", "/registry/registered-datasets/{dataset_id}"): Case(
        "lab", "A (a file of A's session)",
        at(lambda w, _a: f"/registry/registered-datasets/{w.rds}")),
    # an admin's repository record: nobody else reads it or holds a data role on it (and it
    # is a POSIX one: the route would refuse it anyway, after the access checks)
    ("POST", "/registry/repositories/{prefix}/{suffix}/credentials"): Case(
        "lab", "the registry admin (a repository record)", send(
            lambda w, _a: f"/registry/repositories/{w.repository}/credentials",
            lambda _w, _a: {"access": "write"})),
    ("GET", "/registry/storage-locations/{prefix}/{suffix}/archived-files"): Case(
        "lab", "A's lab group (records of A's session in an admin's location)",
        at(lambda w, _a: f"/registry/storage-locations/{w.storage}/archived-files")),
    ("POST", "/registry/storage-locations/{prefix}/{suffix}/archived-files"): Case(
        "lab", "A's lab group (records of A's session in an admin's location)", send(
            lambda w, _a: f"/registry/storage-locations/{w.storage}/archived-files",
            lambda w, _a: {"files": [
                {"session": w.session, "path": "x/a.bin", "size": 1, "sha256": "c" * 64}]})),
    ("POST", "/registry/storage-locations/{prefix}/{suffix}/archived-files/delete"): Case(
        "lab", "A's lab group (records of A's session in an admin's location)", send(
            lambda w, _a: f"/registry/storage-locations/{w.storage}/archived-files/delete",
            lambda w, _a: {"session": w.session})),
    # -- listings and search: filtered to what the caller may read ------------------------------
    ("GET", "/registry/registered-datasets"): Case("listing", "A (a file of A's session)", at(
        lambda w, _a: f"/registry/registered-datasets?session={w.session}&page_size=1000")),
    ("GET", "/registry/sessions"): Case("listing", "A (a session of A's subject)", at(
        lambda w, _a: f"/registry/sessions?subject={w.subject}&page_size=1000")),
    ("GET", "/registry/items"): Case("listing", "A (every item)", at(
        lambda w, _a: f"/registry/items?owner={w.a.name}&page_size=1000")),
    ("GET", "/datastore/datasets"): Case("listing", "A (every dataset)", at(
        lambda w, _a: f"/datastore/datasets?owner={w.a.name}&page_size=1000")),
    ("GET", "/search/items"): Case("listing", "A (every item)", at(
        lambda w, _a: f"/search/items?q={w.secret}&page_size=100")),
    ("GET", "/datastore/reviews/awaiting"): Case("listing", "A (D2 awaits the reviewer)", at(
        "/datastore/reviews/awaiting?page_size=1000")),
    ("GET", "/datastore/reviews/mine"): Case("listing", "A (D2 is A's request)", at(
        "/datastore/reviews/mine?page_size=1000")),
    # -- the transfer API (Type-Zero errors): A's D1 as a collection -------------------------
    ("GET", "/v0.10/submission_id"): Case("signed-in", "the caller (a fresh id)",
                                          at("/v0.10/submission_id")),
    ("GET", "/v0.10/endpoint/{endpoint_id}"): transfer("data-read", at(
        lambda w, _a: f"/v0.10/endpoint/{collection_id(w.d1)}"), reads=True),
    ("GET", "/v0.10/operation/endpoint/{endpoint_id}/ls"):
        transfer("data-read", at(_op("ls?path=/data/")), reads=True),
    ("GET", "/v0.10/operation/endpoint/{endpoint_id}/stat"):
        transfer("data-read", at(lambda w, a: _op(f"stat?path=/{w.file_path}")(w, a)),
                 reads=True),
    ("POST", "/v0.10/operation/endpoint/{endpoint_id}/mkdir"): transfer("data-write", send(
        _op("mkdir"), lambda _w, a: {"DATA_TYPE": "mkdir", "path": f"/{a}-was-here/"})),
    ("POST", "/v0.10/operation/endpoint/{endpoint_id}/rename"): transfer("data-write", send(
        _op("rename"), lambda w, a: {"DATA_TYPE": "rename", "old_path": f"/{w.file_path}",
                                     "new_path": f"/{a}-took-it.csv"})),
    ("GET", "/v0.10/endpoint_search"): Case("transfer-listing", "A (D1 and D2 as collections)",
                                            at("/v0.10/endpoint_search?limit=100")),
    ("POST", "/v0.10/transfer"): transfer("data-write", send("/v0.10/transfer", lambda w, a: {
        "DATA_TYPE": "transfer", "source_endpoint": collection_id(w.d1),
        "destination_endpoint": collection_id(w.d1), "submission_id": str(uuid.uuid4()),
        "DATA": [{"DATA_TYPE": "transfer_item", "source_path": f"/{w.file_path}",
                  "destination_path": f"/{a}-copy.csv"}]})),
    ("POST", "/v0.10/delete"): transfer("data-write", send("/v0.10/delete", lambda w, _a: {
        "DATA_TYPE": "delete", "endpoint": collection_id(w.d1),
        "submission_id": str(uuid.uuid4()),
        "DATA": [{"DATA_TYPE": "delete_item", "path": f"/{w.file_path}"}]})),
    ("GET", "/v0.10/task/{task_id}"): Case("task", "A (a task)", at(
        lambda w, _a: f"/v0.10/task/{w.task}")),
    ("PUT", "/v0.10/task/{task_id}"): Case("task", "A (a task)", send(
        lambda w, _a: f"/v0.10/task/{w.task}",
        lambda _w, a: {"DATA_TYPE": "task", "label": f"taken by {a}"})),
    ("POST", "/v0.10/task/{task_id}/cancel"): Case("task", "A (a task)", at(
        lambda w, _a: f"/v0.10/task/{w.task}/cancel")),
    ("GET", "/v0.10/task/{task_id}/event_list"): Case("task", "A (a task)", at(
        lambda w, _a: f"/v0.10/task/{w.task}/event_list")),
    ("GET", "/v0.10/task/{task_id}/successful_transfers"): Case("task", "A (a task)", at(
        lambda w, _a: f"/v0.10/task/{w.task}/successful_transfers")),
    ("GET", "/v0.10/task/{task_id}/skipped_errors"): Case("task", "A (a task)", at(
        lambda w, _a: f"/v0.10/task/{w.task}/skipped_errors")),
    ("GET", "/v0.10/task_list"): Case("task-listing", "A (a task)", at("/v0.10/task_list")),
    # -- crawl jobs: starting one needs data-read on the source; a job is its owner's only ----
    ("POST", "/crawl/jobs"): role("data-read", send(
        "/crawl/jobs", lambda w, _a: {"source": {"dataset": w.d1}}), "D1"),
    ("GET", "/crawl/jobs"): Case("crawl-listing", "A (a crawl job)", at("/crawl/jobs")),
    ("GET", "/crawl/jobs/{job_id}"): Case("crawl-job", "A (a crawl job)", at(
        lambda w, _a: f"/crawl/jobs/{w.crawl_job}")),
    ("POST", "/crawl/jobs/{job_id}/flush"): Case("crawl-job", "A (a crawl job)", send(
        lambda w, _a: f"/crawl/jobs/{w.crawl_job}/flush", lambda _w, _a: {"limit": 1000})),
    ("POST", "/crawl/jobs/{job_id}/ack"): Case("crawl-job", "A (a crawl job)", send(
        lambda w, _a: f"/crawl/jobs/{w.crawl_job}/ack", lambda _w, _a: {"cursor": "x"})),
    ("POST", "/crawl/jobs/{job_id}/cancel"): Case("crawl-job", "A (a crawl job)", at(
        lambda w, _a: f"/crawl/jobs/{w.crawl_job}/cancel")),
}
# fmt: on


def app_routes(server: ServerThread) -> set[tuple[str, str]]:
    """Every (method, path) the app serves."""
    out: set[tuple[str, str]] = set()
    for route in iter_route_contexts(server.app.routes):
        for method in route.methods or ():
            assert route.path is not None
            out.add((method, route.path))
    return out


def test_every_route_is_in_the_table(server: ServerThread) -> None:
    served = app_routes(server)
    missing = sorted(served - TABLE.keys())
    stale = sorted(TABLE.keys() - served)
    assert not missing, f"routes without a case in the cross-user table: {missing}"
    assert not stale, f"cases for routes the app no longer serves: {stale}"
    assert len(served) >= 60  # enumeration works (not an empty set that matches nothing)


# -- running it ------------------------------------------------------------------------------


async def send_as(
    api: httpx.AsyncClient, w: World, method: str, case: Case, actor: str
) -> httpx.Response:
    req = case.build(w, actor)
    headers = w.actors[actor].headers if actor != "anonymous" else {}
    return await api.request(method, req.url, json=req.json, data=req.data, headers=headers)


def assert_no_leak(w: World, r: httpx.Response, where: str) -> None:
    text = r.text
    assert w.secret not in text, f"{where}: A's data in the answer: {text[:500]}"
    assert w.refresh_token not in text, where


def assert_refused(w: World, r: httpx.Response, status: int, where: str) -> None:
    assert r.status_code == status, (where, r.status_code, r.text[:500])
    assert_no_leak(w, r, where)
    for marker in CREDENTIAL_MARKERS:
        assert marker not in r.text, (where, marker)
    if r.request.method == "HEAD":
        return
    if r.request.url.path.startswith("/v0.10/"):  # the transfer API's Type-Zero errors
        body = r.json()
        assert set(body) >= {"code", "message", "request_id", "resource"}, (where, body)
        code = {
            401: "AuthenticationFailed",
            403: "EndpointPermissionDenied",
            404: "ClientError.NotFound",
        }.get(status)
        assert code is None or body["code"] == code, (where, body)
        return
    error = r.json()["error"]
    if status == 401:
        assert error["code"] == "unauthenticated", where
        assert r.headers["www-authenticate"].startswith("Bearer "), where


LISTED: dict[str, set[Target]] = {
    "/registry/items": {"org", "person", "D1", "D2"},
    "/datastore/datasets": {"D1", "D2"},
    "/search/items": {"org", "person", "D1", "D2"},
    "/datastore/reviews/awaiting": {"D2"},
    "/datastore/reviews/mine": set(),  # A's requests, never anyone else's
    "/registry/sessions": set(),  # A's session, which no attacker may read (no secret shown)
    "/registry/registered-datasets": set(),  # A's session's files: A's lab only
}
"""Which of A's items each listing shows to a caller who may read them all."""


def _listed(w: World, body: dict[str, Any]) -> set[Target]:
    """Which of A's items a listing (or a search: hits have ``item``) shows."""
    ids = {entry.get("item", entry)["id"] for entry in body["items"]}
    return {t for t in ("org", "person", "D1", "D2") if w.target_id(t) in ids}


@pytest.mark.parametrize("key", sorted(TABLE), ids=[f"{m} {p}" for m, p in sorted(TABLE)])
async def test_attackers_get_what_the_table_says(
    api: httpx.AsyncClient, world: World, key: tuple[str, str]
) -> None:
    method, path = key
    case = TABLE[key]
    w = world
    for actor in ACTORS:
        where = f"{method} {path} as {actor}"
        if case.kind == "public":
            r = await send_as(api, w, method, case, actor)
            assert r.status_code == case.status, (where, r.status_code, r.text[:300])
            assert_no_leak(w, r, where)
        elif case.kind == "oauth":
            r = await send_as(api, w, method, case, actor)
            assert r.status_code == 401, (where, r.status_code, r.text[:300])
            assert r.json()["error"] == "invalid_client", where
            assert r.headers["www-authenticate"].startswith("Basic "), where
            assert_no_leak(w, r, where)
        elif actor == "anonymous":
            assert_refused(w, await send_as(api, w, method, case, actor), 401, where)
        elif case.kind == "signed-in":
            r = await send_as(api, w, method, case, actor)
            assert r.status_code == case.status, (where, r.status_code, r.text[:300])
            assert_no_leak(w, r, where)
            if path.endswith("/my-access"):
                assert set(r.json()["roles"]) == roles_of(actor, "org"), where
            if path == "/auth/userinfo":
                assert r.json()["sub"] == w.actors[actor].name, where
        elif case.kind == "admin":
            assert_refused(w, await send_as(api, w, method, case, actor), 403, where)
        elif case.kind == "refers":
            r = await send_as(api, w, method, case, actor)
            assert_refused(w, r, 422, where)
            fields = {d["field"]: d["type"] for d in r.json()["error"]["details"]}
            assert fields.get(case.field) == "unreadable_item", where
        elif case.kind == "lab":
            r = await send_as(api, w, method, case, actor)
            assert r.status_code in (403, 404), (where, r.status_code, r.text[:300])
            assert_refused(w, r, r.status_code, where)
        elif case.kind == "decide":
            if actor != "reviewer":  # the named reviewer may; the table never runs it
                assert_refused(w, await send_as(api, w, method, case, actor), 403, where)
        elif case.kind == "role":
            assert case.role is not None and case.target is not None
            if case.role not in roles_of(actor, case.target):
                r = await send_as(api, w, method, case, actor)
                assert_refused(w, r, 403, where)
                assert r.json()["error"]["code"] == "forbidden", where
            elif case.reads:
                r = await send_as(api, w, method, case, actor)
                assert r.status_code == 200, (where, r.status_code, r.text[:300])
        elif case.kind == "transfer":
            assert case.role is not None and case.target is not None
            if case.role not in roles_of(actor, case.target):
                assert_refused(w, await send_as(api, w, method, case, actor), 403, where)
            elif case.reads:
                r = await send_as(api, w, method, case, actor)
                assert r.status_code == 200, (where, r.status_code, r.text[:300])
        elif case.kind == "transfer-listing":
            r = await send_as(api, w, method, case, actor)
            assert r.status_code == 200, (where, r.status_code, r.text[:300])
            ids = {entry["id"] for entry in r.json()["DATA"]}
            shown = {t for t in ("D1", "D2") if collection_id(w.target_id(t)) in ids}
            expected = {t for t in ("D1", "D2") if "data-read" in roles_of(actor, t)}
            assert shown == expected, (where, shown, expected)
            if not expected:
                assert_no_leak(w, r, where)
        elif case.kind == "task":
            assert_refused(w, await send_as(api, w, method, case, actor), 404, where)
        elif case.kind == "crawl-job":
            r = await send_as(api, w, method, case, actor)
            assert_refused(w, r, 404, where)
            assert r.json()["error"]["code"] == "not_found", where
        elif case.kind == "crawl-listing":
            r = await send_as(api, w, method, case, actor)
            assert r.status_code == 200, (where, r.status_code, r.text[:300])
            assert w.crawl_job not in {job["id"] for job in r.json()["items"]}, where
            assert_no_leak(w, r, where)
        elif case.kind == "task-listing":
            r = await send_as(api, w, method, case, actor)
            assert r.status_code == 200, (where, r.status_code, r.text[:300])
            assert w.task not in {task["task_id"] for task in r.json()["DATA"]}, where
            assert_no_leak(w, r, where)
        else:
            assert case.kind == "listing"
            r = await send_as(api, w, method, case, actor)
            assert r.status_code == 200, (where, r.status_code, r.text[:300])
            shown = _listed(w, r.json())
            expected = readable(actor) & LISTED[path]
            if path == "/datastore/reviews/awaiting" and actor != "reviewer":
                expected = set()
            assert shown == expected, (where, shown, expected)
            if not expected:
                assert_no_leak(w, r, where)


# -- beyond the table ------------------------------------------------------------------------


async def test_write_credentials_need_data_write(api: httpx.AsyncClient, world: World) -> None:
    """The credentials route's ``write`` access: refused below ``data-write``, no keys given."""
    for actor in ("stranger", "md", "dr", "reviewer"):
        r = await api.post(
            f"/datastore/datasets/{world.d1}/credentials",
            json={"access": "write"},
            headers=world.actors[actor].headers,
        )
        assert_refused(world, r, 403, f"write credentials as {actor}")
    # the reviewer of D2 reads its data but can't write it
    r = await api.post(
        f"/datastore/datasets/{world.d2}/credentials",
        json={"access": "write"},
        headers=world.actors["reviewer"].headers,
    )
    assert_refused(world, r, 403, "write credentials of D2 as its reviewer")


async def test_registry_routes_on_a_dataset_refuse_strangers(
    api: httpx.AsyncClient, world: World
) -> None:
    """Reading a dataset through the registry is guarded like the datastore's own routes."""
    for tail in ("", "/history", "/access", "/lock-history"):
        r = await api.get(
            f"/registry/items/{world.d1}{tail}", headers=world.actors["stranger"].headers
        )
        assert_refused(world, r, 403, f"GET registry {tail} of D1")
    for tail, body in (("/lock", {"reason": "x"}), ("/access", None)):
        method = "PUT" if tail == "/access" else "POST"
        payload = body if body is not None else {"owner": world.a.name, "general": ["admin"]}
        r = await api.request(
            method,
            f"/registry/items/{world.d1}{tail}",
            json=payload,
            headers=world.actors["stranger"].headers,
        )
        assert_refused(world, r, 403, f"{method} registry {tail} of D1")


async def test_registry_writes_to_a_dataset_refuse_strangers_first(
    api: httpx.AsyncClient, world: World
) -> None:
    """A stranger's registry write to A's dataset is a 403 like any other, not the 409
    (``use_datastore``) that tells someone allowed to change it where to go."""
    stranger = world.actors["stranger"].headers
    r = await api.put(
        f"/registry/items/{world.d1}",
        json={"record": {"name": "mine"}, "reason": "mine"},
        headers=stranger,
    )
    assert_refused(world, r, 403, "registry PUT of D1 as a stranger")
    r = await api.post(
        f"/registry/items/{world.d1}/revert",
        json={"history_id": world.d1_history_id, "reason": "mine"},
        headers=stranger,
    )
    assert_refused(world, r, 403, "registry revert of D1 as a stranger")
    # someone who may change the dataset still learns where to do it
    r = await api.put(
        f"/registry/items/{world.d1}",
        json={"record": {"name": "x"}, "reason": "x"},
        headers=world.actors["dr"].headers,
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "use_datastore", r.text


async def test_item_admins_cant_take_ownership(api: httpx.AsyncClient, world: World) -> None:
    """``admin`` on an item manages its access, but only the owner may hand it over."""
    ad = world.actors["ad"]
    for item in (world.org, world.d1):
        current = await _ok(await api.get(f"/registry/items/{item}/access", headers=ad.headers))
        r = await api.put(
            f"/registry/items/{item}/access",
            json={**current, "owner": ad.name},
            headers=ad.headers,
        )
        assert_refused(world, r, 403, f"taking ownership of {item}")
        assert r.json()["error"]["code"] == "forbidden"


async def test_leaving_a_group_ends_its_access_at_once(
    api: httpx.AsyncClient, world: World, make_token: Callable[..., str]
) -> None:
    """Roles come from the current membership, not from the token: removal takes effect."""
    name = f"xu-leaver-{uuid.uuid4().hex[:8]}"
    leaver = User(name, make_token(name, groups=(world.groups["dw"],)))
    r = await api.get(f"/datastore/datasets/{world.d1}/files", headers=leaver.headers)
    assert r.status_code == 200, r.text
    r = await api.delete(
        f"/auth/groups/{world.groups['dw']}/members/{name}", headers=world.admin.headers
    )
    assert r.status_code == 204, r.text
    for url in (f"/datastore/datasets/{world.d1}/files", f"/registry/items/{world.org}"):
        assert_refused(world, await api.get(url, headers=leaver.headers), 403, url)
    r = await api.post(
        f"/datastore/datasets/{world.d1}/credentials", json={}, headers=leaver.headers
    )
    assert_refused(world, r, 403, "read credentials after leaving the group")


async def test_own_dataset_paths_dont_reach_other_datasets(
    api: httpx.AsyncClient, world: World
) -> None:
    """B's own dataset is no way into A's: relative paths can't climb out of B's prefix."""
    b = world.actors["stranger"]
    refs = {}
    for subtype, record in (
        ("organisation", {"name": "B's institute"}),
        ("person", {"first_name": "Bo", "last_name": "B", "email": "bo@example.org"}),
    ):
        created = await _ok(
            await api.post(
                "/registry/items", json={"subtype": subtype, "record": record}, headers=b.headers
            ),
            201,
        )
        refs[subtype] = created["id"]
    record = world.record("B's own")
    record["associations"] = {
        "organisation_id": refs["organisation"],
        "point_of_contact": refs["person"],
    }
    record["dataset_info"]["publisher_id"] = refs["organisation"]
    minted = await _ok(
        await api.post("/datastore/datasets", json={"record": record}, headers=b.headers), 201
    )
    own = minted["dataset"]["id"]
    a_prefix = world.before["D1"]["storage"]["prefix"]
    own_prefix = minted["dataset"]["storage"]["prefix"]
    up = "../" * own_prefix.count("/")
    for path in (
        f"{up}{a_prefix}{world.file_path}",
        f"../{a_prefix.rstrip('/').split('/')[-1]}/{world.file_path}",
        f"%2e%2e/{a_prefix.rstrip('/').split('/')[-1]}/{world.file_path}",
        f"/{a_prefix}{world.file_path}",
        f"..\\{world.file_path}",
        f"./../{world.file_path}",
    ):
        r = await api.post(
            f"/datastore/datasets/{own}/presign", json={"path": path}, headers=b.headers
        )
        assert r.status_code in (404, 422), (path, r.status_code, r.text[:300])
        assert "X-Amz-Signature" not in r.text  # (the path B sent is echoed: no leak check)
        r = await api.get(f"/datastore/datasets/{own}/files/{path}", headers=b.headers)
        assert r.status_code in (404, 422), (path, r.status_code, r.text[:300])
        assert "sha256" not in r.text


async def test_idempotency_keys_are_per_user(api: httpx.AsyncClient, world: World) -> None:
    """The same Idempotency-Key and body from another user is a new request, not A's replay."""
    key = f"xu-{uuid.uuid4().hex}"
    body = {"subtype": "organisation", "record": {"name": f"Keyed {world.secret}"}}
    first = await _ok(
        await api.post(
            "/registry/items", json=body, headers={**world.a.headers, "Idempotency-Key": key}
        ),
        201,
    )
    r = await api.post(
        "/registry/items",
        json=body,
        headers={**world.actors["stranger"].headers, "Idempotency-Key": key},
    )
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers
    assert r.json()["id"] != first["id"] and r.json()["owner"] == world.actors["stranger"].name


async def test_another_client_cant_use_or_revoke_a_refresh_token(
    api: httpx.AsyncClient, world: World
) -> None:
    """B's own confidential client, presenting A's refresh token: refused, and A's still works."""
    created = await _ok(
        await api.post(
            "/auth/clients",
            json={
                "client_id": f"xu-b-{uuid.uuid4().hex[:8]}",
                "grant_types": ["refresh_token", "client_credentials"],
            },
            headers=world.admin.headers,
        ),
        201,
    )
    auth = (created["client_id"], created["client_secret"])
    r = await api.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": world.refresh_token},
        auth=auth,
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert_no_leak(world, r, "refresh by another client")
    r = await api.post("/auth/revoke", data={"token": world.refresh_token}, auth=auth)
    assert r.status_code == 200, r.text  # RFC 7009: no telling whether the token exists
    # A's token still works for A's client (this rotates it: the last use in this module)
    r = await api.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": world.refresh_token,
            "client_id": CLI,
        },
    )
    assert r.status_code == 200, r.text
    world.refresh_token = r.json()["refresh_token"]
    r = await api.delete(f"/auth/clients/{created['client_id']}", headers=world.admin.headers)
    assert r.status_code == 204, r.text


def refused(case: Case, actor: str) -> bool:
    """Whether the table refuses ``actor`` what ``case`` asks."""
    if case.kind == "public":
        return case.status >= 400
    if case.kind == "oauth" or actor == "anonymous":
        return True
    if case.kind in ("admin", "refers", "crawl-job"):
        return True
    if case.kind == "decide":
        return actor != "reviewer"
    if case.kind == "role":
        assert case.role is not None and case.target is not None
        return case.role not in roles_of(actor, case.target)
    return False


async def test_another_client_cant_redeem_a_device_code(
    api: httpx.AsyncClient, world: World
) -> None:
    """A device code approved by A for one client is no good to another client, and the
    attempt doesn't use it up."""
    other = await _ok(
        await api.post(
            "/auth/clients",
            json={
                "client_id": f"xu-dev-{uuid.uuid4().hex[:8]}",
                "confidential": False,
                "grant_types": [DEVICE_GRANT],
            },
            headers=world.admin.headers,
        ),
        201,
    )
    grant = await _ok(
        await api.post("/auth/device_authorization", data={"client_id": CLI, "scope": "openid"})
    )
    async with httpx.AsyncClient(verify=SHARED_TLS, timeout=60) as browser:
        await approve_device_code(
            browser, grant["verification_uri_complete"], world.a.name, world.password
        )
    poll = {"grant_type": DEVICE_GRANT, "device_code": grant["device_code"]}
    r = await api.post("/auth/token", data={**poll, "client_id": other["client_id"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert "access_token" not in r.text
    r = await api.post("/auth/token", data={**poll, "client_id": CLI})
    assert r.status_code == 200, r.text
    r = await api.delete(f"/auth/clients/{other['client_id']}", headers=world.admin.headers)
    assert r.status_code == 204, r.text


async def test_nothing_changed(api: httpx.AsyncClient, world: World) -> None:
    """After every refused attempt, A's resources are exactly as A left them.

    The refused writes are sent again here, so that this holds whichever tests ran before.
    """
    for (method, _path), case in sorted(TABLE.items()):
        if method in ("GET", "HEAD"):
            continue
        for actor in ACTORS:
            if refused(case, actor):
                r = await send_as(api, world, method, case, actor)
                assert r.status_code >= 400, (method, _path, actor, r.text[:300])
    after = await _snapshot(api, world)
    changed = sorted(k for k in world.before if world.before[k] != after.get(k))
    assert not changed, f"changed by refused attempts: {changed}"
    assert after == world.before
