"""Turning L2 arguments into request parts: JSON bodies and path segments."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError
from pydantic_core import to_jsonable_python

from provena_like._core.errors import UsageError

__all__ = ["coerce_model", "encode_body", "item_path", "path_segment"]

M = TypeVar("M", bound=BaseModel)

_HANDLE = re.compile(r"^[^/\s?#%]+/[^/\s?#%]+$")


def coerce_model(model: type[M], value: M | Mapping[str, Any], what: str) -> M:
    """Return ``value`` as a ``model``, validating a mapping; bad input is a UsageError."""
    if isinstance(value, model):
        return value
    if not isinstance(value, Mapping):
        raise UsageError(f"{what} must be a {model.__name__} or a dict, got {type(value).__name__}")
    try:
        return model.model_validate(dict(value))
    except ValidationError as err:
        # No input values in the message: a body may carry a password.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in err.errors(include_url=False, include_input=False)
        )
        raise UsageError(f"invalid {what} ({model.__name__}): {problems}") from None


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr | SecretBytes):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reveal(v) for v in value]
    return value


def encode_body(
    model: type[M], value: M | Mapping[str, Any], what: str, *, exclude_unset: bool = True
) -> Any:
    """Validate ``value`` as ``model`` and return its JSON-able form, secrets included.

    By default only the fields that were set are sent, so a PATCH leaves the others alone and
    the server's defaults (the same models) apply to the rest; a PUT that replaces a whole
    document passes ``exclude_unset=False``.
    """
    instance = coerce_model(model, value, what)
    dumped = instance.model_dump(mode="python", exclude_unset=exclude_unset)
    return to_jsonable_python(_reveal(dumped))


def item_path(item_id: str) -> str:
    """``/items/<handle>``, after checking the handle has the ``prefix/suffix`` shape."""
    if (
        not isinstance(item_id, str)
        or not _HANDLE.match(item_id)
        or any(part in {".", ".."} for part in item_id.split("/"))
    ):
        raise UsageError(
            f"item id must be a handle like '10378.1/42' (exactly one '/'), got {item_id!r}"
        )
    return f"/items/{item_id}"


def path_segment(value: str, what: str) -> str:
    """Percent-encode one path segment (a username, group name or client id)."""
    if not isinstance(value, str) or not value.strip() or value in {".", ".."}:
        raise UsageError(f"{what} must be a non-empty name, got {value!r}")
    return quote(value, safe="@")
