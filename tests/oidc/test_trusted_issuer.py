"""The reference server trusts an institution's OpenID provider (issue 18).

The institutions are npm ``oidc-provider`` (``provider/server.mjs``) configured to issue JWT
access tokens for our server's audience, with the users' groups in a claim. The session's
reference server is given an authenticator that trusts them (built from settings, as at
start-up), and is called with their tokens: those of a real sign-in through the SDK, and
tokens the tests sign themselves with the institution's keys (the provider serves them in its
JWKS) to reach every refusal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from joserfc.jwk import RSAKey
from sqlalchemy import select

from provena_like import Forbidden, ProvenaClient
from provena_like.auth import AuthManager
from provena_like.server.auth.external import IssuerVerifier
from provena_like.server.auth.tokens import TokenService
from provena_like.server.db.identity import ExternalIdentityRow
from provena_like.server.errors import ServiceError
from provena_like.server.settings import TrustedIssuer
from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread
from tests.support.institutions import (
    AUDIENCE,
    LAB,
    PASSWORD,
    RUN,
    USER,
    Institution,
    approver,
    challenge,
    closed_port,
    new_key,
    running,
    sdk_login,
    trusting,
    userinfo,
)
from tests.support.l3_helpers import mint_dataset
from tests.support.oidc_support import CLI, Provider
from tests.support.registry_helpers import create, path
from tests.support.tls import SHARED_TLS
from tests.support.users import User

pytestmark = pytest.mark.anyio

CLI_COMMAND = [sys.executable, "-m", "provena_like.cli.main"]


async def test_a_user_of_the_institution_is_provisioned_and_reads_a_group_item(
    server: ServerThread,
    uni_a: Institution,
    make_token: Callable[..., str],
    registry: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    # a local account already has the institution's username: it is never taken over
    local = User(USER, make_token(USER))
    owner_name = f"owner-{RUN}"
    owner = User(owner_name, make_token(owner_name, groups=(LAB,)))
    item = await create(registry, owner, groups={LAB: ["metadata-read"]})
    async with trusting(server, uni_a.trusted()):
        auth = await sdk_login(uni_a, tmp_path)
        async with httpx.AsyncClient(
            verify=SHARED_TLS, auth=auth, base_url=server.url, timeout=60
        ) as http:
            auth.bind(http)
            me = await http.get("/auth/userinfo")
            read = await http.get("/registry" + path(item["id"]))
            again = await http.get("/auth/userinfo")
    assert me.status_code == 200, me.text
    info = me.json()
    assert info["sub"] == f"{USER}-2"  # made unique, not merged with the local account
    assert info["email"] == f"{USER}@uni.example"
    assert info["groups"] == [LAB]
    assert info["roles"] == ["reviewer"]
    assert read.status_code == 200, read.text
    assert read.json()["id"] == item["id"]
    assert again.json()["sub"] == info["sub"]  # the same user on each request
    # the local account is untouched
    local_me = await userinfo(server, local.token)
    assert local_me.json()["sub"] == USER
    assert local_me.json()["groups"] == []


async def test_a_user_of_the_institution_downloads_a_dataset_shared_with_their_group(
    localstack: LocalStack,
    server: ServerThread,
    uni_a: Institution,
    make_token: Callable[..., str],
    tmp_path: Path,
) -> None:
    """Issue 18's acceptance: sign in at the institution through the SDK, be provisioned with
    the mapped group, and read the data of a dataset another user shared with that group."""
    source = tmp_path / "upload"
    (source / "raw").mkdir(parents=True)
    data = {"raw/temps.csv": b"t,deg\n0,24.5\n1,24.7\n", "README.md": b"# Reef loggers\n"}
    for name, content in data.items():
        (source / name).write_bytes(content)
    steward = make_token(f"steward-{RUN}", groups=(LAB,))
    async with ProvenaClient(localstack.config(access_token=steward)) as owner:
        ds = await mint_dataset(owner, "Shared with the reef lab")
        uploaded = await ds.upload(source)
        await owner.registry_client.update_access(
            ds.id, {"owner": f"steward-{RUN}", "groups": {LAB: ["data-read"]}}
        )
    assert len(uploaded.ok) == 2, uploaded.failed
    outsider = uni_a.token(f"outsider-{RUN}", preferred_username=f"outsider-{RUN}", groups=[])

    async with trusting(server, uni_a.trusted()):
        config = localstack.config(
            issuer=uni_a.issuer, client_id=CLI, token_dir=tmp_path / "tokens"
        )
        async with ProvenaClient(config) as pv:
            assert isinstance(pv.auth_manager, AuthManager)
            await pv.auth_manager.login_device(approver(uni_a))
            me = await pv.auth_client.userinfo()
            shared = await pv.datastore.interactive(ds.id)
            creds = await shared.credentials("read")
            result = await shared.download(tmp_path / "copy")
        async with ProvenaClient(localstack.config(access_token=outsider)) as other:
            with pytest.raises(Forbidden):
                await other.datastore.credentials(ds.id, "read")

    assert me.sub.startswith(USER) and me.groups == [LAB]  # provisioned, with the mapped group
    assert creds.access_key_id and creds.expiration is not None
    assert sorted(f.path for f in result.ok) == sorted(data), result.failed
    for name, content in data.items():
        assert (tmp_path / "copy" / name).read_bytes() == content


async def test_groups_and_roles_follow_the_token(server: ServerThread, uni_a: Institution) -> None:
    sub = f"member-{uuid.uuid4().hex[:8]}"
    async with trusting(server, uni_a.trusted()):
        first = await userinfo(server, uni_a.token(sub, preferred_username=sub))
        left = await userinfo(server, uni_a.token(sub, groups=["other"]))
        back = await userinfo(server, uni_a.token(sub, groups="reef"))
    assert first.status_code == 200, first.text
    assert (first.json()["groups"], first.json()["roles"]) == ([LAB], ["reviewer"])
    assert (left.json()["groups"], left.json()["roles"]) == ([], [])
    assert (back.json()["groups"], back.json()["roles"]) == ([LAB], [])
    assert first.json()["sub"] == left.json()["sub"] == back.json()["sub"] == sub


async def test_first_requests_at_once_make_one_user_who_can_write(
    server: ServerThread, uni_a: Institution
) -> None:
    sub = f"eager-{uuid.uuid4().hex[:8]}"
    token = uni_a.token(sub, preferred_username=sub)
    async with trusting(server, uni_a.trusted()):
        answers: list[httpx.Response] = []

        async def ask() -> None:
            answers.append(await userinfo(server, token))

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(ask)
        async with httpx.AsyncClient(
            verify=SHARED_TLS, base_url=server.url + "/registry", timeout=60
        ) as http:
            # a request with a body: the body-limit middleware checks the token first
            made = await create(http, User(sub, token))
    assert [r.status_code for r in answers] == [200] * 6, [r.text for r in answers]
    assert {r.json()["sub"] for r in answers} == {sub}
    assert made["owner"] == sub


async def test_two_issuers_same_subject_are_two_users(
    server: ServerThread, uni_a: Institution, uni_b: Institution
) -> None:
    sub = f"shared-{uuid.uuid4().hex[:8]}"
    async with trusting(server, uni_a.trusted(), uni_b.trusted(username_claim="sub")):
        at_a = await userinfo(server, uni_a.token(sub, preferred_username=sub))
        at_b = await userinfo(server, uni_b.token(sub))
        at_a_again = await userinfo(server, uni_a.token(sub, preferred_username="renamed"))

    names = {r.json()["sub"] for r in (at_a, at_b)}
    assert len(names) == 2, names
    assert at_a_again.json()["sub"] == at_a.json()["sub"]  # a rename keeps the link

    async def links() -> list[tuple[str, str]]:
        async with server.app.state.sessions() as session:
            rows = await session.scalars(
                select(ExternalIdentityRow).where(ExternalIdentityRow.subject == sub)
            )
            return sorted((r.issuer, r.username) for r in rows)

    assert server.call(links) == sorted(
        [(uni_a.issuer, at_a.json()["sub"]), (uni_b.issuer, at_b.json()["sub"])]
    )


async def test_unknown_users_are_refused_without_provisioning(
    server: ServerThread, uni_a: Institution
) -> None:
    async with trusting(server, uni_a.trusted(provision=False)):
        refused = await userinfo(server, uni_a.token(f"nobody-{uuid.uuid4().hex[:8]}"))
    assert "Unknown user" in challenge(refused)


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _unsigned(inst: Institution) -> str:
    now = int(time.time())
    claims = {"iss": inst.issuer, "sub": USER, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def _hs256_with_public_key(inst: Institution) -> str:
    """The classic confusion attack: HMAC keyed with the provider's public key (PEM)."""
    now = int(time.time())
    claims = {"iss": inst.issuer, "sub": USER, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    header = {"alg": "HS256", "kid": inst.key.kid, "typ": "JWT"}
    signing_input = f"{_b64(header)}.{_b64(claims)}".encode()
    secret = inst.key.as_pem(private=False)
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return signing_input.decode() + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


REFUSALS: dict[str, tuple[Callable[[Institution], str], str]] = {
    "untrusted issuer": (
        lambda i: i.token(iss="https://idp.elsewhere.example"),
        "not trusted by this server",
    ),
    "wrong audience": (lambda i: i.token(aud="https://another.api"), "not meant for this server"),
    "expired": (lambda i: i.token(exp=int(time.time()) - 120), "has expired"),
    "not yet valid": (lambda i: i.token(nbf=int(time.time()) + 600), "not valid yet"),
    "issued in the future": (lambda i: i.token(iat=int(time.time()) + 600), "issued in the future"),
    "alg none": (_unsigned, "algorithm 'none' is not accepted"),
    "HS256 with the public key": (_hs256_with_public_key, "algorithm 'HS256' is not accepted"),
    "unknown key": (lambda i: i.token(key=new_key("made-up")), "a key the issuer does not publish"),
    "forged signature": (
        lambda i: i.token(
            key=RSAKey.import_key({**new_key("x").as_dict(private=True), "kid": str(i.key.kid)})
        ),
        "signature is invalid",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_bad_tokens_are_refused_with_a_clear_challenge(
    server: ServerThread, uni_a: Institution, case: str
) -> None:
    make, expected = REFUSALS[case]
    async with trusting(server, uni_a.trusted()):
        refused = await userinfo(server, make(uni_a))
    header = challenge(refused)
    assert expected in header, header
    assert expected in refused.json()["error"]["message"]
    assert "BEGIN" not in header and str(uni_a.key.as_dict()["n"])[:20] not in header


async def test_the_server_publishes_its_issuers(server: ServerThread, uni_a: Institution) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS, base_url=server.url, timeout=60) as http:
        own = (await http.get("/auth/issuers")).json()
        async with trusting(server, uni_a.trusted(client_id=CLI, name="uni-a"), embedded=False):
            listed = (await http.get("/auth/issuers")).json()
    assert own == {"embedded": server.app.state.settings.issuer, "issuers": []}
    assert listed == {
        "embedded": None,
        "issuers": [
            {
                "issuer": uni_a.issuer,
                "name": "uni-a",
                "discovery_url": f"{uni_a.issuer}/.well-known/openid-configuration",
                "audiences": [AUDIENCE],
                "client_id": CLI,
            }
        ],
    }


async def test_cli_login_at_a_trusted_issuer(
    server: ServerThread, uni_a: Institution, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PROVENA_BASE_URL": server.url,
        "PROVENA_TOKEN_DIR": str(tmp_path / "tokens"),
        "COLUMNS": "200",
    }
    provider = Provider(uni_a.issuer, uni_a.process)
    async with trusting(server, uni_a.trusted(client_id=CLI)):
        command = [*CLI_COMMAND, "login", "--issuer", uni_a.issuer, "--json"]
        async with await anyio.open_process(command, env=env) as proc:
            assert proc.stderr is not None and proc.stdout is not None
            seen = b""
            with anyio.fail_after(120):
                while not re.search(rb"user_code=[A-Z0-9-]+\s", seen):
                    seen += await proc.stderr.receive()
                link = re.search(rb"(http://\S+user_code=[A-Z0-9-]+)", seen)
                assert link is not None, seen
                await provider.approve(link.group(1).decode(), username=USER, password=PASSWORD)
                out = b"".join([chunk async for chunk in proc.stdout])
                await proc.wait()
        assert proc.returncode == 0, out
        doc = json.loads(out)
        assert doc["issuer"] == uni_a.issuer
        assert doc["username"].startswith(USER)  # provisioned from the institution's claim

        untrusted = subprocess.run(
            [*CLI_COMMAND, "login", "--issuer", "https://idp.elsewhere.example", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert untrusted.returncode == 2, untrusted.stderr
    assert uni_a.issuer in untrusted.stdout + untrusted.stderr


async def test_the_embedded_issuer_can_be_turned_off(
    server: ServerThread, uni_a: Institution, make_token: Callable[..., str]
) -> None:
    own = make_token(f"local-{RUN}")
    async with trusting(server, uni_a.trusted()):
        assert (await userinfo(server, own)).status_code == 200
    async with trusting(server, uni_a.trusted(), embedded=False):
        refused = await userinfo(server, own)
    assert "not trusted by this server" in challenge(refused)


async def test_key_rotation_is_picked_up_without_a_restart(
    server: ServerThread, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    with running(tmp_path_factory, "rotating-1") as inst:
        async with trusting(server, inst.trusted(jwks_min_refresh_seconds=0)) as authenticator:
            auth = await sdk_login(inst, tmp_path / "before")
            old_token = inst.token(f"rot-{RUN}")
            async with httpx.AsyncClient(
                verify=SHARED_TLS, auth=auth, base_url=server.url, timeout=60
            ) as http:
                auth.bind(http)
                before = await http.get("/auth/userinfo")
            inst.rotate()
            auth = await sdk_login(inst, tmp_path / "after")
            async with httpx.AsyncClient(
                verify=SHARED_TLS, auth=auth, base_url=server.url, timeout=60
            ) as http:
                auth.bind(http)
                after = await http.get("/auth/userinfo")
            old = await userinfo(server, old_token)
            fetches = authenticator.issuers[inst.issuer].fetches
    assert before.status_code == 200, before.text
    assert after.status_code == 200, after.text  # the new key was fetched on its unknown kid
    assert after.json()["sub"] == before.json()["sub"]
    assert "a key the issuer does not publish" in challenge(old)  # the old key is gone
    assert fetches >= 2


async def test_unknown_keys_refetch_the_jwks_at_a_bounded_rate(uni_a: Institution) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        verifier = IssuerVerifier(uni_a.trusted(jwks_min_refresh_seconds=3600), http)
        good = uni_a.token()
        claims = await verifier.verify(good, {"alg": "RS256", "kid": uni_a.key.kid})
        assert claims["sub"] == USER
        for n in range(5):
            other = new_key(f"made-up-{n}")
            with pytest.raises(Exception, match="does not publish"):
                await verifier.verify(uni_a.token(key=other), {"alg": "RS256", "kid": other.kid})
    assert verifier.fetches == 1


async def test_an_unreachable_issuer_is_a_503_and_not_asked_on_every_request() -> None:
    down = TrustedIssuer(issuer=f"http://127.0.0.1:{closed_port()}", audiences=[AUDIENCE])
    token = Institution.sign(new_key("k"), down.issuer)
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        verifier = IssuerVerifier(down, http)
        for _ in range(3):
            with pytest.raises(ServiceError) as refused:
                await verifier.verify(token, {"alg": "RS256", "kid": "k"})
            assert refused.value.status == 503
    assert verifier.fetches == 1


# -- attacks across issuers -------------------------------------------------------------------


def _with_kid(key: RSAKey, kid: str | None) -> RSAKey:
    """The same private key under another key id."""
    return RSAKey.import_key({**key.as_dict(private=True), "kid": str(kid)})


CROSS: dict[str, tuple[Callable[[Institution, Institution, TokenService], str], str]] = {
    "A's iss, B's key and kid": (
        lambda a, b, own: Institution.sign(b.key, a.issuer),
        "a key the issuer does not publish",
    ),
    "A's iss and key, B's kid": (
        lambda a, b, own: Institution.sign(_with_kid(a.key, b.key.kid), a.issuer),
        "a key the issuer does not publish",
    ),
    "A's iss and kid, B's key": (
        lambda a, b, own: Institution.sign(_with_kid(b.key, a.key.kid), a.issuer),
        "signature is invalid",
    ),
    "A's iss, signed by this server": (
        lambda a, b, own: own.issue_access_token(
            subject=USER, client_id=CLI, scope="", ttl=300, extra={"iss": a.issuer, "aud": AUDIENCE}
        ),
        "The issuer does not sign with 'ES256'",
    ),
    "this server's iss, A's key": (
        lambda a, b, own: Institution.sign(a.key, own.issuer, aud="provena-like"),
        "signature is invalid",
    ),
}


@pytest.mark.parametrize("case", list(CROSS))
async def test_a_token_never_passes_for_another_issuers(
    server: ServerThread, uni_a: Institution, uni_b: Institution, case: str
) -> None:
    make, expected = CROSS[case]
    token = make(uni_a, uni_b, server.app.state.tokens)
    async with trusting(server, uni_a.trusted(), uni_b.trusted()):
        refused = await userinfo(server, token)
    header = challenge(refused)
    assert expected in header, header


async def test_the_same_subject_at_two_issuers_shares_no_groups(
    server: ServerThread, uni_a: Institution, uni_b: Institution
) -> None:
    sub = f"twin-{uuid.uuid4().hex[:8]}"
    # B maps no groups or roles: its user gets none, whatever its token says
    b = uni_b.trusted(username_claim="sub", group_map={}, role_map={})
    async with trusting(server, uni_a.trusted(), b):
        at_a = await userinfo(server, uni_a.token(sub, preferred_username=sub))
        at_b = await userinfo(server, uni_b.token(sub))
        at_a_again = await userinfo(server, uni_a.token(sub, preferred_username=sub))
    assert at_a.json()["sub"] != at_b.json()["sub"]
    assert (at_b.json()["groups"], at_b.json()["roles"]) == ([], [])
    assert (at_a.json()["groups"], at_a.json()["roles"]) == ([LAB], ["reviewer"])
    assert at_a_again.json() == at_a.json()  # B's sign-in took nothing from A's user


async def test_a_renamed_user_stays_themselves_and_takes_over_nobody(
    server: ServerThread, uni_a: Institution, make_token: Callable[..., str]
) -> None:
    tag = uuid.uuid4().hex[:8]
    local = f"local-{tag}"
    make_token(local, system_roles=("admin",))
    first, second = f"sub-1-{tag}", f"sub-2-{tag}"
    async with trusting(server, uni_a.trusted()):
        one = await userinfo(server, uni_a.token(first, preferred_username=f"one-{tag}"))
        two = await userinfo(server, uni_a.token(second, preferred_username=f"two-{tag}"))
        # both renamed at the provider: one to the other's name, the other to a local admin's
        one_renamed = await userinfo(server, uni_a.token(first, preferred_username=f"two-{tag}"))
        two_renamed = await userinfo(server, uni_a.token(second, preferred_username=local))
        # a new subject named like the local admin gets an account of its own
        newcomer = await userinfo(
            server, uni_a.token(f"sub-3-{tag}", preferred_username=local, groups=[])
        )
    assert (one.json()["sub"], two.json()["sub"]) == (f"one-{tag}", f"two-{tag}")
    assert one_renamed.json()["sub"] == f"one-{tag}"
    assert two_renamed.json()["sub"] == f"two-{tag}"
    assert "admin" not in two_renamed.json()["roles"]
    assert newcomer.json()["sub"] == f"{local}-2"
    assert newcomer.json()["roles"] == []
