"""Wire models of the auth service (OAuth2 / OIDC and user administration).

The token and device-authorization endpoints speak plain RFC 6749 / RFC 8628, including their
error bodies (``{"error": "authorization_pending", "error_description": ...}``), so that the SDK's
L1 works against any standard provider. Every other auth route uses the common error envelope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, SecretStr, StrictBool

from provena_like.models.shared import SecretOut, WireModel

__all__ = [
    "DEVICE_CODE_GRANT",
    "DeviceAuthorization",
    "Group",
    "GroupCreate",
    "GroupMember",
    "OAuthClient",
    "OAuthClientCreate",
    "OAuthClientCreated",
    "OAuthError",
    "OIDCConfiguration",
    "SystemRole",
    "TokenResponse",
    "TrustedIssuerInfo",
    "TrustedIssuers",
    "User",
    "UserCreate",
    "UserInfo",
    "UserUpdate",
]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

SystemRole = Literal["admin", "reviewer"]
"""System-wide roles: ``admin`` manages users, groups, clients and every item."""

GrantType = Literal[
    "client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"
]


def _default_grants() -> list[GrantType]:
    return ["client_credentials"]


class OIDCConfiguration(WireModel):
    """The subset of OpenID Provider metadata (OIDC Discovery 1.0) that the SDK relies on."""

    issuer: str
    token_endpoint: str
    jwks_uri: str | None = None
    authorization_endpoint: str | None = Field(
        default=None, description="where a browser signs in (authorization code flow)"
    )
    device_authorization_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    revocation_endpoint: str | None = None
    grant_types_supported: list[str] = Field(default_factory=list)
    scopes_supported: list[str] = Field(default_factory=list)
    token_endpoint_auth_methods_supported: list[str] = Field(default_factory=list)
    code_challenge_methods_supported: list[str] | None = Field(
        default=None, description="PKCE methods (RFC 7636); None: not advertised"
    )
    authorization_response_iss_parameter_supported: bool | None = Field(
        default=None, description="the redirect carries 'iss' (RFC 9207, mix-up defence)"
    )


class TrustedIssuerInfo(WireModel):
    """An OpenID provider whose access tokens the server accepts (``GET /auth/issuers``)."""

    issuer: str
    name: str | None = Field(
        default=None, description="a short name to sign in with instead of the URL"
    )
    discovery_url: str
    audiences: list[str] = Field(
        default_factory=list, description="the 'aud' values the server accepts from it"
    )
    client_id: str | None = Field(
        default=None, description="the public client a CLI signs in with there, if published"
    )


class TrustedIssuers(WireModel):
    """Where users may sign in for this server (``GET /auth/issuers``)."""

    embedded: str | None = Field(
        default=None, description="the server's own issuer, when its tokens are accepted"
    )
    issuers: list[TrustedIssuerInfo] = Field(default_factory=list)


class TokenResponse(WireModel):
    """A successful token endpoint response (RFC 6749 §5.1)."""

    access_token: SecretOut
    token_type: str = "Bearer"
    expires_in: int | None = None
    refresh_token: SecretOut | None = None
    scope: str | None = None


class OAuthError(WireModel):
    """An error from the token or device endpoints (RFC 6749 §5.2, RFC 8628 §3.5)."""

    error: str
    error_description: str | None = None
    error_uri: str | None = None


class DeviceAuthorization(WireModel):
    """The device authorization response (RFC 8628 §3.2)."""

    device_code: SecretOut
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None = None
    expires_in: int
    interval: int = 5


class UserInfo(WireModel):
    """``/auth/userinfo``: who the bearer of the token is."""

    sub: str
    preferred_username: str | None = None
    name: str | None = None
    email: str | None = None
    groups: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)
    client_id: str | None = None


class User(WireModel):
    """A user account as administrators see it. ``username`` is the stable id."""

    username: str
    display_name: str | None = None
    email: str | None = None
    system_roles: list[SystemRole] = Field(default_factory=list)
    disabled: bool = False
    service_account: bool = False
    created_at: datetime


class UserCreate(WireModel):
    """Create a user (admins only)."""

    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    password: SecretStr = Field(min_length=8)
    display_name: str | None = None
    email: str | None = None
    system_roles: list[SystemRole] = Field(default_factory=list)


class UserUpdate(WireModel):
    """Change a user (admins only); fields left out stay as they are."""

    password: SecretStr | None = Field(default=None, min_length=8)
    display_name: str | None = None
    email: str | None = None
    system_roles: list[SystemRole] | None = None
    disabled: StrictBool | None = None


class GroupCreate(WireModel):
    """Create a group (admins only)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""


class GroupMember(WireModel):
    """Add a user to a group."""

    username: str


class Group(WireModel):
    """A named set of users that item access settings can grant roles to."""

    name: str
    description: str = ""
    members: list[str] = Field(default_factory=list)
    created_at: datetime


_CLIENT_CREDENTIALS: dict[str, Any] = {"contains": {"const": "client_credentials"}}
_CLIENT_RULES: list[Any] = [
    {
        "if": {"properties": {"confidential": {"const": False}}, "required": ["confidential"]},
        "then": {"properties": {"grant_types": {"not": _CLIENT_CREDENTIALS}}},
    },
    {
        "if": {"properties": {"system_roles": {"minItems": 1}}, "required": ["system_roles"]},
        "then": {
            "properties": {"confidential": {"const": True}, "grant_types": _CLIENT_CREDENTIALS},
            "required": ["grant_types"],
        },
    },
    {
        "if": {
            "properties": {"confidential": {"const": True}, "grant_types": _CLIENT_CREDENTIALS},
            "required": ["grant_types"],
        },
        "then": {"properties": {"client_id": {"maxLength": 64 - len("service-account-")}}},
    },
]


class OAuthClientCreate(WireModel):
    """Register an OAuth client (admins only).

    A confidential client gets a secret (shown once) and, with the ``client_credentials`` grant,
    a service account user named ``service-account-<client_id>``. Public clients can't use
    ``client_credentials``, only service accounts have ``system_roles``, and a service
    account's name (``service-account-`` + ``client_id``) fits 64 characters.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra={"allOf": _CLIENT_RULES})

    client_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name: str = ""
    confidential: StrictBool = True
    grant_types: list[GrantType] = Field(default_factory=_default_grants)
    system_roles: list[SystemRole] = Field(default_factory=list)


class OAuthClient(WireModel):
    """A registered OAuth client, without its secret."""

    client_id: str
    name: str = ""
    confidential: bool
    grant_types: list[str]
    service_account: str | None = None
    created_at: datetime


class OAuthClientCreated(OAuthClient):
    """The answer to creating a confidential client: the only time the secret is shown."""

    client_secret: SecretOut | None = None
