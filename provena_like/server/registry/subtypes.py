"""Per-subtype behaviour on the server: record validation and default display names.

The record models are the wire contract (:data:`provena_like.models.registry.RECORD_MODELS`).
Adding a subtype is a change there; add an entry to :data:`DISPLAY_NAMES` here only when the
generic rule (the record's ``display_name``, ``name`` or ``title`` field) doesn't fit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from provena_like.models.collection import DatasetRecord
from provena_like.models.registry import RECORD_MODELS, OrganisationRecord, PersonRecord
from provena_like.server.errors import field_errors, validation_error

__all__ = [
    "DISPLAY_NAMES",
    "default_display_name",
    "record_json",
    "record_schemas",
    "require_subtype",
    "validate_display_name",
    "validate_record",
]

MAX_DISPLAY_NAME = 500


def _organisation(record: BaseModel) -> str:
    assert isinstance(record, OrganisationRecord)
    return record.display_name or record.name


def _person(record: BaseModel) -> str:
    assert isinstance(record, PersonRecord)
    return f"{record.first_name} {record.last_name}"


def _dataset(record: BaseModel) -> str:
    assert isinstance(record, DatasetRecord)
    return record.dataset_info.name


DISPLAY_NAMES: dict[str, Callable[[BaseModel], str]] = {
    "organisation": _organisation,
    "person": _person,
    "dataset": _dataset,
}
"""subtype → how its default display name is derived from a validated record."""


def require_subtype(subtype: str, *, field: str = "subtype") -> type[BaseModel]:
    """The record model of ``subtype``; an unknown one is a 422 naming the valid ones.

    ``field`` names where the subtype came from (``query.subtype`` for a listing's filter).
    """
    model = RECORD_MODELS.get(subtype)
    if model is None:
        valid = ", ".join(sorted(RECORD_MODELS))
        message = f"Unknown subtype {subtype!r}; valid subtypes: {valid}."
        detail = {
            "field": field,
            "message": message,
            "type": "unknown_subtype",
            "valid": sorted(RECORD_MODELS),
        }
        raise validation_error([detail], message=message)
    return model


def validate_record(subtype: str, record: dict[str, Any]) -> BaseModel:
    """Validate ``record`` for ``subtype``; errors name each field as ``record.<path>``."""
    model = require_subtype(subtype)
    try:
        return model.model_validate(record)
    except ValidationError as err:
        errors = err.errors(include_url=False, include_input=False)
        details = field_errors(errors, within=("record",))
        raise validation_error(details, what=f"{subtype} record") from None


def record_json(record: BaseModel) -> dict[str, Any]:
    """The stored (normalised, JSON) form of a validated record; unset optionals are dropped."""
    dumped: dict[str, Any] = record.model_dump(mode="json", exclude_none=True)
    return dumped


def default_display_name(subtype: str, record: BaseModel) -> str:
    """The display name an item gets when none is given."""
    derive = DISPLAY_NAMES.get(subtype)
    if derive is not None:
        return derive(record)[:MAX_DISPLAY_NAME]
    for attr in ("display_name", "name", "title"):
        value = getattr(record, attr, None)
        if isinstance(value, str) and value.strip():
            return value.strip()[:MAX_DISPLAY_NAME]
    return subtype


def validate_display_name(value: str) -> str:
    """A caller-given display name: stripped, 1-500 characters."""
    name = value.strip()
    if not 1 <= len(name) <= MAX_DISPLAY_NAME:
        message = f"display_name must be 1-{MAX_DISPLAY_NAME} characters (after stripping)."
        raise validation_error(
            [{"field": "display_name", "message": message, "type": "string_length"}],
            message=message,
        )
    return name


def record_schemas() -> dict[str, dict[str, Any]]:
    """Subtype → JSON Schema of its record model."""
    return {name: model.model_json_schema() for name, model in sorted(RECORD_MODELS.items())}
