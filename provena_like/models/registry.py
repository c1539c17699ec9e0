"""Wire models of the registry service: typed items with handles, history, locks and access.

Adding a subtype is a local change: write its record model here and add it to
:data:`RECORD_MODELS`; the server validates ``record`` with that model and everything else
(history, locks, access, listing, search) works unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from provena_like._core.model_builds import model_builds_deferred
from provena_like.models.shared import MAX_WIRE_INT, Revision, WireModel

__all__ = [
    "RECORD_MODELS",
    "ROLE_ORDER",
    "AccessSettings",
    "AccessUpdate",
    "HistoryEntry",
    "Item",
    "ItemCreate",
    "ItemUpdate",
    "LockEvent",
    "LockRequest",
    "MyAccess",
    "OrganisationRecord",
    "PersonRecord",
    "RevertRequest",
    "Role",
    "SortKey",
    "SortOrder",
    "SubtypeInfo",
    "Versioning",
]

Role = Literal["metadata-read", "metadata-write", "data-read", "data-write", "admin"]
"""Per-item roles. Each implies the ones before it in :data:`ROLE_ORDER`."""

ROLE_ORDER: tuple[Role, ...] = (
    "metadata-read",
    "metadata-write",
    "data-read",
    "data-write",
    "admin",
)

SortKey = Literal["created", "updated", "name"]
SortOrder = Literal["asc", "desc"]


class _Record(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, defer_build=model_builds_deferred()
    )


class OrganisationRecord(_Record):
    """An organisation: a research institution, funder or publisher."""

    name: str = Field(min_length=1, max_length=500)
    display_name: str | None = None
    ror: HttpUrl | None = Field(default=None, description="ROR identifier URL")
    website: HttpUrl | None = None


class PersonRecord(_Record):
    """A person: a researcher, data custodian or point of contact."""

    first_name: str = Field(min_length=1, max_length=200)
    last_name: str = Field(min_length=1, max_length=200)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    orcid: HttpUrl | None = None
    organisation: str | None = Field(default=None, description="handle of an organisation item")


RECORD_MODELS: dict[str, type[BaseModel]]
"""subtype → record model. The server validates ``record`` against it.

The registration subtypes (``lab``, ``subject``, ``session``, ...) are defined in
:mod:`provena_like.models.registration`; ``transfer_collection`` (a directory the transfer
service serves, registered by system admins) in :mod:`provena_like.models.transfer_collections`;
``storage_location`` (where an archive type's files go, and their layout; registry admins
only) in :mod:`provena_like.models.archive`.

Datasets (``dataset``) are shown and validated by the registry but created only by the
datastore's mint (``POST /datastore/datasets``), which also allocates their storage.

