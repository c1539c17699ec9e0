"""Signed JWT access tokens: the signing key, issuing and verifying.

The key (ES256) is generated once per data dir and kept in ``signing-key.json`` (mode 0600);
its public half is served as the JWKS. Verification checks signature, issuer, audience,
expiry and not-before (RFC 7519 §4.1.5, with :data:`NBF_LEEWAY` for clock skew between
hosts); anything else is a 401 whose challenge says ``error="invalid_token"`` and why
(RFC 6750 §3.1), as for the trusted issuers' tokens.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

from provena_like._private_files import write_private_file
from provena_like.server.errors import invalid_token

AUDIENCE = "provena-like"
ALGORITHM = "ES256"
NBF_LEEWAY = 30
"""Seconds by which a token's ``nbf`` may lie in the future (clock skew between hosts)."""


def _load_or_create_key(path: Path) -> ECKey:
    if path.exists():
        return ECKey.import_key(json.loads(path.read_text()))
    key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": ALGORITHM}, auto_kid=True)
    write_private_file(path, json.dumps(key.as_dict(private=True)).encode())
    return key


class TokenService:
    """Issues and verifies the access tokens of the embedded authorization server."""

    def __init__(self, key: ECKey, issuer: str) -> None:
        self._key = key
        self.issuer = issuer

    @classmethod
    def from_data_dir(cls, data_dir: Path, issuer: str) -> TokenService:
        """Load the signing key of ``data_dir`` (creating it on first use)."""
        return cls(_load_or_create_key(data_dir / "signing-key.json"), issuer)

    def __repr__(self) -> str:
        return f"TokenService(issuer={self.issuer!r}, kid={self._key.kid!r})"

    def jwks(self) -> dict[str, Any]:
        """The public key set, for ``/auth/jwks``."""
        return {"keys": [self._key.as_dict(private=False)]}

    def issue_access_token(
        self,
        *,
        subject: str,
        client_id: str,
        scope: str,
        ttl: int,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Sign an access token for ``subject`` valid for ``ttl`` seconds."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(16),
            "client_id": client_id,
            "scope": scope,
            **(extra or {}),
        }
        return jwt.encode(
            {"alg": ALGORITHM, "kid": self._key.kid, "typ": "at+jwt"}, claims, self._key
        )

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token issued here; raise a 401 otherwise."""
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
        # Hostile input makes joserfc raise more than its JoseError (TypeError for a "crit"
        # header that isn't a list of names): any failure to decode is a 401, never a 500.
        except Exception as err:
            raise invalid_token(
                "The access token is malformed or its signature is invalid."
            ) from err
        claims = decoded.claims
        now = time.time()
        if claims.get("iss") != self.issuer or claims.get("aud") != AUDIENCE:
            raise invalid_token("The access token was not issued for this server.")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool) or exp <= now:
            raise invalid_token("The access token has expired; refresh it or sign in again.")
        nbf = claims.get("nbf")
        if nbf is not None and (
            not isinstance(nbf, int | float) or isinstance(nbf, bool) or nbf > now + NBF_LEEWAY
        ):
            raise invalid_token("The access token is not valid yet (nbf is in the future).")
        return dict(claims)
