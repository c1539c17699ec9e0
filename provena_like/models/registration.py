"""Wire models of registration: the records of labs, subjects and sessions, and their vocabulary.

Each record is a registry subtype (:data:`REGISTRATION_RECORD_MODELS`, merged into
:data:`provena_like.models.registry.RECORD_MODELS`): the registry stores, versions and guards
them like any item. What a JSON Schema can't say is checked by the server when a record is
written - the items a record names exist and are of the right subtype, names are unique, a
session's ``start_time`` falls on its ``date`` in the lab's time zone, and only a lab's
members write its records (see the guide "Sessions and records").

| subtype | what it is | unique |
|---|---|---|
| ``lab`` | a lab, tied to an auth group whose members write its records | ``name`` |
| ``subject`` | an animal (or other subject) of a lab | ``nickname`` within its lab |
| ``session`` | an experiment session, ``subject/date/number`` | its number on the day |
| ``dataset_type`` | a kind of file, matched by ``filename_pattern`` | ``name`` |
| ``data_format`` | a file format, by extension | ``name`` |
| ``repository`` | where files live (S3, Globus, POSIX) and its role | ``name`` |
| ``tag`` | a label of datasets; a protected tag freezes them | ``name`` |
| ``weighing`` | a subject's weight | |
| ``water_administration`` | water given to a subject | |

Names are compared without regard to case (``Trials.Table`` and ``trials.table`` are the same
dataset type), so that two records never map to paths that only differ in case.

Example:
    ```python
    record = SubjectRecord.model_validate(
        {"nickname": "KS023", "lab": "10378.1/7", "sex": "F", "birth_date": "2026-01-05"}
    )
    ```
"""

from __future__ import annotations

import hashlib
import json
import re
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from provena_like.models.collection import Handle
from provena_like.models.shared import WireModel

__all__ = [
    "HASH_NAMES",
    "MAX_FILES_PER_REQUEST",
    "MAX_SESSION_NUMBER",
    "AnswerForm",
    "DatasetState",
    "DefaultRequest",
    "ExistingRevisionInfo",
    "FileRecordInfo",
    "FileRegistration",
    "FileToRegister",
    "HashName",
    "ProtectedCheck",
    "ProtectedCheckRequest",
    "ProtectedFile",
    "RegisterFilesRequest",
    "RegisterFilesResult",
    "RegisteredDataset",
    "RegistrationStatus",
    "TagRequest",
    "UnchangedCheck",
    "UnchangedCheckRequest",
    "UnchangedFile",
    "UnchangedFiles",
    "files_digest",
    "rel_path",
    "IsoDate",
    "IsoDateTime",
    "REGISTRATION_RECORD_MODELS",
    "DataFormatRecord",
    "DatasetTypeRecord",
    "LabRecord",
    "RepositoryKind",
    "RepositoryRecord",
    "RepositoryRole",
    "SessionCreate",
    "SessionFields",
    "SessionRecord",
    "Sex",
    "SubjectRecord",
    "TagRecord",
    "WaterAdministrationRecord",
    "WeighingRecord",
]

MAX_SESSION_NUMBER = 999
"""Session numbers are 1-999: the ALF session folder ``NNN`` has one to three digits."""

Username = Annotated[str, StringConstraints(min_length=1, max_length=64)]
"""The username of an account of the auth service."""

Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"\S")
]
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.\-]+$")
]
"""A name that can be part of a path: ASCII letters, digits, ``_``, ``.`` and ``-``."""

SessionNumber = Annotated[int, Field(ge=1, le=MAX_SESSION_NUMBER)]

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date_text(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        return value
    raise ValueError("a date is written YYYY-MM-DD")


def _datetime_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value[:10]):
        return value
    raise ValueError("a time is written as ISO 8601 text with a UTC offset")


IsoDate = Annotated[date, BeforeValidator(_date_text)]
"""A date, written ``YYYY-MM-DD`` (never a number of seconds, which pydantic would accept)."""

IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_datetime_text)]
"""An aware time, written as ISO 8601 text with an offset (never a number of seconds)."""
Sex = Literal["M", "F", "U"]
HashName = Literal["sha256", "md5"]
"""A checksum a repository's files carry (:attr:`RepositoryRecord.hashes`)."""
HASH_NAMES: tuple[HashName, ...] = ("sha256", "md5")
RepositoryKind = Literal["s3", "globus", "posix"]
RepositoryRole = Literal["primary", "archive", "mirror"]