Built on first use (PEP 562): the record models of the other modules are many, and a client
that only reads items (``provena-like dataset show``) does not need them.
"""


def _record_models() -> dict[str, type[BaseModel]]:
    from provena_like.models.archive import STORAGE_LOCATION, StorageLocationRecord
    from provena_like.models.collection import DatasetRecord
    from provena_like.models.registration import REGISTRATION_RECORD_MODELS
    from provena_like.models.transfer_collections import (
        TRANSFER_COLLECTION,
        TransferCollectionRecord,
    )

    return {
        "organisation": OrganisationRecord,
        "person": PersonRecord,
        "dataset": DatasetRecord,
        **REGISTRATION_RECORD_MODELS,
        TRANSFER_COLLECTION: TransferCollectionRecord,
        STORAGE_LOCATION: StorageLocationRecord,
    }


def __getattr__(name: str) -> Any:
    # RECORD_MODELS, built (and kept) on first access
    if name == "RECORD_MODELS":
        models = globals()["RECORD_MODELS"] = _record_models()
        return models
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _creatable_subtypes(schema: dict[str, Any]) -> None:
    """The JSON Schema of ``ItemCreate.subtype``: the subtypes the registry creates."""
    schema["enum"] = sorted(set(__getattr__("RECORD_MODELS")) - {"dataset"})


class AccessSettings(WireModel):
    """Who may do what with an item, besides system admins.

    ``general`` applies to everyone signed in; ``groups`` maps a group name to its roles.
    The owner always has every role.
    """

    owner: str
    general: list[Role] = Field(default_factory=list)
    groups: dict[str, list[Role]] = Field(default_factory=dict)


class AccessUpdate(AccessSettings):
    """New access settings for an item (``PUT /items/{id}/access``).

    A plain :class:`AccessSettings` is a valid body; ``reason`` goes into the item's history
    and ``expected_revision`` (or ``If-Match``) guards against lost updates.
    """

    reason: str | None = Field(default=None, max_length=2000)
    expected_revision: Revision | None = None


class Versioning(WireModel):
    """Links between versions of an item (used by datasets)."""

    version: int = 1
    previous: str | None = None
    next: str | None = None


class HistoryEntry(WireModel):
    """One recorded state of an item: who changed it, when, why, and the resulting snapshot."""

    id: int
    time: datetime
    user: str
    reason: str
    snapshot: dict[str, Any]
    revision: int | None = Field(default=None, description="the item revision this produced")


class LockEvent(WireModel):
    """One lock or unlock of an item."""

    action: Literal["lock", "unlock"]
    time: datetime
    user: str
    reason: str


class Item(WireModel):
    """A registry item.

    ``revision`` counts writes and is the optimistic-concurrency token: send it back as
    ``If-Match`` (or ``expected_revision``) and a stale write gets 412. ``roles`` are the
    caller's effective roles on this item. ``history`` is present only when asked for.
    """

    id: str
    subtype: str
    display_name: str
    owner: str
    created_at: datetime
    updated_at: datetime
    revision: int
    record: dict[str, Any]
    access: AccessSettings
    locked: bool = False
    versioning: Versioning = Field(default_factory=Versioning)
    roles: list[Role] = Field(default_factory=list)
    history: list[HistoryEntry] | None = None


class ItemCreate(WireModel):
    """Create an item. ``display_name`` defaults to one derived from the record.

    ``subtype`` is documented as the subtypes the registry creates (datasets are minted by
    the datastore); any other value is refused by the server with a message naming them.
    """

    subtype: str = Field(json_schema_extra=_creatable_subtypes)
    record: dict[str, Any]
    display_name: str | None = None
    general: list[Role] = Field(default_factory=list)
    groups: dict[str, list[Role]] = Field(default_factory=dict)


class ItemUpdate(WireModel):
    """Replace an item's record, with a reason for the history.

    ``expected_revision`` (or an ``If-Match`` header) guards against lost updates.
    """

    record: dict[str, Any]
    reason: str = Field(min_length=1, max_length=2000)
    display_name: str | None = None
    expected_revision: Revision | None = None


class RevertRequest(WireModel):
    """Restore the record of a history entry; recorded as a new history entry."""

    history_id: int = Field(ge=1, le=MAX_WIRE_INT, description="the id of a history entry")
    reason: str = Field(min_length=1, max_length=2000)
    expected_revision: Revision | None = None


class LockRequest(WireModel):
    """Lock or unlock an item, with a reason."""

    reason: str = Field(min_length=1, max_length=2000)


class SubtypeInfo(WireModel):
    """A registry subtype and the JSON Schema its ``record`` must satisfy."""

    name: str
    record_schema: dict[str, Any]


class MyAccess(WireModel):
    """What the caller may do with an item, and why (``GET /items/{id}/my-access``).

    ``roles`` are the caller's effective item roles, weakest first (each implies the ones
    before it); ``sources`` say where they come from: ``system-admin``, ``owner``,
    ``general``, ``group:<name>`` or ``reviewer`` (the reviewer named in a pending release
    request may read the dataset's metadata and data until they decide).
    """

    item_id: str
    username: str
    roles: list[Role] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    system_roles: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list, description="the caller's groups")
    owner: bool = False
    locked: bool = False
