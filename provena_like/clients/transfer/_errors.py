"""globus-sdk errors → the SDK's typed errors (:mod:`provena_like._core.errors`).

A ``TransferAPIError`` becomes the :class:`~provena_like._core.errors.APIStatusError` subclass
its HTTP status picks (through the one map, :func:`~provena_like._core.errors.error_class_for`),
keeping the Globus ``code`` (``ClientError.NotFound``, ``EndpointPermissionDenied``,
``ExternalError.MkdirFailed.Exists``, ...), the message, the request id and the status. Network
errors become :class:`APIConnectionError` / :class:`APITimeoutError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import globus_sdk
import pydantic

from provena_like._core.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ResponseValidationError,
    error_class_for,
)

__all__ = ["map_globus_error", "parsing"]

_SERVICE = "transfer"


def _body(err: globus_sdk.GlobusAPIError) -> Any:
    try:
        return err.raw_json
    except ValueError:  # pragma: no cover - raw_json already guards against bad JSON
        return None


def map_globus_error(err: globus_sdk.GlobusError) -> APIError | None:
    """The typed error for a globus-sdk error, or ``None`` for one that isn't about a call.

    Example:
        ```python
        from globus_sdk.testing import construct_error

        sdk_err = construct_error(
            http_status=404, body={"code": "ClientError.NotFound", "message": "no such path"}
        )
        err = map_globus_error(sdk_err)
        assert type(err).__name__ == "NotFound" and err.code == "ClientError.NotFound"
        ```
    """
    if isinstance(err, globus_sdk.GlobusAPIError):
        status = err.http_status
        code = err.code if err.code and err.code != "Error" else None
        message = err.message or err.text or f"HTTP {status}"
        cls: type[APIStatusError] = error_class_for(status, code)
        return cls(
            f"Globus Transfer: {message}" + (f" ({code})" if code else ""),
            status_code=status,
            code=code,
            body=_body(err),
            request_id=err.request_id,
            service=_SERVICE,
        )
    if isinstance(err, globus_sdk.GlobusTimeoutError):
        return APITimeoutError(f"Globus Transfer did not answer in time: {err}", service=_SERVICE)
    if isinstance(err, globus_sdk.NetworkError):
        return APIConnectionError(f"could not reach Globus Transfer: {err}", service=_SERVICE)
    return None


@contextlib.contextmanager
def parsing(what: str) -> Iterator[None]:
    """Turn a document that doesn't parse into :class:`ResponseValidationError`."""
    try:
        yield
    except pydantic.ValidationError as err:
        raise ResponseValidationError(
            f"Globus Transfer answered a {what} document this client can't read: "
            f"{err.error_count()} problem(s), first: {err.errors()[0]['msg']} at "
            f"{'.'.join(str(p) for p in err.errors()[0]['loc'])}",
            service="transfer",
        ) from err
