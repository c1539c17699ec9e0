"""provena_like: an async SDK (and reference server) for research data management.

Example:
    ```python
    import provena_like
    async with provena_like.ProvenaClient.from_env() as pv:
        item = await pv.registry_client.get_item("10378.1/42")
    ```

The client, the config and the page model are imported on first use (PEP 562), so that
``import provena_like.cli`` or ``provena_like.models`` does not pay for httpx, pydantic
settings and the storage engine (``provena-like --help`` starts in a fraction of a second).
"""

import typing as _typing

from provena_like._core.errors import (
    AccessDenied,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthError,
    AuthorizationFlowError,
    AuthorizationTimeout,
    BadRequest,
    ChecksumMismatch,
    Conflict,
    DeviceCodeExpired,
    DeviceFlowError,
    Forbidden,
    InvalidClient,
    Locked,
    LoginRequired,
    NotFound,
    NotYourReview,
    ObjectNotFound,
    PreconditionFailed,
    ProvenaError,
    RateLimited,
    RefreshTokenInvalid,
    ReleaseStateConflict,
    RemoteChanged,
    ResponseValidationError,
    ServerError,
    TaskFailed,
    TokenRefreshFailed,
    TransferError,
    Unauthorized,
    Unprocessable,
    UnsafePath,
    UsageError,
)
from provena_like._core.sentinels import NOT_GIVEN, NotGiven
from provena_like._lazy import lazy_exports as _lazy_exports
from provena_like._version import __version__

if _typing.TYPE_CHECKING:
    from provena_like._core.config import ProvenaConfig
    from provena_like._core.pagination import AsyncPaginator
    from provena_like.client import ProvenaClient
    from provena_like.models.shared import Page

_LAZY = {
    "AsyncPaginator": "provena_like._core.pagination",
    "Page": "provena_like.models.shared",
    "ProvenaClient": "provena_like.client",
    "ProvenaConfig": "provena_like._core.config",
}
"""Public names imported on first access, and the module each comes from."""

__all__ = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AccessDenied",
    "AsyncPaginator",
    "AuthError",
    "AuthorizationFlowError",
    "AuthorizationTimeout",
    "BadRequest",
    "ChecksumMismatch",
    "Conflict",
    "DeviceCodeExpired",
    "DeviceFlowError",
    "Forbidden",
    "InvalidClient",
    "Locked",
    "LoginRequired",
    "NotFound",
    "NotYourReview",
    "NotGiven",
    "ObjectNotFound",
    "Page",
    "PreconditionFailed",
    "ProvenaClient",
    "ProvenaConfig",
    "ProvenaError",
    "RateLimited",
    "RefreshTokenInvalid",
    "ReleaseStateConflict",
    "RemoteChanged",
    "ResponseValidationError",
    "ServerError",
    "TaskFailed",
    "TokenRefreshFailed",
    "TransferError",
    "Unauthorized",
    "Unprocessable",
    "UnsafePath",
    "UsageError",
    "__version__",
]


__getattr__ = _lazy_exports(__name__, _LAZY, globals())
