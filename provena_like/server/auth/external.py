"""Access tokens of trusted issuers: an institution's OpenID provider (issue 18).

Each :class:`~provena_like.server.settings.TrustedIssuer` gets an :class:`IssuerVerifier`: it
fetches the issuer's discovery document and JWKS (httpx), keeps them, and fetches them again
when a token names a key it does not know (key rotation), at most once per
``jwks_min_refresh_seconds``. A token is accepted only if:

* its ``alg`` is an asymmetric algorithm the issuer advertises
  (``id_token_signing_alg_values_supported``, or the ``alg`` of its keys) — never ``none``,
  never an HMAC algorithm (a public key is no secret), and the key's type and own ``alg``
  must match it;
* its signature verifies with the issuer's key of its ``kid``;
* ``iss`` is the configured issuer exactly, ``aud`` names one of the configured audiences,
  ``exp`` is in the future and ``nbf``/``iat`` are not, with :data:`LEEWAY` seconds of clock
  skew.

An issuer with :attr:`~provena_like.server.settings.TrustedIssuer.introspection` may also hand
out opaque access tokens (anything that is not a JWT): the server asks the issuer about each one
(RFC 7662 token introspection, as a confidential client) and accepts it when the answer is
``active`` with the issuer's ``iss`` (when given), one of the configured audiences in ``aud``
(or, when the answer has no ``aud``, in ``client_id``), ``token_type`` (when given) ``Bearer``,
no ``cnf`` (a sender-constrained token needs a proof this server does not check), and the same
``exp``/``nbf``/``iat``/``sub`` checks as a JWT. An active answer is kept for
``introspection.cache_seconds`` at most, never past the token's ``exp``, under the SHA-256 of
the token (never the token itself), in a cache of ``cache_size`` answers; other answers are
not kept. At most one trusted issuer may introspect (an opaque token names no issuer: it would
otherwise be shown to several).

Anything else is a 401 whose ``WWW-Authenticate`` challenge says ``error="invalid_token"`` and
what was wrong. When the issuer can't be asked (its keys or its introspection endpoint are
unreachable, or it refuses this server's client) the answer is a 503 ``issuer_unavailable``
with ``Retry-After``: the token may be fine, so a client must not discard it (RFC 6750 keeps
``invalid_token`` for tokens that are expired, revoked, malformed or invalid).

:class:`Authenticator` picks the verifier by the token's ``iss`` (read without verification
only to choose; everything is then verified), or the introspecting issuer for a token that is
not a JWT, and maps a verified identity to a
user of this server: (issuer, ``sub``) is linked to one user (created on first use when the
issuer's ``provision`` is on, named from its ``username_claim`` and made unique, never merged
with an existing account), and the groups and system roles named in the issuer's
``group_map``/``role_map`` follow the token's groups claim on each request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import quote_plus

import anyio
import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, JWKRegistry, OctKey, OKPKey, RSAKey
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like._core.tls import verifying_context
from provena_like.server.db.identity import (
    ExternalIdentityRow,
    GroupMemberRow,
    GroupRow,
    UserRow,
)
from provena_like.server.errors import ServiceError, invalid_token
from provena_like.server.settings import ServerSettings, TrustedIssuer

log = logging.getLogger(__name__)

LEEWAY = 30
"""Seconds of clock skew allowed for ``exp``, ``nbf`` and ``iat``."""

FETCH_TIMEOUT = 10.0
"""Seconds to wait for an issuer's discovery document or JWKS."""

FAILED_FETCH_RETRY = 5.0
"""Seconds before the keys of an issuer that could not be fetched at all are asked for again."""

_KEY_TYPES: dict[str, str] = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "EdDSA": "OKP",
}
"""The asymmetric signature algorithms accepted, and the key type each needs."""

_OPAQUE_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
"""RFC 6750's ``b64token``: what a bearer token may look like."""

MAX_OPAQUE_TOKEN = 4096
"""The longest opaque token sent to an issuer's introspection endpoint."""

_USERNAME_MAX = 64
_USERNAME_BAD = re.compile(r"[^A-Za-z0-9._@-]+")

