"""``force`` on a protected revision: its new content becomes a new revision, never a patch.

A protected revision is frozen (the server refuses to patch it, 412 ``protected``). With
``force`` the Patcher follows the registration rules instead, in the patch's steps:

1. **plan** — the new revision's name is ONE's (:func:`~provena_like.alf.resolve_revision`:
   the protected revision ``R`` gives ``R`` + the next free suffix, no revision gives today's
   date or its next free sub-revision), with every existing revision of the dataset taken,
   so it is always a revision that does not exist yet (:func:`new_revision`);
2. **register** — it is registered in every repository holding the protected revision, its
   file records *not present* and the revision *not default* (:func:`register`): readers
   still get what they got (the default is unchanged; the new revision says it has no file);
3. **stage** and **verify** — as for any patch;
4. **commit** — the patch's one transaction marks the new revision's file records present
   (at the staged paths) and makes it its dataset's default (``PatchFile.default``).

The protected revision's records and objects are never touched: it stays readable. If the
patch is aborted (a staged copy that doesn't verify, a refused commit), the new revision's
records are removed again (:func:`unregister`).

Example:
    ```python
    import datetime

    taken = ["", "2026-12-01"]
    assert new_revision("2026-12-01", taken, datetime.date(2026, 12, 6)) == "2026-12-01a"
    assert new_revision("", taken, datetime.date(2026, 12, 6)) == "2026-12-06"
    ```
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from provena_like._core.errors import APIStatusError, NotFound, UsageError
from provena_like.alf import parse_rel_path, resolve_revision
from provena_like.models.registration import FileRegistration

if TYPE_CHECKING:
    from provena_like.clients.registry import RegistryClient
    from provena_like.modules.patcher.journal import Journal, JournalFile

__all__ = [
    "NewRevisionTaken",
    "new_path",
    "new_rel_path",
    "new_revision",
    "register",
    "unregister",
]


class NewRevisionTaken(UsageError):
    """The revision planned for the new content was registered by someone else meanwhile."""


def new_revision(revision: str, taken: Iterable[str], today: dt.date) -> str:
    """The revision ``force`` registers a protected revision's new content as.

    ONE's rule for a protected revision (:func:`~provena_like.alf.resolve_revision`) with
    every existing revision of the dataset counted as taken: a new revision, always.

    Args:
        revision: The protected revision (``""`` for none).
        taken: Every revision of the dataset (and those this patch gives others already).
        today: The date a new revision is named after (UTC).
    """
    return resolve_revision(revision, [(r, True) for r in sorted(set(taken))], today=today)


def new_rel_path(f: JournalFile) -> str:
    """``[collection/]#new_revision#/name``: the forced file's path in its session."""
    assert f.new_revision is not None
    return parse_rel_path(f.rel_path).with_revision(f.new_revision).rel_path


def new_path(canonical: str, old_rel_path: str, new_rel: str) -> str:
    """The repository path of the new revision beside the protected one's ``canonical``."""
    if not canonical.endswith(old_rel_path):
        raise UsageError(f"{canonical} is not the path of {old_rel_path} in its repository")
    return canonical.removesuffix(old_rel_path) + new_rel


async def register(client: RegistryClient, journal: Journal) -> None:
    """Register each forced file's new revision where not yet: not present, not default.

    One request per session and repository; a dry run of it first refuses a revision that
    someone else registered since the plan (other bytes, or a replica present). Safe to
    call again: a revision registered already answers ``unchanged``.

    Raises:
        NewRevisionTaken: The planned revision is someone else's now (nothing registered
            by this request).
        APIStatusError: The server refused the registration.
    """
    groups: dict[tuple[str, str], list[JournalFile]] = {}
    for f in journal.files:
        if f.new_revision is None:
            continue
        assert f.session is not None, "a forced file's journal records its session"
        for loc in f.locations:
            if not loc.registered:
                groups.setdefault((f.session, loc.repository), []).append(f)
    for (session, handle), files in groups.items():
        body = [
            {"path": new_rel_path(f), "size": f.size, "sha256": f.sha256, "md5": f.md5}
            for f in files
        ]
        for dry_run in (True, False):
            answer = await client.register_files(
                session, body, repository=handle, exists=False, default=False, dry_run=dry_run
            )
            if dry_run:
                for f, planned in zip(files, answer.files, strict=True):
                    _refuse_taken(f, planned, handle)
        for f, done in zip(files, answer.files, strict=True):
            record = next(r for r in done.dataset.files if r.repository == handle)
            f.new_dataset = done.dataset.id
            loc = next(loc for loc in f.locations if loc.repository == handle)
            loc.old_path, loc.registered = record.relative_path, True


def _refuse_taken(f: JournalFile, planned: FileRegistration, handle: str) -> None:
    """Refuse a planned revision that exists with other bytes or a present replica."""
    dataset = planned.dataset
    present = [r for r in dataset.files if r.repository == handle and r.exists]
    if planned.status == "updated" or present or dataset.default:
        raise NewRevisionTaken(
            f"{f.path}: revision {f.new_revision!r} of {f.rel_path} was registered by someone "
            "else since the patch was planned; patch it again to plan another"
        )


async def unregister(client: RegistryClient, journal: Journal) -> list[str]:
    """Remove the new revisions this patch registered (it was aborted before its commit).

    Their file records say not present and their bytes were never committed, so their
    deletion is only the records'. Returns why a revision could not be removed, if any.
    """
    problems: list[str] = []
    for f in journal.files:
        if f.new_dataset is None:
            continue
        try:
            await client.mark_deleting(f.new_dataset)
            await client.delete_registered_dataset(f.new_dataset)
        except NotFound:
            pass
        except APIStatusError as exc:
            problems.append(f"the new revision {f.new_dataset} ({f.new_revision}): {exc}")
            continue
        f.new_dataset = None
        for loc in f.locations:
            loc.registered = False
    return problems
