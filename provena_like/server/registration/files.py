"""Registered files (ALF datasets) of sessions: register, check protection, defaults, tags.

:func:`register_files` is atomic per request. It checks everything first - every path
parses under ALF, exactly one dataset type matches, the extension is a known data format,
the repository exists, the caller is a member of the session's lab, no target revision is
protected - and only then writes, all in the caller's transaction (the route's), so a
failure anywhere leaves nothing changed. Writers of one session queue on a counter named
after it (:func:`~provena_like.server.registry.handles.next_value`: a row lock on
PostgreSQL, the write lock on SQLite), so the checks and the writes see the same rows.

Revisions of a dataset (``session``, ``collection``, ``name``) are numbered by
``revision_seq``, 1, 2, ... in registration order: the server's order of revisions. ALF
revision names made by :func:`provena_like.alf.next_revision` sort the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from provena_like.alf import (
    AlfError,
    AlfPath,
    DatasetTypeError,
    matching_dataset_types,
    parse_rel_path,
    parse_session_path,
)
from provena_like.models.registration import (
    ExistingRevisionInfo,
    FileRecordInfo,
    FileRegistration,
    FileToRegister,
    ProtectedCheck,
    ProtectedFile,
    RegisteredDataset,
    RegisterFilesRequest,
    RegisterFilesResult,
    RegistrationStatus,
    UnchangedCheck,
    UnchangedCheckRequest,
    UnchangedFiles,
    files_digest,
    rel_path,
)
from provena_like.server import access
from provena_like.server.db.base import utcnow
from provena_like.server.errors import ServiceError, forbidden, not_found, validation_error
from provena_like.server.pagination import KeyColumn, keyset_page
from provena_like.server.registry.handles import next_value
from provena_like.server.registry.tables import ItemRow
from provena_like.server.security import Principal

from .rules import reference, require_lab_member
from .tables import DatasetTagRow, FileRecordRow, RegisteredDatasetRow, SessionIndexRow

__all__ = [
    "check_protected",
    "check_unchanged",
    "dataset_models",
    "get_dataset",
    "list_datasets",
    "load_dataset",
    "load_session",
    "make_default",
    "problem",
    "protected_ids",
    "readable_dataset",
    "refuse_deleting",
    "register_files",
    "set_default",
    "tag_dataset",
    "untag_dataset",
    "writers",
]

DatasetKey = tuple[str, str]
"""(collection, name): a dataset within its session."""


class _Vocabulary(NamedTuple):
    name: str
    filename_pattern: str
    id: str


@dataclass
class _SessionContext:
    row: ItemRow
    lab: ItemRow
    subject: ItemRow
    folder: str
    """``lab/Subjects/subject/YYYY-MM-DD/NNN``: where its files go in a repository."""


class _Registered(NamedTuple):
    """A registered revision as the file of a registration that would change nothing.

    What :func:`check_unchanged` checks, with the fields of :class:`FileToRegister` the
    checks read: a plain tuple, not a model, for each of a session's revisions.
    """

    path: str
    size: int
    sha256: str
    md5: str | None = None
    version: str | None = None


@dataclass(slots=True)
class _Planned:
    index: int
    file: FileToRegister | _Registered
    path: AlfPath
    dataset_type: str
    data_format: str
    existing: _Row | None = None
    status: RegistrationStatus = "registered"
    revision_seq: int = 0


def problem(field: str, message: str, kind: str, **extra: Any) -> dict[str, Any]:
    """A 422 detail: the ``field`` it names, why (``message``), its ``type`` and more."""
    return {"field": field, "message": message, "type": kind, **extra}


async def load_session(
    session: AsyncSession, principal: Principal, session_id: str, *, write: bool
) -> _SessionContext:
    """The session ``session_id`` (readable by the caller) and its lab.

    Raises:
        ServiceError: 404 when there is no such session (or the caller can't read it),
            403 for a write by someone who is not a member of the session's lab.
    """
    row = await session.get(ItemRow, session_id)
    if row is None or row.subtype != "session":
        raise not_found(f"Session {session_id}")
    if "metadata-read" not in access.roles_on(principal, row):
        raise not_found(f"Session {session_id}")
    lab_id, subject_id = str(row.record.get("lab")), str(row.record.get("subject"))
    both = {
        r.id: r
        for r in await session.scalars(select(ItemRow).where(ItemRow.id.in_([lab_id, subject_id])))
    }
    lab, subject = both.get(lab_id), both.get(subject_id)
    if lab is None or lab.subtype != "lab" or subject is None:
        raise ServiceError(
            409, "session_incomplete", f"Session {session_id} has no lab or subject any more."
        )
    if write:
        require_lab_member(principal, lab)
    folder = (
        f"{lab.record.get('name')}/Subjects/{subject.record.get('nickname')}/"
        f"{row.record.get('date')}/{int(row.record.get('number', 0)):03d}"
    )
    return _SessionContext(row, lab, subject, folder)


def _check_session_path(ctx: _SessionContext, text: str) -> None:
    """422 unless the session part of the caller's paths is the session's record.

    The lab (when the path has one) compares case-insensitively, like lab names.
    """
    try:
        path = parse_session_path(text)
    except AlfError as err:
        found = problem("session_path", str(err), "invalid_alf_path", part=err.part)
        raise validation_error([found], what="session_path") from None
    record = ctx.row.record
    parts: list[tuple[str, str | None, str]] = [
        ("lab", path.lab, str(ctx.lab.record.get("name"))),
        ("subject", path.subject, str(ctx.subject.record.get("nickname"))),
        ("date", path.date.isoformat(), str(record.get("date"))),
        ("number", f"{path.number:03d}", f"{int(record.get('number', 0)):03d}"),
    ]
    problems = [
        problem(
            "session_path",
            f"{text!r}: the {part} {given!r} is not the session's ({wanted!r}; session "
            f"{ctx.row.id} is {ctx.folder})",
            "session_mismatch",
            part=part,
            expected=wanted,
        )
        for part, given, wanted in parts
        if given is not None
        and (given.casefold() != wanted.casefold() if part == "lab" else given != wanted)
    ]
    if problems:
        raise validation_error(problems, what="session_path")


def _needs_md5(repository: ItemRow | None) -> bool:
    """Whether the repository's record asks for an md5 of every file (its ``hashes``)."""
    return repository is not None and "md5" in (repository.record.get("hashes") or ())


def _missing_hashes(body: RegisterFilesRequest, repository: ItemRow | None) -> list[dict[str, Any]]:
    """A 422 detail per file without a hash the repository's record asks for (``md5``)."""
    if repository is None or not _needs_md5(repository):
        return []
    name = repository.record.get("name")
    return [
        problem(
            f"files.{i}.md5",
            f"{file.path!r}: repository {name!r} ({repository.id}) keeps an md5 of every "
            "file (its record's hashes); send the file's md5",
            "md5_required",
            part="md5",
        )
        for i, file in enumerate(body.files)
        if file.md5 is None
    ]


def writers(ctx: _SessionContext) -> str:
    """The counter the writers of a session's registered files queue on."""
    return f"registration-files:{ctx.row.seq}"


@dataclass(frozen=True, slots=True)
class _Vocabularies:
    """What a registration checks files against, read in one query."""

    types: list[_Vocabulary]
    """Dataset types (``filename_pattern`` their pattern)."""
    formats: list[_Vocabulary]
    """Data formats (``filename_pattern`` their extension)."""
    protected_tags: set[str]
    """The ids of the protected tags."""


_VOCABULARY_FIELDS = {"dataset_type": "filename_pattern", "data_format": "file_extension"}


async def _vocabularies(session: AsyncSession) -> _Vocabularies:
    """The dataset types, data formats and protected tags (registry order)."""
    rows = await session.execute(
        select(ItemRow.id, ItemRow.subtype, ItemRow.record)
        .where(ItemRow.subtype.in_([*_VOCABULARY_FIELDS, "tag"]))
        .order_by(ItemRow.seq)
    )
    found = _Vocabularies([], [], set())
    for item_id, subtype, record in rows:
        if subtype == "tag":
            if record.get("protected"):
                found.protected_tags.add(item_id)
            continue
        field = _VOCABULARY_FIELDS[subtype]
        entry = _Vocabulary(str(record.get("name")), str(record.get(field) or ""), item_id)
        (found.types if subtype == "dataset_type" else found.formats).append(entry)
    return found


async def _protected_tags(session: AsyncSession) -> set[str]:
    rows = await session.scalars(select(ItemRow).where(ItemRow.subtype == "tag"))
    return {r.id for r in rows if r.record.get("protected")}


async def protected_ids(
    session: AsyncSession, ids: Iterable[str], tags: set[str] | None = None
) -> set[str]:
    """Which of ``ids`` carry a protected tag (``tags``: the protected tags, if read)."""
    wanted = list(ids)
    if not wanted:
        return set()
    protected = await _protected_tags(session) if tags is None else tags
    if not protected:
        return set()
    found = await session.scalars(
        select(DatasetTagRow.dataset_id).where(
            DatasetTagRow.dataset_id.in_(wanted), DatasetTagRow.tag_id.in_(sorted(protected))
        )
    )
    return set(found)


class _Revision(NamedTuple):
    """A registered revision as read for the checks: plain values, no ORM bookkeeping.

    A tuple of plain values, which the garbage collector stops tracking at its first look:
    a session's thousands of revisions read for a check cost no full collection.
    """

    id: str
    session_id: str
    collection: str
    name: str
    revision: str
    revision_seq: int
    dataset_type_id: str
    data_format_id: str
    size: int
    sha256: str
    md5: str | None
    version: str | None
    is_default: bool
    state: str
    created_by: str
    created_at: datetime | None  # the last field: None when not read (``_existing``)


_Row = RegisteredDatasetRow | _Revision
_REVISION_COLUMNS = [getattr(RegisteredDatasetRow, name) for name in _Revision._fields]


async def _existing(
    session: AsyncSession, session_id: str, *, for_write: bool, times: bool = True
) -> dict[DatasetKey, list[_Row]]:
    """Every registered revision of the session, by dataset, in ``revision_seq`` order.

    ORM rows ``for_write``; otherwise plain :class:`_Revision` values, several times
    cheaper to load (what a re-registration that changes nothing reads), without
    ``created_at`` (None) unless ``times`` (only answers with whole records show it).
    """
    columns = _REVISION_COLUMNS if times else _REVISION_COLUMNS[:-1]
    query = select(RegisteredDatasetRow) if for_write else select(*columns)
    query = query.where(RegisteredDatasetRow.session_id == session_id).order_by(
        RegisteredDatasetRow.revision_seq
    )
    rows: Iterable[_Row]
    if for_write:
        rows = await session.scalars(query.execution_options(populate_existing=True))
    elif times:
        rows = [_Revision(*values) for values in await session.execute(query)]
    else:
        rows = [_Revision(*_untimed(values)) for values in await session.execute(query)]
    found: dict[DatasetKey, list[_Row]] = {}
    for row in rows:
        found.setdefault((row.collection, row.name), []).append(row)
    return found


def _untimed(values: Any) -> tuple[Any, ...]:
    """A revision's columns read without ``created_at`` (its last field), that one None."""
    return (*values, None)


def _parse(field: str, text: str) -> AlfPath | dict[str, Any]:
    """The parts of a path relative to its session, or the 422 detail naming ``field``."""
    try:
        return parse_rel_path(text)
    except AlfError as err:
        return problem(field, str(err), "invalid_alf_path", part=err.part)


def _plan(
    vocabularies: _Vocabularies, files: Sequence[FileToRegister | _Registered]
) -> tuple[list[_Planned], list[dict[str, Any]]]:
    """Parse and classify every file; the problems name the file index and the part."""
    types = vocabularies.types
    formats: dict[str, list[str]] = {}
    for fmt in vocabularies.formats:
        formats.setdefault(fmt.filename_pattern.casefold(), []).append(fmt.id)
    planned: list[_Planned] = []
    problems: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, str], int] = {}
    matching: dict[str, list[_Vocabulary]] = {}  # by dataset name: many files share one
    for i, file in enumerate(files):
        field = f"files.{i}.path"
        parsed = _parse(field, file.path)
        if isinstance(parsed, dict):
            problems.append(parsed)
            continue
        key = (parsed.collection, parsed.name, parsed.revision)
        if key in seen:
            problems.append(
                problem(field, f"{file.path!r} is also files.{seen[key]}", "duplicate_path")
            )
            continue
        seen[key] = i
        matches = matching.get(parsed.name)
        if matches is None:
            matches = matching[parsed.name] = matching_dataset_types(parsed.name, types)
        if len(matches) != 1:
            err = DatasetTypeError(parsed.name, [t.name for t in matches])
            kind = "ambiguous_dataset_type" if matches else "no_dataset_type"
            problems.append(
                problem(field, str(err), kind, part="dataset_type", candidates=list(err.candidates))
            )
            continue
        extension = "." + parsed.dataset.extension
        known = formats.get(extension.casefold(), [])
        if len(known) != 1:
            message = (
                f"no data format has extension {extension!r}; ask a registry admin to add one"
                if not known
                else f"several data formats have extension {extension!r}: {', '.join(known)}"
            )
            problems.append(
                problem(field, message, "unknown_data_format", part="extension", candidates=known)
            )
            continue
        planned.append(_Planned(i, file, parsed, matches[0].id, known[0]))
    return planned, problems


