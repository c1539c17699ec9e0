"""The one status → exception map, and how error bodies become exceptions."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from provena_like import (
    APIError,
    APIStatusError,
    BadRequest,
    Conflict,
    Forbidden,
    Locked,
    NotFound,
    NotYourReview,
    PreconditionFailed,
    ProvenaError,
    RateLimited,
    ReleaseStateConflict,
    ServerError,
    Unauthorized,
    Unprocessable,
)
from provena_like._core.errors import error_class_for, error_class_for_status
from provena_like._core.http import status_error


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (412, PreconditionFailed),
        (422, Unprocessable),
        (429, RateLimited),
        (500, ServerError),
        (501, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (599, ServerError),
        (405, APIStatusError),
        (408, APIStatusError),
        (410, APIStatusError),
        (418, APIStatusError),
        (451, APIStatusError),
    ],
)
def test_error_class_for_status(status: int, cls: type[APIStatusError]) -> None:
    assert error_class_for_status(status) is cls
    assert issubclass(cls, APIError)
    assert issubclass(cls, ProvenaError)


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (409, "locked", Locked),
        (409, "under_review", ReleaseStateConflict),
        (409, "released", ReleaseStateConflict),
        (409, "not_under_review", ReleaseStateConflict),
        (403, "not_your_review", NotYourReview),
        (409, "conflict", Conflict),
        (409, None, Conflict),
        (403, "forbidden", Forbidden),
        (403, "locked", Forbidden),  # a code refines only the status it belongs to
        (404, "not_your_review", NotFound),
        (500, "locked", ServerError),
    ],
)
def test_error_class_for_status_and_code(
    status: int, code: str | None, cls: type[APIStatusError]
) -> None:
    assert error_class_for(status, code) is cls
    assert issubclass(cls, error_class_for_status(status))


@pytest.mark.parametrize(
    ("code", "details", "state"),
    [
        ("under_review", {"state": "PENDING"}, "PENDING"),
        ("released", None, "RELEASED"),
        ("not_under_review", {"state": "NOT_RELEASED"}, "NOT_RELEASED"),
        ("not_under_review", None, None),
    ],
)
def test_release_state_conflict_reports_the_state(
    code: str, details: Any, state: str | None
) -> None:
    body = {"error": {"code": code, "message": "m", "details": details}}
    err = status_error(httpx.Response(409, json=body), "datastore")
    assert type(err) is ReleaseStateConflict
    assert isinstance(err, Conflict)
    assert err.state == state


ENVELOPE = {
    "error": {
        "code": "locked",
        "message": "Item 10378.1/1 is locked.",
        "details": {"reason": "review"},
        "request_id": "body-rid-123",
    }
}


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls", "code", "message", "details", "request_id"),
    [
        pytest.param(
            409,
            ENVELOPE,
            {"x-request-id": "hdr-rid-456"},
            Locked,
            "locked",
            "Item 10378.1/1 is locked.",
            {"reason": "review"},
            "hdr-rid-456",
            id="envelope-header-request-id-wins",
        ),
        pytest.param(
            409,
            ENVELOPE,
            {},
            Locked,
            "locked",
            "Item 10378.1/1 is locked.",
            {"reason": "review"},
            "body-rid-123",
            id="envelope-body-request-id",
        ),
        pytest.param(
            400,
            {"error": "invalid_grant", "error_description": "Refresh token expired."},
            {},
            BadRequest,
            "invalid_grant",
            "Refresh token expired.",
            None,
            None,
            id="oauth-error",
        ),
        pytest.param(
            401,
            {"error": "invalid_client"},
            {},
            Unauthorized,
            "invalid_client",
            "invalid_client",
            None,
            None,
            id="oauth-error-no-description",
        ),
        pytest.param(
            422,
            {"detail": [{"loc": ["body", "x"], "msg": "field required"}]},
            {},
            Unprocessable,
            None,
            "HTTP 422 Unprocessable Entity",
            [{"loc": ["body", "x"], "msg": "field required"}],
            None,
            id="fastapi-detail-list",
        ),
        pytest.param(
            404,
            {"detail": "Not Found"},
            {},
            NotFound,
            None,
            "Not Found",
            None,
            None,
            id="fastapi-detail-string",
        ),
        pytest.param(
            418,
            {"unexpected": True},
            {},
            APIStatusError,
            None,
            "HTTP 418 I'm a teapot",
            None,
            None,
            id="unknown-json",
        ),
        pytest.param(
            502,
            "upstream connect error",
            {"x-request-id": "proxy-rid-1"},
            ServerError,
            None,
            "HTTP 502 Bad Gateway: upstream connect error",
            None,
            "proxy-rid-1",
            id="plain-text",
        ),
        pytest.param(
            503, "", {}, ServerError, None, "HTTP 503 Service Unavailable", None, None, id="empty"
        ),
    ],
)
def test_status_error_parses_bodies(
    status: int,
    body: Any,
    headers: dict[str, str],
    cls: type[APIStatusError],
    code: str | None,
    message: str,
    details: Any,
    request_id: str | None,
) -> None:
    if isinstance(body, str):
        response = httpx.Response(status, text=body, headers=headers)
    else:
        response = httpx.Response(status, json=body, headers=headers)
    err = status_error(response, "registry")
    assert type(err) is cls
    assert err.status_code == status
    assert err.code == code
    assert err.message == message
    assert err.details == details
    assert err.request_id == request_id
    assert err.service == "registry"
    assert err.body == body
    if request_id:
        assert request_id in str(err)


def test_status_error_truncates_long_text() -> None:
    response = httpx.Response(500, text="x" * 10_000)
    err = status_error(response, "search")
    assert len(err.message) < 400
    assert err.body == "x" * 10_000