Key = OctKey | RSAKey | ECKey | OKPKey


def _issuer_unavailable(issuer: str, what: str) -> ServiceError:
    return ServiceError(
        503,
        "issuer_unavailable",
        f"Cannot check the token: the {what} of issuer {issuer!r} could not be fetched; "
        "try again later.",
        headers={"Retry-After": "5"},
    )


def _b64_json(segment: str) -> dict[str, Any]:
    padded = segment + "=" * (-len(segment) % 4)
    value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS, NOT verified (only to choose a verifier).

    Raises:
        ServiceError: 401 when the token is not a JWT.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise invalid_token("The access token is not a signed JWT.")
    try:
        return _b64_json(parts[0]), _b64_json(parts[1])
    except (ValueError, UnicodeError) as err:
        raise invalid_token("The access token is not a signed JWT.") from err


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise invalid_token(f"The access token's '{name}' claim is not a number.")
    return float(value)


def check_claims(
    claims: Mapping[str, Any],
    config: TrustedIssuer,
    now: float,
    *,
    audience: Collection[Any] | str | None = None,
) -> None:
    """Check ``iss``, ``aud``, ``exp``, ``nbf``, ``iat`` and ``sub`` of verified claims.

    Args:
        claims: the verified claims.
        config: the issuer they must be of.
        now: the time (seconds since the epoch).
        audience: the audience values to check instead of the ``aud`` claim.

    Raises:
        ServiceError: 401 ``invalid_token`` saying which claim is wrong.
    """
    if claims.get("iss") != config.issuer:
        raise invalid_token(f"The access token was not issued by {config.issuer!r}.")
    aud = claims.get("aud") if audience is None else audience
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list | tuple) else []
    if not set(config.audiences) & {a for a in audiences if isinstance(a, str)}:
        raise invalid_token(
            "The access token is not meant for this server (its audience is none of "
            f"{sorted(config.audiences)})."
        )
    exp = _number(claims, "exp")
    if exp is None:
        raise invalid_token("The access token has no expiry ('exp').")
    if exp <= now - LEEWAY:
        raise invalid_token("The access token has expired; refresh it or sign in again.")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + LEEWAY:
        raise invalid_token("The access token is not valid yet ('nbf' is in the future).")
    iat = _number(claims, "iat")
    if iat is not None and iat > now + LEEWAY:
        raise invalid_token("The access token was issued in the future ('iat').")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise invalid_token("The access token names no subject ('sub').")


def introspected_claims(
    answer: Mapping[str, Any], config: TrustedIssuer, now: float
) -> dict[str, Any]:
    """The claims of an issuer's introspection answer about an access token, checked.

    See the module docstring for what is checked. A missing ``iss`` is the issuer's (the
    answer came from its endpoint, to this server's client); a present one must be it.

    Example:
        ```python
        config = TrustedIssuer(issuer="https://idp.example", audiences=["api"])
        answer = {"active": True, "sub": "ada", "aud": "api", "exp": 2_000_000_000}
        claims = introspected_claims(answer, config, now=1_900_000_000)
        assert claims["iss"] == "https://idp.example"
        ```

    Raises:
        ServiceError: 401 ``invalid_token`` saying what is wrong.
    """
    if answer.get("active") is not True:
        raise invalid_token(
            "The access token is not active: its issuer says it has expired, was revoked or "
            "is unknown."
        )
    claims = dict(answer)
    claims.setdefault("iss", config.issuer)
    token_type = claims.get("token_type")
    if token_type is not None and (
        not isinstance(token_type, str) or token_type.lower() != "bearer"
    ):
        raise invalid_token(
            "The token is not a bearer access token (its issuer gives another type)."
        )
    if claims.get("cnf") is not None:
        raise invalid_token(
            "The access token is bound to a key or a certificate ('cnf'); this server accepts "
            "bearer tokens only."
        )
    audience = claims["aud"] if "aud" in claims else claims.get("client_id")
    check_claims(claims, config, now, audience=audience)
    return claims