def _revisions_of(rows: Sequence[_Row], protected: set[str]) -> list[ExistingRevisionInfo]:
    return [
        ExistingRevisionInfo(
            revision=r.revision,
            protected=r.id in protected,
            default=r.is_default,
            revision_seq=r.revision_seq,
        )
        for r in sorted(rows, key=lambda r: r.revision_seq, reverse=True)
    ]


def _protection(
    paths: Sequence[tuple[str, AlfPath | None]],
    existing: dict[DatasetKey, list[_Row]],
    protected: set[str],
) -> list[ProtectedFile]:
    out: list[ProtectedFile] = []
    for text, path in paths:
        if path is None:
            out.append(ProtectedFile(path=text, protected=False, revisions=[]))
            continue
        rows = existing.get((path.collection, path.name), [])
        target = next((r for r in rows if r.revision == path.revision), None)
        out.append(
            ProtectedFile(
                path=text,
                protected=target is not None and target.id in protected,
                revisions=_revisions_of(rows, protected),
            )
        )
    return out


async def check_protected(
    session: AsyncSession, principal: Principal, session_id: str, paths: Sequence[str]
) -> ProtectedCheck:
    """Whether each path (relative to the session) names a protected revision; read-only.

    Raises:
        ServiceError: 404 for an unknown session, 422 naming a path that breaks ALF.
    """
    ctx = await load_session(session, principal, session_id, write=False)
    parsed: list[tuple[str, AlfPath | None]] = []
    problems: list[dict[str, Any]] = []
    for i, text in enumerate(paths):
        found = _parse(f"paths.{i}", text)
        if isinstance(found, dict):
            problems.append(found)
        else:
            parsed.append((text, found))
    if problems:
        raise validation_error(problems, what="paths")
    existing = await _existing(session, ctx.row.id, for_write=False, times=False)
    protected = await protected_ids(session, (r.id for rs in existing.values() for r in rs))
    files = _protection(parsed, existing, protected)
    return ProtectedCheck(
        session=ctx.row.id, protected=any(f.protected for f in files), files=files
    )


