"""Wire models of the datastore service: dataset lifecycle, scoped credentials and the manifest.

A dataset is a registry item of subtype ``dataset`` (its ``record`` is a
:class:`~provena_like.models.collection.DatasetRecord`) with a storage location, a release
status and a file manifest. The datastore service mints datasets (handle + storage prefix +
``metadata.json``), updates, reverts and versions their metadata, hands out short-lived S3
credentials limited to a dataset's prefix, presigns single downloads and records which files
were uploaded.

Object paths inside a dataset (``data/run1.csv``) are relative to its storage prefix and
checked by :func:`check_object_path` on both sides.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    StrictBool,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from provena_like._redaction import redact_url
from provena_like.models.collection import (
    APPROVAL_NAMES,
    AccessInfo,
    Approval,
    DatasetApprovals,
    DatasetAssociations,
    DatasetInfo,
    DatasetRecord,
    Handle,
    SpatialInfo,
    TemporalInfo,
)
from provena_like.models.registry import (
    AccessSettings,
    HistoryEntry,
    RevertRequest,
    Role,
    SortOrder,
    Versioning,
)
from provena_like.models.shared import MAX_WIRE_INT, Revision, SecretOut, WireModel

__all__ = [
    "APPROVAL_NAMES",
    "MAX_CREDENTIALS_SECONDS",
    "MAX_PRESIGN_SECONDS",
    "METADATA_FILE",
    "AccessInfo",
    "AccessLevel",
    "Approval",
    "CredentialsRequest",
    "Dataset",
    "DatasetApprovals",
    "DatasetAssociations",
    "DatasetInfo",
    "DatasetRecord",
    "DatasetSortKey",
    "DatasetUpdate",
    "FieldError",
    "FileRegistration",
    "Handle",
    "ManifestEntry",
    "MintRequest",
    "MintResponse",
    "PresignRequest",
    "PresignedURL",
    "RegisterFilesRequest",
    "RegisterFilesResponse",
    "ReleaseStatus",
    "RemoveFilesRequest",
    "RemoveFilesResponse",
    "RevertRequest",
    "ScopedCredentials",
    "SortOrder",
    "SpatialInfo",
    "StorageLocation",
    "TemporalInfo",
    "ValidateResponse",
    "VersionRequest",
    "VersionResponse",
    "check_object_path",
]

METADATA_FILE = "metadata.json"
"""The object at the root of every dataset prefix holding its metadata; written by the server
only (write credentials can't change it and the manifest won't register it)."""

MAX_OBJECT_PATH = 1024

MAX_CREDENTIALS_SECONDS = 3600
"""The longest lifetime scoped S3 credentials may be asked for (1 h; servers may set less).

Credentials and presigned URLs can't be called back once issued: whoever loses access to a
dataset (removed from a group, a grant taken away) keeps what they hold until it expires, so
lifetimes are short and bounded. The SDK refreshes credentials during long transfers."""

MAX_PRESIGN_SECONDS = 3600
"""The longest lifetime a presigned URL may be asked for (1 h; servers may set less)."""

ReleaseStatus = Literal["NOT_RELEASED", "PENDING", "RELEASED"]
"""Where a dataset is in review: its data and metadata are frozen while ``PENDING`` (until
the reviewer decides) and once ``RELEASED`` (for good; a new version can change them)."""

DatasetSortKey = Literal["created", "updated", "name", "release_time"]
"""Sort keys of the dataset listing (datasets never released sort after released ones)."""

AccessLevel = Literal["read", "write"]
"""What scoped credentials allow: ``read`` (get, list) or ``write`` (also put, delete,
multipart)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SEGMENT_CHAR = r"[^/\\\x00-\x1f\x7f]"
_FIRST_CHAR = r"[^./\\\x00-\x1f\x7f]"
_SEGMENT = (  # any segment but "." and ".."
    rf"(?:{_FIRST_CHAR}{_SEGMENT_CHAR}*|\.{_FIRST_CHAR}{_SEGMENT_CHAR}*|\.\.{_SEGMENT_CHAR}+)"
)
OBJECT_PATH_PATTERN = rf"^{_SEGMENT}(?:/{_SEGMENT})*$"
"""The object paths :func:`check_object_path` accepts, as a regular expression (for the
OpenAPI document; it can't count the 1,024 bytes, which ``maxLength`` bounds in characters)."""
ObjectPath = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": OBJECT_PATH_PATTERN,
            "maxLength": MAX_OBJECT_PATH,
            "description": "object path relative to the dataset, e.g. data/a.csv (at most "
            "1,024 bytes in UTF-8; no leading '/', '\\', empty, '.' or '..' segments)",
        }
    ),
]
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")