class _Answers:
    """Active introspection answers by the SHA-256 of their token, each until a given time.

    Bounded: beyond ``size`` answers the least recently used go.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, tuple[float, dict[str, Any]]] = OrderedDict()

    @staticmethod
    def key(token: str) -> bytes:
        """What a token is kept under: its SHA-256, never the token itself."""
        return hashlib.sha256(token.encode()).digest()

    def get(self, key: bytes, now: float) -> dict[str, Any] | None:
        """The claims kept for ``key``, if they are still good at ``now``."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return dict(entry[1])

    def put(self, key: bytes, claims: Mapping[str, Any], until: float) -> None:
        """Keep ``claims`` for ``key`` until ``until``."""
        self._entries[key] = (until, dict(claims))
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


def _error_code(response: httpx.Response) -> str:
    """The OAuth ``error`` of an error response, made safe to log (or ``""``)."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    return _USERNAME_BAD.sub("?", error)[:64] if isinstance(error, str) else ""


class IssuerVerifier:
    """Verifies the access tokens of one trusted issuer (see the module docstring).

    Args:
        config: the trusted issuer.
        http: the client that fetches its discovery document and JWKS.
        clock: monotonic seconds (for the refresh rate).
        now: seconds since the epoch (for ``exp``, ``nbf``, ``iat`` and cached answers).

    Raises:
        ValueError: the secret of the issuer's introspection client can't be read.
    """

    def __init__(
        self,
        config: TrustedIssuer,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._http = http
        self._clock = clock
        self._now = now
        self._keys: dict[str | None, Key] | None = None
        self._algorithms: frozenset[str] = frozenset()
        self._introspection_endpoint: str | None = None
        self._fetched_at = float("-inf")
        self._lock = anyio.Lock()
        introspection = config.introspection
        self._secret = introspection.secret() if introspection is not None else None
        self._answers = _Answers(introspection.cache_size if introspection is not None else 1)
        self.fetches = 0
        """How many times the keys were fetched (for tests and diagnostics)."""
        self.introspections = 0
        """How many times the issuer was asked about a token (for tests and diagnostics)."""

    def __repr__(self) -> str:
        return f"IssuerVerifier(issuer={self.config.issuer!r})"

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, timeout=FETCH_TIMEOUT)
            response.raise_for_status()
            value = response.json()
        except (httpx.HTTPError, ValueError) as err:
            raise _issuer_unavailable(self.config.issuer, what) from err
        if not isinstance(value, dict):
            raise _issuer_unavailable(self.config.issuer, what)
        return value

    async def _refresh(self) -> None:
        """Fetch the discovery document and the JWKS again."""
        self._fetched_at = self._clock()
        self.fetches += 1
        discovery = await self._get_json(self.config.resolved_discovery_url, "discovery document")
        jwks_uri = discovery.get("jwks_uri")
        if discovery.get("issuer") != self.config.issuer or not isinstance(jwks_uri, str):
            raise _issuer_unavailable(self.config.issuer, "valid discovery document")
        endpoint = discovery.get("introspection_endpoint")
        self._introspection_endpoint = endpoint if isinstance(endpoint, str) else None
        jwks = await self._get_json(jwks_uri, "JWKS")
        keys: dict[str | None, Key] = {}
        advertised = discovery.get("id_token_signing_alg_values_supported")
        algorithms = (
            {a for a in advertised if isinstance(a, str)} if isinstance(advertised, list) else set()
        )
        entries = jwks.get("keys")
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            if entry.get("kty") not in ("RSA", "EC", "OKP"):
                continue  # symmetric keys are never trusted from a public document
            try:
                key = JWKRegistry.import_key(entry)
            except Exception:  # a key we can't use is skipped, not fatal
                continue
            if key.is_private:
                continue
            keys[entry.get("kid")] = key
            if isinstance(entry.get("alg"), str):
                algorithms.add(entry["alg"])
        self._keys = keys
        self._algorithms = frozenset(a for a in algorithms if a in _KEY_TYPES)

    async def _fetched(self) -> dict[str | None, Key]:
        """The keys, with the discovery document fetched at least once."""
        if self._keys is None:
            async with self._lock:
                if self._keys is None:
                    # Never fetched successfully: retry, but not on every request while the
                    # issuer is down.
                    wait = min(self.config.jwks_min_refresh_seconds, FAILED_FETCH_RETRY)
                    if self._clock() - self._fetched_at < wait:
                        raise _issuer_unavailable(self.config.issuer, "keys")
                    await self._refresh()
        assert self._keys is not None
        return self._keys

    async def _key(self, kid: str | None) -> Key | None:
        keys = await self._fetched()
        if kid is None:  # a key set of one key needs no kid
            return next(iter(keys.values())) if len(keys) == 1 else None
        key = keys.get(kid)
        if key is not None:
            return key
        # An unknown kid: the issuer may have rotated its keys. Fetch them again, but not
        # more often than configured (an attacker's made-up kids must not flood the issuer).
        async with self._lock:
            key = self._keys.get(kid) if self._keys is not None else None
            if key is None and self._clock() - self._fetched_at >= (
                self.config.jwks_min_refresh_seconds
            ):
                await self._refresh()
                key = self._keys.get(kid) if self._keys is not None else None
        return key

    async def verify(self, token: str, header: Mapping[str, Any]) -> dict[str, Any]:
        """The claims of a valid access token of this issuer.

        Raises:
            ServiceError: 401 ``invalid_token`` (saying why) when it is not valid; 503 when
                the issuer's keys cannot be fetched.
        """
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in _KEY_TYPES:
            raise invalid_token(
                f"The access token's algorithm {alg!r} is not accepted (only asymmetric "
                "signatures the issuer advertises)."
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise invalid_token("The access token's 'kid' is not a string.")
        key = await self._key(kid)
        if alg not in self._algorithms:
            raise invalid_token(f"The issuer does not sign with {alg!r}.")
        if key is None:
            raise invalid_token(
                "The access token is signed with a key the issuer does not publish."
            )
        key_alg = key.get("alg")
        if key.key_type != _KEY_TYPES[alg] or (key_alg is not None and key_alg != alg):
            raise invalid_token(f"The access token's algorithm {alg!r} does not fit its key.")
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
        # Hostile input makes joserfc raise more than its JoseError: any failure is a 401.
        except Exception as err:
            raise invalid_token("The access token's signature is invalid.") from err
        claims = dict(decoded.claims)
        check_claims(claims, self.config, self._now())
        return claims

    async def introspect(self, token: str) -> dict[str, Any]:
        """The claims of an opaque access token of this issuer that it says is active.

        A recent active answer about the same token is reused (see the module docstring).

        Raises:
            ServiceError: 401 ``invalid_token`` (saying why) when the issuer does not vouch
                for it as an access token for this server; 503 ``issuer_unavailable`` when
                the issuer can't be asked.
        """
        settings = self.config.introspection
        if settings is None or self._secret is None:
            raise invalid_token("The access token is not a signed JWT.")
        if len(token) > MAX_OPAQUE_TOKEN or not _OPAQUE_TOKEN.fullmatch(token):
            raise invalid_token("The access token is malformed.")
        key = _Answers.key(token)
        cached = self._answers.get(key, self._now())
        if cached is not None:
            return cached
        answer = await self._ask(token, settings.endpoint, settings.client_id, settings.auth_method)
        now = self._now()
        claims = introspected_claims(answer, self.config, now)
        until = min(now + settings.cache_seconds, float(claims["exp"]))
        if until > now:
            self._answers.put(key, claims, until)
        return claims

    async def _ask(
        self, token: str, endpoint: str | None, client_id: str, auth_method: str
    ) -> dict[str, Any]:
        """The issuer's introspection answer about ``token`` (RFC 7662 §2)."""
        issuer = self.config.issuer
        if endpoint is None:
            await self._fetched()
            endpoint = self._introspection_endpoint
            if endpoint is None:
                log.error(
                    "issuer %r publishes no introspection_endpoint: set its introspection.endpoint",
                    issuer,
                )
                raise _issuer_unavailable(issuer, "introspection endpoint")
        assert self._secret is not None
        secret = self._secret.get_secret_value()
        data = {"token": token, "token_type_hint": "access_token"}
        headers = {"Accept": "application/json"}
        if auth_method == "client_secret_basic":  # RFC 6749 §2.3.1: form-encoded, then Basic
            raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
        else:
            data |= {"client_id": client_id, "client_secret": secret}
        self.introspections += 1
        try:
            response = await self._http.post(
                endpoint, data=data, headers=headers, timeout=FETCH_TIMEOUT
            )
        except httpx.HTTPError as err:
            log.warning(
                "the introspection endpoint of issuer %r can't be reached (%s)",
                issuer,
                type(err).__name__,
            )
            raise _issuer_unavailable(issuer, "introspection answer") from err
        if response.status_code != 200:
            error = _error_code(response)
            log.warning(
                "the introspection endpoint of issuer %r answered HTTP %d%s",
                issuer,
                response.status_code,
                f" ({error})" if error else "",
            )
            raise _issuer_unavailable(issuer, "introspection answer")
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("active"), bool):
            log.warning("the introspection endpoint of issuer %r did not answer in JSON", issuer)
            raise _issuer_unavailable(issuer, "introspection answer")
        return answer


