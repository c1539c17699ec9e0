"""provena_like: an async SDK (and reference server) for research data management.

Example:
    ```python
    import provena_like
    async with provena_like.ProvenaClient.from_env() as pv:
        item = await pv.registry_client.get_item("10378.1/42")
    ```
"""

from provena_like._core.config import ProvenaConfig
from provena_like._core.errors import (
    AccessDenied,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthError,
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
from provena_like._core.pagination import AsyncPaginator
from provena_like._core.sentinels import NOT_GIVEN, NotGiven
from provena_like._version import __version__
from provena_like.client import ProvenaClient
from provena_like.models.shared import Page

__all__ = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AccessDenied",
    "AsyncPaginator",
    "AuthError",
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