def check_object_path(path: str) -> str:
    """Return ``path`` if it is a safe object path relative to a dataset prefix.

    Refused: empty paths, absolute paths (leading ``/``), backslashes, empty segments
    (``a//b``), ``.`` or ``..`` segments, a trailing ``/``, control characters and paths
    longer than 1,024 bytes.

    Raises:
        ValueError: with a message saying what is wrong.

    Example:
        ```python
        assert check_object_path("raw/run1.csv") == 'raw/run1.csv'
        ```
    """
    if not path:
        raise ValueError("the path is empty; give a path relative to the dataset, e.g. data/a.csv")
    if path.startswith("/"):
        raise ValueError("the path is absolute; give it relative to the dataset (no leading '/')")
    if "\\" in path:
        raise ValueError("the path contains a backslash; separate folders with '/'")
    if _CONTROL.search(path):
        raise ValueError("the path contains a control character")
    if len(path.encode()) > MAX_OBJECT_PATH:
        raise ValueError(f"the path is longer than {MAX_OBJECT_PATH} bytes")
    if path.endswith("/"):
        raise ValueError("the path ends with '/'; name a file, not a folder")
    for segment in path.split("/"):
        if segment == "":
            raise ValueError("the path contains '//' (an empty folder name)")
        if segment in {".", ".."}:
            raise ValueError(f"the path contains a {segment!r} segment; give a plain path")
    return path


class StorageLocation(WireModel):
    """Where a dataset's objects live: ``s3://<bucket>/<prefix>`` in a repository."""

    repository: str = Field(default="default", description="name of the storage repository")
    bucket: str
    prefix: str = Field(description='key prefix of the dataset, ending with "/"')
    endpoint_url: str | None = Field(default=None, description="the S3 endpoint, if not AWS")

    @property
    def s3_uri(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}"


class Dataset(WireModel):
    """A dataset as the datastore shows it: the registry item plus storage and release state.

    ``revision`` is the optimistic-concurrency token (send it as ``If-Match`` or
    ``expected_revision``); ``roles`` are the caller's effective roles; ``history`` is present
    only when asked for.
    """

    id: str
    subtype: str = "dataset"
    display_name: str
    owner: str
    created_at: datetime
    updated_at: datetime
    revision: int
    record: DatasetRecord
    access: AccessSettings
    locked: bool = False
    versioning: Versioning = Field(default_factory=Versioning)
    roles: list[Role] = Field(default_factory=list)
    storage: StorageLocation
    release_status: ReleaseStatus = "NOT_RELEASED"
    release_time: datetime | None = None
    release_reviewer: str | None = Field(
        default=None, description="the reviewer named in the pending release request"
    )
    release_requester: str | None = Field(
        default=None, description="who asked for the current or last release"
    )
    release_requested_at: datetime | None = None
    release_approver: str | None = Field(default=None, description="who approved the release")
    history: list[HistoryEntry] | None = None


class MintRequest(WireModel):
    """Register a new dataset: its record and initial access (the caller becomes the owner)."""

    record: DatasetRecord
    display_name: str | None = Field(
        default=None, description="defaults to dataset_info.name", max_length=500
    )
    general: list[Role] = Field(default_factory=list)
    groups: dict[str, list[Role]] = Field(default_factory=dict)


class MintResponse(WireModel):
    """The minted dataset: its new handle and storage location are in ``dataset``."""

    dataset: Dataset

    @property
    def id(self) -> str:
        """The new dataset's handle."""
        return self.dataset.id

    @property
    def storage(self) -> StorageLocation:
        """Where the dataset's objects go."""
        return self.dataset.storage


class FieldError(WireModel):
    """One problem with a request: the field (``record.dataset_info.name``) and why."""

    field: str
    message: str
    type: str | None = None


class ValidateResponse(WireModel):
    """The outcome of ``POST /datasets/validate``.

    The server answers ``{"valid": true}`` or a 422 error; the SDK turns that 422 into
    ``valid=False`` with the ``errors``.
    """

    valid: bool
    errors: list[FieldError] = Field(default_factory=list)


class DatasetUpdate(WireModel):
    """Replace a dataset's record, with a reason for the history.

    ``expected_revision`` (or ``If-Match``) guards against lost updates: a stale one is a 412.
    """

    record: DatasetRecord
    reason: str = Field(min_length=1, max_length=2000)
    display_name: str | None = Field(default=None, max_length=500)
    expected_revision: Revision | None = None


class VersionRequest(WireModel):
    """Create the next version of a dataset (a new handle linked to this one)."""

    reason: str = Field(min_length=1, max_length=2000)
    copy_files: StrictBool = Field(
        default=False, description="copy the objects (server-side) and manifest to the new one"
    )


class VersionResponse(WireModel):
    """The new version: its handle, version number and how many objects were copied."""

    id: str
    version: int
    previous: str
    copied_files: int = 0
    dataset: Dataset


class CredentialsRequest(WireModel):
    """Ask for S3 credentials limited to one dataset's prefix."""

    access: AccessLevel = "read"
    duration_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CREDENTIALS_SECONDS,
        description="requested lifetime, at most 1 h (servers may allow less); the server's "
        "default (15 min unless configured) when left out. The store may issue a different "
        "lifetime: trust the answer's expiration",
    )


