"""The OpenAPI document tells the truth: schemathesis, every check, against the real server.

Every operation of ``/openapi.json`` is exercised over real HTTP against the session's
LocalStack, once with a system administrator's token (the caller who may do the most, so the
happy paths are reached) and once without a token (so every documented 401 is checked), with
schema-valid and schema-invalid requests. Any server error, any response the document doesn't
describe (status, content type, headers, body schema), any schema-valid request refused and
any schema-invalid request accepted fails the test.

Bounded and derandomized: 12 generated examples per operation and the coverage phase's
cases as an admin, 4 generated examples without a token (about two and a half minutes).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    positive_data_acceptance,
    unsupported_method,
)

from provena_like.server.app import create_app
from provena_like.server.errors import UNREPRESENTABLE_TEXT_MESSAGE
from provena_like.server.settings import ServerSettings
from provena_like.testing.server_thread import ServerThread

EXAMPLES = 12
ANONYMOUS_EXAMPLES = 4


def _document() -> dict[str, Any]:
    """The OpenAPI document of the app, built without serving it (to collect the tests)."""
    doc: dict[str, Any] = create_app(ServerSettings(data_dir=Path("unused"))).openapi()
    return doc


DOCUMENT = _document()

# schemathesis's coverage phase adds its boundary and negative cases as explicit examples
# while the tests are collected, by every xdist worker. For two operations that costs 15 s
# and 10 s (strings of up to 1,024 and 2,048 characters that must match a path or filter
# pattern, 1,000 of them unique in one array), so those two get only generated examples.
_SLOW_TO_COVER = [
    "/datastore/datasets/{id_prefix}/{id_suffix}/files/remove",
    "/v0.10/task_list",
]
# As an admin, the coverage phase's cases as well: the caller who may do the most reaches
# the handlers. Without a token, every operation but the public ones refuses with a 401, so
# there generated examples only (the public ones get the coverage cases in the admin run).
admin_schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=SchemathesisConfig.from_dict(
        {
            "operations": [
                {"include-path": _SLOW_TO_COVER, "phases": {"coverage": {"enabled": False}}}
            ]
        }
    ),
)
anonymous_schema = schemathesis.openapi.from_dict(
    DOCUMENT, config=SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}})
)


def test_the_served_document_is_the_one_tested(server: ServerThread) -> None:
    served = httpx.get(f"{server.url}/openapi.json", timeout=60)
    assert served.status_code == 200
    assert served.json() == DOCUMENT


@pytest.fixture(scope="module")
def admin_headers(make_token: Callable[..., str]) -> dict[str, str]:
    token = make_token(f"contract-admin-{uuid.uuid4().hex[:8]}", system_roles=("admin",))
    return {"Authorization": f"Bearer {token}"}


_SETTINGS: Any = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
_ANONYMOUS_SETTINGS: Any = settings(_SETTINGS, max_examples=ANONYMOUS_EXAMPLES)

# Schema-valid requests the server refuses for reasons no JSON Schema can state; for these
# (and only these) `positive_data_acceptance` is not applied. Every other check still is.
_OAUTH_STATE_ERRORS = {
    # RFC 6749 §5.2 / RFC 8628 §3.5: 400 for a grant or device code the server doesn't hold
    "invalid_grant",
    "authorization_pending",
    "slow_down",
    "expired_token",
    "access_denied",
    "unauthorized_client",
}

# 422 detail types of a request that names another resource which must exist, or be in some
# state: an account, a group, a reviewer, an object in the store with that size and hash
_STATE_TYPES = {
    "unknown_user",
    "unknown_group",
    "user_disabled",
    "not_a_reviewer",
    "self_review",
    "missing_object",
    "size_mismatch",
    "checksum_mismatch",
    "reserved_path",  # metadata.json may be read but not registered or removed
    "duplicate_path",  # files are unique by path: JSON Schema can't say "unique by a key"
    "kind_not_a_term",  # an extracted file's kinds name some of its terms: nor "one of those"
    # a session names its subject and lab, which must exist, be readable and be a subject and
    # a lab; its start_time must fall on its date in that lab's time zone
    "unknown_item",
    "wrong_subtype",
    "unreadable_item",
    "date_mismatch",
    # a patch: each dataset once and each repository once per file (unique by a key), each
    # location's size and sha256 the file's (equal fields), a location for every repository
    # holding the revision, the bytes in the server's own bucket, an md5 where a repository
    # keeps md5s (the repository's record says so)
    "duplicate_dataset",
    "duplicate_repository",
    "location_mismatch",
    "missing_location",
    "location_not_verified",
    "md5_required",
    "sha256_mismatch",
}
# `GET .../files/{path}` also serves `.../files/remove` (a file may be called "remove"), so
# `Allow` there truthfully lists GET with POST, which the document keeps as two paths
_SHARED_PATHS = {
    "/datastore/datasets/{id_prefix}/{id_suffix}/files/remove",
    "/datastore/datasets/{id_prefix}/{id_suffix}/files/{path}",
}

# the Globus-compatible transfer API answers a method it doesn't implement with a loud 501
# NotImplemented (as the Globus API's clients expect of a partial implementation), not a 405:
# tests/transfer_service/test_errors.py checks that answer
_TRANSFER_API = "/v0.10/"


def _not_implemented(case: Case, response: Any) -> bool:
    """Whether the transfer API answered a method it doesn't have with its 501."""
    if response.status_code != 501 or case.method.upper() == case.operation.method.upper():
        return False
    body = response.json()
    return isinstance(body, dict) and body.get("code") == "NotImplemented"


