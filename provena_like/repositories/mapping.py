"""Where a registered dataset's file is in a repository, and where a patch stages it.

Pure functions, no I/O. A registered dataset
(:class:`~provena_like.models.registration.RegisteredDataset`) has one file record per
repository holding it (``dataset.files``), each with a
``relative_path`` ``[lab/Subjects/]subject/YYYY-MM-DD/NNN/[collection/][#revision#/]name``.
:func:`path_from_dataset` turns a dataset into the path of its object in one repository:

- the file record is the one of ``repository`` (a repository handle), else the first
  record whose file exists, else the first record;
- the session folders are the record's, the rest (collection, ``#revision#`` folder, name)
  is checked against the dataset's own: a record whose path lost the revision folder gets
  it back (the case ibllib#737 fixed in ibllib's patcher), any other disagreement is refused;
- ``uuid=True`` puts the dataset's id before the extension (``name.<uuid>.ext``: how HTTP
  and S3 mirrors of ONE name files); without it a UUID in the name is removed;
- ``root`` is put in front (a mount point, a bucket URL) and the result is no longer a
  repository path.

:func:`paths_from_datasets` is the list form; unlike ibllib's list input (which calls
``path_from_dataset(d)`` for each element and drops ``repository``, ``uuid`` and ``root``)
every element gets the same arguments.

A patch writes the new bytes at :func:`staging_path` first: ``.staging/<patch_id>/<path>``.
That folder can never hold a real ALF dataset: a lab folder is letters, digits and
underscores only (no ``.``), so ``.staging`` could only be a subject folder, which must be
followed by a ``YYYY-MM-DD`` date folder, and a patch id is never a date
(:func:`staging_path` refuses one). Repositories that hold non-ALF files must keep the
top-level ``.staging/`` folder free too.

Example:
    ```python
    path = path_from_dataset(dataset, repository_id, uuid=True)
    staged = staging_path(path, "p-7f3a")
    assert split_staging_path(staged) == ("p-7f3a", path)
    ```
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from provena_like._core.errors import UsageError
from provena_like.alf import AlfError, add_uuid, remove_uuid, split_session_path
from provena_like.models.registration import FileRecordInfo, RegisteredDataset
from provena_like.repositories.base import check_path

__all__ = [
    "STAGING_FOLDER",
    "file_record",
    "is_staging_path",
    "path_from_dataset",
    "paths_from_datasets",
    "split_staging_path",
    "staging_path",
]

STAGING_FOLDER = ".staging"
"""The top-level folder of every repository where patches stage new bytes."""

_PATCH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_DATE_LIKE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def file_record(dataset: RegisteredDataset, repository: str | None = None) -> FileRecordInfo:
    """The dataset's file record in ``repository``, else its first existing one, else its first.

    Args:
        dataset: A registered dataset.
        repository: A repository handle, or ``None`` for the first record whose file exists.

    Returns:
        The file record.

    Raises:
        UsageError: If the dataset has no file record (in ``repository``).

    Example:
        ```python
        record = file_record(dataset, repository_id)
        print(record.relative_path, record.exists)
        ```
    """
    records = dataset.files
    if repository is not None:
        for record in records:
            if record.repository == repository:
                return record
        raise UsageError(f"dataset {dataset.id} has no file record in repository {repository}")
    if not records:
        raise UsageError(f"dataset {dataset.id} has no file record")
    return next((record for record in records if record.exists), records[0])


def _join_root(root: str | PurePosixPath | None, path: str) -> str:
    if root is None:
        return path
    text = root.as_posix() if isinstance(root, PurePosixPath) else str(root)
    return f"{text.rstrip('/')}/{path}" if text.rstrip("/") else f"{text}{path}"


def path_from_dataset(
    dataset: RegisteredDataset,
    repository: str | None = None,
    *,
    uuid: bool = False,
    root: str | PurePosixPath | None = None,
) -> str:
    """The path of a registered dataset's object in a repository (see the module docstring).

    Args:
        dataset: A registered dataset, with its file records.
        repository: The repository handle whose file record to use (default: the first
            record whose file exists, else the first).
        uuid: Put the dataset's id before the extension (``name.<uuid>.ext``).
        root: Put in front of the path (``"/mnt/lab"``, ``"s3://bucket/data"``).

    Returns:
        The repository-relative POSIX path, or ``root/path`` when ``root`` is given.

    Raises:
        UsageError: If the dataset has no such file record, its id is unknown while
            ``uuid`` is asked, or the record's path doesn't hold the dataset's session,
            collection, revision and name.

    Example:
        ```python
        path = path_from_dataset(dataset)
        assert path == "lab/Subjects/m1/2024-01-31/001/alf/#2024-02-01#/a.b.npy"
        path_from_dataset(dataset, uuid=True, root="/mnt/lab")
        # '/mnt/lab/lab/Subjects/m1/2024-01-31/001/alf/#2024-02-01#/a.b.<uuid>.npy'
        ```
    """
    record = file_record(dataset, repository)
    relative = record.relative_path
    try:
        _, _, rest = split_session_path(relative)
    except AlfError as exc:
        raise UsageError(
            f"the file record of dataset {dataset.id} holds no session: {relative!r}"
        ) from exc
    session_folders = relative[: len(relative) - len(rest)].rstrip("/")
    expected = dataset.rel_path
    found = remove_uuid(rest)
    if found != expected:
        without = "/".join(p for p in (dataset.collection, dataset.name) if p)
        if not (dataset.revision and found == without):
            raise UsageError(
                f"the file record of dataset {dataset.id} ({relative!r}) doesn't match its "
                f"collection, revision and name ({expected!r})"
            )
        # the record lost the #revision# folder: the object is in it (ibllib#737)
    path = f"{session_folders}/{expected}"
    if uuid:
        if dataset.id is None:
            raise UsageError("a dataset without an id (a dry run's plan) has no UUID name")
        path = add_uuid(path, dataset.id)
    check_path(path)
    return _join_root(root, path)


def paths_from_datasets(
    datasets: Iterable[RegisteredDataset],
    repository: str | None = None,
    *,
    uuid: bool = False,
    root: str | PurePosixPath | None = None,
) -> list[str]:
    """:func:`path_from_dataset` for each dataset, every one with the same arguments.

    Example:
        ```python
        paths = paths_from_datasets(datasets, repository_id, uuid=True, root="/mnt/lab")
        assert len(paths) == len(datasets)
        ```
    """
    return [path_from_dataset(d, repository, uuid=uuid, root=root) for d in datasets]


def _check_patch_id(patch_id: str) -> str:
    if not isinstance(patch_id, str) or not _PATCH_ID.fullmatch(patch_id):
        raise UsageError(
            f"a patch id is 1-64 letters, digits, '_' and '-' (starting with a letter or "
            f"digit), got {patch_id!r}"
        )
    if _DATE_LIKE.fullmatch(patch_id):
        raise UsageError(f"a patch id can't look like a date (an ALF session folder): {patch_id!r}")
    return patch_id


def staging_path(path: str, patch_id: str) -> str:
    """Where patch ``patch_id`` stages the new bytes of ``path``: ``.staging/<patch_id>/<path>``.

    Args:
        path: The object's repository path.
        patch_id: The patch's id: 1-64 letters, digits, ``_`` and ``-``, not a date.

    Returns:
        The staging path (never the path of a real ALF dataset: see the module docstring).

    Raises:
        UsageError: If the patch id is invalid, or ``path`` is itself a staging path.
        UnsafePath: If ``path`` is unsafe.

    Example:
        ```python
        staged = staging_path("m1/2024-01-31/001/a.b.npy", "p1")
        assert staged == ".staging/p1/m1/2024-01-31/001/a.b.npy"
        ```
    """
    check_path(path)
    _check_patch_id(patch_id)
    if is_staging_path(path):
        raise UsageError(f"{path!r} is already a staging path")
    return f"{STAGING_FOLDER}/{patch_id}/{path}"


def is_staging_path(path: str) -> bool:
    """Whether ``path`` is under the reserved ``.staging/`` folder.

    Example:
        ```python
        assert is_staging_path(".staging/p1/a.b.npy") and not is_staging_path("a.b.npy")
        ```
    """
    return path.startswith(STAGING_FOLDER + "/")


def split_staging_path(path: str) -> tuple[str, str] | None:
    """``(patch_id, path)`` of a staging path, ``None`` for any other path.

    Example:
        ```python
        assert split_staging_path(".staging/p1/m1/a.b.npy") == ("p1", "m1/a.b.npy")
        assert split_staging_path("m1/a.b.npy") is None
        ```
    """
    if not is_staging_path(path):
        return None
    _, patch_id, rest = path.split("/", 2) if path.count("/") >= 2 else (None, "", "")
    if not rest or not _PATCH_ID.fullmatch(patch_id) or _DATE_LIKE.fullmatch(patch_id):
        return None
    return patch_id, rest
