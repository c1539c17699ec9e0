"""``Patcher``: replace registered files in every repository that holds them (L3, ``pv.patcher``).

A patch runs five steps, each recorded in its journal (:mod:`.journal`) once complete
(stage and verify in one write when every staged copy was read back while staging):

1. **plan** — each local file (inside an ALF session folder) is matched to the registered
   revision it replaces (its session, collection, revision and name); the repositories are
   those of the revision's file records. A path that matches nothing, a revision that is
   protected (unless ``force``), or a repository that can't be opened here refuses the
   whole patch before anything moves. A dry run stops here and returns the plan.

   With ``force``, a protected revision's new bytes are planned as a new revision of its
   dataset instead (:mod:`.forced`: ONE's next-revision rule), which is registered in
   every repository holding the protected one, *not present* and *not default*, before
   staging; the protected revision is never touched.
2. **stage** — the new bytes are put at :func:`~provena_like.repositories.staging_path` in
   every repository (``.staging/<patch_id>/<path>``), beside the old object, which stays
   in place and is what the records point to.
3. **verify** — each staged object's size and sha256 are confirmed by its repository
   (:meth:`~provena_like.repositories.Repository.confirm_many`: read back and hashed, or
   for S3 the store's own md5 of the bytes, a single-part object's ETag, from a listing),
   each batch as soon as it is staged (beside the staging of the others); the step
   completes once every staged object in every repository is confirmed as the local file
   (a resumed patch confirms them all again). A mismatch (a corrupted
   copy) aborts the patch: the staged objects are removed and nothing is committed.
4. **commit** — one server transaction (``commit_patch``) switches each revision's size,
   hashes and each repository's file record to the staged path (a forced new revision's
   records become present, and it becomes its dataset's default). Before committing, a
   resumed patch asks the server (``get_patch``) whether its commit already happened.
5. **clean up** — the old objects the commit's answer lists are deleted.

Until the commit, readers following the records get the old bytes; after it, the new ones;
old objects are deleted only once nothing points to them. An interrupted patch (an error,
Ctrl-C, a killed process) continues from its journal: :meth:`Patcher.resume`, or
:meth:`Patcher.patch_files` with the same paths.

Example:
    ```python
    outcome = await pv.patcher.patch_files(
        [Path("/data/lab/Subjects/KS023/2026-12-06/001/alf/trials.table.pqt")],
        repositories={"10378.1/7": "/mnt/lab-server"},
    )
    print(outcome.step, [loc for f in outcome.plan.files for loc in f.locations])
    ```
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from provena_like._core.concurrency import each
from provena_like._core.errors import (
    APIStatusError,
    NotFound,
    TransferError,
    UsageError,
)
from provena_like.alf import AlfError, parse_rel_path, remove_uuid, split_session_path
from provena_like.models.patching import MAX_PATCH_FILES, PatchResult
from provena_like.models.registration import RegisteredDataset
from provena_like.models.registration import rel_path as make_rel_path
from provena_like.modules._replicas import unique_ids
from provena_like.modules.patcher import forced
from provena_like.modules.patcher.journal import (
    Journal,
    JournalFile,
    JournalLocation,
    default_journal_dir,
)
from provena_like.modules.patcher.opening import given_repositories, holding, open_some
from provena_like.modules.patcher.results import PatchOutcome, PatchPlan
from provena_like.repositories import (
    LocalEndpoint,
    ObjectInfo,
    PosixRepository,
    Repository,
    RepositoryResolver,
    path_from_dataset,
    split_staging_path,
    staging_path,
)
from provena_like.storage.events import ProgressCallback, TransferProgress, deliver
from provena_like.storage.hashing import CHUNK_SIZE, Digests, hash_file

if TYPE_CHECKING:
    from provena_like.clients.registry import RegistryClient
    from provena_like.clients.transfer import TransferClient
    from provena_like.models.datastore import AccessLevel
    from provena_like.modules.checking import CheckProgress, CheckReport
    from provena_like.modules.deletion import DeletionProgress, DeletionReport
    from provena_like.modules.registration import Registration

__all__ = [
    "PatchAborted",
    "Patcher",
    "ProtectedDatasets",
    "RepositoriesArg",
    "UnknownFiles",
    "journal_paths",
]

T = TypeVar("T")

RepositoriesArg = (
    Sequence[str] | Mapping[str, "Repository | Path | str | os.PathLike[str] | None"] | None
)
"""Which repositories to patch in, and how to reach them:

