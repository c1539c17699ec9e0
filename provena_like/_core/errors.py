"""The exception tree of provena_like.

Every error the SDK raises derives from :class:`ProvenaError`:

```text
ProvenaError
├── UsageError(ProvenaError, ValueError)        bad arguments; fix the call
├── AuthError (.error .error_description .error_uri)
│   ├── LoginRequired                           no usable token; sign in again
│   ├── TokenRefreshFailed                      the provider refused a refresh
│   │   └── RefreshTokenInvalid (also a LoginRequired)  ``invalid_grant``
│   ├── InvalidClient                           ``invalid_client``: bad client id/secret
│   ├── DeviceFlowError                         device code flow ended badly
│   │   ├── DeviceCodeExpired                   ``expired_token``
│   │   └── AccessDenied                        ``access_denied`` (either flow)
│   └── AuthorizationFlowError                  browser sign-in (code + PKCE) ended badly:
│       │                                       a ``state`` mismatch, a provider's error
│       ├── AuthorizationTimeout                nobody came back to the loopback redirect
│       └── AccessDenied                        ``access_denied`` (also a DeviceFlowError)
├── APIError (.request_id .service)
│   ├── APIConnectionError → APITimeoutError    wraps httpx errors (``raise ... from err``)
│   ├── APIStatusError (.status_code .body .code)
│   │   ├── BadRequest 400, Unauthorized 401, NotFound 404,
│   │   ├── Forbidden 403
│   │   │   └── NotYourReview                   ``not_your_review``: another reviewer's
│   │   ├── Conflict 409
│   │   │   ├── Locked                          ``locked``: the item is locked
│   │   │   └── ReleaseStateConflict (.state)   ``under_review``, ``released``,
│   │   │                                       ``not_under_review``
│   │   ├── PreconditionFailed 412, Unprocessable 422,
│   │   └── RateLimited 429, ServerError 5xx
│   └── ResponseValidationError                 a 2xx body that doesn't parse
└── TransferError → ChecksumMismatch, RemoteChanged, UnsafePath,
    ObjectNotFound (also a FileNotFoundError)      no object at a repository path
    TaskFailed (.task_id .outcome)                 a Globus task that did not succeed
```

Which class a response becomes is decided in one place, :func:`error_class_for`: the
status picks the class, and for a few statuses the body's error ``code`` picks a subclass
(409 ``locked`` → :class:`Locked`, and so on), so ``except Conflict`` still catches them all.

Messages never contain tokens, secrets or ``Authorization`` headers.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AccessDenied",
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
    "ObjectNotFound",
    "PreconditionFailed",
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
    "error_class_for",
    "error_class_for_status",
]


class ProvenaError(Exception):
    """Root of every error raised by provena_like."""


class UsageError(ProvenaError, ValueError):
    """The caller passed something invalid; the message says which argument and why."""


class AuthError(ProvenaError):
    """Authentication could not be obtained or kept.

    When the identity provider answered with an OAuth error (RFC 6749 §5.2, RFC 8628 §3.5),
    its fields are kept as attributes; they are ``None`` for errors found by the SDK itself.

    Attributes:
        message: the human-readable message (never a token or secret).
        error: the OAuth error code: ``invalid_request``, ``invalid_client``,
            ``invalid_grant``, ``unauthorized_client``, ``unsupported_grant_type``,
            ``invalid_scope``, ``access_denied``, ``expired_token``, ... (or another code
            the provider defines).
        error_description: the provider's explanation, if it gave one.
        error_uri: a page about the error, if the provider gave one.

    Example:
        ```python
        try:
            await pv.auth_client.userinfo()
        except AuthError as err:
            if err.error == "invalid_scope":
                ...
        ```
    """

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        error_description: str | None = None,
        error_uri: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error = error
        self.error_description = error_description
        self.error_uri = error_uri


class LoginRequired(AuthError):
    """There is no usable token: sign in (``provena-like login``) or configure a client."""


class TokenRefreshFailed(AuthError):
    """The identity provider refused to refresh the token (``.error`` says why)."""


class RefreshTokenInvalid(TokenRefreshFailed, LoginRequired):
    """The refresh token is dead (``invalid_grant``: expired, revoked or already used).

    The token is removed from the token store, so it is never sent again; later requests
    raise :class:`LoginRequired` without calling the provider. Sign in again. It is both a
    :class:`TokenRefreshFailed` and a :class:`LoginRequired`.
    """


class InvalidClient(AuthError):
    """The provider did not accept the client (``invalid_client``).

    An unknown ``client_id``, a wrong or missing ``client_secret``, or an authentication method
    the client is not registered for: fix the configuration, signing in again won't help.
    """


class DeviceFlowError(AuthError):
    """The OAuth device authorization flow (RFC 8628) did not complete."""


class DeviceCodeExpired(DeviceFlowError):
    """The user did not approve the device code before it expired (``expired_token``)."""


class AuthorizationFlowError(AuthError):
    """The authorization code flow (a browser sign-in, RFC 6749 §4.1 with PKCE) did not complete.

    The provider answered the redirect with an error, the answer did not carry the ``state``
    of the request (or came from another issuer), or the code could not be exchanged.
    """


class AuthorizationTimeout(AuthorizationFlowError):
    """Nobody came back to the loopback redirect before the sign-in timed out."""


class AccessDenied(DeviceFlowError, AuthorizationFlowError):
    """The user (or the provider) denied the sign-in request (``access_denied``).

    Raised by both interactive flows: the device flow and the browser sign-in.
    """


class APIError(ProvenaError):
    """A call to a provena_like service failed.

    Attributes:
        request_id: the server's request id, when a response was received.
        service: the service that was called (``auth``, ``registry``, ...).
    """

    def __init__(
        self, message: str, *, request_id: str | None = None, service: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.service = service

    def __str__(self) -> str:
        suffix = f" (request id {self.request_id})" if self.request_id else ""
        return f"{self.message}{suffix}"


class APIConnectionError(APIError):
    """The service could not be reached, or the connection broke."""


class APITimeoutError(APIConnectionError):
    """The service did not answer in time."""


class ResponseValidationError(APIError):
    """A successful response had a body that does not match the expected model."""


class APIStatusError(APIError):
    """The service answered with an error status.

    Attributes:
        status_code: the HTTP status.
        code: the machine-readable error code from the body (``not_found``, ``locked``, ...).
        details: structured details from the body (e.g. the invalid fields).
        body: the decoded response body.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        details: Any = None,
        body: Any = None,
        request_id: str | None = None,
        service: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id, service=service)
        self.status_code = status_code
        self.code = code
        self.details = details
        self.body = body