_S3_ROOT = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$")
_GLOBUS_ROOT = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}:/.*$"
)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LabRecord(_Record):
    """A lab. Its records (subjects, sessions, weighings...) are written by its members.

    ``group`` names the auth group whose members are the lab's members; it must exist, and
    whoever registers or changes the lab must belong to it.
    """

    name: Annotated[
        str,
        StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$"),
        Field(description="the lab's name, as in ALF paths (letters, digits, _)"),
    ]
    group: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"\S",
        description="the auth group of the lab's members",
    )
    institution: ShortText | None = None
    address: Text | None = None
    timezone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        description="IANA time zone of the lab; a session's start_time falls on its date there",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value


class SubjectRecord(_Record):
    """A subject (an animal) of a lab; its ``nickname`` is unique within the lab."""

    nickname: Annotated[
        str,
        StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$"),
        Field(description="the subject's name, as in ALF paths (letters, digits, _ . -)"),
    ]
    lab: Handle = Field(description="handle of the subject's lab")
    sex: Sex = "U"
    birth_date: IsoDate | None = None
    death_date: IsoDate | None = None
    species: ShortText | None = None
    strain: ShortText | None = None
    line: ShortText | None = None
    genotype: ShortText | None = None
    responsible_user: Username | None = None
    description: Text | None = None
    json_data: dict[str, Any] = Field(default_factory=dict, description="free JSON")

    @field_validator("death_date")
    @classmethod
    def _after_birth(cls, value: date | None, info: ValidationInfo) -> date | None:
        born = info.data.get("birth_date")
        if value is not None and born is not None and value < born:
            raise ValueError("death_date is before birth_date")
        return value


class SessionFields(_Record):
    """What a session record and a request to create one share."""

    subject: Handle = Field(description="handle of the subject")
    date: IsoDate
    users: list[Username] = Field(default_factory=list, max_length=100)
    procedures: list[ShortText] = Field(default_factory=list, max_length=100)
    projects: list[ShortText] = Field(default_factory=list, max_length=100)
    start_time: IsoDateTime | None = Field(
        default=None, description="on `date` in the lab's time zone"
    )
    end_time: IsoDateTime | None = None
    task_protocol: Text | None = None
    json_data: dict[str, Any] = Field(default_factory=dict, description="free JSON")

    @field_validator("end_time")
    @classmethod
    def _after_start(cls, value: Any, info: ValidationInfo) -> Any:
        start = info.data.get("start_time")
        if value is not None and start is not None and value < start:
            raise ValueError("end_time is before start_time")
        return value


class SessionRecord(SessionFields):
    """An experiment session: the ALF session ``subject/date/number`` and what happened.

    (``subject``, ``date``, ``number``) is unique. ``POST /registry/sessions`` creates one
    with the next free number; a session created as a plain item names its number.
    """

    lab: Handle = Field(description="handle of the lab the session belongs to")
    number: SessionNumber


class SessionCreate(SessionFields):
    """Create a session (``POST /registry/sessions``); the server allocates the number.

    ``lab`` defaults to the subject's lab; ``number`` left out is the next free number of
    the subject on that date, allocated in the same transaction (a number given is used as
    it is, 409 if taken). The session's access settings are those of any record of its lab
    (its owner, and the lab's group with ``metadata-write``); change them afterwards with
    ``PUT /registry/items/{id}/access``.
    """

    lab: Handle | None = None
    number: SessionNumber | None = None


class DatasetTypeRecord(_Record):
    """A dataset type: which files are of it (``filename_pattern``, an fnmatch pattern).

    The pattern is stored lower-cased and matched against lower-cased file names. Without
    one, a file whose ALF ``object.attribute`` equals ``name`` is of this type.
    """

    name: Name
    filename_pattern: (
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=r"\S"),
        ]
        | None
    ) = None
    description: Text | None = None

    @field_validator("filename_pattern")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return None if value is None else value.lower()


class DataFormatRecord(_Record):
    """A data format: a file extension (``.npy``) the registration accepts."""

    name: Name
    file_extension: str = Field(
        pattern=r"^\.[A-Za-z0-9_+\-]+$",
        max_length=32,
        description="a dot and one extension: .npy, .parquet (never .tar.gz)",
    )
    description: Text | None = None


