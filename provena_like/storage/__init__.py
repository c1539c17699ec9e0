"""The S3 engine for a dataset's files.

Scoped credentials that refresh themselves (:mod:`~provena_like.storage.credentials`),
concurrent verified transfers with per-file results and typed progress events
(:class:`TransferEngine`), safe key handling (:mod:`~provena_like.storage.keys`), streaming
checksums (:mod:`~provena_like.storage.hashing`), the local cache of file hashes
(:mod:`~provena_like.storage.cache`) and cloudpathlib paths for interactive use
(:func:`dataset_path`).

Example:
    ```python
    from provena_like.storage import RefreshingCredentials, TransferEngine
    async with TransferEngine(RefreshingCredentials(provider)) as engine:
        result = await engine.upload(Path("./data"), progress=print)
        result.raise_for_failures()
    ```
"""

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
