"""The S3 engine for a dataset's files.

Scoped credentials that refresh themselves (:mod:`~provena_like.storage.credentials`),
concurrent verified transfers with per-file results and typed progress events
(:class:`TransferEngine`), safe key handling (:mod:`~provena_like.storage.keys`), streaming
checksums (:mod:`~provena_like.storage.hashing`) and cloudpathlib paths for interactive use
(:func:`dataset_path`).

Example:
    >>> from provena_like.storage import RefreshingCredentials, TransferEngine
    >>> async with TransferEngine(RefreshingCredentials(provider)) as engine:  # doctest: +SKIP
    ...     result = await engine.upload(Path("./data"), progress=print)
    ...     result.raise_for_failures()
"""

from provena_like.storage.credentials import (
    Access,
    CredentialsProvider,
    RefreshingCredentials,
    S3Credentials,
)
from provena_like.storage.engine import DownloadSpec, TransferEngine
from provena_like.storage.events import (
    BytesTransferred,
    FileFinished,
    FileStarted,
    ProgressCallback,
    TransferEvent,
    TransferProgress,
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
from provena_like.storage.results import FileResult, FileStatus, TransferFailed, TransferResult
from provena_like.storage.retry import S3RetryPolicy

__all__ = [
    "RESERVED_KEYS",
    "Access",
    "BytesTransferred",
    "CredentialsProvider",
    "Digests",
    "DownloadSpec",
    "FileFinished",
    "FileResult",
    "FileStarted",
    "FileStatus",
    "IncompleteUpload",
    "ProgressCallback",
    "RefreshingCredentials",
    "RemoteObject",
    "S3Credentials",
    "S3RetryPolicy",
    "StreamingHasher",
    "TransferEngine",
    "TransferEvent",
    "TransferFailed",
    "TransferProgress",
    "TransferResult",
    "check_uploadable",
    "dataset_path",
    "hash_file",
    "hash_file_async",
    "local_target",
    "prepare_local_target",
    "validate_prefix",
    "validate_relative_key",
]
