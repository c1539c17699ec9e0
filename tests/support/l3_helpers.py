"""Helpers for the L3 tests (importable: not a conftest)."""

from __future__ import annotations

from typing import Any

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
