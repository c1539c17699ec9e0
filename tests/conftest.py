"""Shared fixtures: a real LocalStack (reference server + S3 on loopback) for the session.

``localstack`` itself, on SQLite or PostgreSQL, comes from :mod:`tests.support.databases`.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator

import pytest

from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread
from tests.support.users import issue_token

pytest_plugins = ["tests.support.fixtures", "tests.support.databases"]


def pytest_configure(config: pytest.Config) -> None:
    """Let Ctrl-C reach the CLI processes the tests start, however the suite itself was started.

    A shell starts a background job (``cmd &`` without job control, ``nohup``) with SIGINT
    ignored, and a child inherits an ignored signal: the ``provena-like`` processes that tests
    interrupt with SIGINT would then never see it and the tests would wait out their timeouts.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _transfer_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the transfer engine's upload records and hash caches out of the user's home."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROVENA_CACHE_DIR", str(tmp_path_factory.mktemp("provena-cache")))
        yield


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def server(localstack: LocalStack) -> ServerThread:
    """The reference server of the session's LocalStack (``.url``, ``.app``, ``.settings``)."""
    assert localstack.server is not None
    return localstack.server


@pytest.fixture(scope="session")
def make_token(server: ServerThread) -> Callable[..., str]:
    """Create (or reuse) a user directly in the server's database and sign a token for them.

    For tests of services other than auth; auth tests go through the real OAuth flows.
    """

    def make(
        username: str,
        *,
        system_roles: tuple[str, ...] = (),
        groups: tuple[str, ...] = (),
        ttl: int = 600,
    ) -> str:
        return issue_token(server, username, system_roles=system_roles, groups=groups, ttl=ttl)

    return make
