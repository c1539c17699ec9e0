"""Opaque access tokens of a trusted issuer, checked by introspection (RFC 7662, issue 18).

The institution is npm ``oidc-provider`` (``provider/server.mjs``): its client ``OPAQUE_CLI``
gets opaque access tokens for our server's audience (``CLI`` gets JWTs for it), and our server
asks its introspection endpoint about them as the confidential client ``INTROSPECTOR``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from provena_like.server.auth.external import LEEWAY, IssuerVerifier, introspected_claims
from provena_like.server.errors import ServiceError
from provena_like.server.settings import Introspection, ServerSettings, TrustedIssuer
from provena_like.testing.server_thread import ServerThread
from tests.support.institutions import (
    AUDIENCE,
    INTROSPECTOR,
    INTROSPECTOR_SECRET,
    LAB,
    OPAQUE_CLI,
    RUN,
    Institution,
    challenge,
    closed_port,
    running,
    sdk_login,
    trusting,
    userinfo,
)
from tests.support.oidc_support import CLI
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio

OPAQUE_USER = f"olive{RUN}"
"""The institution's user here (not the other modules' user: the usernames stay distinct)."""


@pytest.fixture(scope="module")
def uni(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Institution]:
    with running(tmp_path_factory, "opaque-1", OPAQUE_USER) as inst:
        yield inst


def introspecting(inst: Institution, **over: Any) -> TrustedIssuer:
    """The institution, trusted with introspection as ``INTROSPECTOR`` (``over``: its fields)."""
    fields: dict[str, Any] = {
        "client_id": INTROSPECTOR,
        "client_secret": SecretStr(INTROSPECTOR_SECRET),
        **over,
    }
    return inst.trusted(introspection=Introspection(**fields))


async def opaque_token(inst: Institution, tmp_path: Path) -> str:
    """An opaque access token of the institution's user, from a sign-in through the SDK."""
    auth = await sdk_login(inst, tmp_path / uuid.uuid4().hex, OPAQUE_CLI)
    token = (await auth.get_access_token()).get_secret_value()
    await auth.aclose()
    assert token.count(".") != 2, "the provider was meant to issue an opaque token"
    return token


async def test_an_opaque_token_is_the_same_user_as_its_jwt_twin(
    server: ServerThread, uni: Institution, tmp_path: Path
) -> None:
    opaque = await opaque_token(uni, tmp_path)
    jwt_auth = await sdk_login(uni, tmp_path / "jwt", CLI)
    as_jwt = (await jwt_auth.get_access_token()).get_secret_value()
    async with trusting(server, introspecting(uni)) as authenticator:
        by_opaque = await userinfo(server, opaque)
        again = await userinfo(server, opaque)
        by_jwt = await userinfo(server, as_jwt)
        asked = authenticator.issuers[uni.issuer].introspections
    assert by_opaque.status_code == 200, by_opaque.text
    info = by_opaque.json()
    assert info["sub"] == OPAQUE_USER  # provisioned from the introspected claims
    assert (info["groups"], info["roles"]) == ([LAB], ["reviewer"])
    assert info["client_id"] == OPAQUE_CLI
    assert again.json() == info
    assert by_jwt.status_code == 200, by_jwt.text
    assert by_jwt.json()["sub"] == OPAQUE_USER  # one (issuer, sub): one user
    assert asked == 1  # the second request used the kept answer


async def test_a_revoked_token_is_refused(
    server: ServerThread, uni: Institution, tmp_path: Path
) -> None:
    token = await opaque_token(uni, tmp_path)
    async with trusting(server, introspecting(uni, cache_seconds=0)):
        before = await userinfo(server, token)
        async with httpx.AsyncClient(verify=SHARED_TLS, timeout=30) as http:
            revoked = await http.post(
                f"{uni.issuer}/token/revocation",
                data={"token": token, "client_id": OPAQUE_CLI, "token_type_hint": "access_token"},
            )
        after = await userinfo(server, token)
    assert before.status_code == 200, before.text
    assert revoked.status_code == 200, revoked.text
    assert "is not active" in challenge(after)


async def test_a_token_for_another_audience_is_refused(
    server: ServerThread, uni: Institution, tmp_path: Path
) -> None:
    token = await opaque_token(uni, tmp_path)
    elsewhere = introspecting(uni).model_copy(update={"audiences": ["https://another.api"]})
    async with trusting(server, elsewhere):
        refused = await userinfo(server, token)
    assert "not meant for this server" in challenge(refused)


