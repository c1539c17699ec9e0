"""The async Globus Transfer client (L2): our transfer service or real Globus, one API.

```python
async with TransferClient(base_url="http://127.0.0.1:8000/", auth=pv.auth_manager) as tc:
    handle = await tc.transfer("lab:raw", "archive:raw", recursive=True, sync_level="checksum")
    result = await handle.wait(timeout=3600)
    result.raise_for_status()
```
"""

from provena_like.clients.transfer.auth import (
    GLOBUS_AUTH_ISSUER,
    TRANSFER_RESOURCE_SERVER,
    TRANSFER_SCOPE,
    AuthorizerSource,
    GlobusNativeLogin,
    L1Authorizer,
    LockedAuthorizer,
)
from provena_like.clients.transfer.client import MKDIR_EXISTS, TransferAuth, TransferClient
from provena_like.clients.transfer.locations import (
    Location,
    LocationLike,
    Locations,
    to_globus_path,
)
from provena_like.clients.transfer.models import (
    Endpoint,
    FatalError,
    FileEntry,
    FilterRule,
    Listing,
    SkippedError,
    SuccessfulTransfer,
    SyncLevel,
    Task,
    TaskEvent,
    TaskStatus,
    TransferItem,
)
from provena_like.clients.transfer.task import (
    ProgressCallback,
    TaskHandle,
    TaskOutcome,
    TaskPoll,
    TaskResult,
)

__all__ = [
    "GLOBUS_AUTH_ISSUER",
    "MKDIR_EXISTS",
    "TRANSFER_RESOURCE_SERVER",
    "TRANSFER_SCOPE",
    "AuthorizerSource",
    "Endpoint",
    "FatalError",
    "FileEntry",
    "FilterRule",
    "GlobusNativeLogin",
    "L1Authorizer",
    "Listing",
    "Location",
    "LocationLike",
    "Locations",
    "LockedAuthorizer",
    "ProgressCallback",
    "SkippedError",
    "SuccessfulTransfer",
    "SyncLevel",
    "Task",
    "TaskEvent",
    "TaskHandle",
    "TaskOutcome",
    "TaskPoll",
    "TaskResult",
    "TaskStatus",
    "TransferAuth",
    "TransferClient",
    "TransferItem",
    "to_globus_path",
]
