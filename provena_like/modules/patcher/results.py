"""What :meth:`Patcher.patch_files <provena_like.modules.patcher.Patcher.patch_files>` answers.

A :class:`PatchPlan` is the plan (a dry run's answer, and part of every answer): which
registered revision each local file replaces and, per repository, the object it replaces
and where the new bytes are staged. A :class:`PatchOutcome` adds what was done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from provena_like.models.patching import PatchResult
from provena_like.modules.patcher.journal import Journal, PatchStep

__all__ = ["PatchOutcome", "PatchPlan", "PlannedFile", "PlannedLocation"]


@dataclass(frozen=True, slots=True)
class PlannedLocation:
    """One repository's copy of a planned file.

    Attributes:
        repository: The repository's handle.
        old_path: The object the patch replaces (the file record's path); for a file
            registered as a new revision (``force``), that revision's record, where nothing is.
        staged_path: Where the new bytes go (the record's path once committed).
    """

    repository: str
    old_path: str
    staged_path: str


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """A local file and the registered revision it replaces.

    Attributes:
        path: The local file.
        dataset: The registered revision's id.
        rel_path: Its path in its session (``[collection/][#revision#/]name``).
        old_size: The revision's size now.
        size: The new size.
        sha256: The new sha256.
        locations: One per repository holding the revision.
        new_revision: ``force`` on a protected revision: the new revision the bytes are
            registered as, made the default at the commit (the protected revision
            ``dataset`` stays as it is); None for a patch in place.
        new_dataset: That new revision's id, once registered (None in a dry run).
    """

    path: Path
    dataset: str
    rel_path: str
    old_size: int
    size: int
    sha256: str
    locations: tuple[PlannedLocation, ...]
    new_revision: str | None = None
    new_dataset: str | None = None


@dataclass(frozen=True, slots=True)
class PatchPlan:
    """The plan of a patch.

    Attributes:
        patch_id: The patch's id (its journal's name, the server's key of the commit).
        files: The files to patch.
        unchanged: Local files whose bytes are already the registered ones (left alone).
    """

    patch_id: str
    files: tuple[PlannedFile, ...]
    unchanged: tuple[Path, ...] = ()

    @property
    def repositories(self) -> dict[str, list[tuple[PlannedFile, PlannedLocation]]]:
        """Per repository handle, each file to patch there with its location."""
        by: dict[str, list[tuple[PlannedFile, PlannedLocation]]] = {}
        for f in self.files:
            for loc in f.locations:
                by.setdefault(loc.repository, []).append((f, loc))
        return by

    @property
    def bytes_total(self) -> int:
        """The bytes to stage, over every repository."""
        return sum(f.size * len(f.locations) for f in self.files)

    @classmethod
    def from_journal(cls, journal: Journal) -> PatchPlan:
        """The plan a journal records."""
        return cls(
            patch_id=journal.patch_id,
            files=tuple(
                PlannedFile(
                    path=Path(f.path),
                    dataset=f.dataset,
                    rel_path=f.rel_path,
                    old_size=f.old_size,
                    size=f.size,
                    sha256=f.sha256,
                    locations=tuple(
                        PlannedLocation(loc.repository, loc.old_path, loc.staged_path)
                        for loc in f.locations
                    ),
                    new_revision=f.new_revision,
                    new_dataset=f.new_dataset,
                )
                for f in journal.files
            ),
            unchanged=tuple(Path(p) for p in journal.unchanged),
        )


@dataclass(frozen=True, slots=True)
class PatchOutcome:
    """What a patch did.

    Attributes:
        plan: The plan.
        dry_run: Only planned: nothing was staged, committed or deleted.
        step: How far the patch got (``"done"`` when complete, ``"planned"`` for a dry run).
        resumed: It continued from an earlier run's journal.
        result: The server's answer to the commit (``None`` for a dry run or nothing to do).
        cleaned: ``(repository, path)`` of each old object deleted after the commit.
    """

    plan: PatchPlan
    dry_run: bool
    step: PatchStep
    resumed: bool = False
    result: PatchResult | None = None
    cleaned: tuple[tuple[str, str], ...] = field(default=())

    @property
    def patch_id(self) -> str:
        """The patch's id."""
        return self.plan.patch_id