def _claim_values(claims: Mapping[str, Any], name: str | None) -> set[str]:
    """The names in a groups/roles claim: a list of strings or one space-separated string."""
    if name is None:
        return set()
    value = claims.get(name)
    if isinstance(value, str):
        return set(value.split())
    if isinstance(value, list):
        return {v for v in value if isinstance(v, str)}
    return set()


def _base_username(claims: Mapping[str, Any], config: TrustedIssuer) -> str:
    value = claims.get(config.username_claim)
    if not isinstance(value, str) or not value:
        value = str(claims["sub"])
    name = _USERNAME_BAD.sub("-", value).lstrip("._@-")[:_USERNAME_MAX]
    return name or "user"


async def _free_username(session: AsyncSession, base: str) -> str:
    """``base``, or ``base-2``, ``base-3``, ... : the first that no user has."""
    candidate = base
    for n in range(2, 10_000):
        if await session.get(UserRow, candidate) is None:
            return candidate
        suffix = f"-{n}"
        candidate = base[: _USERNAME_MAX - len(suffix)] + suffix
    raise ServiceError(409, "conflict", f"No free username for {base!r}.")


async def _sync_memberships(
    session: AsyncSession, config: TrustedIssuer, username: str, claims: Mapping[str, Any]
) -> None:
    """Make the mapped groups and roles of ``username`` follow the token's claim."""
    names = _claim_values(claims, config.groups_claim)
    if config.group_map:
        managed = set(config.group_map.values())
        wanted = {config.group_map[n] for n in names if n in config.group_map}
        current = set(
            (
                await session.scalars(
                    select(GroupMemberRow.group_name).where(
                        GroupMemberRow.username == username,
                        GroupMemberRow.group_name.in_(managed),
                    )
                )
            ).all()
        )
        for group in sorted(wanted - current):
            if await session.get(GroupRow, group) is None:
                session.add(GroupRow(name=group, description=f"members from {config.issuer}"))
                await session.flush()
            session.add(GroupMemberRow(group_name=group, username=username))
        gone = current - wanted
        if gone:
            await session.execute(
                delete(GroupMemberRow).where(
                    GroupMemberRow.username == username, GroupMemberRow.group_name.in_(gone)
                )
            )
    if config.role_map:
        user = await session.get(UserRow, username)
        if user is not None:
            managed_roles = set(config.role_map.values())
            wanted_roles = {config.role_map[n] for n in names if n in config.role_map}
            roles = (set(user.system_roles or ()) - managed_roles) | wanted_roles
            if roles != set(user.system_roles or ()):
                user.system_roles = sorted(roles)