class BadRequest(APIStatusError):
    """400: the request was malformed."""


class Unauthorized(APIStatusError):
    """401: no valid credentials were presented."""


class Forbidden(APIStatusError):
    """403: the caller is authenticated but lacks the needed role."""


class NotFound(APIStatusError):
    """404: no such resource (or the caller may not know it exists)."""


class Conflict(APIStatusError):
    """409: the resource is locked, or the request conflicts with its state."""


class Locked(Conflict):
    """409 ``locked``: the item (or dataset) is locked; an item admin must unlock it first."""


class ReleaseStateConflict(Conflict):
    """409: the dataset's release state doesn't allow this.

    Raised for ``under_review`` (the dataset is ``PENDING``: its data and metadata are
    frozen until the reviewer decides), ``released`` (``RELEASED``: frozen for good; create a
    new version to change it) and ``not_under_review`` (approving, rejecting or withdrawing
    a dataset that is not ``PENDING``).

    Attributes:
        state: the dataset's release state when the request was refused (``NOT_RELEASED``,
            ``PENDING`` or ``RELEASED``), or ``None`` if the server didn't say.

    Example:
        ```python
        try:
            await pv.datastore.credentials(dataset_id, "write")
        except ReleaseStateConflict as err:
            print("frozen:", err.state)
        ```
    """

    @property
    def state(self) -> str | None:
        """The release state the server reported (``details.state``)."""
        if isinstance(self.details, dict):
            state = self.details.get("state")
            if isinstance(state, str):
                return state
        return _STATE_OF_CODE.get(self.code or "")


class PreconditionFailed(APIStatusError):
    """412: a precondition failed, e.g. a stale revision in ``If-Match``."""


class NotYourReview(Forbidden):
    """403 ``not_your_review``: only the reviewer named in the release request may decide."""


class Unprocessable(APIStatusError):
    """422: the body failed validation; ``details`` names the fields."""


class RateLimited(APIStatusError):
    """429: too many requests; retried automatically, raised when retries run out."""


class ServerError(APIStatusError):
    """5xx: the service failed."""


class TransferError(ProvenaError):
    """Moving a file to or from storage failed."""


class ChecksumMismatch(TransferError):
    """The bytes received do not match the recorded checksum."""


class RemoteChanged(TransferError):
    """The remote object changed while a transfer was being resumed."""


class UnsafePath(TransferError, UsageError):
    """A remote key or local path would escape its destination."""


class ObjectNotFound(TransferError, FileNotFoundError):
    """A repository holds no object at that path (``Repository.get``)."""


class TaskFailed(TransferError):
    """A transfer or delete task did not succeed (``TaskResult.raise_for_status()``).

    Attributes:
        task_id: the task.
        outcome: ``FAILED``, ``INACTIVE`` (paused), ``STUCK`` (active, retrying errors) or
            ``TIMED_OUT`` (the wait ended first; the task may still finish).
    """

    def __init__(self, message: str, *, task_id: str, outcome: str) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.outcome = outcome


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    422: Unprocessable,
    429: RateLimited,
}


_CODE_CLASSES: dict[tuple[int, str], type[APIStatusError]] = {
    (409, "locked"): Locked,
    (409, "under_review"): ReleaseStateConflict,
    (409, "released"): ReleaseStateConflict,
    (409, "not_under_review"): ReleaseStateConflict,
    (403, "not_your_review"): NotYourReview,
}
"""(status, error code) → a more specific class than the status alone gives."""

_STATE_OF_CODE = {"under_review": "PENDING", "released": "RELEASED"}


def error_class_for(status_code: int, code: str | None = None) -> type[APIStatusError]:
    """Return the exception class for an error response: the one (status, code) → class map.

    The status picks the class (:func:`error_class_for_status`); a known error ``code``
    refines it to a subclass, so handlers of the status class still catch it.

    Example:
        ```python
        assert error_class_for(409, "locked").__name__ == 'Locked'
        assert error_class_for(409, "conflict").__name__ == 'Conflict'
        ```
    """
    if code is not None and (status_code, code) in _CODE_CLASSES:
        return _CODE_CLASSES[(status_code, code)]
    if status_code in _STATUS_CLASSES:
        return _STATUS_CLASSES[status_code]
    if status_code >= 500:
        return ServerError
    return APIStatusError


def error_class_for_status(status_code: int) -> type[APIStatusError]:
    """Return the exception class for an HTTP error status, whatever the error code.

    Example:
        ```python
        assert error_class_for_status(404).__name__ == 'NotFound'
        ```
    """
    return error_class_for(status_code)