def refuse_deleting(rows: Iterable[_Row | None]) -> None:
    """409 ``dataset_deleting`` if any of ``rows`` is being deleted (its content is final)."""
    deleting = [r.id for r in rows if r is not None and r.state == "deleting"]
    if deleting:
        raise ServiceError(
            409,
            "dataset_deleting",
            f"Registered dataset {deleting[0]} is being deleted: its content, tags and default "
            "flag can't change any more. Finish its deletion, or register the file under "
            "another revision. Nothing was changed.",
            details=[{"dataset": i} for i in deleting],
        )


def _refuse_protected(
    planned: Sequence[_Planned],
    existing: dict[DatasetKey, list[_Row]],
    protected: set[str],
) -> None:
    if not protected or not any(
        r.id in protected and r.revision == p.path.revision
        for p in planned
        for r in existing.get((p.path.collection, p.path.name), ())
    ):
        return  # the usual case: no report to build
    report = _protection([(p.file.path, p.path) for p in planned], existing, protected)
    refused = [p.file.path for p, f in zip(planned, report, strict=True) if f.protected]
    details = [
        {
            "field": f"files.{p.index}.path",
            "type": "protected" if f.protected else "unprotected",
            "message": (
                f"{f.path!r} names a protected revision" if f.protected else "not protected"
            ),
            **f.model_dump(mode="json"),
        }
        for p, f in zip(planned, report, strict=True)
    ]
    raise ServiceError(
        412,
        "protected",
        f"{len(refused)} file(s) name a protected revision and can't be registered again: "
        f"{', '.join(refused[:5])}{' ...' if len(refused) > 5 else ''}. Register them under a "
        "new revision (details list each file's revisions, newest first). Nothing was changed.",
        details=details,
    )


