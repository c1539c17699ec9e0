"""Helpers shared by the review tests (importable: not a conftest)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.users import User  # noqa: F401 (re-exported)

APPROVALS = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")


@dataclass(frozen=True)
class Refs:
    """Registry items a dataset record can refer to (readable by everyone signed in)."""

    organisation: str
    person: str


def record(refs: Refs, name: str = "Reef temperatures", **info: Any) -> dict[str, Any]:
    """A valid dataset record referring to ``refs``; ``info`` overrides dataset_info fields."""
    dataset_info: dict[str, Any] = {
        "name": name,
        "description": "Hourly logger readings from the outer reef.",
        "access_info": {"reposited": True},
        "publisher_id": refs.organisation,
        "created_date": "2024-01-01",
        "published_date": "2024-06-30",
        "license": "https://creativecommons.org/licenses/by/4.0/",
        "keywords": ["reef", "temperature"],
    }
    dataset_info.update(info)
    return {
        "associations": {"organisation_id": refs.organisation, "point_of_contact": refs.person},
        "approvals": {a: {"relevant": False, "obtained": False} for a in APPROVALS},
        "dataset_info": dataset_info,
    }


def changed(rec: dict[str, Any], **info: Any) -> dict[str, Any]:
    out = copy.deepcopy(rec)
    out["dataset_info"].update(info)
    return out


def ds(dataset_id: str, tail: str = "") -> str:
    """The datastore path of a dataset (relative to the server URL)."""
    return f"/datastore/datasets/{dataset_id}{tail}"


def item(item_id: str, tail: str = "") -> str:
    """The registry path of an item (relative to the server URL)."""
    return f"/registry/items/{item_id}{tail}"


def error(r: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = r.json()["error"]
    return body


def outcome(r: httpx.Response) -> tuple[int, str | None]:
    """(status, error code or None) of a response."""
    if r.is_success:
        return r.status_code, None
    return r.status_code, error(r)["code"]


async def make_refs(api: httpx.AsyncClient, user: User) -> Refs:
    """An organisation and a person owned by ``user``, readable by everyone signed in."""
    general = {"general": ["metadata-read"]}
    r = await api.post(
        "/registry/items",
        json={"subtype": "organisation", "record": {"name": "Reef Institute"}, **general},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    org = r.json()["id"]
    person = {"first_name": "Ada", "last_name": "Reef", "email": "ada@example.org"}
    r = await api.post(
        "/registry/items",
        json={"subtype": "person", "record": person, **general},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    return Refs(organisation=org, person=r.json()["id"])


async def mint(
    api: httpx.AsyncClient, user: User, rec: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """Mint a dataset as ``user`` and return its JSON (asserting 201)."""
    r = await api.post("/datastore/datasets", json={"record": rec, **fields}, headers=user.headers)
    assert r.status_code == 201, r.text
    dataset: dict[str, Any] = r.json()["dataset"]
    return dataset


async def step(
    api: httpx.AsyncClient, user: User | None, dataset_id: str, action: str, **body: Any
) -> httpx.Response:
    """POST one release step (``request``, ``approve``, ``reject``, ``withdraw``)."""
    headers = user.headers if user is not None else {}
    return await api.post(ds(dataset_id, f"/release/{action}"), json=body, headers=headers)


async def request_release(
    api: httpx.AsyncClient, user: User, dataset_id: str, reviewer: User, notes: str = "ready"
) -> dict[str, Any]:
    """Ask for release (asserting 200) and return the dataset."""
    r = await step(api, user, dataset_id, "request", reviewer=reviewer.name, notes=notes)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body