def _sha256_only() -> list[HashName]:
    return ["sha256"]


class RepositoryRecord(_Record):
    """Where files live, and what the copies there are for.

    ``root`` depends on ``kind``: ``s3://bucket[/prefix]`` for S3, ``<endpoint uuid>:/path``
    for Globus, an absolute path for POSIX.

    ``hashes`` are the checksums every file registered with a file record in the repository
    must carry: ``["sha256"]`` (the default: the server's checksum of a file) or
    ``["sha256", "md5"]`` for a repository whose tools compare md5 (an S3 single-part ETag,
    Alyx, a Globus checksum). The server refuses a registration into it of a file without
    an md5 (422 ``md5_required``); ``pv.registration.register_files(repository=...)``
    computes the md5 for such a repository.
    """

    name: Name
    kind: RepositoryKind
    root: str = Field(min_length=1, max_length=1024, pattern=r"\S")
    data_url: HttpUrl | None = Field(default=None, description="HTTP root of the files, if any")
    role: RepositoryRole = "primary"
    description: Text | None = None
    hashes: list[HashName] = Field(
        default_factory=_sha256_only,
        min_length=1,
        max_length=2,
        description='checksums its files carry: ["sha256"] or ["sha256", "md5"]',
    )

    @field_validator("hashes")
    @classmethod
    def _sha256_and_once_each(cls, value: list[HashName]) -> list[HashName]:
        if "sha256" not in value:
            raise ValueError("hashes: sha256 is always one (the server's checksum of a file)")
        if len(set(value)) != len(value):
            raise ValueError("hashes: each hash at most once")
        return sorted(value, key=HASH_NAMES.index)

    @field_validator("root")
    @classmethod
    def _root_of_kind(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        if kind == "s3" and not _S3_ROOT.match(value):
            raise ValueError("an S3 repository's root is s3://bucket[/prefix]")
        if kind == "globus" and not _GLOBUS_ROOT.match(value):
            raise ValueError("a Globus repository's root is <endpoint uuid>:/path")
        if kind == "posix" and not value.startswith("/"):
            raise ValueError("a POSIX repository's root is an absolute path")
        return value


class TagRecord(_Record):
    """A tag of datasets; a ``protected`` tag freezes the revisions it is on."""

    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=r"\S")
    ]
    protected: bool = False
    public: bool = False
    description: Text | None = None


class WeighingRecord(_Record):
    """A subject's weight, in grams, at a time."""

    subject: Handle = Field(description="handle of the subject")
    grams: float = Field(gt=0, le=1_000_000)
    time: IsoDateTime
    user: Username | None = Field(default=None, description="who weighed (a username)")


class WaterAdministrationRecord(_Record):
    """Water given to a subject, in millilitres, at a time."""

    subject: Handle = Field(description="handle of the subject")
    ml: float = Field(gt=0, le=100_000)
    time: IsoDateTime
    user: Username | None = Field(default=None, description="who gave it (a username)")
    water_type: ShortText | None = None


REGISTRATION_RECORD_MODELS: dict[str, type[BaseModel]] = {
    "lab": LabRecord,
    "subject": SubjectRecord,
    "session": SessionRecord,
    "dataset_type": DatasetTypeRecord,
    "data_format": DataFormatRecord,
    "repository": RepositoryRecord,
    "tag": TagRecord,
    "weighing": WeighingRecord,
    "water_administration": WaterAdministrationRecord,
}
"""subtype → record model, for the subtypes of registration."""


# -- registered files (ALF datasets) ---------------------------------------------------------

MAX_FILES_PER_REQUEST = 5000
"""The most files one ``register_files`` request may carry (422 beyond)."""

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Md5 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
SessionPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        pattern=r"\S",
        description="[lab/Subjects/]subject/YYYY-MM-DD/NNN of the local files, checked",
    ),
]
"""The session part of a request's local paths, checked against the session."""
Version = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"\S")]
"""A producing software's version, as a file of a registration gives it."""
RegistrationStatus = Literal["registered", "unchanged", "updated"]
"""What registering a file did (or, in a dry run, would do) to its dataset revision:
``registered`` (a new revision row), ``unchanged`` (the same sha256 was registered: nothing
but the default flag and the file record follow the request), ``updated`` (another sha256 on
an unprotected revision: size and hashes replaced)."""