async def dataset_models(session: AsyncSession, rows: Sequence[_Row]) -> list[RegisteredDataset]:
    """The wire form of registered revisions: with their tags, file records and protection."""
    ids = [r.id for r in rows]
    tags: dict[str, list[str]] = {}
    files: dict[str, list[FileRecordInfo]] = {}
    if ids:
        for dataset_id, tag in await session.execute(
            select(DatasetTagRow.dataset_id, DatasetTagRow.tag_id)
            .where(DatasetTagRow.dataset_id.in_(ids))
            .order_by(DatasetTagRow.tag_id)
        ):
            tags.setdefault(dataset_id, []).append(tag)
        # plain values, not ORM objects: an answer may have thousands of records
        for dataset_id, repository_id, relative_path, exists, verified_at in await session.execute(
            select(
                FileRecordRow.dataset_id,
                FileRecordRow.repository_id,
                FileRecordRow.relative_path,
                FileRecordRow.exists,
                FileRecordRow.verified_at,
            )
            .where(FileRecordRow.dataset_id.in_(ids))
            .order_by(FileRecordRow.id)
        ):
            files.setdefault(dataset_id, []).append(
                FileRecordInfo(
                    repository=repository_id,
                    relative_path=relative_path,
                    exists=exists,
                    verified_at=verified_at,
                )
            )
    protected = await protected_ids(session, ids)
    return [
        RegisteredDataset(
            id=r.id,
            session=r.session_id,
            collection=r.collection,
            name=r.name,
            revision=r.revision,
            revision_seq=r.revision_seq,
            default=r.is_default,
            protected=r.id in protected,
            state="deleting" if r.state == "deleting" else "active",
            dataset_type=r.dataset_type_id,
            data_format=r.data_format_id,
            size=r.size,
            sha256=r.sha256,
            md5=r.md5,
            version=r.version,
            tags=tags.get(r.id, []),
            files=files.get(r.id, []),
            created_by=r.created_by,
            created_at=r.created_at,
        )
        for r in rows
    ]


def _classify(planned: Sequence[_Planned], existing: dict[DatasetKey, list[_Row]]) -> None:
    """Set each file's status and revision_seq (new revisions after the existing ones)."""
    next_seq: dict[DatasetKey, int] = {}
    for p in planned:
        key = (p.path.collection, p.path.name)
        rows = existing.get(key, ())
        p.existing = None
        for r in rows:  # a dataset's few revisions: no index of every revision to build
            if r.revision == p.path.revision:
                p.existing = r
                break
        if p.existing is not None:
            p.status = "unchanged" if p.existing.sha256 == p.file.sha256 else "updated"
            p.revision_seq = p.existing.revision_seq
        else:
            seq = next_seq.get(key, max((r.revision_seq for r in rows), default=0)) + 1
            next_seq[key] = seq
            p.status, p.revision_seq = "registered", seq


def _defaults_after(
    planned: Sequence[_Planned],
    existing: dict[DatasetKey, list[_Row]],
    make_default: bool,
) -> dict[tuple[str, str, str], bool]:
    """(collection, name, revision) → default, for every revision the request touches."""
    # per dataset: revision -> default; the last file of a dataset in the request wins
    by_dataset: dict[DatasetKey, dict[str, bool]] = {}
    for p in planned:
        key = (p.path.collection, p.path.name)
        state = by_dataset.get(key)
        if state is None:
            state = by_dataset[key] = {r.revision: r.is_default for r in existing.get(key, [])}
        if make_default:
            for revision in state:
                state[revision] = False
            state[p.path.revision] = True
        else:
            state.setdefault(p.path.revision, False)
    return {
        (collection, name, revision): flag
        for (collection, name), state in by_dataset.items()
        for revision, flag in state.items()
    }


def _plan_model(
    p: _Planned,
    session_id: str,
    principal: Principal,
    default: bool,
    protected: bool,
    file_record: FileRecordInfo | None,
) -> RegisteredDataset:
    source = p.existing
    kept = source if source is not None and p.status == "unchanged" else None
    return RegisteredDataset(
        id=source.id if source is not None else None,
        session=session_id,
        collection=p.path.collection,
        name=p.path.name,
        revision=p.path.revision,
        revision_seq=p.revision_seq,
        default=default,
        protected=protected,
        state="deleting" if source is not None and source.state == "deleting" else "active",
        dataset_type=source.dataset_type_id if source is not None else p.dataset_type,
        data_format=source.data_format_id if source is not None else p.data_format,
        size=kept.size if kept else p.file.size,
        sha256=p.file.sha256,
        md5=kept.md5 if kept else p.file.md5,
        version=kept.version if kept else p.file.version,
        files=[file_record] if file_record is not None else [],
        created_by=source.created_by if source is not None else principal.username,
        created_at=source.created_at if source is not None else None,
    )


