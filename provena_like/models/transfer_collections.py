"""The record of a local transfer collection: a directory tree the transfer service serves.

A ``transfer_collection`` is a registry subtype: the registry stores, versions and guards it
like any item, and its access settings decide who may use it (``data-read`` to list and read,
``data-write`` to write). Only a system admin registers or changes one, and its ``root`` must
lie under one of the server's ``transfer_roots`` (see the guide "Transfers between sites").

Example:
    ```python
    record = TransferCollectionRecord.model_validate(
        {"name": "Lab scratch", "root": "/srv/provena/collections/lab-scratch"}
    )
    ```
"""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

__all__ = [
    "COLLECTION_NAMESPACE",
    "TRANSFER_COLLECTION",
    "TransferCollectionRecord",
    "collection_id",
]

TRANSFER_COLLECTION = "transfer_collection"
"""The registry subtype of local transfer collections."""

COLLECTION_NAMESPACE = uuid.UUID("0b4f6c5e-6f1d-5a8e-9d3c-2f7a9e1c4b10")
"""The namespace of collection UUIDs (fixed: changing it renames every collection)."""


def collection_id(handle: str) -> str:
    """The collection UUID of the registry item ``handle`` (a dataset or a transfer collection).

    Stable and derived from the handle, so a client can name a dataset's collection without
    asking the server (the transfer service and the CLI agree on it).

    Example:
        ```python
        assert collection_id("10378.1/42") == collection_id("10378.1/42")
        ```
    """
    return str(uuid.uuid5(COLLECTION_NAMESPACE, handle))


class TransferCollectionRecord(BaseModel):
    """A directory of the server, served as a Globus-style collection.

    Attributes:
        name: what the collection is called (its display name by default).
        root: the absolute path of its root directory on the server.
        description: what is in it, for people choosing one.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    root: str = Field(min_length=1, max_length=1024, description="absolute path on the server")
    description: Annotated[str, StringConstraints(max_length=2000)] = ""

    @field_validator("root")
    @classmethod
    def _absolute_and_plain(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("a collection's root is an absolute path")
        if "\x00" in value or "\\" in value:
            raise ValueError("a collection's root may not hold NUL or backslashes")
        if ".." in value.split("/"):
            raise ValueError("a collection's root may not hold '..' segments")
        return value
