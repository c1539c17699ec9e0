"""The Patcher's journal: one local JSON file per patch id, rewritten atomically at each step.

The journal holds the plan (which local file replaces which registered revision, its new
size and hashes, and per repository the old path and the staging path) and what is done:
the staged objects, the verification, the commit's answer (the old locations to clean up)
and the cleaned ones. A patch interrupted at any point (an error, Ctrl-C, a killed process)
continues from it: :meth:`Patcher.resume <provena_like.modules.patcher.Patcher.resume>`, or
``patch_files`` with the same paths.

It lives in ``<state dir>/patches/<patch_id>.json``: ``$PROVENA_STATE_DIR`` if set, else the
user's state folder (``platformdirs.user_state_dir("provena-like")``). Each write goes to a
temp file beside it, is fsync'd and renamed over it with ``os.replace``: a journal is the old
one or the new one, never a mix. A completed patch's journal is removed (the server keeps
its history); an aborted one stays, saying why.

Example:
    ```python
    journal = Journal.load(journal_dir, patch_id)
    print(journal.step, len(journal.files))
    ```
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field

from provena_like._core.config import APP_NAME
from provena_like._core.errors import UsageError
from provena_like.models.registration import FileRecordInfo

__all__ = [
    "Journal",
    "JournalFile",
    "JournalLocation",
    "PatchStep",
    "default_journal_dir",
]

PatchStep = Literal["planned", "staged", "verified", "committed", "done", "aborted"]
"""How far a patch got: each step is recorded once it is complete."""

_FILE_PREFIX = ".tmp-"


def default_journal_dir() -> Path:
    """``$PROVENA_STATE_DIR/patches``, else ``<user state dir>/patches``.

    Example:
        ```python
        assert default_journal_dir().name == "patches"
        ```
    """
    explicit = os.environ.get("PROVENA_STATE_DIR")
    base = Path(explicit) if explicit else Path(platformdirs.user_state_dir(APP_NAME))
    return base / "patches"


class JournalLocation(BaseModel):
    """One repository's copy of a patched file.

    Attributes:
        repository: The repository's handle.
        old_path: Where the file record says the current bytes are; for a file ``force``
            registers as a new revision, that revision's file record (not present: nothing
            is there, and the protected revision's objects are never touched).
        staged_path: Where the patch puts the new bytes (the current path once committed).
        registered: ``force``: the new revision's file record here was registered.
        staged: The new bytes were put there.
        verified: Their size and sha256 were read back from the repository and matched.
        cleaned: The old object was deleted after the commit.
    """

    model_config = ConfigDict(extra="forbid")

    repository: str
    old_path: str
    staged_path: str
    registered: bool = False
    staged: bool = False
    verified: bool = False
    cleaned: bool = False


class JournalFile(BaseModel):
    """One local file and the registered revision it replaces.

    Attributes:
        path: The local file (absolute).
        dataset: The registered revision's id.
        rel_path: Its ``[collection/][#revision#/]name`` in its session.
        old_size: The revision's size when planned.
        old_sha256: Its sha256 when planned (the commit's ``expected_sha256``).
        size: The local file's size.
        sha256: The local file's sha256.
        md5: The local file's md5.
        mtime_ns: The local file's mtime when hashed (a change since is refused).
        locations: One per repository holding the revision.
        session: The revision's session (its handle).
        new_revision: ``force`` on a protected revision: the revision the new bytes are
            registered as (the protected one stays as it is).
        new_dataset: That new revision's id, once registered (what the commit switches).
    """

    model_config = ConfigDict(extra="forbid")

    path: str
    dataset: str
    rel_path: str
    old_size: int
    old_sha256: str
    size: int
    sha256: str
    md5: str
    mtime_ns: int
    locations: list[JournalLocation]
    session: str | None = None
    new_revision: str | None = None
    new_dataset: str | None = None


class Journal(BaseModel):
    """A patch's plan and progress (see the module docstring).

    Attributes:
        patch_id: The patch's id (a uuid: the server's key of the commit).
        created_at: When it was planned.
        step: The last step completed.
        force: Asked with ``force``.
        files: The files to patch.
        unchanged: Local files whose bytes are already the registered ones (nothing to do).
        old_locations: The commit's answer: per repository, the old objects to clean up.
        error: Why the patch was aborted (``step == "aborted"``).
    """

    model_config = ConfigDict(extra="forbid")

    patch_id: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    step: PatchStep = "planned"
    force: bool = False
    files: list[JournalFile] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    old_locations: list[FileRecordInfo] = Field(default_factory=list)
    error: str | None = None

    @property
    def finished(self) -> bool:
        """Done or aborted: nothing left to resume."""
        return self.step in ("done", "aborted")

    @property
    def paths(self) -> list[str]:
        """Every local path the patch was asked for (patched and unchanged), sorted."""
        return sorted([f.path for f in self.files] + self.unchanged)

    @staticmethod
    def file_of(directory: Path, patch_id: str) -> Path:
        """The journal file of ``patch_id`` in ``directory``."""
        return directory / f"{patch_id}.json"

    @classmethod
    def load(cls, directory: Path, patch_id: str) -> Journal:
        """Read the journal of ``patch_id``.

        Raises:
            UsageError: If there is none, or it can't be read.
        """
        path = cls.file_of(directory, patch_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"no journal of patch {patch_id} in {directory}") from None
        try:
            return cls.model_validate_json(text)
        except ValueError as exc:
            raise UsageError(f"the journal {path} can't be read: {exc}") from exc

    @classmethod
    def all(cls, directory: Path) -> list[Journal]:
        """Every readable journal in ``directory``, oldest first."""
        found: list[Journal] = []
        if not directory.is_dir():
            return found
        for path in directory.glob("*.json"):
            try:
                found.append(cls.model_validate_json(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return sorted(found, key=lambda j: j.created_at)

    @classmethod
    def unfinished_for(cls, directory: Path, paths: list[str]) -> Journal | None:
        """The newest unfinished journal of exactly these (absolute, sorted) paths, if any."""
        found = [j for j in cls.all(directory) if not j.finished and j.paths == paths]
        return found[-1] if found else None

    def save(self, directory: Path) -> None:
        """Write the journal atomically (temp file, fsync, ``os.replace``). Blocking."""
        directory.mkdir(parents=True, exist_ok=True)
        target = self.file_of(directory, self.patch_id)
        temp = directory / f"{_FILE_PREFIX}{secrets.token_hex(6)}-{target.name}"
        data = self.model_dump_json().encode()  # one pass in pydantic-core: a third of dumps
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(temp, target)
