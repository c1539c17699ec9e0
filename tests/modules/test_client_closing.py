"""``ProvenaClient`` closes every HTTP client it created, and none that it was given.

The rule is globus-sdk's: close only what you created. Checked against the real stack by
recording every ``httpx.AsyncClient`` and ``aiohttp.ClientSession`` made while a client works
(sign-in through the pool, registry calls, an upload and a download through both S3 paths).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import UsageError
from provena_like.auth import AuthManager, DevicePrompt
from provena_like.testing.localstack import LocalStack
from tests.support.l3_helpers import make_record
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio


class _Abandon(Exception):
    """Raised by the prompt: the test never completes a device sign-in."""


async def _abandon(prompt: DevicePrompt) -> None:
    raise _Abandon(prompt.user_code)


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every httpx.AsyncClient and aiohttp.ClientSession the test's thread builds."""
    made: list[Any] = []
    test_thread = threading.get_ident()
    for cls in (httpx.AsyncClient, aiohttp.ClientSession):
        original = cls.__init__

        def record(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> None:
            __original(self, *args, **kwargs)
            if threading.get_ident() == test_thread:  # not the server's, in its own thread
                made.append(self)

        monkeypatch.setattr(cls, "__init__", record)
    yield made


def _is_closed(client: Any) -> bool:
    if isinstance(client, aiohttp.ClientSession):
        return client.closed
    return bool(client.is_closed)


def _open(clients: list[Any]) -> list[str]:
    return [repr(c) for c in clients if not _is_closed(c)]


async def test_closes_every_client_it_created(
    localstack: LocalStack, refs: dict[str, str], tmp_path: Path, created: list[Any]
) -> None:
    pv = localstack.client()  # a stored sign-in: AuthManager.from_config, bound to the pool
    async with pv:
        await pv.auth_client.userinfo()
        ds = await pv.datastore.mint(make_record(refs, name=f"Closing {uuid.uuid4().hex[:6]}"))
        (tmp_path / "up").mkdir()
        (tmp_path / "up" / "small.txt").write_bytes(b"x" * 100)  # the direct (aiohttp) path
        (tmp_path / "up" / "big.bin").write_bytes(b"y" * 9_000_000)  # multipart (aiobotocore)
        await ds.upload(tmp_path / "up")
        await ds.download(tmp_path / "down")
    manager = pv.auth_manager
    assert isinstance(manager, AuthManager)
    # A token-endpoint call after the close may not open a client nobody will close.
    with pytest.raises(UsageError, match="closed"):
        await manager.login_device(_abandon)
    assert created, "the spy saw no client at all"
    assert not _open(created)


async def test_leaves_what_it_was_given_open(localstack: LocalStack, created: list[Any]) -> None:
    async with localstack.client() as signed_in:
        config = signed_in.config
    async with httpx.AsyncClient(verify=SHARED_TLS) as mine:
        auth = AuthManager.from_config(config)
        auth.bind(mine)
        async with ProvenaClient(config, auth=auth) as pv:
            await pv.auth_client.userinfo()
        assert not mine.is_closed
        assert pv.http_core.http_client.is_closed
        # the user's manager still works through the user's client
        assert (await auth.get_access_token()).get_secret_value()
        await auth.aclose()
    assert not _open(created)