class ScopedCredentials(WireModel):
    """Temporary S3 credentials for one dataset prefix (secrets hidden in ``repr``).

    ``expiration`` is what the store stated when it issued them. ``prefix`` ends with ``/``:
    object keys are ``prefix + path``; listing must use a prefix inside it.
    """

    access_key_id: str
    secret_access_key: SecretOut
    session_token: SecretOut
    expiration: AwareDatetime
    endpoint_url: str | None
    region: str
    bucket: str
    prefix: str
    access: AccessLevel

    @field_validator("prefix")
    @classmethod
    def _prefix_is_folder(cls, value: str) -> str:
        if not value.endswith("/"):
            raise ValueError('the prefix must end with "/"')
        return value

    @field_validator("expiration")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def seconds_left(self, now: datetime | None = None) -> float:
        """Seconds until :attr:`expiration` (negative once expired)."""
        return (self.expiration - (now or datetime.now(UTC))).total_seconds()


class PresignRequest(WireModel):
    """Ask for a presigned download URL of one object of the dataset."""

    path: ObjectPath
    method: Literal["GET"] = "GET"
    expires_in: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PRESIGN_SECONDS,
        description="seconds, 1 s to 1 h (servers may allow less); the server's default "
        "(15 min unless configured) when left out",
    )

    @field_validator("path")
    @classmethod
    def _safe_path(cls, value: str) -> str:
        return check_object_path(value)


class PresignedURL(WireModel):
    """A URL anyone holding it may use until ``expires_at``.

    ``url`` is the working URL, signature included: treat it as a secret. ``repr`` and
    ``str`` show :attr:`redacted_url` instead (signing parameters replaced by ``***``), so
    the object can be logged or printed without handing out access.

    Example:
        ```python
        link = await ds.presigned_url("raw/a.csv")
        httpx.get(link.url)        # the real URL
        log.info("link: %s", link)  # X-Amz-Signature=*** etc.
        ```
    """

    url: str
    method: Literal["GET"] = "GET"
    path: str
    expires_at: AwareDatetime

    @property
    def redacted_url(self) -> str:
        """``url`` with its signature, session token and credential replaced by ``***``."""
        return redact_url(self.url)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Fields for ``repr``/``str``, with the URL redacted."""
        for name, value in super().__repr_args__():
            yield (name, self.redacted_url) if name == "url" else (name, value)


class FileRegistration(WireModel):
    """One uploaded object to record in the manifest, with the checksums of its content."""

    path: ObjectPath
    size: int = Field(
        ge=0, le=MAX_WIRE_INT, description="bytes; must equal the stored object's size"
    )
    sha256: str = Field(description="64 hexadecimal characters", pattern="^[0-9a-fA-F]{64}$")
    md5: str | None = Field(
        default=None, description="32 hexadecimal characters", pattern="^[0-9a-fA-F]{32}$"
    )

    @field_validator("path")
    @classmethod
    def _safe_path(cls, value: str) -> str:
        return check_object_path(value)

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str) -> str:
        if not _SHA256.match(value):
            raise ValueError("sha256 must be 64 hexadecimal characters")
        return value.lower()

    @field_validator("md5")
    @classmethod
    def _md5(cls, value: str | None) -> str | None:
        if value is not None and not _MD5.match(value):
            raise ValueError("md5 must be 32 hexadecimal characters")
        return None if value is None else value.lower()


class RegisterFilesRequest(WireModel):
    """A batch of uploaded objects to record (1 to 1,000, each path once)."""

    files: list[FileRegistration] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _unique_paths(self) -> RegisterFilesRequest:
        seen: set[str] = set()
        for entry in self.files:
            if entry.path in seen:
                message = "path '{path}' is listed twice; register each file once"
                raise PydanticCustomError("duplicate_path", message, {"path": entry.path})
            seen.add(entry.path)
        return self


def _removable_path(path: str) -> str:
    try:
        return check_object_path(path)
    except ValueError as err:
        raise ValueError(f"{path!r}: {err}") from None


class RemoveFilesRequest(WireModel):
    """Registered files to remove from the manifest and the store (1 to 1,000, each once)."""

    paths: list[Annotated[ObjectPath, AfterValidator(_removable_path)]] = Field(
        min_length=1,
        max_length=1000,
        description="object paths relative to the dataset",
        json_schema_extra={"uniqueItems": True},
    )

    @field_validator("paths")
    @classmethod
    def _unique_paths(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for path in value:
            if path in seen:
                message = "path '{path}' is listed twice; remove each file once"
                raise PydanticCustomError("duplicate_path", message, {"path": path})
            seen.add(path)
        return value


class ManifestEntry(WireModel):
    """A file recorded in a dataset's manifest."""

    path: str
    size: int
    sha256: str
    md5: str | None = None
    etag: str = Field(description="the S3 ETag of the object when it was registered")
    registered_at: datetime
    registered_by: str


class RegisterFilesResponse(WireModel):
    """What a registration changed: new or updated entries, and paths already recorded as is."""

    registered: list[ManifestEntry] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)


class RemoveFilesResponse(WireModel):
    """What a removal changed: the paths removed, and those that weren't registered."""

    removed: list[str] = Field(default_factory=list)
    not_registered: list[str] = Field(default_factory=list)
