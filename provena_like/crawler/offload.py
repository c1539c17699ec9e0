"""Moving results files somewhere safe: transfer, read back, and only then delete the source.

Xtract's ``offload_metadata`` deleted the source whatever the transfer's outcome.
:func:`offload` sends a results file (or every file of a folder) to a destination, then
reads each copy back and compares its size and sha256 with the local file; the source is
deleted only when ``delete_source`` is set **and every file was transferred and verified**.
Any failure keeps the whole source, and the result says which files failed and why.

Destinations:

- a dataset (an :class:`~provena_like.modules.interactive.InteractiveDataset`): the files are
  uploaded and registered in its manifest under ``prefix``, then downloaded again to a temp
  folder and checked against the local sha256 (the transfer engine refuses a copy whose
  bytes differ);
- any :class:`~provena_like.repositories.Repository`: a directory of a transfer-service (or
  Globus) collection through a :class:`~provena_like.repositories.TransferRepository`, an
  S3 prefix, a POSIX directory; stored with ``put_many`` and read back with
  ``stat(verify=True)`` (the sha256 of the bytes in the store).

Example:
    ```python
    from provena_like.repositories import PosixRepository

    results = Path("results.jsonl")
    results.write_text('{"kind": "file", "source": "local:/d", "path": "a.csv"}')
    async with PosixRepository(Path("safe")) as repo:
        done = await offload(results, repo, prefix="crawls/", delete_source=True)
    assert done.ok and done.source_deleted and not results.exists()
    ```
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import anyio.to_thread

from provena_like._core.errors import ProvenaError, UsageError
from provena_like.repositories.base import Repository

if TYPE_CHECKING:
    from provena_like.modules.interactive import InteractiveDataset

__all__ = ["OffloadResult", "OffloadedFile", "offload"]


@dataclass(frozen=True)
class OffloadedFile:
    """One file of an offload.

    Attributes:
        local: The source file.
        path: Where it went (relative to the destination).
        size: Its size.
        sha256: Its sha256 (of the local file).
        status: ``ok`` (transferred and verified) or ``failed``.
        error: Why it failed.
    """

    local: Path
    path: str
    size: int
    sha256: str
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None


@dataclass(frozen=True)
class OffloadResult:
    """What an offload did.

    Attributes:
        files: One per source file.
        source_deleted: Whether the source was deleted (only when every file is ``ok``).
    """

    files: list[OffloadedFile] = field(default_factory=list)
    source_deleted: bool = False

    @property
    def ok(self) -> bool:
        """Whether every file was transferred and verified."""
        return all(f.status == "ok" for f in self.files)

    @property
    def failed(self) -> list[OffloadedFile]:
        """The files that were not transferred, or whose copy didn't match."""
        return [f for f in self.files if f.status != "ok"]


def _plan(source: Path, prefix: str) -> list[OffloadedFile]:
    """Each source file with its destination path, size and sha256 (in a worker thread)."""
    if source.is_file():
        pairs = [(source, source.name)]
    elif source.is_dir():
        pairs = [
            (p, p.relative_to(source).as_posix())
            for p in sorted(source.rglob("*"))
            if p.is_file() and not p.is_symlink()
        ]
    else:
        raise UsageError(f"nothing to offload at {source}: not a file or folder")
    planned = []
    for local, relative in pairs:
        digest = hashlib.sha256()
        with local.open("rb") as fh:
            while chunk := fh.read(1024 * 1024):
                digest.update(chunk)
        size = local.stat().st_size
        planned.append(OffloadedFile(local, prefix + relative, size, digest.hexdigest()))
    return planned


def _failed(f: OffloadedFile, error: str) -> OffloadedFile:
    return OffloadedFile(f.local, f.path, f.size, f.sha256, "failed", error)


