"""Deleting registered datasets, records last, and the presence of a dataset's replicas.

A deletion has three steps, each its own request and transaction, so that a client that
crashes may resume it and nothing is ever claimed that isn't so:

1. :func:`mark_deleting` sets the revision's ``state`` to ``deleting``: its content is final
   from then on (register, patch, tag and set-default answer 409 ``dataset_deleting``), and
   reads keep working and show the state. A protected revision is refused (412).
2. the client deletes the file from every repository and marks each replica absent with
   :func:`update_file_record` (``exists`` False; in the server's own bucket the server
   checks the object is gone).
3. :func:`delete_dataset` removes the rows (the revision, its tags, file records and patch
   history), only once the revision is ``deleting`` and no file record says ``exists``
   (409 listing the repositories still holding it), and no object of it is left in the
   server's own bucket.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.patching import FileRecordUpdate
from provena_like.models.registration import RegisteredDataset
from provena_like.server.datastore.storage import ObjectStore
from provena_like.server.db.base import utcnow
from provena_like.server.errors import ServiceError, not_found, validation_error
from provena_like.server.registry.handles import next_value
from provena_like.server.security import Principal

from . import files
from .replicas import look, verify_bytes
from .rules import reference, require_lab_member
from .tables import DatasetPatchRow, DatasetTagRow, FileRecordRow, RegisteredDatasetRow

__all__ = ["delete_dataset", "mark_deleting", "update_file_record"]


async def _writable(
    session: AsyncSession, principal: Principal, dataset_id: str
) -> RegisteredDatasetRow:
    """The row, for a member of its session's lab, after queueing with the session's writers.

    Unlike the other writes, a revision being deleted is fine here: these steps finish it.
    """
    _, ctx = await files.readable_dataset(session, principal, dataset_id)
    require_lab_member(principal, ctx.lab)
    await next_value(session, files.writers(ctx))
    return await files.load_dataset(session, dataset_id)


async def _model(session: AsyncSession, row: RegisteredDatasetRow) -> RegisteredDataset:
    return (await files.dataset_models(session, [row]))[0]


async def mark_deleting(
    session: AsyncSession, principal: Principal, dataset_id: str
) -> tuple[RegisteredDataset, bool]:
    """Mark a revision ``deleting`` (step 1); a second call changes nothing.

    Returns:
        The revision, and whether it changed now.

    Raises:
        ServiceError: 404, 403 (not a member of its session's lab), 412 ``protected``.
    """
    row = await _writable(session, principal, dataset_id)
    if row.state == "deleting":
        return await _model(session, row), False
    if await files.protected_ids(session, [row.id]):
        raise ServiceError(
            412,
            "protected",
            f"Registered dataset {row.id} is protected (a protected tag freezes it) and can't "
            "be deleted; a registry admin may take the tag off first. Nothing was changed.",
        )
    row.state = "deleting"
    row.updated_at = utcnow()
    await session.flush()
    return await _model(session, row), True


async def update_file_record(
    session: AsyncSession,
    principal: Principal,
    dataset_id: str,
    repository: str,
    body: FileRecordUpdate,
    store: ObjectStore | None,
) -> RegisteredDataset:
    """Mark a revision's replica in ``repository`` present or absent.

    Present (``exists`` True) needs the ``size`` and ``sha256`` read back from the
    repository, equal to the revision's (422 otherwise). In the server's own bucket the
    server HEADs the object: present must be so (then ``verified_at`` is now), absent must
    be gone (409 ``object_present`` otherwise).

    Raises:
        ServiceError: 404 (no such dataset, or no file record in ``repository``), 403,
            409 ``dataset_deleting`` (present on a revision being deleted), 409
            ``object_present``, 422.
    """
    row = await _writable(session, principal, dataset_id)
    record = await session.scalar(
        select(FileRecordRow)
        .where(FileRecordRow.dataset_id == row.id, FileRecordRow.repository_id == repository)
        .execution_options(populate_existing=True)
    )
    if record is None:
        raise not_found(f"File record of dataset {row.id} in repository {repository}")
    repo = await reference(
        session, principal, repository, "repository", field_name="repository", readable=False
    )
    if body.exists:
        files.refuse_deleting([row])
        problems = [
            files.problem(name, f"{name} read back is {given}, not the revision's {want}", kind)
            for name, given, want, kind in (
                ("size", body.size, row.size, "size_mismatch"),
                ("sha256", body.sha256, row.sha256, "sha256_mismatch"),
            )
            if given != want
        ]
        if problems:
            raise validation_error(problems, what="file record")
    seen = await look(store, repo, record.relative_path)
    when = None
    if body.exists:
        verified, problem = verify_bytes(seen, row.size, row.sha256)
        if problem is not None:
            raise validation_error(
                [files.problem("exists", problem, "location_not_verified")], what="file record"
            )
        when = utcnow() if verified else None
    elif seen.head is not None:
        raise ServiceError(
            409,
            "object_present",
            f"Object {seen.key!r} is still in the server's bucket: delete it first. "
            "Nothing was changed.",
        )
    record.exists, record.verified_at = body.exists, when
    await session.flush()
    return await _model(session, row)


async def delete_dataset(
    session: AsyncSession, principal: Principal, dataset_id: str, store: ObjectStore | None
) -> None:
    """Remove a revision's rows (step 3), once it is ``deleting`` and no replica is left.

    Raises:
        ServiceError: 404, 403, 409 ``not_deleting`` (mark it deleting first), 409
            ``replicas_remain`` listing the repositories whose file record still says
            ``exists`` or whose object is still in the server's own bucket.
    """
    row = await _writable(session, principal, dataset_id)
    if row.state != "deleting":
        raise ServiceError(
            409,
            "not_deleting",
            f"Registered dataset {row.id} is not being deleted: mark it first (POST "
            ".../deletion), delete its replicas, then delete it. Nothing was changed.",
        )
    records = list(
        await session.scalars(
            select(FileRecordRow)
            .where(FileRecordRow.dataset_id == row.id)
            .order_by(FileRecordRow.id)
            .execution_options(populate_existing=True)
        )
    )
    remaining = [r for r in records if r.exists]
    for r in records:
        if r.exists:
            continue
        repo = await reference(
            session,
            principal,
            r.repository_id,
            "repository",
            field_name="repository",
            readable=False,
        )
        if (await look(store, repo, r.relative_path)).head is not None:
            remaining.append(r)
    if remaining:
        raise ServiceError(
            409,
            "replicas_remain",
            f"Registered dataset {row.id} is still held by "
            f"{', '.join(r.repository_id for r in remaining)}: delete it there and mark each "
            "replica absent first. Nothing was changed.",
            details=[
                {"repository": r.repository_id, "relative_path": r.relative_path} for r in remaining
            ],
        )
    # the children first (whether or not the database enforces ON DELETE CASCADE)
    for table in (DatasetPatchRow, DatasetTagRow, FileRecordRow):
        await session.execute(delete(table).where(table.dataset_id == row.id))
    await session.execute(delete(RegisteredDatasetRow).where(RegisteredDatasetRow.id == row.id))
    await session.flush()
