"""Two processes (or two clients) sharing one stored sign-in refresh it once, under a lock.

The server rotates refresh tokens and revokes the whole family when a used one is presented
again, so two holders that both refresh the stored token would sign the user out.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from sqlalchemy import select

from provena_like import ProvenaClient
from provena_like.auth import TokenKey, TokenSet, TokenStore
from provena_like.server.auth.protocol import sha256_hex
from provena_like.server.auth.tables import RefreshTokenRow
from provena_like.testing.server_thread import ServerThread
from tests.support.auth_helpers import CLI, OFFLINE, device_login, issuer_of

pytestmark = pytest.mark.anyio

PROCESSES = 2

# Runs the SDK in a separate interpreter: builds a client on the shared token directory,
# says "ready", waits for the go line on stdin, then makes one authenticated call.
WORKER = """
import sys

import anyio

from provena_like import ProvenaClient


async def main() -> None:
    base_url, token_dir = sys.argv[1], sys.argv[2]
    async with ProvenaClient(base_url=base_url, token_dir=token_dir, max_retries=0) as pv:
        sys.stdout.write("ready\\n")
        sys.stdout.flush()
        sys.stdin.readline()
        me = await pv.auth_client.userinfo()
        sys.stdout.write(f"signed in as {me.sub}\\n")


anyio.run(main)
"""


def family(srv: ServerThread, refresh_token: str) -> list[RefreshTokenRow]:
    """Every refresh token of the rotation family that ``refresh_token`` belongs to."""

    async def work() -> list[RefreshTokenRow]:
        async with srv.app.state.sessions() as session:
            first = await session.get(RefreshTokenRow, sha256_hex(refresh_token))
            assert first is not None
            rows = await session.execute(
                select(RefreshTokenRow).where(RefreshTokenRow.family_id == first.family_id)
            )
            return list(rows.scalars().all())

    return srv.call(work)


async def expired_sign_in(srv: ServerThread, directory: Path) -> tuple[TokenSet, TokenStore]:
    """A stored sign-in whose access token has expired: the next call must refresh it."""
    tokens = await device_login(srv)
    store = TokenStore(directory)
    key = TokenKey.of(issuer_of(srv), CLI, OFFLINE)
    await store.save(key, dataclasses.replace(tokens, expires_at=time.time() - 1))
    return tokens, store


def assert_one_refresh_and_still_signed_in(srv: ServerThread, tokens: TokenSet) -> None:
    assert tokens.refresh_token is not None
    rows = family(srv, tokens.refresh_token.get_secret_value())
    assert not any(row.revoked for row in rows), "the session was revoked (reuse detected)"
    assert len(rows) == 2, "exactly one refresh reached the server"
    assert sum(row.used_at is not None for row in rows) == 1


async def read_line(stream: BufferedByteReceiveStream) -> bytes:
    with anyio.fail_after(120):
        return await stream.receive_until(b"\n", 4096)


async def test_two_processes_racing_a_refresh(server: ServerThread, tmp_path: Path) -> None:
    tokens, store = await expired_sign_in(server, tmp_path / "tokens")
    command = [sys.executable, "-c", WORKER, server.url, str(store.directory)]
    procs: list[Process] = []
    try:
        procs.extend([await anyio.open_process(command) for _ in range(PROCESSES)])
        outputs = []
        for proc in procs:
            assert proc.stdout is not None
            outputs.append(BufferedByteReceiveStream(proc.stdout))
        for out in outputs:
            assert await read_line(out) == b"ready"
        for proc in procs:  # release them together
            assert proc.stdin is not None
            await proc.stdin.send(b"go\n")
        results = []
        for proc, out in zip(procs, outputs, strict=True):
            with anyio.fail_after(120):
                code = await proc.wait()
            assert proc.stderr is not None
            errors = b"".join([chunk async for chunk in proc.stderr])
            rest = b"".join([chunk async for chunk in out])
            results.append((code, rest.decode().strip(), errors.decode()))
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
            await proc.aclose()
    for code, line, errors in results:
        assert code == 0, errors
        assert line == "signed in as admin"
    assert_one_refresh_and_still_signed_in(server, tokens)
    # the token the store now holds is the live one, moved from the file without a server
    # (as earlier versions wrote it) to the per-server key under the lock
    legacy = TokenKey.of(issuer_of(server), CLI, OFFLINE)
    key = TokenKey.of(issuer_of(server), CLI, OFFLINE, server=issuer_of(server))
    saved = await store.load(key)
    assert saved is not None and saved.refresh_token != tokens.refresh_token
    assert not store.path_for(legacy).exists()
    async with ProvenaClient(base_url=server.url, token_dir=store.directory) as pv:
        assert (await pv.auth_client.userinfo()).sub == "admin"


async def test_two_clients_in_one_process(server: ServerThread, tmp_path: Path) -> None:
    tokens, store = await expired_sign_in(server, tmp_path / "tokens")
    subjects: list[str] = []
    async with (
        ProvenaClient(base_url=server.url, token_dir=store.directory) as a,
        ProvenaClient(base_url=server.url, token_dir=store.directory) as b,
    ):

        async def call(pv: ProvenaClient) -> None:
            subjects.append((await pv.auth_client.userinfo()).sub)

        async with anyio.create_task_group() as tg:
            for pv in (a, b, a, b):
                tg.start_soon(call, pv)
    assert subjects == ["admin"] * 4
    assert_one_refresh_and_still_signed_in(server, tokens)


async def test_the_lock_excludes_other_holders_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    store = TokenStore(tmp_path / "tokens")
    other = TokenStore(tmp_path / "tokens")  # another manager's view of the same directory
    key = TokenKey.of("https://idp.example.org", CLI, OFFLINE)
    events: list[str] = []
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.01)

    async def second() -> None:
        async with other.lock(key):
            events.append("second")

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        async with store.lock(key):
            tg.start_soon(second)
            await anyio.sleep(0.6)
            before = ticks
            await anyio.sleep(1.0)
            assert ticks > before  # the loop keeps running while the other holder waits
            events.append("first")
        with anyio.fail_after(30):
            while "second" not in events:
                await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert events == ["first", "second"]
    assert store.lock_path_for(key).stat().st_mode & 0o777 == 0o600

    # a waiter can be cancelled (and does not keep the lock afterwards)
    async with store.lock(key):
        with anyio.move_on_after(0.5) as scope:
            async with other.lock(key):
                pytest.fail("took a lock that was held")
        assert scope.cancelled_caught
    async with other.lock(key, timeout=5):
        pass

    # a holder that never lets go: the waiter gives up with a clear error
    from provena_like._core.errors import AuthError

    async with store.lock(key):
        with pytest.raises(AuthError, match="locked by another process"):
            async with other.lock(key, timeout=0.3):
                pass
