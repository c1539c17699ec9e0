"""Typed results of the transfer client, read from Globus Transfer v0.10 documents.

Each model keeps the fields a caller acts on and ignores the rest; :attr:`Task.document`
keeps the whole task document for anything else. Reprs are one short line.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Endpoint",
    "FatalError",
    "FileEntry",
    "FilterRule",
    "Listing",
    "SkippedError",
    "SuccessfulTransfer",
    "SyncLevel",
    "Task",
    "TaskEvent",
    "TaskStatus",
    "TransferItem",
]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TaskStatus(StrEnum):
    """A task's ``status`` as Globus reports it."""

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


SyncLevel = Literal["exists", "size", "mtime", "checksum"]
"""When to skip a file that exists at the destination: ``exists`` (any file there),
``size`` (same size), ``mtime`` (not older), ``checksum`` (same checksum — the only safe
choice to restart a failed transfer)."""


class FileEntry(_Doc):
    """One entry of a directory listing (a Globus ``file`` document).

    Attributes:
        name: the entry's name.
        path: its absolute path on the collection (the listed directory + ``name``).
        type: ``file``, ``dir`` or ``invalid_symlink``.
        size: bytes.
        last_modified: modification time.
        permissions: octal mode, e.g. ``"0644"``.
        link_target: where a symlink points, if it is one.
    """

    name: str
    path: str = ""
    type: str
    size: int | None = None
    last_modified: datetime | None = None
    permissions: str | None = None
    user: str | None = None
    group: str | None = None
    link_target: str | None = None

    @property
    def is_dir(self) -> bool:
        """Whether the entry is a directory."""
        return self.type == "dir"

    def __repr__(self) -> str:
        size = "" if self.is_dir or self.size is None else f", {self.size} B"
        return f"FileEntry({(self.path or self.name)!r}, {self.type}{size})"


class Listing(_Doc):
    """A directory listing (``operation_ls``).

    Attributes:
        collection: the collection UUID.
        path: the listed directory as the service normalised it (trailing slash).
        entries: its entries (``limit``/``offset`` apply).
        total: how many entries the directory has, when the service says.
    """

    collection: str
    path: str
    entries: list[FileEntry] = Field(default_factory=list)
    total: int | None = None

    def __repr__(self) -> str:
        return f"Listing(globus://{self.collection}{self.path}, {len(self.entries)} entries)"


class Endpoint(_Doc):
    """A collection (endpoint) as ``get_endpoint`` and ``endpoint_search`` describe it.

    Attributes:
        id: the collection UUID.
        display_name: its name.
        entity_type: e.g. ``GCSv5_mapped_collection``.
        owner_string: who owns it (real Globus: an identity; our service: ``None``).
        username: its owner's user name (our service).
        description: what is in it.
        organization: the organisation that runs it.
    """

    id: str
    display_name: str | None = None
    entity_type: str | None = None
    owner_string: str | None = None
    username: str | None = None
    description: str | None = None
    organization: str | None = None

    @property
    def owner(self) -> str | None:
        """The owner as the service names it (``owner_string``, else ``username``)."""
        return self.owner_string or self.username

    def __repr__(self) -> str:
        return f"Endpoint({self.id!r}, {self.display_name!r})"


class FatalError(_Doc):
    """Why a task ended FAILED (``fatal_error``): e.g. ``FILE_NOT_FOUND``, ``CANCELED``."""

    code: str
    description: str = ""


