"""What the OpenAPI document says of the OAuth and device endpoints.

These endpoints read ``application/x-www-form-urlencoded`` bodies themselves (RFC 6749 §3.2,
RFC 7009, RFC 8628) and answer errors with RFC 6749 §5.2 bodies, so FastAPI can't infer either:
the request forms and error responses are declared here and attached to the routes.
"""

from __future__ import annotations

from typing import Any

from provena_like.models.auth import OAuthError
from provena_like.server.auth.protocol import SUPPORTED_GRANTS, SUPPORTED_SCOPES

__all__ = [
    "DEVICE_AUTHORIZATION_FORM",
    "DEVICE_PAGE_RESPONSES",
    "DEVICE_SUBMIT_FORM",
    "DEVICE_SUBMIT_RESPONSES",
    "OAUTH_ERRORS",
    "REVOKE_FORM",
    "TOKEN_FORM",
]

_ONE_SCOPE = "(?:" + "|".join(SUPPORTED_SCOPES) + ")"
_SCOPE: dict[str, Any] = {
    "type": "string",
    "pattern": f"^{_ONE_SCOPE}(?: {_ONE_SCOPE})*$",
    "description": "space-separated scopes this server knows",
}
_CLIENT: dict[str, Any] = {
    "client_id": {"type": "string", "description": "or HTTP Basic credentials"},
    "client_secret": {"type": "string", "description": "confidential clients; or HTTP Basic"},
}


def _form(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        # other parameters are ignored, but each is sent once (RFC 6749 §3.2) as a string
        "additionalProperties": {"type": "string"},
        "propertyNames": {"pattern": "^[A-Za-z0-9_.-]+$"},
    }
    if required:
        schema["required"] = required
    return {
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}},
        }
    }


TOKEN_FORM = _form(
    {
        "grant_type": {"type": "string", "enum": list(SUPPORTED_GRANTS)},
        **_CLIENT,
        "refresh_token": {"type": "string", "description": "grant_type=refresh_token"},
        "device_code": {"type": "string", "description": "the device code grant"},
        "scope": _SCOPE,
    },
    ["grant_type"],
)
REVOKE_FORM = _form(
    {
        "token": {"type": "string", "minLength": 1, "description": "the refresh token"},
        "token_type_hint": {"type": "string"},
        **_CLIENT,
    },
    ["token"],
)
DEVICE_AUTHORIZATION_FORM = _form({**_CLIENT, "scope": _SCOPE}, [])
DEVICE_SUBMIT_FORM = _form(
    {
        "user_code": {"type": "string"},
        "form_token": {"type": "string", "minLength": 1, "description": "from the page"},
        "username": {"type": "string"},
        "password": {"type": "string", "format": "password"},
        "action": {"type": "string", "enum": ["approve", "deny"]},
    },
    ["user_code", "form_token", "action"],
)

OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OAuthError, "description": "RFC 6749 §5.2 error (invalid_request, ...)"},
    401: {"model": OAuthError, "description": "invalid_client"},
    429: {"model": OAuthError, "description": "too many attempts; retry later"},
}

_HTML = {"text/html": {"schema": {"type": "string"}}}
DEVICE_PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "the code is unknown, used or expired (HTML)", "content": _HTML},
}
DEVICE_SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "a malformed form, or a code no longer valid (HTML)", "content": _HTML},
    401: {"description": "wrong username or password (HTML)", "content": _HTML},
    403: {
        "description": "the form did not come from this page or expired (HTML)",
        "content": _HTML,
    },
    429: {"description": "too many attempts; retry later (HTML)", "content": _HTML},
}
