"""The HTTP core shared by every L2 client: config, errors, retries, pagination."""

import typing as _typing

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
    error_class_for,
    error_class_for_status,
)
from provena_like._core.sentinels import NOT_GIVEN, NotGiven
from provena_like._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    from provena_like._core.config import ProvenaConfig, ServiceName
    from provena_like._core.http import USER_AGENT, ClientState, HTTPCore, status_error
    from provena_like._core.pagination import AsyncPaginator, PageFetcher
    from provena_like._core.retry import (
        IDEMPOTENT_METHODS,
        RETRY_STATUSES,
        RetryPolicy,
        is_retryable_exception,
        parse_retry_after,
    )

_LAZY = {
    **dict.fromkeys(("ProvenaConfig", "ServiceName"), "provena_like._core.config"),
    **dict.fromkeys(
        ("USER_AGENT", "ClientState", "HTTPCore", "status_error"), "provena_like._core.http"
    ),
    **dict.fromkeys(("AsyncPaginator", "PageFetcher"), "provena_like._core.pagination"),
    **dict.fromkeys(
        (
            "IDEMPOTENT_METHODS",
            "RETRY_STATUSES",
            "RetryPolicy",
            "is_retryable_exception",
            "parse_retry_after",
        ),
        "provena_like._core.retry",
    ),
}
"""Names imported on first access (they need httpx, pydantic or tenacity)."""

__getattr__ = _lazy_exports(__name__, _LAZY, globals())

__all__ = [
    "IDEMPOTENT_METHODS",
    "NOT_GIVEN",
    "RETRY_STATUSES",
    "USER_AGENT",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AccessDenied",
    "AsyncPaginator",
    "AuthError",
    "BadRequest",
    "ChecksumMismatch",
    "ClientState",
    "Conflict",
    "DeviceCodeExpired",
    "DeviceFlowError",
    "Forbidden",
    "InvalidClient",
    "HTTPCore",
    "Locked",
    "LoginRequired",
    "NotFound",
    "NotYourReview",
    "NotGiven",
    "ObjectNotFound",
    "PageFetcher",
    "PreconditionFailed",
    "ProvenaConfig",
    "ProvenaError",
    "RateLimited",
    "RefreshTokenInvalid",
    "ReleaseStateConflict",
    "RemoteChanged",
    "ResponseValidationError",
    "RetryPolicy",
    "ServerError",
    "ServiceName",
    "TaskFailed",
    "TokenRefreshFailed",
    "TransferError",
    "Unauthorized",
    "Unprocessable",
    "UnsafePath",
    "UsageError",
    "error_class_for",
    "error_class_for_status",
    "is_retryable_exception",
    "parse_retry_after",
    "status_error",
]
