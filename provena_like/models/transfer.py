"""Wire models of the transfer service's task documents (Globus Transfer API v0.10).

:class:`TransferDocument` and :class:`DeleteDocument` are what ``POST /v0.10/transfer`` and
``POST /v0.10/delete`` accept: both the sparse documents of globus-sdk 4 (only the fields that
were set) and the full ones of globus-sdk 3 (every boolean, ``recursive: false`` on items).
Unknown keys are ignored, as Globus does, so newer SDKs keep working.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

__all__ = [
    "SYNC_LEVELS",
    "DeleteDocument",
    "DeleteItem",
    "FilterRule",
    "TransferDocument",
    "TransferItem",
]

SYNC_LEVELS = {"exists": 0, "size": 1, "mtime": 2, "checksum": 3}
"""The names of the sync levels (what ``globus transfer --sync-level`` takes) → their number."""

_LENIENT = ConfigDict(extra="ignore", populate_by_name=True)

# an empty DATA is answered with Globus's own 400 NoTransferItems (not a validation error),
# so the schema says what a usable document has while the model lets an empty list through
_AT_LEAST_ONE: JsonDict = {"minItems": 1}


class FilterRule(BaseModel):
    """An include/exclude rule of a recursive transfer: the first rule matching a name wins.

    Attributes:
        method: ``include`` or ``exclude``.
        name: a glob on the file or directory name (``*.tmp``).
        type: what the rule applies to: ``file``, ``dir``, or both when absent.
    """

    model_config = _LENIENT

    DATA_TYPE: Literal["filter_rule"] = "filter_rule"
    method: Literal["include", "exclude"]
    name: str = Field(min_length=1, max_length=1024)
    type: Literal["file", "dir"] | None = None


class TransferItem(BaseModel):
    """One item of a transfer: a file, or a directory copied recursively.

    ``recursive`` absent or ``null``: decided by what the source is.
    """

    model_config = _LENIENT

    DATA_TYPE: Literal["transfer_item"] = "transfer_item"
    source_path: str = Field(max_length=4096)
    destination_path: str = Field(max_length=4096)
    recursive: bool | None = None
    external_checksum: str | None = None
    checksum_algorithm: str | None = None


class _TaskDocument(BaseModel):
    model_config = _LENIENT

    submission_id: UUID | None = None
    label: str | None = Field(default=None, max_length=128)
    deadline: datetime | None = None
    notify_on_succeeded: bool = True
    notify_on_failed: bool = True
    notify_on_inactive: bool = True


class TransferDocument(_TaskDocument):
    """``POST /v0.10/transfer``: copy items from one collection to another."""

    DATA_TYPE: Literal["transfer"] = "transfer"
    source_endpoint: str
    destination_endpoint: str
    sync_level: int | None = Field(default=None, ge=0, le=3)
    verify_checksum: bool = False
    preserve_timestamp: bool = False
    encrypt_data: bool = False
    skip_source_errors: bool = False
    fail_on_quota_errors: bool = False
    delete_destination_extra: bool = False
    source_local_user: str | None = None
    destination_local_user: str | None = None
    filter_rules: list[FilterRule] | None = None
    DATA: list[TransferItem] = Field(json_schema_extra=_AT_LEAST_ONE)

    @field_validator("sync_level", mode="before")
    @classmethod
    def _sync_name(cls, value: object) -> object:
        if isinstance(value, str) and value in SYNC_LEVELS:
            return SYNC_LEVELS[value]
        return value


class DeleteItem(BaseModel):
    """One path of a delete (a glob of its last segment when ``interpret_globs``)."""

    model_config = _LENIENT

    DATA_TYPE: Literal["delete_item"] = "delete_item"
    path: str = Field(max_length=4096)


class DeleteDocument(_TaskDocument):
    """``POST /v0.10/delete``: delete paths of one collection."""

    DATA_TYPE: Literal["delete"] = "delete"
    endpoint: str
    recursive: bool = False
    ignore_missing: bool = False
    interpret_globs: bool = False
    local_user: str | None = None
    DATA: list[DeleteItem] = Field(json_schema_extra=_AT_LEAST_ONE)
