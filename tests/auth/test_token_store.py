"""TokenStore: private files (0600 in 0700), atomic replacement, one file per key."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import anyio
import pytest
from pydantic import SecretStr

from provena_like._core.config import ProvenaConfig
from provena_like.auth import SignIn, TokenKey, TokenSet, TokenStore
from provena_like.auth.store import SIGN_INS_FILE

pytestmark = pytest.mark.anyio

KEY = TokenKey.of("https://idp.example.org/auth", "cli", ["openid", "offline_access"])


EXPIRES = time.time() + 300


def tokens(n: int = 1) -> TokenSet:
    return TokenSet(
        access_token=SecretStr(f"access-{n}"),
        refresh_token=SecretStr(f"refresh-{n}"),
        expires_at=EXPIRES,
        scope="openid offline_access",
    )


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


async def test_roundtrip_and_modes(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "deep" / "tokens")
    path = await store.save(KEY, tokens())
    assert path == store.path_for(KEY)
    assert mode(store.directory) == 0o700
    assert mode(path) == 0o600
    loaded = await store.load(KEY)
    assert loaded == tokens()
    assert await store.delete(KEY) is True
    assert await store.delete(KEY) is False
    assert await store.load(KEY) is None


async def test_loose_directory_and_file_are_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "tokens"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    store = TokenStore(directory)
    path = await store.save(KEY, tokens())
    assert mode(directory) == 0o700
    path.chmod(0o644)
    assert await store.load(KEY) == tokens()
    assert mode(path) == 0o600


def test_key_is_order_free_and_separates_clients() -> None:
    same = TokenKey.of(
        "https://idp.example.org/auth/", "cli", ["offline_access", "openid", "openid"]
    )
    other_client = TokenKey.of(
        "https://idp.example.org/auth", "other", ["openid", "offline_access"]
    )
    other_scopes = TokenKey.of("https://idp.example.org/auth", "cli", ["openid"])
    assert same.filename == KEY.filename
    assert len({KEY.filename, other_client.filename, other_scopes.filename}) == 3
    assert len(KEY.filename) == 64 + len(".json")


async def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = TokenStore(tmp_path)
    await store.save(KEY, tokens(1))

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        await store.save(KEY, tokens(2))
    monkeypatch.undo()
    assert await store.load(KEY) == tokens(1)  # the old token is intact
    assert [p.name for p in tmp_path.iterdir()] == [KEY.filename]  # no temp file left


async def test_concurrent_writers_leave_a_whole_file(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    async with anyio.create_task_group() as tg:
        for n in range(20):
            tg.start_soon(store.save, KEY, tokens(n))
    loaded = await store.load(KEY)
    assert loaded is not None
    assert loaded.access_token.get_secret_value().startswith("access-")
    assert [p.name for p in tmp_path.iterdir()] == [KEY.filename]


async def test_corrupt_or_foreign_file_is_ignored_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = TokenStore(tmp_path)
    path = await store.save(KEY, tokens())
    data = json.loads(path.read_text())
    data["client_id"] = "someone-else"
    path.write_text(json.dumps(data))
    with caplog.at_level(logging.DEBUG):
        assert await store.load(KEY) is None
        path.write_text('{"access_token": "garbage-secret-')
        assert await store.load(KEY) is None
    assert "ignoring unreadable token file" in caplog.text
    assert "garbage-secret" not in caplog.text
    assert "access-1" not in caplog.text


def test_default_directory_is_per_user_not_cwd(tmp_path: Path) -> None:
    default = ProvenaConfig().resolved_token_dir
    assert default.is_absolute()
    assert Path.cwd() not in (default, *default.parents) or Path.cwd() == Path.home()
    assert ProvenaConfig(token_dir=tmp_path).resolved_token_dir == tmp_path


def test_token_set_repr_hides_secrets() -> None:
    text = repr(tokens()) + str(tokens()) + repr(TokenStore("/tmp/x"))
    assert "access-1" not in text and "refresh-1" not in text
    assert "refresh_token=yes" in repr(tokens())


# -- one sign-in per (server, issuer) -----------------------------------------------------------

SERVER = "https://provena.example.org/auth"
UNI = "https://login.uni.example/realms/research"


def old_format_file(directory: Path, issuer: str, client_id: str, scopes: list[str]) -> Path:
    """A token file exactly as versions before the per-server key wrote it."""
    name = json.dumps([issuer, client_id, sorted(scopes)], separators=(",", ":"))
    path = directory / (hashlib.sha256(name.encode()).hexdigest() + ".json")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    payload = {
        "format": 1,
        "issuer": issuer,
        "client_id": client_id,
        "scopes": sorted(scopes),
        "token": tokens(7).to_file_dict(),
    }
    path.write_text(json.dumps(payload))
    path.chmod(0o600)
    return path


async def test_an_old_file_loads_and_moves_to_the_per_server_key(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    old = old_format_file(tmp_path, UNI, "cli", ["openid", "offline_access"])
    key = TokenKey.of(UNI, "cli", ["offline_access", "openid"], server=SERVER)
    assert store.path_for(key) != old
    assert store.exists_sync(key)
    assert await store.load(key) == tokens(7)
    # the first save (a refresh) moves it: the old file, whose refresh token has just been
    # used, is gone
    await store.save(key, tokens(8))
    assert not old.exists()
    assert await store.load(key) == tokens(8)
    assert mode(store.path_for(key)) == 0o600
    assert await store.keys() == [key]
    assert await store.delete(key) is True
    assert not store.exists_sync(key)


async def test_logout_also_removes_the_old_file(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    old = old_format_file(tmp_path, UNI, "cli", ["openid"])
    assert await store.delete(TokenKey.of(UNI, "cli", ["openid"], server=SERVER)) is True
    assert not old.exists()


async def test_issuers_and_servers_keep_their_own_sign_ins(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    scopes = ["openid", "offline_access"]
    own = TokenKey.of(SERVER, "cli", scopes, server=SERVER)
    uni = TokenKey.of(UNI, "cli", scopes, server=SERVER)
    uni_elsewhere = TokenKey.of(UNI, "cli", scopes, server="https://other.example.org/auth")
    for n, key in enumerate((own, uni, uni_elsewhere)):
        await store.save(key, tokens(n))
    assert [await store.load(k) for k in (own, uni, uni_elsewhere)] == [
        tokens(0),
        tokens(1),
        tokens(2),
    ]
    assert sorted(await store.keys(), key=repr) == sorted([own, uni, uni_elsewhere], key=repr)
    await store.delete(uni)
    assert await store.load(own) == tokens(0)
    assert await store.load(uni_elsewhere) == tokens(2)


async def test_the_current_issuer_is_remembered_per_server(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens")
    assert store.sign_in_for_sync(SERVER) is None
    await store.remember_sign_in(SERVER + "/", SignIn(UNI + "/", "uni-cli"))
    await store.remember_sign_in("https://other.example.org/auth", SignIn(SERVER, "cli"))
    assert store.sign_in_for_sync(SERVER) == SignIn(UNI, "uni-cli")
    assert mode(store.directory / SIGN_INS_FILE) == 0o600
    assert await store.keys() == []  # the index is not a token
    assert await store.forget_sign_in(SERVER) == SignIn(UNI, "uni-cli")
    assert await store.forget_sign_in(SERVER) is None
    assert store.sign_in_for_sync(SERVER) is None
    assert store.sign_in_for_sync("https://other.example.org/auth") == SignIn(SERVER, "cli")