async def link_user(session: AsyncSession, config: TrustedIssuer, claims: Mapping[str, Any]) -> str:
    """The username linked to the token's (issuer, subject), provisioned if allowed.

    Also brings the user's mapped groups and roles in line with the token. Runs its own
    transaction on ``session`` (which must have none open).

    Raises:
        ServiceError: 401 ``invalid_token`` for an unknown subject when ``provision`` is off.
    """
    subject = str(claims["sub"])
    for attempt in range(2):  # a concurrent first request may link or create the same rows
        try:
            async with session.begin():
                link = await session.get(ExternalIdentityRow, (config.issuer, subject))
                if link is not None:
                    username = link.username
                elif not config.provision:
                    raise invalid_token(
                        f"Unknown user: subject {subject!r} of {config.issuer!r} has no "
                        "account on this server (this issuer's users are not created on first use)."
                    )
                else:
                    username = await _free_username(session, _base_username(claims, config))
                    email = claims.get("email")
                    name = claims.get("name")
                    session.add(
                        UserRow(
                            username=username,
                            password_hash=None,
                            display_name=name[:255] if isinstance(name, str) else None,
                            email=email[:255] if isinstance(email, str) else None,
                            system_roles=[],
                        )
                    )
                    await session.flush()
                    session.add(
                        ExternalIdentityRow(
                            issuer=config.issuer, subject=subject, username=username
                        )
                    )
                    await session.flush()
                await _sync_memberships(session, config, username, claims)
            return username
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


