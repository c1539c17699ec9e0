"""Repositories: the places a dataset's files live, behind one contract.

A :class:`Repository` stores objects at repository-relative POSIX paths and can
:meth:`~Repository.put` (atomically), :meth:`~Repository.get` (checked before the local file
appears), :meth:`~Repository.stat` (size, and sha256 read back from the store with
``verify=True``), :meth:`~Repository.delete` (idempotent) and :meth:`~Repository.list` them.
Three implementations: :class:`S3Repository` (the storage engine with scoped, refreshing
credentials), :class:`PosixRepository` (a directory tree on a mounted disk) and
:class:`TransferRepository` (a directory on a Globus collection, moved by transfer tasks
through a :class:`LocalEndpoint`); :meth:`~Repository.put_many` and
:meth:`~Repository.delete_many` handle many files at once (one Globus task).

:mod:`~provena_like.repositories.mapping` says where a registered dataset's file is in a
repository (:func:`path_from_dataset`, :func:`paths_from_datasets`) and where a patch stages
its new bytes (:func:`staging_path`). :class:`RepositoryResolver`
(:mod:`~provena_like.repositories.resolve`) opens the repository of a registry handle: S3 with
credentials the server mints for it, POSIX at the local directory where this machine mounts it.

This package sits between the L3 modules and the clients and storage engine: it imports
``storage``, ``clients``, ``models`` and ``alf``, never ``modules`` or the server.

Example:
    ```python
    from provena_like.repositories import PosixRepository, path_from_dataset

    async with PosixRepository("/mnt/lab-server/data", name="lab-server") as repo:
        path = path_from_dataset(dataset, lab_server_handle)
        info = await repo.stat(path, verify=True)
        assert info is not None and info.sha256 == dataset.sha256
    ```
"""

from provena_like.repositories.base import (
    ObjectInfo,
    ObjectNotFound,
    Repository,
    RepositoryKind,
    check_path,
    check_prefix,
)
from provena_like.repositories.mapping import (
    STAGING_FOLDER,
    file_record,
    is_staging_path,
    path_from_dataset,
    paths_from_datasets,
    split_staging_path,
    staging_path,
)
from provena_like.repositories.posix import TEMP_PREFIX, PosixRepository
from provena_like.repositories.resolve import (
    OpenRepositories,
    RepositoryResolver,
    RepositoryUnavailable,
)
from provena_like.repositories.s3 import S3Repository, parse_s3_root
from provena_like.repositories.transfer import (
    SPOOL,
    LocalEndpoint,
    TransferRepository,
    globus_root,
)

__all__ = [
    "SPOOL",
    "STAGING_FOLDER",
    "TEMP_PREFIX",
    "LocalEndpoint",
    "ObjectInfo",
    "ObjectNotFound",
    "OpenRepositories",
    "PosixRepository",
    "Repository",
    "RepositoryKind",
    "RepositoryResolver",
    "RepositoryUnavailable",
    "S3Repository",
    "TransferRepository",
    "check_path",
    "check_prefix",
    "file_record",
    "globus_root",
    "is_staging_path",
    "parse_s3_root",
    "path_from_dataset",
    "paths_from_datasets",
    "split_staging_path",
    "staging_path",
]