DatasetState = Literal["active", "deleting"]
"""A registered revision's state: ``active``, or ``deleting`` once its deletion began
(``POST /registry/registered-datasets/{id}/deletion``): its content can't change any more
(register, patch, tag and set-default answer 409 ``dataset_deleting``); reads keep working
and show the state.
"""

AnswerForm = Literal["full", "compact"]
"""How a ``register_files`` answer lists the files that changed nothing: ``full`` (a
:class:`FileRegistration` each, in ``files``) or ``compact`` (their indexes and dataset ids
in ``unchanged``)."""


class FileToRegister(_Record):
    """One file of a ``register_files`` request.

    ``path`` is relative to the session folder: ``[collection/][#revision#/]name``, the
    name an ALF dataset name without a UUID.
    """

    path: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"\S",  # surrounding blanks are stripped: blanks alone are no path
        description="[collection/][#rev#/]name",
    )
    size: int = Field(ge=0, le=2**53, description="bytes (at most 2**53, exact in JSON)")
    sha256: Sha256 = Field(description="lower-case hex SHA-256 of the content")
    md5: Md5 | None = Field(
        default=None, description="lower-case hex MD5, if a repository needs it"
    )
    version: Version | None = Field(default=None, description="the producing software's version")


def rel_path(collection: str, revision: str, name: str) -> str:
    """``[collection/][#revision#/]name``: a registered file's path relative to its session.

    Example:
        ```python
        assert rel_path("alf", "v1", "trials.table.npy") == "alf/#v1#/trials.table.npy"
        assert rel_path("", "", "trials.table.npy") == "trials.table.npy"
        ```
    """
    folder = f"#{revision}#" if revision else ""
    return "/".join(p for p in (collection, folder, name) if p)