async def _to_repository(repo: Repository, files: list[OffloadedFile]) -> list[OffloadedFile]:
    try:
        await repo.put_many([(f.local, f.path) for f in files])
    except (ProvenaError, OSError) as err:  # the batch stopped: what it stored is checked
        error: str | None = f"transfer failed: {type(err).__name__}: {err}"
    else:
        error = None
    out = []
    for f in files:
        try:
            info = await repo.stat(f.path, verify=True)
        except (ProvenaError, OSError) as err:
            out.append(_failed(f, f"read-back failed: {err}"))
            continue
        if info is None:
            out.append(_failed(f, error or "not found at the destination after the transfer"))
        elif (info.size, info.sha256) != (f.size, f.sha256):
            out.append(_failed(f, f"the copy differs: {info.size} bytes, sha256 {info.sha256}"))
        else:
            out.append(f)
    return out


async def _to_dataset(
    ds: InteractiveDataset, source: Path, prefix: str, files: list[OffloadedFile]
) -> list[OffloadedFile]:
    try:
        # a folder's contents keep their paths; a file its name (both under the prefix)
        sent = await ds.upload(source if source.is_dir() else [source], prefix=prefix)
    except ProvenaError as err:  # refused before any file (e.g. no write access)
        return [_failed(f, f"transfer failed: {type(err).__name__}: {err}") for f in files]
    staged = Path(await anyio.to_thread.run_sync(tempfile.mkdtemp))
    try:
        errors = {r.path: r.reason or r.status for r in sent if r.status != "ok"}
        back = await ds.download_objects(
            [(f.path, f.path, f.sha256, f.size) for f in files if f.path not in errors],
            staged,
        )
        errors.update({r.path: f"read back: {r.reason}" for r in back if not r.ok})
    finally:
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(staged, ignore_errors=True))
    uploaded = {r.path for r in sent}
    return [
        _failed(f, f"transfer failed: {errors[f.path]}")
        if f.path in errors
        else f
        if f.path in uploaded
        else _failed(f, "transfer failed: not uploaded")
        for f in files
    ]


def _delete(source: Path, files: list[OffloadedFile]) -> None:
    """Delete the offloaded files, then the folders they leave empty."""
    for f in files:
        f.local.unlink(missing_ok=True)
    if source.is_dir():
        for folder in sorted((p for p in source.rglob("*") if p.is_dir()), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()
        if not any(source.iterdir()):
            source.rmdir()


async def offload(
    source: Path | str,
    dest: InteractiveDataset | Repository,
    *,
    prefix: str = "",
    delete_source: bool = False,
) -> OffloadResult:
    """Send a results file (or a folder of them) to ``dest``; verify; maybe delete the source.

    Args:
        source: A file (it keeps its name) or a folder (its files keep their paths in it).
        dest: A dataset (``await pv.datastore.interactive(handle)``) or a repository (a
            :class:`~provena_like.repositories.TransferRepository` on a collection path,
            an S3 or POSIX one).
        prefix: A folder in the destination to put them in (``"crawls/2026-12-06/"``).
        delete_source: Delete the source files once **every** file was transferred and its
            copy read back with the same size and sha256; any failure keeps them all.
            (A folder's files that appeared during the offload are kept, and so is the
            folder then.)

    Returns:
        Each file's outcome, and whether the source was deleted.

    Raises:
        UsageError: ``source`` is neither a file nor a folder, or ``prefix`` doesn't end in
            ``/``.

    Example:
        ```python
        ds = await pv.datastore.interactive(dataset_id)
        Path("results.jsonl").write_text("{}")
        done = await offload("results.jsonl", ds, prefix="crawls/", delete_source=True)
        assert done.ok and done.source_deleted
        ```
    """
    if prefix and not prefix.endswith("/"):
        raise UsageError(f"prefix must be a folder ending in '/', got {prefix!r}")
    source = Path(source)
    planned = await anyio.to_thread.run_sync(_plan, source, prefix)
    if isinstance(dest, Repository):
        done = await _to_repository(dest, planned)
    else:
        done = await _to_dataset(dest, source, prefix, planned)
    result = OffloadResult(files=done)
    if delete_source and result.ok and done:
        await anyio.to_thread.run_sync(_delete, source, done)
        return OffloadResult(files=done, source_deleted=True)
    return result
