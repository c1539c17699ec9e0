"""Helpers of the registration tests (importable: not a conftest): labs, subjects, sessions."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.users import User


def unique(prefix: str) -> str:
    """A name no other test uses, fit for ALF paths (letters, digits, _)."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Lab:
    """A lab item, its auth group and one member (who created it)."""

    id: str
    name: str
    group: str
    member: User


async def create_item(
    client: httpx.AsyncClient, user: User, subtype: str, record: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """Create a registry item as ``user`` (asserting 201) and return its JSON."""
    body = {"subtype": subtype, "record": record, **fields}
    r = await client.post("/items", json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    item: dict[str, Any] = r.json()
    return item


async def make_lab(client: httpx.AsyncClient, new_user: Callable[..., User], **record: Any) -> Lab:
    """A new lab with a new group, created by a new member of that group."""
    group = unique("grp")
    member = new_user("member", groups=(group,))
    name = unique("lab")
    item = await create_item(client, member, "lab", {"name": name, "group": group, **record})
    return Lab(item["id"], name, group, member)


async def join(new_user: Callable[..., User], lab: Lab, prefix: str = "member") -> User:
    """Another member of ``lab``."""
    return new_user(prefix, groups=(lab.group,))


async def make_subject(
    client: httpx.AsyncClient, lab: Lab, nickname: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A subject of ``lab``, created by its member."""
    record = {"nickname": nickname or unique("mouse"), "lab": lab.id}
    return await create_item(client, lab.member, "subject", record, **fields)


async def post_session(
    client: httpx.AsyncClient, user: User, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    """``POST /registry/sessions`` as ``user``."""
    headers = {**user.headers, **({"Idempotency-Key": key} if key else {})}
    return await client.post("/sessions", json=body, headers=headers)


def fields(response: httpx.Response) -> list[str]:
    """The fields named by an error response's details."""
    details = response.json()["error"]["details"] or []
    return [d["field"] for d in details]


@dataclass(frozen=True)
class Vocabulary:
    """Dataset types, a data format, a repository and tags no other test uses.

    Files named ``{obj}.times.{ext}`` and ``{obj}.intervals.{ext}`` match one type each.
    """

    obj: str
    ext: str
    times_type: str
    intervals_type: str
    data_format: str
    repository: str
    protected_tag: str
    plain_tag: str

    def name(self, attribute: str = "times") -> str:
        """The file name of this vocabulary's ``attribute`` dataset."""
        return f"{self.obj}.{attribute}.{self.ext}"


async def make_vocabulary(client: httpx.AsyncClient, admin: User) -> Vocabulary:
    """Create, as the registry admin ``admin``, a vocabulary of fresh names."""
    tail = uuid.uuid4().hex[:8]
    obj, ext = f"obj{tail}", f"e{tail}"
    times = await create_item(client, admin, "dataset_type", {"name": f"{obj}.times"})
    intervals = await create_item(
        client,
        admin,
        "dataset_type",
        {"name": f"{obj}.intervals", "filename_pattern": f"*{obj}.intervals.*"},
    )
    fmt = await create_item(
        client, admin, "data_format", {"name": unique("fmt"), "file_extension": f".{ext}"}
    )
    repo = await create_item(
        client, admin, "repository", {"name": unique("repo"), "kind": "posix", "root": "/data"}
    )
    protected = await create_item(
        client, admin, "tag", {"name": unique("frozen"), "protected": True}
    )
    plain = await create_item(client, admin, "tag", {"name": unique("plain")})
    return Vocabulary(
        obj,
        ext,
        times["id"],
        intervals["id"],
        fmt["id"],
        repo["id"],
        protected["id"],
        plain["id"],
    )


async def make_session(client: httpx.AsyncClient, lab: Lab, day: str = "2026-12-06") -> str:
    """A new session (of a new subject) of ``lab``; returns its handle."""
    subject = await make_subject(client, lab)
    r = await post_session(client, lab.member, {"subject": subject["id"], "date": day})
    assert r.status_code == 201, r.text
    handle: str = r.json()["id"]
    return handle


def sha(text: str) -> str:
    """The hex SHA-256 of ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()


def file(path: str, content: str = "x", **extra: Any) -> dict[str, Any]:
    """A file of a ``register_files`` body, as if its content were ``content``."""
    return {"path": path, "size": len(content), "sha256": sha(content), **extra}


async def register(
    client: httpx.AsyncClient,
    user: User,
    session: str,
    files: list[dict[str, Any]],
    key: str | None = None,
    **options: Any,
) -> httpx.Response:
    """``POST /registry/sessions/{session}/files`` as ``user``."""
    headers = {**user.headers, **({"Idempotency-Key": key} if key else {})}
    return await client.post(
        f"/sessions/{session}/files", json={"files": files, **options}, headers=headers
    )


async def listed(client: httpx.AsyncClient, user: User, **params: Any) -> list[dict[str, Any]]:
    """One page of ``GET /registry/registered-datasets`` as ``user``."""
    r = await client.get("/registered-datasets", params=params, headers=user.headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items