async def test_a_refresh_token_is_not_an_access_token(
    server: ServerThread, uni: Institution, tmp_path: Path
) -> None:
    auth = await sdk_login(uni, tmp_path, OPAQUE_CLI)
    assert auth.store is not None and auth.key is not None
    stored = await auth.store.load(auth.key)
    await auth.aclose()
    assert stored is not None and stored.refresh_token is not None
    async with trusting(server, introspecting(uni)):
        refused = await userinfo(server, stored.refresh_token.get_secret_value())
    # the provider says it is active (as a refresh token, for its client, with no audience)
    assert "not meant for this server" in challenge(refused)


async def test_an_answer_naming_another_issuer_is_refused(
    server: ServerThread, uni: Institution, tmp_path: Path
) -> None:
    # Issuer B's introspection endpoint (wrongly, or maliciously) vouches for A's tokens: the
    # answer is active, but its 'iss' is A.
    token = await opaque_token(uni, tmp_path)
    b = TrustedIssuer(
        issuer="https://idp-b.example",
        audiences=[AUDIENCE],
        introspection=Introspection(
            client_id=INTROSPECTOR,
            client_secret=SecretStr(INTROSPECTOR_SECRET),
            endpoint=f"{uni.issuer}/token/introspection",
        ),
    )
    async with trusting(server, b, uni.trusted()):
        refused = await userinfo(server, token)
    assert "not issued by 'https://idp-b.example'" in challenge(refused)


async def test_the_kept_answer_does_not_outlive_the_token(uni: Institution, tmp_path: Path) -> None:
    token = await opaque_token(uni, tmp_path)
    clock = [0.0]
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        verifier = IssuerVerifier(
            introspecting(uni, cache_seconds=3600), http, now=lambda: clock[0]
        )
        clock[0] = time.time()
        claims = await verifier.introspect(token)
        exp = float(claims["exp"])
        clock[0] = exp - 1
        await verifier.introspect(token)
        assert verifier.introspections == 1  # kept until the token's exp ...
        clock[0] = exp + 1
        await verifier.introspect(token)  # (within the clock-skew leeway)
        assert verifier.introspections == 2  # ... and not a second longer (not 3600 s)
        clock[0] = exp + LEEWAY + 1
        with pytest.raises(ServiceError, match="has expired") as refused:
            await verifier.introspect(token)
    assert refused.value.status == 401
    assert verifier.introspections == 3


