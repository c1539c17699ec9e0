"""The Patcher (L3, ``pv.patcher``): replace, delete and check registered files everywhere.

Patching is staged, verified and resumable: see :mod:`provena_like.modules.patcher.patch`
for the steps and :mod:`provena_like.modules.patcher.journal` for the journal a patch resumes
from. Deleting and checking datasets (:meth:`Patcher.delete_datasets`,
:meth:`Patcher.check_datasets`) open the same repositories by the same rules
(:mod:`provena_like.modules.patcher.opening`).

Example:
    ```python
    outcome = await pv.patcher.patch_files(paths, dry_run=True)
    for handle, planned in outcome.plan.repositories.items():
        print(handle, [loc.old_path for _, loc in planned])
    ```
"""

from provena_like.modules.patcher.journal import Journal, PatchStep, default_journal_dir
from provena_like.modules.patcher.patch import (
    PatchAborted,
    Patcher,
    ProtectedDatasets,
    RepositoriesArg,
    UnknownFiles,
    journal_paths,
)
from provena_like.modules.patcher.results import (
    PatchOutcome,
    PatchPlan,
    PlannedFile,
    PlannedLocation,
)

__all__ = [
    "Journal",
    "PatchAborted",
    "PatchOutcome",
    "PatchPlan",
    "PatchStep",
    "Patcher",
    "PlannedFile",
    "PlannedLocation",
    "ProtectedDatasets",
    "RepositoriesArg",
    "UnknownFiles",
    "default_journal_dir",
    "journal_paths",
]