async def register_files(
    session: AsyncSession, principal: Principal, session_id: str, body: RegisterFilesRequest
) -> tuple[RegisterFilesResult, bool]:
    """Register ``body.files`` of a session, all or nothing (see the module's docstring).

    A dry run performs every check (read-only) and answers the plan.

    Returns:
        The answer, and whether anything was written (False for a dry run and for a
        request that changes nothing).

    Raises:
        ServiceError: 404 unknown session, 403 not a member of its lab, 422 naming each
            bad file (``files.3.path``, with the ALF ``part``) or the repository, 412
            ``protected`` when a target revision is protected (nothing changed).
    """
    ctx, repository, vocabularies = await _prepare(session, principal, session_id, body)
    planned, problems = _plan(vocabularies, body.files)
    problems.extend(_missing_hashes(body, repository))
    if problems:
        raise validation_error(problems, what="files")
    existing, protected = await _check(
        session, ctx, planned, body, for_write=False, tags=vocabularies.protected_tags
    )
    if not body.dry_run and await _changes_nothing(session, body, planned, existing):
        # a no-op (every file unchanged, flags and file records as asked): all the checks
        # ran on what is there now; nothing to write, so no need to queue with the writers
        kept = [p.existing for p in planned if p.existing is not None]
        return await _answer(session, ctx, body, planned, kept), False
    if not body.dry_run:
        # writers of this session queue here, so what is checked below is what is written
        await next_value(session, writers(ctx))
        # and read again (as ORM rows to write): what was read may have changed since
        existing, protected = await _check(session, ctx, planned, body, for_write=True)
    defaults = _defaults_after(planned, existing, body.default)
    if body.dry_run:
        results = [
            FileRegistration(
                path=p.file.path,
                status=p.status,
                index=p.index,
                dataset=_plan_model(
                    p,
                    ctx.row.id,
                    principal,
                    defaults[(p.path.collection, p.path.name, p.path.revision)],
                    p.existing is not None and p.existing.id in protected,
                    _file_record(ctx, body, p.path),
                ),
            )
            for p in planned
            if not _compacted(body, p)
        ]
        unchanged = _unchanged(body, planned)
        plan = RegisterFilesResult(
            session=ctx.row.id, dry_run=True, files=results, unchanged=unchanged
        )
        return plan, False
    rows = await _write(session, principal, ctx, body, planned, existing, defaults)
    return await _answer(session, ctx, body, planned, rows), True


async def _prepare(
    session: AsyncSession,
    principal: Principal,
    session_id: str,
    body: RegisterFilesRequest | UnchangedCheckRequest,
) -> tuple[_SessionContext, ItemRow | None, _Vocabularies]:
    """The checks of a registration before its files, and the vocabularies to check them.

    The session (and the caller's membership of its lab), the repository, the session path.
    """
    ctx = await load_session(session, principal, session_id, write=True)
    repository: ItemRow | None = None
    if body.repository is not None:
        repository = await reference(
            session,
            principal,
            body.repository,
            "repository",
            field_name="repository",
            readable=False,
        )
    if body.session_path is not None:
        _check_session_path(ctx, body.session_path)
    return ctx, repository, await _vocabularies(session)


async def check_unchanged(
    session: AsyncSession, principal: Principal, session_id: str, body: UnchangedCheckRequest
) -> UnchangedCheck:
    """Whether registering the files of ``body.digest`` would change nothing (read-only).

    True when the files are exactly the session's registered revisions (their paths and
    sha256: :func:`~provena_like.models.registration.files_digest`) and the registration
    of them with ``body``'s options passes the very checks of :func:`register_files` and
    writes nothing (:func:`_changes_nothing`); the answer has the revisions' ids, by
    sorted path. Anything else is False, with the reason: the registration itself then
    says what it does (or why it refuses).

    Raises:
        ServiceError: As :func:`register_files` for the session, the caller's membership,
            the repository and the session path (404, 403, 422).
    """
    ctx, repository, vocabularies = await _prepare(session, principal, session_id, body)

    def differs(reason: str) -> UnchangedCheck:
        return UnchangedCheck(session=ctx.row.id, unchanged=False, reason=reason)

    if _needs_md5(repository) and not body.md5:
        return differs("the repository keeps md5s: send them")
    existing = await _existing(session, ctx.row.id, for_write=False, times=False)
    rows = sorted(
        ((rel_path(r.collection, r.revision, r.name), r) for rs in existing.values() for r in rs),
        key=lambda found: found[0],
    )
    if len(rows) != body.count or files_digest((p, r.sha256) for p, r in rows) != body.digest:
        return differs("the files are not the session's registered revisions")
    if body.default and len(rows) != len(existing):
        # several revisions of a dataset: which becomes its default depends on the order
        return differs("a dataset has several revisions: register them in your order")
    # the registration of these files, as the server would read it: every check runs on it
    options = RegisterFilesRequest.model_construct(
        files=[],
        repository=body.repository,
        exists=body.exists,
        default=body.default,
        dry_run=False,
        session_path=body.session_path,
        answer="compact",
    )
    planned, problems = _plan(vocabularies, [_Registered(p, r.size, r.sha256) for p, r in rows])
    if problems:
        return differs("a file would be refused")
    if any(
        (p.dataset_type, p.data_format) != (r.dataset_type_id, r.data_format_id)
        for p, (_, r) in zip(planned, rows, strict=True)
    ):
        return differs("a file's dataset type or data format is not the registered one")
    protected = await protected_ids(session, (r.id for _, r in rows), vocabularies.protected_tags)
    try:
        _verify(planned, existing, protected)
    except ServiceError as err:
        return differs(f"the registration would be refused ({err.code})")
    if not await _changes_nothing(session, options, planned, existing):
        return differs("the registration would change flags or file records")
    return UnchangedCheck(session=ctx.row.id, unchanged=True, ids=[r.id for _, r in rows])