- ``None``: every repository holding each file's revision, opened by a
  :class:`~provena_like.repositories.RepositoryResolver` (S3 with the server's credentials;
  POSIX ones need a local root: the Patcher's ``local_roots``);
- a list of handles: those (they must cover every repository holding each revision);
- a mapping handle → an open :class:`~provena_like.repositories.Repository` (used as is,
  the caller's to close), a local directory (where a POSIX repository is mounted here), or
  ``None`` (resolved); repositories it doesn't name are resolved too.
"""

_BATCH_MOST = 64
"""The most files of one batch: a ``put_many`` while staging (the journal is saved between
batches), a ``stat_many`` while verifying, the local files hashed while planning."""

_JOURNAL_EVERY = 1.0
"""Seconds between journal writes while staging or cleaning (and at each step's end)."""


class ProtectedDatasets(UsageError):
    """Some revisions are protected: nothing was staged or changed.

    Attributes:
        datasets: ``(local path, dataset id)`` of each protected revision.
    """

    def __init__(self, datasets: list[tuple[Path, str]]) -> None:
        listed = ", ".join(f"{p} ({d})" for p, d in datasets[:5])
        more = f" and {len(datasets) - 5} more" if len(datasets) > 5 else ""
        super().__init__(
            f"{len(datasets)} revision(s) are protected and can't be patched: {listed}{more}. "
            "Patch with force=True (--force) to register the new content as a new revision "
            "that becomes the default once verified everywhere; the protected revision stays "
            "as it is. Nothing was changed."
        )
        self.datasets = datasets


class UnknownFiles(UsageError):
    """Some paths match no registered dataset you may read: nothing was changed.

    Attributes:
        paths: The paths.
    """

    def __init__(self, paths: list[str]) -> None:
        listed = ", ".join(paths[:10]) + (f" and {len(paths) - 10} more" if len(paths) > 10 else "")
        super().__init__(
            f"no registered dataset matches {listed} (a patch replaces registered files: "
            "register new ones with pv.registration.register_files). Nothing was changed."
        )
        self.paths = paths


class PatchAborted(TransferError):
    """The patch was abandoned before its commit; the old version is in place everywhere.

    Its staged objects were removed and its journal says ``aborted``: re-running the same
    paths plans a new patch.

    Attributes:
        patch_id: The abandoned patch.
    """

    def __init__(self, patch_id: str, reason: str) -> None:
        super().__init__(
            f"patch {patch_id} was aborted: {reason}. Nothing was committed; the registered "
            "files are unchanged in every repository."
        )
        self.patch_id = patch_id


class Patcher:
    """Replaces, deletes and checks registered files in every repository holding them.

    Patching (:meth:`patch_files`, :meth:`resume`) runs the steps of the module docstring;
    :meth:`delete_datasets` and :meth:`check_datasets` run
    :func:`~provena_like.modules.deletion.delete_datasets` and
    :func:`~provena_like.modules.checking.check_datasets` on the repositories the datasets'
    file records name. All of them open repositories by the same rules
    (:data:`RepositoriesArg`, :meth:`resolver`): S3 ones with the credentials the server
    mints, POSIX ones at their local roots, Globus ones through :attr:`transfer` and
    :attr:`local_endpoint`. A patch needs every repository holding its files; a repository
    that can't be opened doesn't stop a deletion or a check of the others: its replicas
    report why (a deletion then refuses that dataset before changing anything; a check
    reports them ``unchecked``), and so does the report's ``unavailable``.

    Args:
        registry_client: The registry's L2 client.
        registration: The registration module (finds registered sessions by ALF path).
        local_roots: Handle → local directory of each POSIX repository mounted here.
        journal_dir: Where journals live (default: :func:`.journal.default_journal_dir`).
        concurrency: Objects put, read back or deleted at once.

    Example:
        ```python
        patcher = pv.patcher
        plan = (await patcher.patch_files(paths, dry_run=True)).plan
        for handle, files in plan.repositories.items():
            print(handle, len(files))
        report = await patcher.check_datasets([dataset_id], repositories={lab: "/mnt/lab"})
        assert report.ok, [(d.dataset_id, d.error) for d in report.problems]
        ```
    """

    transfer: TransferClient | Callable[[], TransferClient] | None = None
    """The transfer client of Globus repositories, or a function giving it (called when the
    first one is opened; ``pv.patcher``'s gives ``pv.transfer_client``)."""

    local_endpoint: LocalEndpoint | None = None
    """The collection showing a directory of this machine that a Globus repository's bytes
    go through (``pv.patcher.local_endpoint = LocalEndpoint(collection, directory)``)."""

    read_back_bytes: bool = False
    """Verify every staged copy by reading it back and hashing its bytes. Off (the default),
    an S3 copy whose ETag — the md5 the store computed over the bytes it received — is the
    local file's md5, with its size, is verified by one HEAD (the bytes are the local
    file's, and so is their sha256); any other copy is read back and hashed either way
    (:meth:`~provena_like.repositories.Repository.confirm_many`)."""

    def __init__(
        self,
        registry_client: RegistryClient,
        registration: Registration,
        *,
        local_roots: Mapping[str, Path | str | os.PathLike[str]] | None = None,
        journal_dir: Path | str | None = None,
        concurrency: int = 16,
    ) -> None:
        self.client = registry_client
        self.registration = registration
        self.local_roots = {h: Path(p) for h, p in (local_roots or {}).items()}
        self.journal_dir = Path(journal_dir) if journal_dir is not None else default_journal_dir()
        self._limiter = anyio.CapacityLimiter(max(1, concurrency))

    def __repr__(self) -> str:
        return f"Patcher({self.client!r}, journal_dir={str(self.journal_dir)!r})"

    # ------------------------------------------------------------------ journals

    def journal(self, patch_id: str) -> Journal:
        """The journal of ``patch_id``.

        Raises:
            UsageError: If there is none here.
        """
        return Journal.load(self.journal_dir, patch_id)

    def unfinished(self) -> list[Journal]:
        """The journals of patches neither done nor aborted, oldest first.

        Example:
            ```python
            for journal in pv.patcher.unfinished():
                print(journal.patch_id, journal.step)
            ```
        """
        return [j for j in Journal.all(self.journal_dir) if not j.finished]

    async def _save(self, journal: Journal) -> None:
        await anyio.to_thread.run_sync(journal.save, self.journal_dir)

    # ------------------------------------------------------------------ entry points

    async def patch_files(
        self,
        paths: Sequence[Path | str],
        *,
        repositories: RepositoriesArg = None,
        dry_run: bool = False,
        force: bool = False,
        patch_id: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> PatchOutcome:
        """Replace the registered files these local files are new versions of.

        If an unfinished journal holds exactly these paths (or ``patch_id`` names one), the
        patch continues from it instead of starting over.

        Args:
            paths: Local files inside ALF session folders
                (``.../lab/Subjects/KS023/2026-12-06/001/alf/trials.table.pqt``), each a new
                version of a registered revision (at most 1,000 per patch).
            repositories: Which repositories, and how to reach them (:data:`RepositoriesArg`).
            dry_run: Only plan: return which revision each file replaces, per repository
                (with ``force``, the new revision each protected one's file becomes).
            force: A file of a protected revision becomes a new revision of its dataset
                (ONE's next-revision rule, as ``pv.registration.register_files(force=True)``,
                but always a revision that doesn't exist yet): registered not present and
                not default in every repository holding the protected one, staged and
                verified like any patch, then made present and the default by the commit.
                The protected revision is left as it is. Recorded with the patch.
            patch_id: The patch's id (a uuid; default: a new one, or the unfinished
                journal's for these paths).
            on_progress: Receives :class:`~provena_like.storage.TransferProgress` as
                objects are staged.

        Returns:
            The plan and what was done (``step == "done"`` once complete).

        Raises:
            UsageError: A path matches no registered revision (the message names it), is
                not a file in an ALF session, or a repository can't be opened here.
            ProtectedDatasets: Some revisions are protected and ``force`` is not set
                (nothing moved).
            PatchAborted: A staged copy didn't read back as the local file, or the server
                refused the commit (a conflicting patch) or a new revision (``force``):
                nothing committed, staging and the new revisions' records removed.
            TransferError: A repository failed while staging, verifying or cleaning up:
                re-run (or :meth:`resume`) to continue.
        """
        absolute = journal_paths(paths)
        if not absolute:
            raise UsageError("patch_files: no paths given")
        journal = self._journal_for(absolute, patch_id)
        if journal is not None:
            if dry_run:
                return PatchOutcome(PatchPlan.from_journal(journal), True, journal.step, True)
            return await self._run(journal, repositories, on_progress, resumed=True)
        pid = _patch_id(patch_id)
        journal = await self._plan(pid, absolute, repositories, force=force)
        plan = PatchPlan.from_journal(journal)
        if dry_run:
            return PatchOutcome(plan, True, "planned")
        if not journal.files:
            journal.step = "done"
            return PatchOutcome(plan, False, "done")
        return await self._run(journal, repositories, on_progress, resumed=False)

    async def resume(
        self,
        patch_id: str,
        *,
        repositories: RepositoriesArg = None,
        on_progress: ProgressCallback | None = None,
    ) -> PatchOutcome:
        """Continue an interrupted patch from its journal.

        Args:
            patch_id: The patch's id (printed by the CLI, in :attr:`PatchAborted.patch_id`
                and in every :class:`~.results.PatchOutcome`).
            repositories: As for :meth:`patch_files`.
            on_progress: As for :meth:`patch_files`.

        Raises:
            UsageError: No journal of ``patch_id`` here, or it was aborted.

        Example:
            ```python
            outcome = await pv.patcher.resume(patch_id, repositories={lab: "/mnt/lab"})
            assert outcome.step == "done"
            ```
        """
        journal = self.journal(patch_id)
        if journal.step == "aborted":
            raise UsageError(f"patch {patch_id} was aborted ({journal.error}); patch again")
        return await self._run(journal, repositories, on_progress, resumed=True)

    def _journal_for(self, paths: list[str], patch_id: str | None) -> Journal | None:
        if patch_id is not None:
            try:
                journal = self.journal(patch_id)
            except UsageError:
                return None
            if journal.paths != paths:
                raise UsageError(
                    f"patch {patch_id} was planned for other paths; use a new patch id"
                )
            return None if journal.step == "aborted" else journal
        return Journal.unfinished_for(self.journal_dir, paths)

    # ------------------------------------------------------------------ repositories

    def resolver(self, repositories: RepositoriesArg = None) -> RepositoryResolver:
        """A resolver with the Patcher's local roots and those ``repositories`` maps to a directory.

        It opens Globus repositories with the Patcher's ``transfer`` and ``local_endpoint``.

        Example:
            ```python
            resolver = pv.patcher.resolver({lab: "/mnt/lab"})
            assert (await resolver.record(lab)).kind == "posix"
            ```
        """
        roots = dict(self.local_roots)
        if isinstance(repositories, Mapping):
            for handle, value in repositories.items():
                if value is not None and not isinstance(value, Repository):
                    roots[handle] = Path(value)
        return RepositoryResolver(
            self.client,
            local_roots=roots,
            transfer=self.transfer,
            local_endpoint=self.local_endpoint,
        )

    # ------------------------------------------------------------------ delete and check

    async def delete_datasets(
        self,
        ids: Iterable[str],
        *,
        repositories: RepositoriesArg = None,
        dry_run: bool = False,
        on_progress: DeletionProgress | None = None,
        concurrency: int = 4,
    ) -> DeletionReport:
        """Delete registered datasets from every repository holding them, then their records.

        The steps, and what a crash at each leaves, are
        :func:`~provena_like.modules.deletion.delete_datasets`'; re-running the same call
        continues where it stopped. Protected datasets are refused before anything changes.

        Args:
            ids: The registered datasets' ids.
            repositories: Which repositories, and how to reach them, as for
                :meth:`patch_files` (:data:`RepositoriesArg`). A dataset with a replica in a
                repository not opened fails before anything is changed.
            dry_run: Change nothing: list, per repository, every file that would be removed.
            on_progress: Receives a :class:`~provena_like.modules.deletion.DeletionEvent`
                after each step.
            concurrency: Datasets worked on at once.

        Returns:
            One result per dataset, in the order given; ``unavailable`` names the
            repositories that couldn't be opened, and why.

        Example:
            ```python
            report = await pv.patcher.delete_datasets([dataset_id], repositories={lab: "/mnt/lab"})
            assert report.ok, [d.error for d in report.failed]
            ```
        """
        from provena_like.modules.deletion import delete_datasets

        wanted = unique_ids(ids)
        work = functools.partial(
            delete_datasets,
            self.client,
            wanted,
            dry_run=dry_run,
            on_progress=on_progress,
            concurrency=concurrency,
        )
        access: AccessLevel = "read" if dry_run else "write"
        return await self._on(await holding(self.client, wanted), repositories, access, work)

    async def check_datasets(
        self,
        datasets: Iterable[str] | Mapping[str, Any],
        *,
        repositories: RepositoriesArg = None,
        verify: bool = True,
        repair: bool = False,
        on_progress: CheckProgress | None = None,
        concurrency: int = 4,
    ) -> CheckReport:
        """Check each replica of registered datasets against its record; optionally repair.

        See :func:`~provena_like.modules.checking.check_datasets` for what is checked and
        how a repair copies from a good replica only.

        Args:
            datasets: Dataset ids, or the filters of
                :meth:`~provena_like.clients.registry.RegistryClient.iter_registered_datasets`
                as a mapping (``{"session": handle}``).
            repositories: Which repositories, and how to reach them, as for
                :meth:`patch_files`; a replica in one not opened is ``unchecked``.
            verify: Read every object back and hash its bytes (default).
            repair: Copy missing or wrong replicas again from a good one (opens the
                repositories for writing).
            on_progress: Receives a :class:`~provena_like.modules.checking.CheckEvent` per
                replica checked and repaired.
            concurrency: Datasets worked on at once.

        Returns:
            One result per dataset; ``unavailable`` names the repositories that couldn't be
            opened, and why.

        Example:
            ```python
            report = await pv.patcher.check_datasets({"session": session}, repair=True)
            print([(d.dataset_id, d.error) for d in report.problems])
            ```
        """
        from provena_like.modules.checking import check_datasets

        if isinstance(datasets, Mapping):
            listed = self.client.iter_registered_datasets(**datasets)
            handles = dict.fromkeys([f.repository async for d in listed for f in d.files])
            chosen: Iterable[str] | Mapping[str, Any] = datasets
        else:
            chosen = unique_ids(datasets)
            handles = await holding(self.client, chosen)
        work = functools.partial(
            check_datasets,
            self.client,
            chosen,
            verify=verify,
            repair=repair,
            on_progress=on_progress,
            concurrency=concurrency,
        )
        return await self._on(handles, repositories, "write" if repair else "read", work)

    async def _on(
        self,
        handles: Iterable[str],
        repositories: RepositoriesArg,
        access: AccessLevel,
        work: Callable[..., Awaitable[T]],
    ) -> T:
        """``work(repositories=..., unavailable=...)`` with the repositories it can open."""
        resolver = self.resolver(repositories)
        async with AsyncExitStack() as stack:
            opened, unavailable = await open_some(stack, resolver, handles, repositories, access)
            return await work(repositories=opened, unavailable=unavailable)

    # ------------------------------------------------------------------ 1. plan

    async def _plan(
        self, patch_id: str, paths: list[str], repositories: RepositoriesArg, *, force: bool
    ) -> Journal:
        if len(paths) > MAX_PATCH_FILES:
            raise UsageError(
                f"a patch replaces at most {MAX_PATCH_FILES} files ({len(paths)} given): "
                "patch them in several calls"
            )
        parsed: list[tuple[str, Any, str]] = []  # path, session, rel_path
        problems: list[str] = []
        for path in paths:
            try:
                _, session, rest = split_session_path(path)
                rel_path = remove_uuid(parse_rel_path(rest).rel_path)
            except AlfError as exc:
                problems.append(f"{path}: not a dataset file in an ALF session ({exc})")
                continue
            if not os.path.isfile(path):
                problems.append(f"{path}: no such file")
                continue
            parsed.append((path, session, rel_path))
        if problems:
            raise UsageError("; ".join(problems))
        datasets, revisions, digests = await self._registered_and_hashed(parsed)
        missing = [p for p, _, _ in parsed if p not in datasets]
        if missing:
            raise UnknownFiles(missing)
        protected = [(Path(p), str(d.id)) for p, d in datasets.items() if d.protected]
        if protected and not force:
            raise ProtectedDatasets(protected)
        wanted = _wanted(repositories)
        journal = Journal(patch_id=patch_id, force=force)
        today = dt.datetime.now(dt.UTC).date()
        for path, dataset in datasets.items():
            size, sha256, md5, mtime_ns = digests[path]
            if sha256 == dataset.sha256 and size == dataset.size:
                journal.unchanged.append(path)
                continue
            revision: str | None = None
            if dataset.protected:  # force: a new revision, the protected one left as it is
                taken = revisions[dataset.session, dataset.collection, dataset.name]
                revision = forced.new_revision(dataset.revision, taken, today)
                taken.append(revision)  # another file of the same dataset gets the next one
            if dataset.state == "deleting":
                raise UsageError(f"{path}: its registered dataset {dataset.id} is being deleted")
            held = [r.repository for r in dataset.files]
            if not held:
                raise UsageError(f"{path}: dataset {dataset.id} has no file in any repository")
            if wanted is not None:
                left = [h for h in held if h not in wanted]
                if left:
                    raise UsageError(
                        f"{path}: dataset {dataset.id} is also in repository "
                        f"{', '.join(left)}, which the patch doesn't include (every copy is "
                        "replaced together)"
                    )
            journal.files.append(
                JournalFile(
                    path=path,
                    dataset=str(dataset.id),
                    rel_path=dataset.rel_path,
                    old_size=dataset.size,
                    old_sha256=dataset.sha256,
                    size=size,
                    sha256=sha256,
                    md5=md5,
                    mtime_ns=mtime_ns,
                    locations=[_location(dataset, h, patch_id, revision) for h in held],
                    session=dataset.session,
                    new_revision=revision,
                )
            )
        return journal

    async def _registered_and_hashed(
        self, parsed: list[tuple[str, Any, str]]
    ) -> tuple[
        dict[str, RegisteredDataset],
        dict[tuple[str, str, str], list[str]],
        dict[str, tuple[int, str, str, int]],
    ]:
        """:meth:`_registered` and :meth:`_hash` of every parsed path, side by side.

        The server lists the sessions' revisions while the local files are hashed (in
        worker threads); a path that matches nothing was hashed for nothing, and the plan
        is refused all the same before anything moves.
        """
        found: list[Any] = [None, None]

        async def run(which: int) -> None:
            if which == 0:
                found[0] = await self._registered(parsed)
            else:
                found[1] = await self._hash([path for path, _, _ in parsed])

        await each((0, 1), run, limiter=anyio.CapacityLimiter(2))
        (datasets, revisions), digests = found
        return datasets, revisions, digests

    async def _registered(
        self, parsed: list[tuple[str, Any, str]]
    ) -> tuple[dict[str, RegisteredDataset], dict[tuple[str, str, str], list[str]]]:
        """The registered revision of each path (by session, collection, revision, name).

        Also every revision of each of their datasets, by (session, collection, name).
        """
        from provena_like.modules.registration import _Sessions

        sessions = _Sessions(self.registration)
        by_session: dict[str, list[tuple[str, str]]] = {}
        for path, session, rel_path in parsed:
            try:
                item = await sessions.get(session)
            except UsageError:  # not registered, or its subject or lab unknown
                continue
            by_session.setdefault(item.id, []).append((path, rel_path))
        found: dict[str, RegisteredDataset] = {}
        revisions: dict[tuple[str, str, str], list[str]] = {}
        for session_id, wanted in by_session.items():
            known: dict[str, RegisteredDataset] = {}
            async for d in self.client.iter_registered_datasets(session=session_id, page_size=1000):
                known[d.rel_path] = d
                revisions.setdefault((d.session, d.collection, d.name), []).append(d.revision)
            for path, rel_path in wanted:
                if rel_path in known:
                    found[path] = known[rel_path]
        return found, revisions

    async def _hash(self, paths: list[str]) -> dict[str, tuple[int, str, str, int]]:
        """Size, sha256, md5 and mtime of each local file, small ones several to a thread hop."""
        out: dict[str, tuple[int, str, str, int]] = {}

        def some(batch: list[str]) -> int:
            """Hash files from the start of ``batch`` while their bytes fit in a chunk."""
            budget = CHUNK_SIZE
            for done, path in enumerate(batch):
                if done and budget <= 0:
                    return done
                before = os.stat(path)
                digests = hash_file(Path(path), md5=True)
                assert digests.sha256 is not None and digests.md5 is not None
                out[path] = (digests.size, digests.sha256, digests.md5, before.st_mtime_ns)
                budget -= digests.size
            return len(batch)

        async def hash_batch(batch: list[str]) -> None:
            while batch:
                batch = batch[await anyio.to_thread.run_sync(some, batch) :]

        await self._each(self._split(paths), hash_batch)
        return out

    async def _each(self, things: Iterable[Any], work: Callable[[Any], Awaitable[None]]) -> None:
        """``work`` on each thing, a few at once; the first failure stops the rest and is raised."""
        await each(things, work, limiter=self._limiter)

    # ------------------------------------------------------------------ 2.-5.

    async def _run(
        self,
        journal: Journal,
        repositories: RepositoriesArg,
        on_progress: ProgressCallback | None,
        *,
        resumed: bool,
    ) -> PatchOutcome:
        plan = PatchPlan.from_journal(journal)
        if journal.step == "done":
            return PatchOutcome(plan, False, "done", resumed)
        handles = sorted({loc.repository for f in journal.files for loc in f.locations})
        async with AsyncExitStack() as stack:
            repos = await self._open(stack, handles, repositories)
            if not resumed:  # journaled once every repository opened: nothing to resume before
                await self._save(journal)
            if resumed and journal.step in ("planned", "staged"):
                for f in journal.files:  # a resumed patch reads every staged copy back again
                    for loc in f.locations:
                        loc.verified = False
            if journal.step == "planned":
                if resumed:
                    await self._discard_temps(journal, repos)
                await self._register(journal, repos)
                await self._stage(journal, repos, on_progress)
            if journal.step == "staged":
                await self._verify(journal, repos)
            result: PatchResult | None = None
            if journal.step == "verified":
                result = await self._commit(journal, repos, resumed=resumed)
            if journal.step == "committed":
                await self._clean(journal, repos)
        if result is None and journal.files:
            try:
                result = await self.client.get_patch(journal.patch_id)
            except NotFound:
                result = None
        cleaned = tuple(
            (loc.repository, loc.old_path)
            for f in journal.files
            for loc in f.locations
            if loc.cleaned
        )
        plan = PatchPlan.from_journal(journal)  # with the new revisions force registered
        return PatchOutcome(plan, False, journal.step, resumed, result, cleaned)

    async def _open(
        self, stack: AsyncExitStack, handles: list[str], repositories: RepositoriesArg
    ) -> dict[str, Repository]:
        """The patch's repositories, all of them or none, opened by :meth:`resolver`."""
        given = given_repositories(repositories)
        missing = [h for h in handles if h not in given]
        resolver = self.resolver(repositories)
        opened = await stack.enter_async_context(await resolver.open(missing, access="write"))
        return {**given, **opened}

    async def _discard_temps(self, journal: Journal, repos: Mapping[str, Repository]) -> None:
        """Temp files a killed run left in a POSIX repository's staging folder."""
        for repo in repos.values():
            if isinstance(repo, PosixRepository):
                await repo.discard_incomplete(prefix=f".staging/{journal.patch_id}/")

    async def _register(self, journal: Journal, repos: Mapping[str, Repository]) -> None:
        """``force``: register each new revision (not present, not default) before staging."""
        if not any(f.new_revision is not None for f in journal.files):
            return
        try:
            await forced.register(self.client, journal)
        except forced.NewRevisionTaken as exc:
            await self._abort(journal, repos, str(exc))
        except APIStatusError as exc:
            if _refused(exc):
                await self._abort(journal, repos, f"the server refused the new revision: {exc}")
            raise
        finally:
            await self._save(journal)

    async def _stage(
        self,
        journal: Journal,
        repos: Mapping[str, Repository],
        on_progress: ProgressCallback | None,
    ) -> None:
        todo = [(f, loc) for f in journal.files for loc in f.locations if not loc.staged]
        files_total = sum(len(f.locations) for f in journal.files)
        total = sum(f.size * len(f.locations) for f in journal.files)
        staged = [(f, loc) for f in journal.files for loc in f.locations if loc.staged]
        done = [len(staged), sum(f.size for f, _ in staged)]
        last_save = [time.monotonic()]
        callback = [on_progress]

        async def report() -> None:
            if callback[0] is not None:
                event = TransferProgress(done[0], files_total, done[1], total)
                if not await deliver(callback[0], event):
                    callback[0] = None

        async def put(batch: list[tuple[JournalFile, JournalLocation]]) -> None:
            for f, _ in batch:
                _check_unchanged(f)
            repo = repos[batch[0][1].repository]
            infos = await repo.put_many([(f.path, loc.staged_path) for f, loc in batch])
            for (f, loc), info in zip(batch, infos, strict=True):
                if info.sha256 is not None and info.sha256 != f.sha256:
                    raise TransferError(
                        f"{f.path} changed since it was planned (its bytes are not the planned "
                        "ones): patch it again once it is final"
                    )
                loc.staged = True
                done[0] += 1
                done[1] += f.size
            await report()
            await self._read_back(repo, batch)  # while the other batches are staged
            if time.monotonic() - last_save[0] > _JOURNAL_EVERY:
                last_save[0] = time.monotonic()
                await self._save(journal)

        try:
            await report()
            await self._each(self._batches(todo), put)
        except BaseException:
            journal.save(self.journal_dir)  # also when cancelled: what was staged is known
            raise
        journal.step = "staged"
        if not all(loc.verified for f in journal.files for loc in f.locations):
            await self._save(journal)
        # else verify has nothing left to read back and journals "verified" at once: one
        # write of the journal (~60 ms for 1,000 files) less; a crash before it resumes from
        # the last save while staging (what it did not say was staged is staged again)

    def _batches(
        self, todo: list[tuple[JournalFile, JournalLocation]]
    ) -> list[list[tuple[JournalFile, JournalLocation]]]:
        """``todo`` in batches of one repository (``put_many``, ``stat_many``).

        A repository that stores or reads a batch better than file by file (S3: one engine
        batch; POSIX: several small files to a thread hop) does. Small batches keep the
        journal current (it is saved between them while staging).
        """
        by_repository: dict[str, list[tuple[JournalFile, JournalLocation]]] = {}
        for f, loc in todo:
            by_repository.setdefault(loc.repository, []).append((f, loc))
        split = [self._split(items) for items in by_repository.values()]
        # the repositories' batches in turn, so that every repository is busy from the start
        return [b for turn in itertools.zip_longest(*split) for b in turn if b is not None]

    def _split(self, items: list[T]) -> list[list[T]]:
        """``items`` in batches, enough of them for the concurrency (at most 64 items each)."""
        at_once = max(1, int(self._limiter.total_tokens))
        size = min(_BATCH_MOST, max(1, -(-len(items) // at_once)))
        return [items[i : i + size] for i in range(0, len(items), size)]

    async def _read_back(
        self, repo: Repository, batch: list[tuple[JournalFile, JournalLocation]]
    ) -> list[ObjectInfo | None]:
        """Read a batch's staged copies back (size, and sha256 as the store says it).

        By :meth:`~provena_like.repositories.Repository.confirm_many` (S3: the store's own md5
        of the bytes, its ETag, where it is one; the bytes read back and hashed otherwise),
        or every copy read back and hashed with :attr:`read_back_bytes`.

        Those that are the local file are marked verified; what else they are is for
        :meth:`_verify` to say.
        """
        paths = [loc.staged_path for _, loc in batch]
        if self.read_back_bytes:
            infos = await repo.stat_many(paths, verify=True)
        else:
            wanted = [Digests(size=f.size, sha256=f.sha256, md5=f.md5) for f, _ in batch]
            infos = await repo.confirm_many(paths, wanted)
        for (f, loc), info in zip(batch, infos, strict=True):
            if info is not None and (info.size, info.sha256) == (f.size, f.sha256):
                loc.verified = True
        return infos

    async def _verify(self, journal: Journal, repos: Mapping[str, Repository]) -> None:
        """Every staged copy verified, or the patch aborted.

        Staging reads each batch back as soon as it is stored (so reading back runs beside
        staging); what is left here are the copies not verified then (a resumed patch: all).
        """
        bad: list[str] = []

        async def check(batch: list[tuple[JournalFile, JournalLocation]]) -> None:
            repo = repos[batch[0][1].repository]
            infos = await self._read_back(repo, batch)
            for (f, loc), info in zip(batch, infos, strict=True):
                if loc.verified:
                    continue
                if info is None:
                    loc.staged = False
                    bad.append(f"{loc.repository}: {loc.staged_path} is missing")
                elif (info.size, info.sha256) != (f.size, f.sha256):
                    bad.append(
                        f"{loc.repository}: {loc.staged_path} reads back as {info.size} bytes, "
                        f"sha256 {info.sha256} (the file {f.path} is {f.size} bytes, sha256 "
                        f"{f.sha256})"
                    )

        todo = [(f, loc) for f in journal.files for loc in f.locations if not loc.verified]
        await self._each(self._batches(todo), check)
        if bad:
            reason = "a staged copy is not the local file: " + "; ".join(bad[:5])
            await self._abort(journal, repos, reason)
        journal.step = "verified"
        await self._save(journal)

    async def _abort(self, journal: Journal, repos: Mapping[str, Repository], reason: str) -> None:
        """Remove every staged object, journal the patch as aborted, raise."""

        async def remove(loc: JournalLocation) -> None:
            await repos[loc.repository].delete(loc.staged_path)

        await self._each([loc for f in journal.files for loc in f.locations], remove)
        journal.step, journal.error = "aborted", reason
        await self._save(journal)
        left = await forced.unregister(self.client, journal)
        if left:
            journal.error = f"{reason}; not removed: {'; '.join(left)}"
        await self._save(journal)
        raise PatchAborted(journal.patch_id, journal.error)

    async def _commit(
        self, journal: Journal, repos: Mapping[str, Repository], *, resumed: bool
    ) -> PatchResult:
        """One ``commit_patch``; a resumed patch first asks whether it committed already.

        A patch planned in this run can't have committed before: it asks nothing first (a
        ``patch_id`` given that an earlier patch used is refused by the commit, 409).
        """
        result: PatchResult | None = None
        if resumed:
            try:
                result = await self.client.get_patch(journal.patch_id)
            except NotFound:
                result = None
        if result is None:
            body = {
                "patch_id": journal.patch_id,
                "force": journal.force,
                "files": [_commit_file(f) for f in journal.files],
            }
            try:
                result = await self.client.commit_patch(body)
            except APIStatusError as exc:
                if _refused(exc):
                    await self._abort(journal, repos, f"the server refused the commit: {exc}")
                raise
        journal.old_locations = [old for patched in result.files for old in patched.old_locations]
        journal.step = "committed"
        await self._save(journal)
        return result

    async def _clean(self, journal: Journal, repos: Mapping[str, Repository]) -> None:
        """Delete the old objects the commit listed, a batch per repository."""
        by_old = {(loc.repository, loc.old_path): loc for f in journal.files for loc in f.locations}
        # a new revision's record (force) was registered not present: nothing is there
        new = {
            (loc.repository, loc.old_path)
            for f in journal.files
            if f.new_revision is not None
            for loc in f.locations
        }
        todo: dict[str, list[str]] = {}
        for old in journal.old_locations:
            if (old.repository, old.relative_path) in new and not old.exists:
                continue
            loc = by_old.get((old.repository, old.relative_path))
            if loc is None or not loc.cleaned:
                todo.setdefault(old.repository, []).append(old.relative_path)

        async def clean(handle: str) -> None:
            await repos[handle].delete_many(todo[handle])
            for path in todo[handle]:
                loc = by_old.get((handle, path))
                if loc is not None:
                    loc.cleaned = True

        try:
            await self._each(list(todo), clean)
        except BaseException:
            journal.save(self.journal_dir)  # also when cancelled: what was deleted is known
            raise
        journal.step = "done"
        # nothing left to resume: the server keeps the patch's history (get_patch,
        # iter_dataset_patches), and a directory of finished journals would only grow
        Journal.file_of(self.journal_dir, journal.patch_id).unlink(missing_ok=True)


def journal_paths(paths: Iterable[Path | str]) -> list[str]:
    """The form a journal keeps a patch's paths in: absolute, each once, sorted."""
    return sorted({str(Path(p).absolute()) for p in paths})


def _patch_id(patch_id: str | None) -> str:
    if patch_id is None:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(patch_id))
    except ValueError:
        raise UsageError(f"a patch id is a uuid, got {patch_id!r}") from None


def _wanted(repositories: RepositoriesArg) -> set[str] | None:
    """The repositories a list names (a mapping says how to reach some: it restricts none)."""
    if repositories is None or isinstance(repositories, Mapping):
        return None
    if isinstance(repositories, str):
        return {repositories}
    return set(repositories)


def _location(
    dataset: RegisteredDataset, handle: str, patch_id: str, revision: str | None = None
) -> JournalLocation:
    """The old path of ``dataset`` in ``handle`` and where this patch stages the new bytes.

    A record whose path is an earlier patch's staging path (the current object since that
    patch) is staged at the same path under this patch's folder. With ``revision`` (force),
    the new bytes are those of that new revision of the dataset: its path in the same
    session folder is where its record is registered (not present), and they are staged
    at that path under this patch's folder.
    """
    record = next(r for r in dataset.files if r.repository == handle)
    earlier = split_staging_path(record.relative_path)
    if earlier is not None:
        unstaged = record.model_copy(update={"relative_path": earlier[1]})
        dataset = dataset.model_copy(update={"files": [unstaged]})
    canonical = path_from_dataset(dataset, handle)
    old = record.relative_path
    if revision is not None:
        new_rel = make_rel_path(dataset.collection, revision, dataset.name)
        canonical = old = forced.new_path(canonical, dataset.rel_path, new_rel)
    return JournalLocation(
        repository=handle, old_path=old, staged_path=staging_path(canonical, patch_id)
    )


def _commit_file(f: JournalFile) -> dict[str, Any]:
    """A file of the commit's request: the revision patched in place, or force's new one."""
    if f.new_revision is not None:
        if f.new_dataset is None:
            raise UsageError(f"{f.path}: its new revision {f.new_revision!r} is not registered")
        dataset, expected = f.new_dataset, f.sha256
    else:
        dataset, expected = f.dataset, f.old_sha256
    return {
        "dataset": dataset,
        "expected_sha256": expected,
        "size": f.size,
        "sha256": f.sha256,
        "md5": f.md5,
        "locations": [
            {
                "repository": loc.repository,
                "relative_path": loc.staged_path,
                "size": f.size,
                "sha256": f.sha256,
            }
            for loc in f.locations
        ],
        **({"default": True} if f.new_revision is not None else {}),
    }


def _refused(exc: APIStatusError) -> bool:
    """A refusal to give up on (a 4xx that asking again won't change)."""
    return 400 <= exc.status_code < 500 and exc.status_code not in (401, 408, 429)


def _check_unchanged(f: JournalFile) -> None:
    try:
        info = os.stat(f.path)
    except FileNotFoundError:
        raise UsageError(f"{f.path} is gone since the patch was planned") from None
    if (info.st_size, info.st_mtime_ns) != (f.size, f.mtime_ns):
        raise UsageError(
            f"{f.path} changed since the patch was planned: patch it again once it is final"
        )