class Authenticator:
    """Verifies access tokens of the embedded issuer and of the trusted issuers.

    Args:
        embedded: the embedded auth service's tokens, or None when its tokens are not accepted.
        issuers: the verifiers of the trusted issuers.
    """

    def __init__(
        self,
        embedded: Any | None,
        issuers: list[IssuerVerifier],
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._embedded = embedded
        self.issuers = {v.config.issuer: v for v in issuers}
        self._introspecting = next((v for v in issuers if v.config.introspection), None)
        self._http = http

    @classmethod
    def from_settings(cls, settings: ServerSettings, embedded: Any) -> Authenticator:
        """The authenticator of ``settings`` (it owns an HTTP client: :meth:`aclose` it)."""
        # the CA bundle is loaded on the first TLS handshake, not at every start of the app
        tls = verifying_context(trust_env=False)
        http = httpx.AsyncClient(follow_redirects=False, trust_env=False, verify=tls)
        verifiers = [IssuerVerifier(config, http) for config in settings.trusted_issuers]
        return cls(embedded if settings.embedded_issuer_enabled else None, verifiers, http)

    async def aclose(self) -> None:
        """Close the HTTP client that fetches the issuers' keys."""
        if self._http is not None:
            await self._http.aclose()

    def __repr__(self) -> str:
        return f"Authenticator(embedded={self._embedded is not None}, issuers={list(self.issuers)})"

    async def verify_access_token(self, token: str) -> dict[str, Any]:
        """The claims of a valid access token; raise a 401 ServiceError otherwise."""
        if not self.issuers and self._embedded is not None:
            claims: dict[str, Any] = self._embedded.verify_access_token(token)
            return claims
        try:
            header, unverified = peek(token)
        except ServiceError:
            if self._introspecting is None:
                raise
            # Not a JWT: an opaque token, which only its issuer can vouch for.
            return await self._introspecting.introspect(token)
        issuer = unverified.get("iss")
        verifier = self.issuers.get(issuer) if isinstance(issuer, str) else None
        if verifier is not None:
            return await verifier.verify(token, header)
        if self._embedded is not None and issuer == self._embedded.issuer:
            claims = self._embedded.verify_access_token(token)
            return claims
        raise invalid_token(f"The access token's issuer {issuer!r} is not trusted by this server.")

    async def local_claims(self, session: AsyncSession, claims: dict[str, Any]) -> dict[str, Any]:
        """Verified claims with ``sub`` our username (linking a trusted issuer's subject)."""
        verifier = self.issuers.get(claims.get("iss", ""))
        if verifier is None:
            return claims
        username = await link_user(session, verifier.config, claims)
        client_id = claims.get("client_id", claims.get("azp"))
        return {
            "sub": username,
            "scope": claims.get("scope", ""),
            "client_id": client_id if isinstance(client_id, str) else None,
        }
