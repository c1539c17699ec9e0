"""cloudpathlib paths bound to a dataset's scoped credentials, for interactive use.

:func:`dataset_path` returns a :class:`cloudpathlib.S3Path` whose client signs with the
given credentials against their endpoint, so ``path.read_text()``, ``path.iterdir()`` or
``path.open()`` work in a notebook exactly like local paths.

cloudpathlib is **blocking** (boto3 underneath) and makes several requests per operation
(it lists and HEADs 4-7 times per object operation, so the credentials must allow listing the
dataset prefix). It is for interactive exploration, not bulk transfer: use
:class:`~provena_like.storage.TransferEngine` for that. Async code must call it through a
worker thread:

```python
text = await anyio.to_thread.run_sync(path.read_text)
```

The credentials are captured when the path is made: once they expire, make a new path from
fresh credentials.

Example:
    ```python
    root = dataset_path(creds)
    assert sorted(p.name for p in root.iterdir()) == ['metadata.json', 'raw']
    (root / "raw" / "a.csv").read_text()[:20]
    ```
"""

from __future__ import annotations

import tempfile

from botocore.session import Session as BotocoreSession
from cloudpathlib import S3Client, S3Path
from cloudpathlib.enums import FileCacheMode

from provena_like.storage.credentials import S3Credentials
from provena_like.storage.keys import validate_prefix

__all__ = ["dataset_path", "s3_client_for"]


def s3_client_for(credentials: S3Credentials) -> S3Client:
    """A cloudpathlib ``S3Client`` that signs with ``credentials`` (explicit keys only).

    Example:
        ```python
        client = s3_client_for(creds)
        client.CloudPath(f"s3://{creds.bucket}/{creds.prefix}a.csv")
        ```
    """
    session = BotocoreSession()
    session.set_credentials(
        credentials.access_key_id, credentials.secret_access_key, credentials.session_token
    )
    session.set_config_variable("region", credentials.region)
    # A cache dir of our own: cloudpathlib's default TemporaryDirectory is removed by the
    # client's __del__ behind the TemporaryDirectory's back, which then warns
    # (ResourceWarning "Implicitly cleaning up"). In tmp_dir mode the client removes this one.
    cache_dir = tempfile.mkdtemp(prefix="provena-like-cloudpath-")
    return S3Client(
        botocore_session=session,
        local_cache_dir=cache_dir,
        file_cache_mode=FileCacheMode.tmp_dir,
        endpoint_url=credentials.endpoint_url,
        addressing_style="path" if credentials.endpoint_url else None,
    )


def dataset_path(credentials: S3Credentials, relative: str = "") -> S3Path:
    """The :class:`cloudpathlib.S3Path` of ``relative`` inside the dataset.

    Args:
        credentials: The dataset's scoped credentials.
        relative: A path relative to the dataset root (``""`` for the root).

    Returns:
        A path bound to a client using exactly these credentials and endpoint.

    Raises:
        UnsafePath: If ``relative`` is unsafe (``..``, absolute, backslashes, ...).

    Example:
        ```python
        path = dataset_path(creds, "raw/a.csv")
        await anyio.to_thread.run_sync(path.read_bytes)
        ```
    """
    validate_prefix(relative)
    client = s3_client_for(credentials)
    path: S3Path = client.CloudPath(f"s3://{credentials.bucket}/{credentials.prefix}{relative}")
    return path
