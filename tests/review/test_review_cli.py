"""``provena-like review ...`` and ``provena-like access ...`` against the session's stack."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import anyio
import httpx
import pytest

from provena_like.cli.main import app
from provena_like.testing.localstack import LocalStack
from tests.support.cli_runner import CliRunner, Result
from tests.support.review_helpers import Refs, User, mint, record

pytestmark = pytest.mark.anyio

runner = CliRunner()


def cli(stack: LocalStack, user: User) -> Callable[..., Result]:
    env = {"PROVENA_BASE_URL": stack.url, "PROVENA_ACCESS_TOKEN": user.token, "COLUMNS": "250"}

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    return invoke


async def run(invoke: Callable[..., Result], *args: str, code: int = 0) -> str:
    result = await anyio.to_thread.run_sync(lambda: invoke(*args))
    assert result.exit_code == code, result.output
    return result.output


async def test_review_commands(
    localstack: LocalStack,
    api: httpx.AsyncClient,
    owner: User,
    refs: Refs,
    new_user: Callable[..., User],
) -> None:
    admin = cli(localstack, new_user("sysadmin", system_roles=("admin",)))
    rob_user = new_user("rob")
    rob, me = cli(localstack, rob_user), cli(localstack, owner)
    dsid = (await mint(api, owner, record(refs, name="CLI reef")))["id"]

    assert "403" in await run(
        me, "review", "add-reviewer", rob_user.name, code=4
    )  # 4: no permission
    assert "is a reviewer" in await run(admin, "review", "add-reviewer", rob_user.name)
    assert rob_user.name in await run(me, "review", "reviewers")

    out = await run(me, "review", "request", dsid, "--reviewer", rob_user.name, "-n", "ready")
    assert f"requested release of {dsid}: now PENDING (reviewer {rob_user.name})" in out
    out = await run(me, "review", "request", dsid, "--reviewer", rob_user.name, code=1)
    assert "409 under_review" in out and "PENDING" in out
    assert dsid in await run(me, "review", "mine")
    assert dsid in await run(rob, "review", "awaiting")
    assert "403 not_your_review" in await run(me, "review", "approve", dsid, code=4)
    assert "now NOT_RELEASED" in await run(rob, "review", "reject", dsid, "-n", "licence?")
    await run(me, "review", "request", dsid, "--reviewer", rob_user.name)
    assert "now NOT_RELEASED" in await run(me, "review", "withdraw", dsid)
    await run(me, "review", "request", dsid, "--reviewer", rob_user.name)
    assert "now RELEASED" in await run(rob, "review", "approve", dsid, "-n", "good")
    out = await run(me, "review", "history", dsid)
    for word in ("request", "reject", "withdraw", "approve", "licence?"):
        assert word in out
    assert "no longer a reviewer" in await run(admin, "review", "remove-reviewer", rob_user.name)


async def test_access_commands(
    localstack: LocalStack, api: httpx.AsyncClient, owner: User, new_user: Callable[..., User]
) -> None:
    lab = f"lab-{uuid.uuid4().hex[:8]}"
    member_user = new_user("member", groups=(lab,))
    me, member = cli(localstack, owner), cli(localstack, member_user)
    r = await api.post(
        "/registry/items",
        json={"subtype": "organisation", "record": {"name": "Access org"}},
        headers=owner.headers,
    )
    org = r.json()["id"]

    assert "none (from: no grant applies to you)" in await run(member, "access", "my-access", org)
    out = await run(me, "access", "grant", org, "metadata-write", "--group", lab)
    assert f"group {lab}" in out and "metadata-write" in out
    out = await run(member, "access", "my-access", org)
    assert "metadata-read, metadata-write" in out and f"group:{lab}" in out
    assert "metadata-read" in await run(me, "access", "grant", org, "metadata-read", "--general")
    out = await run(me, "access", "show", org)
    assert f"owner: {owner.name}" in out and f"group {lab}" in out
    out = await run(me, "access", "revoke", org, "--group", lab)
    assert f"group {lab}" not in out
    out = await run(member, "access", "my-access", org)
    assert "metadata-read (from: general)" in out
    assert "403" in await run(member, "access", "grant", org, "admin", "--general", code=4)
    out = await run(me, "access", "grant", org, "boss", "--general", code=2)
    assert "not a role" in out
    assert "exactly one" in await run(me, "access", "revoke", org, code=2)
    r = await api.get(f"/registry/items/{org}/history", headers=owner.headers)
    assert any("granted metadata-write" in e["reason"] for e in r.json()["items"])