def _compacted(body: RegisterFilesRequest, p: _Planned) -> bool:
    """Whether the answer lists ``p`` in ``unchanged`` rather than in ``files``."""
    return body.answer == "compact" and p.status == "unchanged"


def _unchanged(body: RegisterFilesRequest, planned: Sequence[_Planned]) -> UnchangedFiles | None:
    """The ``unchanged`` part of a compact answer (None for a full one)."""
    if body.answer != "compact":
        return None
    # an unchanged file is one whose revision exists (``_classify``): p.existing is that row
    kept = [(p.index, p.existing.id) for p in planned if _compacted(body, p) and p.existing]
    return UnchangedFiles(indexes=[i for i, _ in kept], ids=[i for _, i in kept])


async def _answer(
    session: AsyncSession,
    ctx: _SessionContext,
    body: RegisterFilesRequest,
    planned: Sequence[_Planned],
    rows: Sequence[_Row],
) -> RegisterFilesResult:
    """The result of a registration that ran: each file's status and revision as it is now.

    A compact answer reads and builds no record for the files that changed nothing.
    """
    shown = [(p, r) for p, r in zip(planned, rows, strict=True) if not _compacted(body, p)]
    models = await dataset_models(session, [r for _, r in shown])
    return RegisterFilesResult(
        session=ctx.row.id,
        dry_run=False,
        files=[
            FileRegistration(path=p.file.path, status=p.status, dataset=m, index=p.index)
            for (p, _), m in zip(shown, models, strict=True)
        ],
        unchanged=_unchanged(body, planned),
    )


async def _check(
    session: AsyncSession,
    ctx: _SessionContext,
    planned: Sequence[_Planned],
    body: RegisterFilesRequest,
    *,
    for_write: bool,
    tags: set[str] | None = None,
) -> tuple[dict[DatasetKey, list[_Row]], set[str]]:
    """Read the session's revisions, refuse a protected target (412), classify the files.

    ``tags`` are the protected tags if read in this transaction already (else read here).

    Returns:
        The existing revisions and the protected ones' ids.
    """
    # a compact answer shows no unchanged file's record, the only ones read from here
    times = body.dry_run or body.answer == "full"
    existing = await _existing(session, ctx.row.id, for_write=for_write, times=times)
    ids = (r.id for rs in existing.values() for r in rs)
    protected = await protected_ids(session, ids, tags)
    _verify(planned, existing, protected)
    return existing, protected


def _verify(
    planned: Sequence[_Planned], existing: dict[DatasetKey, list[_Row]], protected: set[str]
) -> None:
    """Refuse a protected target (412) or one being deleted (409); classify the files."""
    _refuse_protected(planned, existing, protected)
    _classify(planned, existing)
    refuse_deleting(p.existing for p in planned)


async def _changes_nothing(
    session: AsyncSession,
    body: RegisterFilesRequest,
    planned: Sequence[_Planned],
    existing: dict[DatasetKey, list[_Row]],
) -> bool:
    """Whether registering would write nothing.

    That is: every file ``unchanged`` (same sha256), every touched revision's default flag
    already as :func:`_defaults_after` would set it, and (with a repository) every file
    record there already, with ``exists`` as asked and not verified.
    """
    if any(p.status != "unchanged" for p in planned):
        return False
    # every file's revision exists (p.existing). Without ``default`` the flags stay as they
    # are; with it, the revision of each dataset's last file in the request must be its only
    # default (what _defaults_after sets)
    if body.default:
        made_default: dict[DatasetKey, _Row | None] = {}
        for p in planned:
            made_default[p.path.collection, p.path.name] = p.existing
        for key, row in made_default.items():
            if any(r.is_default != (r is row) for r in existing.get(key, ())):
                return False
    if body.repository is None:
        return True
    ids = [p.existing.id for p in planned if p.existing is not None]
    records = {
        record.dataset_id: record
        for record in await session.scalars(
            select(FileRecordRow).where(
                FileRecordRow.dataset_id.in_(ids), FileRecordRow.repository_id == body.repository
            )
        )
    }
    return all(
        (record := records.get(i)) is not None
        and record.exists == body.exists
        and record.verified_at is None
        for i in ids
    )


def _file_record(
    ctx: _SessionContext, body: RegisterFilesRequest, path: AlfPath
) -> FileRecordInfo | None:
    if body.repository is None:
        return None
    return FileRecordInfo(
        repository=body.repository,
        relative_path=f"{ctx.folder}/{path.rel_path}",
        exists=body.exists,
        verified_at=None,
    )


