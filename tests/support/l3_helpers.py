"""Helpers for the L3 tests (importable: not a conftest)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provena_like.client import ProvenaClient
    from provena_like.modules.interactive import InteractiveDataset

APPROVALS = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")


def make_record(
    refs: dict[str, str], name: str = "Reef temperatures", **info: Any
) -> dict[str, Any]:
    dataset_info: dict[str, Any] = {
        "name": name,
        "description": "Hourly logger readings from the outer reef.",
        "access_info": {"reposited": True},
        "publisher_id": refs["organisation"],
        "created_date": "2024-01-01",
        "published_date": "2024-06-30",
        "license": "https://creativecommons.org/licenses/by/4.0/",
        "keywords": ["reef", "temperature"],
    }
    dataset_info.update(info)
    return {
        "associations": {
            "organisation_id": refs["organisation"],
            "point_of_contact": refs["person"],
        },
        "approvals": {a: {"relevant": False, "obtained": False} for a in APPROVALS},
        "dataset_info": dataset_info,
    }


async def mint_dataset(pv: ProvenaClient, name: str) -> InteractiveDataset:
    """A new dataset named ``name`` (plus a unique tag), with a new organisation and person."""
    tag = uuid.uuid4().hex[:6]
    org = await pv.registry_client.create_item(
        {"subtype": "organisation", "record": {"name": f"{name} org {tag}"}}
    )
    person = await pv.registry_client.create_item(
        {
            "subtype": "person",
            "record": {"first_name": "Di", "last_name": "Lee", "email": "di@example.org"},
        }
    )
    refs = {"organisation": org.id, "person": person.id}
    return await pv.datastore.mint(make_record(refs, name=f"{name} {tag}"))
