"""Forged, altered and misused bearer tokens: every one is a 401 with the error body, never a 500.

Access tokens are ES256 JWTs signed with the server's one key (``/auth/jwks``) and checked for
signature, issuer, audience, expiry and ``nbf``, then for an enabled account. Refresh tokens
are opaque random strings and the server issues no ID tokens, so "an ID token used as an
access token" has no counterpart here. Resource routes don't enforce scopes (any valid access
token of an enabled user is enough), so there is no "insufficient scope" case either.

Each attack is sent to ``/auth/userinfo`` and to one route of each other service; the answer
must be 401 with ``{"error": {"code": "unauthenticated"}}`` and a ``WWW-Authenticate: Bearer``
challenge.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

from provena_like.testing.device_approval import approve_device_code
from provena_like.testing.server_thread import ServerThread
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio

AUDIENCE = "provena-like"
CLI = "provena-like-cli"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

PROTECTED = (
    "/auth/userinfo",
    "/registry/items",
    "/datastore/datasets",
    "/datastore/reviews/mine",
    "/search/items?q=reef",
)
WITH_BODY = (
    ("/registry/items", {"subtype": "organisation", "record": {"name": "Forged Institute"}}),
    ("/datastore/reviewers", {"username": "admin"}),
)
"""Writes with a (small) body: refused before the body matters."""


def b64(data: bytes | dict[str, Any] | list[Any] | str | None) -> str:
    """Base64url without padding of bytes, or of the compact JSON of anything else."""
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64(header)}.{b64(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def with_parts(token: str, *, header: Any = ..., claims: Any = ..., sig: str | None = None) -> str:
    """``token`` with its header, claims or signature replaced (the signature kept otherwise)."""
    h, c, s = token.split(".")
    return ".".join(
        [
            h if header is ... else b64(header),
            c if claims is ... else b64(claims),
            s if sig is None else sig,
        ]
    )


class FetchRecorder:
    """A loopback HTTP server serving an attacker's JWKS and counting the requests it gets."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.requests: list[str] = []
        recorder = self
        body = json.dumps(jwks).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                recorder.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                del format, args

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host!s}:{port}/jwks.json"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> FetchRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


@dataclass(frozen=True)
class Kit:
    """What the attacks are built from."""

    server: ServerThread
    issuer: str
    jwk: dict[str, Any]  # the server's public signing key
    username: str  # an enabled user
    valid: str  # a valid access token of ``username``
    admin: str  # a valid access token of a system admin
    attacker: ECKey
    recorder: FetchRecorder

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.username,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
            "client_id": CLI,
            "scope": "openid",
        }
        claims.update(changes)
        return claims

    def signed(self, **changes: Any) -> str:
        """A token signed with the server's own key (through its token service)."""
        tokens = self.server.app.state.tokens
        token: str = tokens.issue_access_token(
            subject=self.username, client_id=CLI, scope="openid", ttl=600, extra=changes
        )
        return token

    def by_attacker(self, header: dict[str, Any] | None = None, **changes: Any) -> str:
        head = {"alg": "ES256", "typ": "at+jwt", "kid": self.jwk["kid"], **(header or {})}
        return jwt.encode(head, self.claims(**changes), self.attacker)


@pytest.fixture(scope="module")
def attacker_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"}, auto_kid=True)


@pytest.fixture(scope="module")
def recorder(attacker_key: ECKey) -> Iterator[FetchRecorder]:
    with FetchRecorder({"keys": [attacker_key.as_dict(private=False)]}) as rec:
        yield rec


@pytest.fixture(scope="module")
def kit(
    server: ServerThread,
    make_token: Callable[..., str],
    attacker_key: ECKey,
    recorder: FetchRecorder,
) -> Kit:
    username = f"forgery-{uuid.uuid4().hex[:8]}"
    valid = make_token(username)
    admin = make_token(f"forgery-admin-{uuid.uuid4().hex[:8]}", system_roles=("admin",))
    jwk = server.app.state.tokens.jwks()["keys"][0]
    return Kit(server, server.settings.issuer, jwk, username, valid, admin, attacker_key, recorder)