def files_digest(files: Iterable[tuple[str, str]]) -> str:
    """The digest of a registration's files an :class:`UnchangedCheckRequest` carries.

    The sha256 of the JSON text of the sorted ``(path, sha256)`` pairs: the same for the
    same files in any order, and what the server computes from the registered revisions.

    Args:
        files: ``(path relative to the session, sha256)`` per file.

    Example:
        ```python
        a, b = ("alf/a.b.npy", "ab" * 32), ("alf/c.d.npy", "cd" * 32)
        assert files_digest([a, b]) == files_digest([b, a]) != files_digest([a])
        ```
    """
    text = json.dumps(sorted(files), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class RegisterFilesRequest(_Record):
    """``POST /registry/sessions/{id}/files``: register files of one session, all or nothing.

    Attributes:
        files: at most :data:`MAX_FILES_PER_REQUEST`, each path at most once.
        repository: handle of the repository holding the files (a file record is written
            there), or None for no file record.
        exists: whether the files are in ``repository`` now. The server can't look into
            POSIX or Globus repositories: this is the caller's claim, recorded with
            ``verified_at`` None.
        default: make each registered revision its dataset's default (the others of that
            dataset lose the flag in the same transaction).
        dry_run: check everything (read-only) and answer the plan, writing nothing.
        session_path: the session part of the files' local paths,
            ``[lab/Subjects/]subject/YYYY-MM-DD/NNN``, or None. The server checks it against
            the session's record (its lab's name, its subject's nickname, its date and
            number) and refuses a mismatch (422 ``session_mismatch`` naming the ``part``).
        answer: ``full`` (the default) answers every file with its whole revision in
            ``files``; ``compact`` answers the files whose status is ``unchanged`` by index
            and dataset id only, in ``unchanged`` (the others stay in ``files``, each with
            its ``index``): a re-registration of unchanged files then costs no per-file
            records. Added with the compact answer; a server without it refuses the field
            (422), so older clients, which never send it, keep the full answer.
    """

    files: list[FileToRegister] = Field(min_length=1, max_length=MAX_FILES_PER_REQUEST)
    repository: Handle | None = None
    exists: bool = True
    default: bool = True
    dry_run: bool = False
    session_path: SessionPath | None = None
    answer: AnswerForm = Field(
        default="full",
        description="compact: unchanged files as indexes and ids in `unchanged`, not in `files`",
    )


class FileRecordInfo(WireModel):
    """Where a registered dataset's file is: a repository and the path under its root."""

    repository: Handle
    relative_path: str = Field(
        description="lab/Subjects/subject/date/NNN/[collection/][#rev#/]name"
    )
    exists: bool
    verified_at: datetime | None = Field(
        default=None, description="when the server saw the file; None: the caller's claim"
    )


class RegisteredDataset(WireModel):
    """One revision of an ALF dataset of a session, as registered.

    A *dataset* is (``session``, ``collection``, ``name``); each registration of it under
    another ``revision`` is a new row with the next ``revision_seq`` (1, 2, ...): that
    sequence is the server's order of the dataset's revisions, newest last. At most one
    revision of a dataset is its ``default``.
    """

    id: str | None = Field(description="uuid; None in a dry run for a revision not yet registered")
    session: Handle
    collection: str = Field(description="'' or folders joined by '/'")
    name: str = Field(description="the ALF dataset name, without UUID")
    revision: str = Field(description="'' for none")
    revision_seq: int = Field(ge=1, description="1, 2, ... per dataset, in registration order")
    default: bool
    protected: bool = False
    state: DatasetState = Field(
        default="active", description="'deleting' once its deletion began (read-only then)"
    )
    dataset_type: Handle
    data_format: Handle
    size: int
    sha256: str
    md5: str | None = None
    version: str | None = None
    tags: list[Handle] = Field(default_factory=list)
    files: list[FileRecordInfo] = Field(default_factory=list)
    created_by: str
    created_at: datetime | None = Field(default=None, description="None in a dry run's plan")

    @property
    def rel_path(self) -> str:
        """``[collection/][#revision#/]name``: the path relative to the session folder."""
        return rel_path(self.collection, self.revision, self.name)


class FileRegistration(WireModel):
    """What registering one file did (or would do), aligned with the request's files."""

    path: str
    status: RegistrationStatus
    dataset: RegisteredDataset
    index: int | None = Field(
        default=None, ge=0, description="the file's position in the request's files"
    )

    @property
    def dataset_id(self) -> str | None:
        """The id of the file's registered revision (None in a dry run's new revision)."""
        return self.dataset.id


class UnchangedFiles(WireModel):
    """The files of a compact answer whose status is ``unchanged``, in the request's order.

    ``indexes[k]`` is a file's position in the request's files and ``ids[k]`` the id of its
    registered revision (same sha256; in a request that writes, its default flag and file
    record followed the request like a full answer's). ``GET /registered-datasets/{id}``
    has the rest.
    """

    indexes: list[int] = Field(default_factory=list)
    ids: list[str] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class UnchangedFile:
    """A file a compact answer lists in ``unchanged`` (from :meth:`RegisterFilesResult.aligned`).

    Attributes:
        path: The file's path as sent (relative to the session folder).
        index: Its position in the request's files.
        dataset_id: The id of its registered revision.
        status: Always ``unchanged``.
    """

    path: str
    index: int
    dataset_id: str
    status: Literal["unchanged"] = "unchanged"


class RegisterFilesResult(WireModel):
    """The answer to ``register_files``.

    A full answer has one entry per file in ``files``, in the request's order, and
    ``unchanged`` None. A compact answer (``answer="compact"``) has in ``files`` only the
    files whose status is not ``unchanged`` (in order, each with its ``index``) and the
    others in ``unchanged``; :meth:`aligned` gives one entry per file either way.

    Example:
        ```python
        answer = RegisterFilesResult.model_validate(
            {"session": "10378.1/9", "dry_run": False, "files": [],
             "unchanged": {"indexes": [0], "ids": ["0b5e0c56-6a8f-4d5b-9a43-1f1c2b7c9d10"]}}
        )
        assert answer.aligned(["alf/trials.table.npy"])[0].status == "unchanged"
        ```
    """

    session: Handle
    dry_run: bool
    files: list[FileRegistration]
    unchanged: UnchangedFiles | None = Field(
        default=None, description="compact answers: the unchanged files, by index"
    )

    def aligned(self, paths: Sequence[str]) -> list[FileRegistration | UnchangedFile]:
        """One entry per file of the request, in its order, full or compact answer alike.

        Args:
            paths: The request's files' paths, in order.

        Returns:
            A :class:`FileRegistration` per file, or an :class:`UnchangedFile` for a file a
            compact answer lists in ``unchanged``.

        Raises:
            ValueError: The answer does not name each file of the request exactly once.
        """
        if self.unchanged is None:
            if len(self.files) != len(paths):
                raise ValueError(f"{len(self.files)} answers for {len(paths)} files")
            return list(self.files)
        count = len(paths)
        found: list[FileRegistration | UnchangedFile | None] = [None] * count

        def free(index: int | None) -> int:
            if index is None or not 0 <= index < count or found[index] is not None:
                raise ValueError(f"file index {index} is out of range or answered twice")
            return index

        for f in self.files:
            found[free(f.index)] = f
        if len(self.unchanged.indexes) != len(self.unchanged.ids):
            raise ValueError("unchanged: as many ids as indexes are expected")
        for i, dataset_id in zip(self.unchanged.indexes, self.unchanged.ids, strict=True):
            k = free(i)
            found[k] = UnchangedFile(paths[k], k, dataset_id)
        done = [entry for entry in found if entry is not None]
        if len(done) != count:
            missing = [i for i, entry in enumerate(found) if entry is None]
            raise ValueError(f"no answer for the files at {missing[:5]}")
        return done


class ExistingRevisionInfo(WireModel):
    """A revision of a dataset in a protection report (the list is newest first).

    ``(revision, protected)`` is what :func:`provena_like.alf.resolve_revision` takes.
    """

    revision: str
    protected: bool
    default: bool
    revision_seq: int


class ProtectedFile(WireModel):
    """Whether one path may be (re-)registered: its dataset's revisions, newest first.

    ``protected`` is True when the path's own revision exists and is protected (a
    registration would be refused with 412).
    """

    path: str
    protected: bool
    revisions: list[ExistingRevisionInfo]


class ProtectedCheckRequest(_Record):
    """``POST /registry/sessions/{id}/files/check-protected``: paths relative to the session."""

    paths: list[Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"\S")]] = (
        Field(min_length=1, max_length=MAX_FILES_PER_REQUEST)
    )


