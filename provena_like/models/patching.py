"""Wire models of patching and deleting registered datasets (the server side of the Patcher).

A *patch* replaces the content of registered dataset revisions in every repository that
holds them, after the new bytes are staged and verified there: ``POST /registry/patches``
(:class:`PatchRequest`) commits, in one transaction, the new size, hashes and version of
each revision and, per repository, the relative path where its new bytes now are
(:class:`PatchLocation`); the answer (:class:`PatchResult`) lists, per file, the old
locations the client must clean up. A patch is identified by the caller's ``patch_id``:
committing the same request again answers the same (200), so a client that lost the answer
may simply retry; ``GET /registry/patches/{patch_id}`` tells whether it was committed.

A *deletion* first marks a revision ``deleting``
(``POST /registry/registered-datasets/{id}/deletion``), then the client deletes the file from
each repository and marks each replica absent (``PUT .../files/{repository}``,
:class:`FileRecordUpdate`), and finally ``DELETE /registry/registered-datasets/{id}`` removes
the records, accepted only once no replica is left.

Example:
    ```python
    import uuid

    request = PatchRequest.model_validate(
        {
            "patch_id": str(uuid.uuid4()),
            "files": [
                {
                    "dataset": str(uuid.uuid4()),
                    "expected_sha256": "a" * 64,
                    "size": 3,
                    "sha256": "b" * 64,
                    "locations": [
                        {
                            "repository": "10378.1/12",
                            "relative_path": "lab/Subjects/KS023/2026-12-06/001/alf/x.times.npy",
                            "size": 3,
                            "sha256": "b" * 64,
                        }
                    ],
                }
            ],
        }
    )
    assert request.force is False
    ```
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from provena_like.models.registration import (
    DatasetState,
    FileRecordInfo,
    Md5,
    RegisteredDataset,
    Sha256,
)
from provena_like.models.shared import WireModel

__all__ = [
    "MAX_PATCH_FILES",
    "MAX_PATCH_LOCATIONS",
    "DatasetState",
    "FileRecordUpdate",
    "PatchedFile",
    "PatchFile",
    "PatchHistoryEntry",
    "PatchLocation",
    "PatchRequest",
    "PatchResult",
]


class _Record(BaseModel):
    """A request body: unknown fields refused, text taken as sent (nothing stripped)."""

    model_config = ConfigDict(extra="forbid")


Handle = Annotated[
    str,
    StringConstraints(min_length=3, max_length=255, pattern=r"^[^/ \t\n\r\f\v]+/[^/ \t\n\r\f\v]+$"),
]
"""A registry handle (``10378.1/42``), taken as sent. Its pattern names the whitespace it
refuses (``\\s`` differs between JSON Schema tools and the server's regex engine); a handle
with other odd characters is simply unknown (422 ``unknown_item``)."""

MAX_PATCH_FILES = 1000
"""The most files one patch may replace (422 beyond)."""

MAX_PATCH_LOCATIONS = 8
"""The most locations (repositories) one file of a patch may have."""


class PatchLocation(_Record):
    """Where a file's new bytes are in one repository, as read back from that repository.

    Attributes:
        repository: the repository's handle.
        relative_path: the path under the repository's root where the new bytes are now
            (typically the staged object, which becomes the current one).
        size: the size read back from the repository (must equal the file's).
        sha256: the sha256 read back from the repository (must equal the file's).
    """

    repository: Handle
    relative_path: str = Field(min_length=1, max_length=1024)
    size: int = Field(ge=0, le=2**53)
    sha256: Sha256


class PatchFile(_Record):
    """One registered revision a patch replaces, and its new content.

    Attributes:
        dataset: the registered revision's id (a uuid).
        expected_sha256: its sha256 as the client last saw it: if it changed since, the
            commit is refused (409 ``patch_conflict`` naming the dataset).
        size: the new size in bytes.
        sha256: the new content's sha256.
        md5: the new content's md5 (required when a location's repository keeps md5s).
        version: the producing software's version, or None.
        locations: one per repository; every repository that has a file record of the
            revision must be given one (no replica is left stale).
        default: also make the revision its dataset's default (its other revisions lose
            the flag) in the same transaction. The Patcher's ``force`` sends it for the new
            revision it registered (not present, not default) in place of a protected one.
    """

    dataset: uuid.UUID
    expected_sha256: Sha256
    size: int = Field(ge=0, le=2**53)
    sha256: Sha256
    md5: Md5 | None = None
    version: str | None = Field(default=None, min_length=1, max_length=64)
    locations: list[PatchLocation] = Field(min_length=1, max_length=MAX_PATCH_LOCATIONS)
    default: bool = False


class PatchRequest(_Record):
    """``POST /registry/patches``: replace registered revisions' content, all or nothing.

    Attributes:
        patch_id: the client's id of this patch (a uuid): committing the same request again
            answers the same, a different request with a used id is refused (409).
        force: recorded with the patch. It does not let a patch change a protected revision
            (412 ``protected`` either way): with ``force`` the SDK registers such a file as a
            new revision instead (not present, not default), stages and verifies its bytes,
            and commits it with ``default``.
        files: the revisions to replace, each at most once (at most
            :data:`MAX_PATCH_FILES`).
    """

    patch_id: uuid.UUID
    force: bool = False
    files: list[PatchFile] = Field(min_length=1, max_length=MAX_PATCH_FILES)


class PatchedFile(WireModel):
    """What a patch did to one revision.

    Attributes:
        dataset: the revision as committed (new size, hashes, paths).
        old_locations: where its previous bytes were, per repository (what the client must
            clean up: none of them is referenced any more). A location whose path did not
            change is not listed.
    """

    dataset: RegisteredDataset
    old_locations: list[FileRecordInfo]


class PatchResult(WireModel):
    """The answer to a patch commit (and to ``GET /registry/patches/{id}``)."""

    patch_id: str
    force: bool
    created_by: str
    created_at: datetime
    files: list[PatchedFile]


class PatchHistoryEntry(WireModel):
    """One patch of a registered revision: its content and paths before and after.

    ``paths`` maps a repository to ``{"old": path or None, "new": path}``.
    """

    patch_id: str
    dataset: str
    old_size: int
    new_size: int
    old_sha256: str
    new_sha256: str
    old_md5: str | None = None
    new_md5: str | None = None
    old_version: str | None = None
    new_version: str | None = None
    paths: dict[str, dict[str, str | None]]
    created_by: str
    created_at: datetime


class FileRecordUpdate(_Record):
    """``PUT /registry/registered-datasets/{id}/files/{repository}``: a replica's presence.

    Attributes:
        exists: True marks the replica present: ``size`` and ``sha256`` (as read back from
            the repository) are then required and must equal the revision's. False marks it
            absent (after the file was deleted from the repository).
        size: the size read back from the repository.
        sha256: the sha256 read back from the repository.
    """

    exists: bool
    size: int | None = Field(default=None, ge=0, le=2**53)
    sha256: Sha256 | None = None