async def _write(
    session: AsyncSession,
    principal: Principal,
    ctx: _SessionContext,
    body: RegisterFilesRequest,
    planned: Sequence[_Planned],
    existing: dict[DatasetKey, list[_Row]],
    defaults: dict[tuple[str, str, str], bool],
) -> list[RegisteredDatasetRow]:
    now = utcnow()
    # un-default first: the partial unique index allows one default per dataset at a time
    by_key = {(r.collection, r.name, r.revision): r for rs in existing.values() for r in rs}
    for key, is_default in defaults.items():
        row = by_key.get(key)
        if row is not None and row.is_default and not is_default:
            assert not isinstance(row, _Revision), "the write path reads ORM rows"
            row.is_default = False
    await session.flush()
    rows: list[RegisteredDatasetRow] = []
    for p in planned:
        row = p.existing
        assert not isinstance(row, _Revision), "the write path reads ORM rows"
        if row is None:
            row = RegisteredDatasetRow(
                id=str(uuid.uuid4()),
                session_id=ctx.row.id,
                collection=p.path.collection,
                name=p.path.name,
                revision=p.path.revision,
                revision_seq=p.revision_seq,
                dataset_type_id=p.dataset_type,
                data_format_id=p.data_format,
                size=p.file.size,
                sha256=p.file.sha256,
                md5=p.file.md5,
                version=p.file.version,
                is_default=False,
                created_by=principal.username,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
        elif p.status == "updated":
            row.size, row.sha256, row.md5 = p.file.size, p.file.sha256, p.file.md5
            row.version, row.updated_at = p.file.version, now
        rows.append(row)
    await session.flush()
    for p, row in zip(planned, rows, strict=True):
        wanted = defaults[(p.path.collection, p.path.name, p.path.revision)]
        if row.is_default != wanted:
            row.is_default = wanted
    await session.flush()
    if body.repository is not None:
        await _write_file_records(session, ctx, body, planned, rows)
    return rows


async def _write_file_records(
    session: AsyncSession,
    ctx: _SessionContext,
    body: RegisterFilesRequest,
    planned: Sequence[_Planned],
    rows: Sequence[RegisteredDatasetRow],
) -> None:
    assert body.repository is not None
    ids = [r.id for r in rows]
    current = {
        record.dataset_id: record
        for record in await session.scalars(
            select(FileRecordRow).where(
                FileRecordRow.dataset_id.in_(ids), FileRecordRow.repository_id == body.repository
            )
        )
    }
    for p, row in zip(planned, rows, strict=True):
        record = current.get(row.id)
        if record is None:
            session.add(
                FileRecordRow(
                    dataset_id=row.id,
                    repository_id=body.repository,
                    relative_path=f"{ctx.folder}/{p.path.rel_path}",
                    exists=body.exists,
                    verified_at=None,
                )
            )
        else:
            record.exists, record.verified_at = body.exists, None
    await session.flush()


async def load_dataset(session: AsyncSession, dataset_id: str) -> RegisteredDatasetRow:
    """The dataset row as it is now in the database; 404 when there is none."""
    row = await session.get(RegisteredDatasetRow, dataset_id, populate_existing=True)
    if row is None:
        raise not_found(f"Registered dataset {dataset_id}")
    return row


async def readable_dataset(
    session: AsyncSession, principal: Principal, dataset_id: str
) -> tuple[RegisteredDatasetRow, _SessionContext]:
    """The dataset row and its session; 404 unless the caller may read the session."""
    row = await load_dataset(session, dataset_id)
    try:
        ctx = await load_session(session, principal, row.session_id, write=False)
    except ServiceError as err:
        if err.status == 404:
            raise not_found(f"Registered dataset {dataset_id}") from None
        raise
    return row, ctx


async def get_dataset(
    session: AsyncSession, principal: Principal, dataset_id: str
) -> RegisteredDataset:
    """One registered dataset revision; 404 unless the caller may read its session."""
    row, _ = await readable_dataset(session, principal, dataset_id)
    return (await dataset_models(session, [row]))[0]


async def _writable_dataset(
    session: AsyncSession, principal: Principal, dataset_id: str
) -> RegisteredDatasetRow:
    """The dataset row, for a member of its session's lab, after taking the session's turn."""
    _, ctx = await readable_dataset(session, principal, dataset_id)
    require_lab_member(principal, ctx.lab)
    await next_value(session, writers(ctx))
    row = await load_dataset(session, dataset_id)
    refuse_deleting([row])
    return row


async def set_default(
    session: AsyncSession, principal: Principal, dataset_id: str, revision: str | None
) -> RegisteredDataset:
    """Make a revision of a dataset its default (the others lose the flag).

    ``revision`` None is the row ``dataset_id`` itself; otherwise the revision of the same
    (session, collection, name) with that name.

    Raises:
        ServiceError: 404 for an unknown dataset or revision, 403 for a non-member.
    """
    row = await _writable_dataset(session, principal, dataset_id)
    if revision is not None and revision != row.revision:
        other = await session.scalar(
            select(RegisteredDatasetRow).where(
                RegisteredDatasetRow.session_id == row.session_id,
                RegisteredDatasetRow.collection == row.collection,
                RegisteredDatasetRow.name == row.name,
                RegisteredDatasetRow.revision == revision,
            )
        )
        if other is None:
            raise not_found(f"Revision {revision!r} of dataset {row.collection}/{row.name}")
        refuse_deleting([other])
        row = other
    row = await make_default(session, row)
    return (await dataset_models(session, [row]))[0]


async def make_default(session: AsyncSession, row: RegisteredDatasetRow) -> RegisteredDatasetRow:
    """Make ``row`` its dataset's default revision, in the caller's transaction.

    The dataset's other revisions lose the flag first (the partial unique index allows one
    default per dataset at a time). The caller has taken the session's turn.

    Returns:
        The row as it is now in the database.
    """
    await session.execute(
        update(RegisteredDatasetRow)
        .where(
            RegisteredDatasetRow.session_id == row.session_id,
            RegisteredDatasetRow.collection == row.collection,
            RegisteredDatasetRow.name == row.name,
            RegisteredDatasetRow.id != row.id,
        )
        .values(is_default=False)
        .execution_options(synchronize_session=False)
    )
    await session.flush()
    row = await load_dataset(session, row.id)
    row.is_default = True
    row.updated_at = utcnow()
    await session.flush()
    return row


async def tag_dataset(
    session: AsyncSession, principal: Principal, dataset_id: str, tag: str
) -> RegisteredDataset:
    """Put ``tag`` on a registered dataset (no change if it is there); lab members only."""
    row = await _writable_dataset(session, principal, dataset_id)
    await reference(session, principal, tag, "tag", field_name="tag", readable=False)
    present = await session.get(DatasetTagRow, (row.id, tag))
    if present is None:
        session.add(DatasetTagRow(dataset_id=row.id, tag_id=tag))
        await session.flush()
    return (await dataset_models(session, [row]))[0]


async def untag_dataset(
    session: AsyncSession, principal: Principal, dataset_id: str, tag: str
) -> RegisteredDataset:
    """Take ``tag`` off a registered dataset (no change if it isn't there); lab members only.

    A protected tag is what freezes a revision, so only a registry admin takes one off: a
    lab member can freeze data (tag), not unfreeze it.
    """
    row = await _writable_dataset(session, principal, dataset_id)
    if tag in await _protected_tags(session) and not principal.is_admin:
        raise forbidden(
            f"Tag {tag!r} is protected: it freezes this revision, and only a registry admin "
            "(system role 'admin') takes it off; ask an admin."
        )
    await session.execute(
        delete(DatasetTagRow).where(DatasetTagRow.dataset_id == row.id, DatasetTagRow.tag_id == tag)
    )
    await session.flush()
    return (await dataset_models(session, [row]))[0]


async def list_datasets(
    session: AsyncSession,
    principal: Principal,
    *,
    session_id: str | None = None,
    subject: str | None = None,
    lab: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    dataset_type: str | None = None,
    collection: str | None = None,
    name: str | None = None,
    revision: str | None = None,
    last_before: str | None = None,
    default_only: bool = False,
    page_size: int = 100,
    cursor: str | None = None,
) -> tuple[list[RegisteredDataset], str | None]:
    """One page of the registered datasets of sessions the caller may read.

    Ordered by session date, session, collection, name and ``revision_seq``. ``revision``
    keeps that revision only; ``last_before`` keeps, per dataset, the newest revision in
    the server's order (highest ``revision_seq``) among those whose name is at or before
    ``last_before`` in ALF order (``''`` first) - ONE's ``index_last_before``.

    With both, the datasets whose last-before revision is ``revision``.

    Raises:
        ServiceError: 400 for a cursor of another listing.
    """
    query: Select[RegisteredDatasetRow, str, int] = (
        select(RegisteredDatasetRow, SessionIndexRow.date, ItemRow.seq)
        .join(ItemRow, ItemRow.id == RegisteredDatasetRow.session_id)
        .join(SessionIndexRow, SessionIndexRow.item_id == ItemRow.id)
        .where(access.readable_filter(principal))
    )
    filters = {
        RegisteredDatasetRow.session_id: session_id,
        SessionIndexRow.subject_id: subject,
        SessionIndexRow.lab_id: lab,
        RegisteredDatasetRow.dataset_type_id: dataset_type,
        RegisteredDatasetRow.collection: collection,
        RegisteredDatasetRow.name: name,
        RegisteredDatasetRow.revision: revision,
    }
    for column, value in filters.items():
        if value is not None:
            query = query.where(column == value)
    if date_from is not None:
        query = query.where(SessionIndexRow.date >= date_from.isoformat())
    if date_to is not None:
        query = query.where(SessionIndexRow.date <= date_to.isoformat())
    if default_only:
        query = query.where(RegisteredDatasetRow.is_default.is_(True))
    if last_before is not None:
        other = aliased(RegisteredDatasetRow)
        newest = (
            select(func.max(other.revision_seq))
            .where(
                other.session_id == RegisteredDatasetRow.session_id,
                other.collection == RegisteredDatasetRow.collection,
                other.name == RegisteredDatasetRow.name,
                other.revision <= last_before,
            )
            .scalar_subquery()
        )
        query = query.where(
            and_(
                RegisteredDatasetRow.revision <= last_before,
                RegisteredDatasetRow.revision_seq == newest,
            )
        )
    keys = [
        KeyColumn(SessionIndexRow.date, "str", lambda r: str(r[1])),
        KeyColumn(ItemRow.seq, "int", lambda r: int(r[2])),
        KeyColumn(RegisteredDatasetRow.collection, "str", lambda r: r[0].collection),
        KeyColumn(RegisteredDatasetRow.name, "str", lambda r: r[0].name),
        KeyColumn(RegisteredDatasetRow.revision_seq, "int", lambda r: r[0].revision_seq),
    ]
    scope: list[Any] = [
        session_id,
        subject,
        lab,
        date_from.isoformat() if date_from else None,
        date_to.isoformat() if date_to else None,
        dataset_type,
        collection,
        name,
        revision,
        last_before,
        default_only,
    ]
    rows, next_cursor = await keyset_page(
        session, query, keys, cursor=cursor, page_size=page_size, scope=scope
    )
    return await dataset_models(session, [r[0] for r in rows]), next_cursor
