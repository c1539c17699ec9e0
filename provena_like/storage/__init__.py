"""The S3 engine for a dataset's files.

Scoped credentials that refresh themselves (:mod:`~provena_like.storage.credentials`),
concurrent verified transfers with per-file results and typed progress events
(:class:`TransferEngine`), safe key handling (:mod:`~provena_like.storage.keys`), streaming
checksums (:mod:`~provena_like.storage.hashing`), the local cache of file hashes
(:mod:`~provena_like.storage.cache`) and cloudpathlib paths for interactive use
(:func:`dataset_path`).

The names are imported on first access (PEP 562): importing
:mod:`provena_like.storage.events` or ``provena_like.storage.results`` does not load the S3
stack (aioboto3, botocore, aiohttp), which only :class:`TransferEngine`, the credentials and
:func:`dataset_path` need.

Example:
    ```python
    from provena_like.storage import RefreshingCredentials, TransferEngine
    async with TransferEngine(RefreshingCredentials(provider)) as engine:
        result = await engine.upload(Path("./data"), progress=print)
        result.raise_for_failures()
    ```
"""

import typing as _typing

from provena_like._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    from provena_like.storage._sync import SyncContext
    from provena_like.storage.cache import HashCache, default_cache_dir
    from provena_like.storage.credentials import (
        Access,
        CredentialsProvider,
        RefreshingCredentials,
        S3Credentials,
    )
    from provena_like.storage.engine import TransferEngine
    from provena_like.storage.events import (
        BytesTransferred,
        FileFinished,
        FileStarted,
        HashingProgress,
        ProgressCallback,
        TransferEvent,
        TransferProgress,
        UploadInterrupted,
    )
    from provena_like.storage.hashing import Digests, StreamingHasher, hash_file, hash_file_async
    from provena_like.storage.keys import (
        RESERVED_KEYS,
        check_uploadable,
        local_target,
        prepare_local_target,
        validate_prefix,
        validate_relative_key,
    )
    from provena_like.storage.listing import IncompleteUpload, RemoteObject
    from provena_like.storage.paths import dataset_path
    from provena_like.storage.results import (
        UNCHANGED,
        CheckStatus,
        FileCheck,
        FileResult,
        FileStatus,
        TransferFailed,
        TransferResult,
        VerifyResult,
    )
    from provena_like.storage.retry import S3RetryPolicy
    from provena_like.storage.selection import DownloadSpec, is_partial, local_files, matches

_LAZY = {
    "Access": "provena_like.storage.credentials",
    "BytesTransferred": "provena_like.storage.events",
    "CheckStatus": "provena_like.storage.results",
    "CredentialsProvider": "provena_like.storage.credentials",
    "Digests": "provena_like.storage.hashing",
    "DownloadSpec": "provena_like.storage.selection",
    "FileCheck": "provena_like.storage.results",
    "FileFinished": "provena_like.storage.events",
    "FileResult": "provena_like.storage.results",
    "FileStarted": "provena_like.storage.events",
    "HashingProgress": "provena_like.storage.events",
    "FileStatus": "provena_like.storage.results",
    "HashCache": "provena_like.storage.cache",
    "IncompleteUpload": "provena_like.storage.listing",
    "ProgressCallback": "provena_like.storage.events",
    "RESERVED_KEYS": "provena_like.storage.keys",
    "RefreshingCredentials": "provena_like.storage.credentials",
    "RemoteObject": "provena_like.storage.listing",
    "S3Credentials": "provena_like.storage.credentials",
    "S3RetryPolicy": "provena_like.storage.retry",
    "StreamingHasher": "provena_like.storage.hashing",
    "SyncContext": "provena_like.storage._sync",
    "TransferEngine": "provena_like.storage.engine",
    "TransferEvent": "provena_like.storage.events",
    "TransferFailed": "provena_like.storage.results",
    "TransferProgress": "provena_like.storage.events",
    "UploadInterrupted": "provena_like.storage.events",
    "TransferResult": "provena_like.storage.results",
    "UNCHANGED": "provena_like.storage.results",
    "VerifyResult": "provena_like.storage.results",
    "check_uploadable": "provena_like.storage.keys",
    "dataset_path": "provena_like.storage.paths",
    "default_cache_dir": "provena_like.storage.cache",
    "hash_file": "provena_like.storage.hashing",
    "hash_file_async": "provena_like.storage.hashing",
    "is_partial": "provena_like.storage.selection",
    "local_files": "provena_like.storage.selection",
    "local_target": "provena_like.storage.keys",
    "matches": "provena_like.storage.selection",
    "prepare_local_target": "provena_like.storage.keys",
    "validate_prefix": "provena_like.storage.keys",
    "validate_relative_key": "provena_like.storage.keys",
}
"""Public names imported on first access, and the module each comes from."""

__all__ = [
    "RESERVED_KEYS",
    "UNCHANGED",
    "Access",
    "BytesTransferred",
    "CheckStatus",
    "CredentialsProvider",
    "Digests",
    "DownloadSpec",
    "FileCheck",
    "FileFinished",
    "FileResult",
    "FileStarted",
    "FileStatus",
    "HashCache",
    "HashingProgress",
    "IncompleteUpload",
    "ProgressCallback",
    "RefreshingCredentials",
    "RemoteObject",
    "S3Credentials",
    "S3RetryPolicy",
    "StreamingHasher",
    "SyncContext",
    "TransferEngine",
    "TransferEvent",
    "TransferFailed",
    "TransferProgress",
    "TransferResult",
    "UploadInterrupted",
    "VerifyResult",
    "check_uploadable",
    "dataset_path",
    "default_cache_dir",
    "hash_file",
    "hash_file_async",
    "is_partial",
    "local_files",
    "local_target",
    "matches",
    "prepare_local_target",
    "validate_prefix",
    "validate_relative_key",
]


__getattr__ = _lazy_exports(__name__, _LAZY, globals())