class Task(_Doc):
    """A task document (``get_task``, ``task_list``).

    Attributes:
        task_id: the task.
        type: ``TRANSFER`` or ``DELETE``.
        status: ACTIVE, INACTIVE (paused: not done), SUCCEEDED or FAILED.
        nice_status: the detail while ACTIVE (``OK``, ``QUEUED``, ``FILE_NOT_FOUND``,
            ``PERMISSION_DENIED``, ...); ``None`` once complete.
        is_ok: ``False`` when the task is ACTIVE but retrying errors.
        faults: errors met so far (a task stuck on a missing file stays ACTIVE with faults).
        fatal_error: why it FAILED.
        document: the whole task document as the service sent it.
    """

    task_id: str
    type: str = "TRANSFER"
    status: TaskStatus
    label: str | None = None
    nice_status: str | None = None
    nice_status_short_description: str | None = None
    is_ok: bool | None = None
    is_paused: bool | None = None
    faults: int = 0
    fatal_error: FatalError | None = None
    files: int = 0
    files_transferred: int = 0
    files_skipped: int = 0
    directories: int = 0
    bytes_transferred: int = 0
    bytes_checksummed: int = 0
    subtasks_total: int | None = None
    subtasks_succeeded: int | None = None
    subtasks_failed: int | None = None
    subtasks_skipped_errors: int | None = None
    source_endpoint_id: str | None = None
    destination_endpoint_id: str | None = None
    request_time: datetime | None = None
    completion_time: datetime | None = None
    deadline: datetime | None = None
    document: dict[str, Any] = Field(default_factory=dict, repr=False)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Task:
        """Read a Globus task document (keeping it whole in :attr:`document`)."""
        return cls.model_validate({**doc, "document": doc})

    @property
    def done(self) -> bool:
        """Whether the task has ended (SUCCEEDED or FAILED); INACTIVE is *not* done."""
        return self.status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED)

    def __repr__(self) -> str:
        detail = f" {self.nice_status}" if self.nice_status else ""
        faults = f", faults={self.faults}" if self.faults else ""
        return (
            f"Task({self.task_id!r}, {self.type} {self.status.value}{detail}, "
            f"files={self.files_transferred}/{self.files}{faults})"
        )


class TaskEvent(_Doc):
    """One event of a task (``task_event_list``); ``code`` is e.g. ``STARTED``."""

    code: str
    description: str = ""
    details: str | None = None
    is_error: bool = False
    time: datetime | None = None

    def __repr__(self) -> str:
        flag = "error " if self.is_error else ""
        return f"TaskEvent({flag}{self.code}: {self.description!r})"


class SuccessfulTransfer(_Doc):
    """A file a task moved (``successful_transfers``; files skipped by sync are not listed)."""

    source_path: str
    destination_path: str

    def __repr__(self) -> str:
        return f"SuccessfulTransfer({self.source_path!r} -> {self.destination_path!r})"


class SkippedError(_Doc):
    """A path a task skipped because of an error (``skipped_errors``, ``skip_source_errors``)."""

    source_path: str
    destination_path: str | None = None
    error_code: str
    error_details: str | None = None
    error_time: datetime | None = None
    is_directory: bool = False
    is_symlink: bool = False

    def __repr__(self) -> str:
        return f"SkippedError({self.source_path!r}: {self.error_code})"


class TransferItem(_Doc):
    """One item of a transfer: paths relative to the transfer's source and destination.

    Attributes:
        source: the path below the source location (``''``: the location itself).
        destination: the path below the destination location (default: ``source``).
        recursive: a directory, copied with everything below it.
        external_checksum: the source file's known checksum, checked by Globus.
        checksum_algorithm: the algorithm of ``external_checksum`` (``MD5``, ``SHA256``, ...).

    Example:
        ```python
        item = TransferItem(source="raw/a.bin", destination="archive/a.bin")
        ```
    """

    source: str
    destination: str | None = None
    recursive: bool = False
    external_checksum: str | None = None
    checksum_algorithm: str | None = None


class FilterRule(_Doc):
    """A filter of a recursive transfer: the first rule whose glob matches a name decides.

    Example:
        ```python
        rules = [FilterRule(name="*.tmp"), FilterRule(name=".git", type="dir")]
        ```
    """

    name: str
    method: Literal["include", "exclude"] = "exclude"
    type: Literal["file", "dir"] | None = None
