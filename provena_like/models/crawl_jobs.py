"""Wire models of server-side crawl jobs (``/crawl/jobs``).

A crawl job walks a dataset's objects or a transfer-service collection on the server, with
the server's own access to the storage, and keeps what it found (file records, group
records, directories it could not read) as numbered result rows. They are read with
**paged, at-least-once delivery**: a flush leases up to ``limit`` records that were not
acknowledged yet and answers with a ``cursor``; acknowledging the cursor marks them
delivered, and records whose lease lapsed unacknowledged are delivered again.

Example:
    ```python
    request = CrawlJobRequest(source=CrawlJobSource(dataset="10378.1/42", path="raw/"),
                              grouper="directory", max_depth=3)
    assert request.source.dataset == "10378.1/42"
    ```
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from provena_like.crawler.records import CrawlError, FileRecord, Group
from provena_like.models.shared import WireModel

__all__ = [
    "CRAWL_JOB_STATES",
    "CrawlJob",
    "CrawlJobAck",
    "CrawlJobAcked",
    "CrawlJobEvent",
    "CrawlJobFlush",
    "CrawlJobPage",
    "CrawlJobRecord",
    "CrawlJobRequest",
    "CrawlJobSource",
    "CrawlJobState",
    "GrouperName",
]

CrawlJobState = Literal["queued", "running", "succeeded", "failed", "canceled"]
"""Where a crawl job stands; ``succeeded``, ``failed`` and ``canceled`` are final."""

CRAWL_JOB_STATES: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})
"""The final states."""

GrouperName = Literal["file", "directory", "extension", "alf_object"]

MAX_FLUSH = 1000
"""The most records one flush returns."""

_Glob = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CrawlJobSource(_Request):
    """What to crawl: a dataset's objects, or a path of a transfer-service collection.

    Attributes:
        dataset: A dataset's handle (crawled from its storage prefix).
        collection: A transfer-service collection's UUID.
        path: A folder inside it (``""``: all of it).
    """

    model_config = ConfigDict(
        extra="forbid",
        # exactly one of them, and neither null (what the validator below checks)
        json_schema_extra={"oneOf": [{"required": ["dataset"]}, {"required": ["collection"]}]},
    )

    dataset: Annotated[
        Annotated[str, StringConstraints(min_length=1, max_length=255)] | None,
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 255}),
    ] = None
    collection: Annotated[
        Annotated[str, StringConstraints(min_length=1, max_length=64)] | None,
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 64}),
    ] = None
    path: Annotated[str, StringConstraints(max_length=4096)] = ""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.dataset is None) == (self.collection is None):
            raise ValueError("give exactly one of dataset and collection")
        return self


class CrawlJobRequest(_Request):
    """``POST /crawl/jobs``: start a crawl on the server.

    Attributes:
        source: What to crawl (read access to it is needed).
        max_depth: Directory levels below the top to descend (``None``: no limit).
        include: Globs on the relative path; if any, a file must match one.
        exclude: Globs to leave out; a matching folder is not entered.
        hidden: Report and enter names starting with a dot.
        grouper: Add group records (``file``, ``directory``, ``extension``, ``alf_object``).
        checksums: Add each file's sha256 (read on POSIX collections; the stored one of a
            dataset's objects, when the object has one).
        rate_limit: At most this many directory listings per second (``None``: no limit).
    """

    source: CrawlJobSource
    max_depth: Annotated[int, Field(ge=0, le=10_000)] | None = None
    include: Annotated[list[_Glob], Field(max_length=100)] = Field(default_factory=list)
    exclude: Annotated[list[_Glob], Field(max_length=100)] = Field(default_factory=list)
    hidden: bool = False
    grouper: GrouperName | None = None
    checksums: bool = False
    rate_limit: Annotated[float, Field(ge=0.01, le=10_000)] | None = None


class CrawlJobEvent(WireModel):
    """One event of a crawl job (``STARTED``, ``RESUMED``, ``SUCCEEDED``, ``FAILED``, ...)."""

    code: str
    message: str
    time: datetime


class CrawlJob(WireModel):
    """A crawl job and its counters (``GET /crawl/jobs/{id}``).

    Attributes:
        id: The job's id.
        owner: Who started it.
        state: ``queued``, ``running``, ``succeeded``, ``failed`` or ``canceled``.
        source: What it crawls (as requested, plus the collection's id).
        options: The crawl options it was started with.
        files: Files found so far.
        bytes: Their total size.
        groups: Group records made.
        errors: Directories and files that could not be read.
        records: Result rows stored (files, groups and errors).
        unacked: Result rows not acknowledged yet.
        attempts: Runs of the job so far (a restart of the server may add one).
        error: Why it failed, when it did.
        events: What happened to it, oldest first.
        created_at: When it was started.
        started_at: When its first run started.
        finished_at: When it reached a final state.
    """

    id: str
    owner: str
    state: CrawlJobState
    source: dict[str, str]
    options: dict[str, object] = Field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    groups: int = 0
    errors: int = 0
    records: int = 0
    unacked: int = 0
    attempts: int = 0
    error: str | None = None
    events: list[CrawlJobEvent] = Field(default_factory=list)
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        """Whether the job reached a final state (``succeeded``, ``failed``, ``canceled``)."""
        return self.state in CRAWL_JOB_STATES


class CrawlJobFlush(_Request):
    """``POST /crawl/jobs/{id}/flush``: lease the next unacknowledged records.

    Attributes:
        limit: Records at most.
        lease_seconds: How long they stay leased to this cursor; unacknowledged after that,
            they are delivered again.
        ack: A previous flush's cursor to acknowledge first (one round trip per page).
    """

    limit: Annotated[int, Field(ge=1, le=MAX_FLUSH)] = 100
    lease_seconds: Annotated[float, Field(ge=1, le=86_400)] = 300.0
    ack: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class CrawlJobAck(_Request):
    """``POST /crawl/jobs/{id}/ack``: mark a flush's records delivered."""

    cursor: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class CrawlJobAcked(WireModel):
    """What an acknowledgement did.

    Attributes:
        acked: Records it marked delivered (0: their lease had lapsed and they were leased
            again, or the cursor was acknowledged before).
    """

    acked: int


class CrawlJobRecord(WireModel):
    """One result row: its sequence number, how often it was delivered, and the record."""

    seq: int
    deliveries: int
    record: Annotated[FileRecord | CrawlError | Group, Field(discriminator="kind")]


class CrawlJobPage(WireModel):
    """What a flush leased.

    Attributes:
        records: Up to ``limit`` records, by sequence number.
        cursor: Acknowledge it to mark them delivered (``None`` when there were none).
        lease_expires_at: When they are delivered again unless acknowledged.
        acked: Records the ``ack`` of the request marked delivered.
        unacked: Records of the job not acknowledged yet (these included).
        state: The job's state when the page was read.
    """

    records: list[CrawlJobRecord] = Field(default_factory=list)
    cursor: str | None = None
    lease_expires_at: datetime | None = None
    acked: int = 0
    unacked: int = 0
    state: CrawlJobState

    @property
    def drained(self) -> bool:
        """Whether the job is over and every record was acknowledged (nothing more comes)."""
        return self.state in CRAWL_JOB_STATES and self.unacked == 0 and not self.records