def _semantic_rejection(response: Any) -> str | None:
    """Why a schema-valid request was refused for something a schema can't say, or None."""
    if response.status_code not in (400, 422):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if (
        isinstance(error, dict)
        and error.get("code") == "unrepresentable_text"
        or (isinstance(body, dict) and body.get("message") == UNREPRESENTABLE_TEXT_MESSAGE)
    ):  # the server's envelope, or the transfer API's Type-Zero body
        return "PostgreSQL can't store a NUL character in text; the schemas don't forbid one"
    if isinstance(error, str):
        return "OAuth state" if error in _OAUTH_STATE_ERRORS else None
    if not isinstance(error, dict):
        return None
    if error.get("code") == "bad_cursor":
        return "cursors are opaque: only those the server made for the listing are valid"
    details = error.get("details")
    if not isinstance(details, list) or not details:
        return None
    fields = [str(d.get("field", "")) for d in details if isinstance(d, dict)]
    types = {d.get("type") for d in details if isinstance(d, dict)}
    if fields and all(f == "record" or f.startswith("record.") for f in fields):
        # a record must fit its subtype's model (GET /registry/subtypes, /datastore/schema)
        # and name items that exist; the registry's schema can't tie the two together
        return "record"
    if types == {"search_query"}:
        return "q needs a word that is not excluded"
    if types == {"conflicting_preconditions"}:
        return "If-Match and expected_revision must agree: a schema can't tie a header to a body"
    if types and types <= _STATE_TYPES:
        return "names a resource that must exist or be in some state"
    return None


def _exercise(case: Case, base_url: str, headers: dict[str, str] | None) -> None:
    response = case.call(base_url=base_url, headers=headers, timeout=60)
    excluded = [positive_data_acceptance] if _semantic_rejection(response) else []
    if case.operation.path in _SHARED_PATHS:
        excluded.append(allow_header_conformance)
    if case.operation.path.startswith(_TRANSFER_API) and _not_implemented(case, response):
        excluded += [unsupported_method, not_a_server_error]
    # `checks` left out: every check schemathesis has (all are enabled by default)
    case.validate_response(
        response,
        excluded_checks=excluded,
        headers=headers,
        transport_kwargs={"base_url": base_url, "headers": headers, "timeout": 60},
    )


@admin_schema.parametrize()
@_SETTINGS
def test_api_as_an_admin(case: Case, admin_headers: dict[str, str], server: ServerThread) -> None:
    _exercise(case, server.url, admin_headers)


@anonymous_schema.parametrize()
@_ANONYMOUS_SETTINGS
def test_api_without_a_token(case: Case, server: ServerThread) -> None:
    _exercise(case, server.url, None)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/registry/items", {"GET", "POST"}),
        ("/auth/users/someone", {"GET", "PATCH"}),
        ("/registry/items/10378.1/1/access", {"GET", "PUT"}),
    ],
)
def test_405_allow_lists_every_method_of_the_path(
    server: ServerThread, path: str, allowed: set[str]
) -> None:
    r = httpx.request("OPTIONS", f"{server.url}{path}", timeout=60)
    assert r.status_code == 405, r.text
    assert set(r.headers["allow"].replace(" ", "").split(",")) - {"HEAD"} == allowed
    assert r.json()["error"]["code"] == "method_not_allowed"