class ProtectedCheck(WireModel):
    """The answer of a protection check: one entry per path, in order."""

    session: Handle
    protected: bool = Field(description="any of the paths is protected")
    files: list[ProtectedFile]


class UnchangedCheckRequest(_Record):
    """``POST /registry/sessions/{id}/files/check-unchanged``: would registering change nothing?

    A registration's options (as in :class:`RegisterFilesRequest`) and, instead of its
    files, their :func:`files_digest`: a re-registration of unchanged files then costs one
    small request per session, not a document per file. Read-only.

    Attributes:
        count: How many files the registration has.
        digest: :func:`files_digest` of their ``(path, sha256)``.
        md5: Whether every file of the registration carries an md5.
        versions: The distinct versions the files give (checked like a file's ``version``).
        repository: As in :class:`RegisterFilesRequest`.
        exists: As in :class:`RegisterFilesRequest`.
        default: As in :class:`RegisterFilesRequest`.
        session_path: As in :class:`RegisterFilesRequest`.
    """

    count: int = Field(ge=1, description="the registration's number of files")
    digest: Sha256 = Field(description="files_digest of the files' (path, sha256)")
    md5: bool = Field(default=False, description="every file carries an md5")
    versions: list[Version] = Field(
        default_factory=list,
        max_length=MAX_FILES_PER_REQUEST,
        description="the distinct versions of the files",
    )
    repository: Handle | None = None
    exists: bool = True
    default: bool = True
    session_path: SessionPath | None = None


class UnchangedCheck(WireModel):
    """The answer of an unchanged check.

    ``unchanged`` True: the files are exactly the session's registered revisions (every
    one of them, same paths and sha256) and registering them with these options would
    pass every check and write nothing; ``ids`` are those revisions' ids, in the order of
    the sorted paths. False: register the files (``reason`` says why; the registration's
    own answer tells what it does, or refuses).
    """

    session: Handle
    unchanged: bool
    ids: list[str] = Field(default_factory=list, description="by sorted path, when unchanged")
    reason: str | None = Field(default=None, description="why not unchanged")


class DefaultRequest(_Record):
    """Make a revision of a dataset its default.

    ``revision`` None is the dataset row named in the URL; otherwise the row of the same
    dataset with that revision (``''`` for none).
    """

    revision: Annotated[str, StringConstraints(max_length=255)] | None = None


class TagRequest(_Record):
    """Put a tag (a ``tag`` record's handle) on a registered dataset."""

    tag: Handle