async def test_unusable_introspection_is_a_503_and_secrets_stay_out_of_the_logs(
    server: ServerThread,
    uni: Institution,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = await opaque_token(uni, tmp_path)
    variable = f"PROVENA_TEST_INTROSPECTION_{RUN}"
    monkeypatch.setenv(variable, INTROSPECTOR_SECRET)
    good = introspecting(
        uni, client_secret=None, client_secret_env=variable, auth_method="client_secret_post"
    )
    wrong_secret = introspecting(uni, client_secret=SecretStr("not-the-secret-1f9d"))
    down = introspecting(uni, endpoint=f"http://127.0.0.1:{closed_port()}/introspect")
    async with trusting(server, good):
        accepted = await userinfo(server, token)
        inactive = await userinfo(server, token[::-1])
    answers: dict[str, httpx.Response] = {}
    for name, config in (("wrong secret", wrong_secret), ("down", down)):
        async with trusting(server, config):
            answers[name] = await userinfo(server, token)
    assert accepted.status_code == 200, accepted.text
    assert "is not active" in challenge(inactive)
    for name, answer in answers.items():
        # the token may be fine: not a 401 that would make a client throw it away
        assert answer.status_code == 503, (name, answer.text)
        assert answer.json()["error"]["code"] == "issuer_unavailable"
        assert "retry-after" in answer.headers and "www-authenticate" not in answer.headers
    assert "answered HTTP 401 (invalid_client)" in caplog.text  # the log was captured
    assert "can't be reached" in caplog.text
    shown = [
        caplog.text,
        repr(good),
        str(good),
        good.model_dump_json(),
        ServerSettings(data_dir=tmp_path, trusted_issuers=[wrong_secret]).model_dump_json(),
        *(a.text + str(a.headers) for a in (accepted, inactive, *answers.values())),
    ]
    for text in shown:
        for secret in (INTROSPECTOR_SECRET, "not-the-secret-1f9d", token):
            assert secret not in text


async def test_refusals_are_not_kept_and_the_kept_answers_are_bounded(
    uni: Institution, tmp_path: Path
) -> None:
    tokens = [await opaque_token(uni, tmp_path) for _ in range(3)]
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        verifier = IssuerVerifier(introspecting(uni, cache_size=2), http)
        for _ in range(2):
            with pytest.raises(ServiceError, match="is not active"):
                await verifier.introspect(tokens[0][::-1])
        assert verifier.introspections == 2  # a refusal is asked about again
        for token in tokens:  # the third answer pushes out the first (least recently used)
            await verifier.introspect(token)
        await verifier.introspect(tokens[2])
        await verifier.introspect(tokens[1])
        assert verifier.introspections == 5
        await verifier.introspect(tokens[0])
        assert verifier.introspections == 6


async def test_malformed_opaque_tokens_are_refused_without_asking(uni: Institution) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        verifier = IssuerVerifier(introspecting(uni), http)
        for bad in ("has spaces in it", "x" * 5000, "caf\u00e9", "a=b"):
            with pytest.raises(ServiceError, match="malformed"):
                await verifier.introspect(bad)
    assert verifier.introspections == 0


ISSUER = TrustedIssuer(issuer="https://idp.example", audiences=["api"])
NOW = 1_900_000_000
ACTIVE = {"active": True, "sub": "ada", "aud": "api", "exp": NOW + 60, "iss": ISSUER.issuer}
ANSWERS: dict[str, tuple[dict[str, Any], str | None]] = {
    "active": ({}, None),
    "no iss: the issuer asked": ({"iss": None}, None),
    "no aud: client_id is the audience": ({"aud": None, "client_id": "api"}, None),
    "Bearer in any case": ({"token_type": "bearer"}, None),
    "inactive": ({"active": False}, "is not active"),
    "active not a boolean": ({"active": "true"}, "is not active"),
    "another issuer": ({"iss": "https://other.example"}, "not issued by"),
    "a refresh token": ({"token_type": "refresh_token"}, "not a bearer access token"),
    "a DPoP token": ({"token_type": "DPoP"}, "not a bearer access token"),
    "sender-constrained": ({"cnf": {"jkt": "x"}}, "bound to a key"),
    "no aud, another client": ({"aud": None, "client_id": "cli"}, "not meant for this server"),
    "no exp": ({"exp": None}, "no expiry"),
    "expired": ({"exp": NOW - LEEWAY - 1}, "has expired"),
    "no sub": ({"sub": None}, "names no subject"),
}


@pytest.mark.parametrize("case", list(ANSWERS))
def test_what_an_introspection_answer_must_say(case: str) -> None:
    change, refused = ANSWERS[case]
    answer = {**ACTIVE, **change}
    answer = {k: v for k, v in answer.items() if v is not None}  # None: the member is absent
    if refused is None:
        claims = introspected_claims(answer, ISSUER, NOW)
        assert (claims["iss"], claims["sub"]) == (ISSUER.issuer, "ada")
    else:
        with pytest.raises(ServiceError, match=refused) as info:
            introspected_claims(answer, ISSUER, NOW)
        assert info.value.status == 401


def test_one_issuer_at_most_introspects(tmp_path: Path) -> None:
    def issuer(n: int) -> TrustedIssuer:
        return TrustedIssuer(
            issuer=f"https://idp{n}.example",
            audiences=["api"],
            introspection=Introspection(client_id="api", client_secret=SecretStr("s")),
        )

    with pytest.raises(ValueError, match="at most one trusted issuer"):
        ServerSettings(data_dir=tmp_path, trusted_issuers=[issuer(1), issuer(2)])


def test_the_secret_comes_from_exactly_one_place(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    read = Introspection(client_id="api", client_secret_file=secret_file)
    assert read.secret().get_secret_value() == "from-a-file"
    with pytest.raises(ValueError, match="exactly one"):
        Introspection(client_id="api")
    with pytest.raises(ValueError, match="exactly one"):
        Introspection(client_id="api", client_secret=SecretStr("s"), client_secret_file=secret_file)
    unset = Introspection(client_id="api", client_secret_env=f"PROVENA_UNSET_{uuid.uuid4().hex}")
    with pytest.raises(ValueError, match="empty or not set"):
        unset.secret()
    missing = Introspection(client_id="api", client_secret_file=tmp_path / "missing")
    with pytest.raises(ValueError, match="cannot read"):
        missing.secret()