@pytest.fixture
async def api(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=SHARED_TLS, base_url=server.url, timeout=60) as client:
        yield client


async def assert_refused(api: httpx.AsyncClient, authorization: str | bytes) -> None:
    """Every protected route answers 401 with the error body and a Bearer challenge."""
    for method, url, body in [
        *(("GET", url, None) for url in PROTECTED),
        *(("POST", url, body) for url, body in WITH_BODY),
    ]:
        r = await api.request(method, url, json=body, headers={"Authorization": authorization})
        assert r.status_code == 401, (url, r.status_code, r.text[:300])
        assert r.json()["error"]["code"] == "unauthenticated", (url, r.text[:300])
        assert r.headers["www-authenticate"].startswith("Bearer "), url


async def test_the_valid_token_is_accepted(api: httpx.AsyncClient, kit: Kit) -> None:
    """The baseline: without it every refusal below could be for another reason."""
    for token in (kit.valid, kit.signed()):
        for url in PROTECTED:
            r = await api.get(url, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, (url, r.text[:300])


# -- other keys and algorithms -------------------------------------------------------------


def _public_key_encodings(jwk: dict[str, Any]) -> list[bytes]:
    key = ECKey.import_key(jwk)
    return [
        key.as_pem(private=False),
        key.as_der(private=False),
        json.dumps(jwk).encode(),
        json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode(),
        base64.urlsafe_b64decode(jwk["x"] + "=="),
    ]


async def test_hs256_with_the_public_key_as_secret(api: httpx.AsyncClient, kit: Kit) -> None:
    """Algorithm confusion: an HMAC keyed with the published key is not a signature."""
    for secret in _public_key_encodings(kit.jwk):
        for alg in ("HS256", "hs256"):
            header = {"alg": alg, "typ": "at+jwt", "kid": kit.jwk["kid"]}
            await assert_refused(api, f"Bearer {hs256(header, kit.claims(), secret)}")


@pytest.mark.parametrize(
    "make_key",
    [
        pytest.param(lambda: (ECKey.generate_key("P-256"), "ES256"), id="ES256"),
        pytest.param(lambda: (ECKey.generate_key("P-384"), "ES384"), id="ES384"),
        pytest.param(lambda: (RSAKey.generate_key(2048), "RS256"), id="RS256"),
        pytest.param(lambda: (RSAKey.generate_key(2048), "PS256"), id="PS256"),
        pytest.param(lambda: (OKPKey.generate_key("Ed25519"), "EdDSA"), id="EdDSA"),
    ],
)
async def test_signed_with_another_key(
    api: httpx.AsyncClient, kit: Kit, make_key: Callable[[], tuple[Any, str]]
) -> None:
    key, alg = make_key()
    for kid in (kit.jwk["kid"], "unknown-key", None):
        header: dict[str, Any] = {"alg": alg, "typ": "at+jwt"}
        if kid is not None:
            header["kid"] = kid
        with warnings.catch_warnings():  # joserfc warns that EdDSA is deprecated (RFC 9864)
            warnings.simplefilter("ignore", SecurityWarning)
            token = jwt.encode(header, kit.claims(), key, algorithms=[alg])
        await assert_refused(api, f"Bearer {token}")


async def test_alg_none(api: httpx.AsyncClient, kit: Kit) -> None:
    for alg in ("none", "None", "NONE", "nOnE", ""):
        header = {"alg": alg, "typ": "at+jwt", "kid": kit.jwk["kid"]}
        unsigned = f"{b64(header)}.{b64(kit.claims())}"
        await assert_refused(api, f"Bearer {unsigned}.")
        await assert_refused(api, f"Bearer {unsigned}")
        # the server's own signature, under a header that says there is none
        await assert_refused(api, f"Bearer {with_parts(kit.valid, header=header)}")


async def test_kid_of_an_unknown_key(api: httpx.AsyncClient, kit: Kit) -> None:
    header = unb64(kit.valid.split(".")[0])
    for kid in ("unknown-key", "../../signing-key.json", "' OR 1=1 --", "", 7, None, ["x"], {}):
        changed = with_parts(kit.valid, header={**header, "kid": kid})
        await assert_refused(api, f"Bearer {changed}")
        if isinstance(kid, str):
            await assert_refused(api, f"Bearer {kit.by_attacker({'kid': kid})}")


async def test_key_location_headers_are_not_followed(api: httpx.AsyncClient, kit: Kit) -> None:
    """``jku``, ``x5u``, an embedded ``jwk`` or ``x5c``: the server trusts only its own key."""
    own = kit.attacker.as_dict(private=False)
    for header in (
        {"jku": kit.recorder.url},
        {"x5u": kit.recorder.url},
        {"jku": kit.recorder.url, "kid": kit.attacker.kid},
        {"jwk": own},
        {"jwk": own, "kid": kit.attacker.kid},
        {"x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]},
    ):
        await assert_refused(api, f"Bearer {kit.by_attacker(header)}")
    assert kit.recorder.requests == [], "the server fetched a key from a token's header"


# -- altered or unacceptable claims ----------------------------------------------------------


async def test_altered_claims_break_the_signature(api: httpx.AsyncClient, kit: Kit) -> None:
    claims = unb64(kit.valid.split(".")[1])
    for changes in (
        {"sub": "admin"},
        {"sub": kit.username + "x"},
        {"exp": claims["exp"] + 86400},
        {"roles": ["admin"]},
        {"scope": "openid offline_access"},
    ):
        await assert_refused(api, f"Bearer {with_parts(kit.valid, claims={**claims, **changes})}")


async def test_expired(api: httpx.AsyncClient, kit: Kit) -> None:
    now = int(time.time())
    for exp in (now - 1, now - 3600, 0, -1):
        await assert_refused(api, f"Bearer {kit.signed(exp=exp, iat=now - 7200)}")
    token = kit.server.app.state.tokens.issue_access_token(
        subject=kit.username, client_id=CLI, scope="openid", ttl=-5
    )
    await assert_refused(api, f"Bearer {token}")


async def test_without_or_with_a_malformed_expiry(api: httpx.AsyncClient, kit: Kit) -> None:
    for exp in (None, "9999999999", [9999999999], {"t": 1}, True):
        await assert_refused(api, f"Bearer {kit.signed(exp=exp)}")


async def test_not_yet_valid(api: httpx.AsyncClient, kit: Kit) -> None:
    await assert_refused(api, f"Bearer {kit.signed(nbf=int(time.time()) + 3600)}")


async def test_wrong_issuer(api: httpx.AsyncClient, kit: Kit) -> None:
    for iss in (
        "https://evil.example/auth",
        kit.issuer + "/",
        kit.issuer.upper(),
        None,
        [kit.issuer],
    ):
        await assert_refused(api, f"Bearer {kit.signed(iss=iss)}")


async def test_wrong_audience(api: httpx.AsyncClient, kit: Kit) -> None:
    for aud in ("another-service", AUDIENCE.upper(), "", None, ["another-service"]):
        await assert_refused(api, f"Bearer {kit.signed(aud=aud)}")


async def test_subject_missing_or_unknown(api: httpx.AsyncClient, kit: Kit) -> None:
    """A well-signed token for an account that doesn't exist (or was never one) is refused."""
    for sub in (f"deleted-{uuid.uuid4().hex[:8]}", "", None, 42, ["admin"]):
        await assert_refused(api, f"Bearer {kit.signed(sub=sub)}")


async def test_disabled_user(
    api: httpx.AsyncClient, kit: Kit, make_token: Callable[..., str]
) -> None:
    name = f"forgery-disabled-{uuid.uuid4().hex[:8]}"
    token = make_token(name)
    r = await api.get("/auth/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    r = await api.patch(
        f"/auth/users/{name}",
        json={"disabled": True},
        headers={"Authorization": f"Bearer {kit.admin}"},
    )
    assert r.status_code == 200, r.text
    await assert_refused(api, f"Bearer {token}")


async def test_service_account_of_a_deleted_client(api: httpx.AsyncClient, kit: Kit) -> None:
    """Deleting a client disables its service account: its tokens stop working at once."""
    admin = {"Authorization": f"Bearer {kit.admin}"}
    client_id = f"forgery-cc-{uuid.uuid4().hex[:8]}"
    r = await api.post(
        "/auth/clients",
        json={"client_id": client_id, "grant_types": ["client_credentials"]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    r = await api.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, r.json()["client_secret"]),
    )
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    r = await api.get("/auth/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    r = await api.delete(f"/auth/clients/{client_id}", headers=admin)
    assert r.status_code == 204, r.text
    await assert_refused(api, f"Bearer {token}")


# -- other tokens as access tokens ---------------------------------------------------------


async def _device_sign_in(api: httpx.AsyncClient, username: str, password: str) -> dict[str, Any]:
    """A real device-flow sign-in with ``offline_access``; the token response."""
    r = await api.post(
        "/auth/device_authorization", data={"client_id": CLI, "scope": "openid offline_access"}
    )
    assert r.status_code == 200, r.text
    grant = r.json()
    async with httpx.AsyncClient(verify=SHARED_TLS, timeout=60) as browser:
        await approve_device_code(browser, grant["verification_uri_complete"], username, password)
    r = await api.post(
        "/auth/token",
        data={"grant_type": DEVICE_GRANT, "device_code": grant["device_code"], "client_id": CLI},
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_refresh_token_as_access_token(api: httpx.AsyncClient, kit: Kit) -> None:
    name, password = f"forgery-dev-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    r = await api.post(
        "/auth/users",
        json={"username": name, "password": password},
        headers={"Authorization": f"Bearer {kit.admin}"},
    )
    assert r.status_code == 201, r.text
    tokens = await _device_sign_in(api, name, password)
    assert "id_token" not in tokens  # no ID tokens to misuse
    r = await api.get(
        "/auth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert r.status_code == 200 and r.json()["sub"] == name
    await assert_refused(api, f"Bearer {tokens['refresh_token']}")


async def test_client_secret_and_signing_material_as_access_token(
    api: httpx.AsyncClient, kit: Kit
) -> None:
    r = await api.post(
        "/auth/clients",
        json={
            "client_id": f"forgery-{uuid.uuid4().hex[:8]}",
            "confidential": True,
            "grant_types": ["client_credentials"],
        },
        headers={"Authorization": f"Bearer {kit.admin}"},
    )
    assert r.status_code == 201, r.text
    secret = r.json()["client_secret"]
    for value in (secret, json.dumps(kit.jwk), kit.jwk["x"]):
        await assert_refused(api, f"Bearer {value}")


# -- malformed tokens and headers ------------------------------------------------------------


def _malformed(kit: Kit) -> list[str]:
    h, c, s = kit.valid.split(".")
    header = unb64(h)
    not_utf8 = b64(b"\xff\xfe")
    nan = b64(b'{"alg":"ES256","x":NaN}')
    big_int = b64(b'{"alg":"ES256","x":' + b"9" * 5000 + b"}")
    deep = b"[" * 3000 + b"]" * 3000
    deep_header = b64(b'{"alg":"ES256","x":' + deep + b"}")
    deep_claims = b64(b'{"sub":' + deep + b"}")
    return [
        ".",
        "..",
        "...",
        "a.b.c",
        "not-a-token",
        f"{h}.{c}",
        f"{h}.{c}.{s}.{s}",
        f"{h}.{c}.{s}.x.y",
        f"{h}==.{c}.{s}",
        f"{h}.{c}==.{s}",
        f"{h}.{c}.{s}==",
        f"!!!.{c}.{s}",
        f"{h}.!!!.{s}",
        f"{h}.{c}.!!!",
        f"{h}.{c}.{s[:10]}",
        f"{h}.{c}.{s}A",
        f"{h}+/.{c}.{s}",
        f"{b64(b'not json')}.{c}.{s}",
        f"{not_utf8}.{c}.{s}",
        f"{h}.{not_utf8}.{s}",
        f"{b64([header])}.{c}.{s}",
        f"{b64('ES256')}.{c}.{s}",
        f"{b64(None)}.{c}.{s}",
        f"{h}.{b64([1, 2])}.{s}",
        f"{h}.{b64('sub')}.{s}",
        f"{h}.{b64(None)}.{s}",
        f"{b64({**header, 'alg': 5})}.{c}.{s}",
        f"{b64({**header, 'alg': None})}.{c}.{s}",
        f"{b64({**header, 'b64': False, 'crit': ['b64']})}.{c}.{s}",
        f"{b64({**header, 'crit': ['exp']})}.{c}.{s}",
        f"{nan}.{c}.{s}",
        f"{big_int}.{c}.{s}",
        f"{deep_header}.{c}.{s}",
        f"{h}.{deep_claims}.{s}",
    ]


async def test_malformed_tokens(api: httpx.AsyncClient, kit: Kit) -> None:
    for token in _malformed(kit):
        await assert_refused(api, f"Bearer {token}")


@pytest.mark.parametrize("crit", [1, 1.5, True, None, "exp", [1], [None], [{}], [[]], {"a": 1}])
async def test_malformed_crit_header(api: httpx.AsyncClient, kit: Kit, crit: Any) -> None:
    """A ``crit`` that is not a list of names once raised TypeError in the JWT library: 500."""
    header = {**unb64(kit.valid.split(".")[0]), "crit": crit}
    await assert_refused(api, f"Bearer {with_parts(kit.valid, header=header)}")
    forged = kit.by_attacker()
    forged_header = {**unb64(forged.split(".")[0]), "crit": crit}
    await assert_refused(api, f"Bearer {with_parts(forged, header=forged_header)}")


async def test_bad_authorization_headers(api: httpx.AsyncClient, kit: Kit) -> None:
    for value in (
        "Bearer",
        kit.valid,  # no scheme
        f"Basic {kit.valid}",
        f"Token {kit.valid}",
        f"Bearer {kit.valid[:-3]}",
        f"Bearer {kit.valid} {kit.valid}",
        f"Bearer {kit.valid},Bearer {kit.valid}",
        b"Bearer " + "é".encode() * 10,
        b"Bearer \xff\xfe\x80",
    ):
        await assert_refused(api, value)


async def test_tokens_only_count_in_the_authorization_header(
    api: httpx.AsyncClient, kit: Kit
) -> None:
    """A valid token in the query string, a cookie or another header authenticates nobody."""
    for url in PROTECTED:
        sep = "&" if "?" in url else "?"
        for request in (
            api.build_request("GET", f"{url}{sep}access_token={kit.valid}"),
            api.build_request("GET", url, cookies={"access_token": kit.valid}),
            api.build_request("GET", url, headers={"X-Access-Token": kit.valid}),
            api.build_request("GET", url, headers={"Proxy-Authorization": f"Bearer {kit.valid}"}),
        ):
            r = await api.send(request)
            assert r.status_code == 401, (request.url, r.status_code)
            assert r.json()["error"]["code"] == "unauthenticated"


async def test_huge_tokens(api: httpx.AsyncClient, kit: Kit) -> None:
    """Big but within the server's header limit: 401; beyond it: a 4xx, never a 500."""
    h, c, s = kit.valid.split(".")
    claims = {**unb64(c), "pad": "x" * 6000}
    for token in (
        "a" * 8000,
        f"{h}.{b64(claims)}.{s}",
        kit.by_attacker(pad="x" * 6000),
        ".".join(["a" * 2600] * 3),
    ):
        await assert_refused(api, f"Bearer {token}")
    for size in (64_000, 1_000_000):
        try:
            r = await api.get("/auth/userinfo", headers={"Authorization": "Bearer " + "a" * size})
        except httpx.TransportError:
            continue  # the server may drop the connection of an oversized request head
        assert 400 <= r.status_code < 500, (size, r.status_code)
    # and the server still answers
    r = await api.get("/auth/userinfo", headers={"Authorization": f"Bearer {kit.valid}"})
    assert r.status_code == 200
