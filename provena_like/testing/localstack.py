"""``LocalStack``: the reference server and a real S3 object store on free loopback ports.

For your own tests and for ours. It starts SeaweedFS (with enforced STS session policies) and
the reference server in a temporary (or given) data dir, seeds an administrator, a regular
user and a confidential client, signs the two people in through the real device flow
(approving the code on the verification page over HTTP, as a browser would), and hands out
configured :class:`~provena_like.ProvenaClient` objects.

Example:
    ```python
    async with LocalStack() as stack:
        async with stack.client() as pv:              # the seeded researcher
            me = await pv.auth_client.userinfo()
        async with stack.client("admin") as admin:    # the seeded administrator
            ...
    ```

As a pytest fixture, add ``pytest_plugins = ["provena_like.testing.pytest_plugin"]`` to your
``conftest.py`` and ask for ``localstack``.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import anyio
import httpx

from provena_like._core.config import ProvenaConfig
from provena_like._core.lifecycle import AsyncCloseable
from provena_like.auth import AuthManager, DevicePrompt
from provena_like.client import ProvenaClient
from provena_like.models.auth import OAuthClientCreate, UserCreate
from provena_like.server.app import create_app
from provena_like.server.settings import S3Settings, ServerSettings
from provena_like.testing.device_approval import approve_device_code
from provena_like.testing.seaweed import SeaweedS3
from provena_like.testing.server_thread import ServerThread, bind_socket

__all__ = ["LocalStack", "SeededAccount", "SeededClient"]

BUCKET = "provena"


@dataclass(frozen=True)
class SeededAccount:
    """A user the stack created (the password is kept out of ``repr``)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class SeededClient:
    """A confidential OAuth client with the client-credentials grant."""

    client_id: str
    client_secret: str = field(repr=False)


class LocalStack(AsyncCloseable):
    """Server + object store on loopback, seeded and ready for tests.

    Args:
        data_dir: Where to keep everything; a temporary dir (removed on stop) when ``None``.
        s3: Start the object store (needed for datasets and transfers).
        s3_settings: Use this object store instead of starting SeaweedFS (any S3 with STS;
            its bucket must exist): see the guide "Running on another S3 store".
        admin_password: The seeded administrator's password (random when ``None``).
        s3_token_duration: The object store's default lifetime of STS session credentials
            (a Go duration such as ``"1h"`` or ``"5s"``): what scoped credentials get when
            they ask for less than 900 s. A short one lets tests watch credentials expire.
        **settings: Extra :class:`~provena_like.server.settings.ServerSettings` fields, e.g.
            ``access_token_ttl=5``.

    Attributes:
        admin: the seeded system administrator (``admin``).
        user: the seeded regular user (``researcher``).
        service: the seeded confidential client (``pipeline``).
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        s3: bool = True,
        s3_settings: S3Settings | None = None,
        admin_password: str | None = None,
        s3_token_duration: str = "1h",
        **settings: Any,
    ) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="provena-like-")).resolve()
        self._want_s3 = s3 and s3_settings is None
        self._external_s3 = s3_settings
        self._s3_token_duration = s3_token_duration
        self._extra_settings = settings
        self.s3: SeaweedS3 | None = None
        self.server: ServerThread | None = None
        self.settings: ServerSettings | None = None
        self.admin = SeededAccount("admin", admin_password or secrets.token_urlsafe(16))
        self.user = SeededAccount("researcher", secrets.token_urlsafe(16))
        self.service = SeededClient("pipeline", "")
        self._configs: dict[str, ProvenaConfig] = {}

    def __repr__(self) -> str:
        return f"LocalStack(url={self.url if self.server else None!r}, data_dir={self.data_dir!s})"

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        if self.server is None:
            raise RuntimeError("the stack is not running; use 'async with LocalStack()'")
        return self.server.url

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def start(self) -> None:
        """Start the object store and the server, then seed accounts and sign them in."""
        try:
            await anyio.to_thread.run_sync(self._start_processes)
            await self._seed()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.stop()
            raise

    def _start_processes(self) -> None:
        s3_settings = self._external_s3
        if self._want_s3:
            self.s3 = SeaweedS3(self.data_dir / "s3", token_duration=self._s3_token_duration)
            self.s3.start()
            self.s3.create_bucket(BUCKET)
            s3_settings = S3Settings(
                endpoint_url=self.s3.endpoint_url,
                access_key=self.s3.admin_access_key,
                secret_key=self.s3.admin_secret_key,
                bucket=BUCKET,
                role_arn=self.s3.role_arn,
                region=self.s3.region,
            )
        sock = bind_socket()
        host, port = sock.getsockname()[:2]
        values: dict[str, Any] = {
            "data_dir": self.data_dir / "server",
            "public_url": f"http://{host}:{port}",
            "initial_admin_password": self.admin.password,
            "device_poll_interval": 0,
            "s3": s3_settings,
            **self._extra_settings,
        }
        self.settings = ServerSettings.model_validate(values)
        server = ServerThread(create_app(self.settings), sock=sock)
        server.start()
        self.server = server

    async def stop(self) -> None:
        """Stop the server and the object store; remove the data dir if it was temporary."""

        def stop_all() -> None:
            if self.server is not None:
                self.server.stop()
                self.server = None
            if self.s3 is not None:
                if self._own_dir:  # its dir is removed next: no clean shutdown to wait for
                    self.s3.stop(grace=0)  # (weed takes about 1.3 s after SIGTERM)
                else:
                    self.s3.stop()
                self.s3 = None
            if self._own_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)

        await anyio.to_thread.run_sync(stop_all)

    async def aclose(self) -> None:
        """The same as :meth:`stop` (what leaving ``async with`` calls)."""
        await self.stop()

    # ------------------------------------------------------------------ accounts

    def config(self, **overrides: Any) -> ProvenaConfig:
        """A config for this stack, with no credentials (add ``access_token=...`` etc.)."""
        values: dict[str, Any] = {"base_url": self.url, "token_dir": self.data_dir / "tokens"}
        values.update(overrides)
        return ProvenaConfig(**values)

    async def login(self, username: str, password: str) -> ProvenaConfig:
        """Sign ``username`` in through the device flow and return a config using the token.

        The code is approved on the verification page over HTTP, as a browser would. Tokens
        are kept in a token store of the stack's own (one directory per user).
        """
        config = self.config(token_dir=self.data_dir / "tokens" / username)
        async with httpx.AsyncClient() as browser:

            async def prompt(p: DevicePrompt) -> None:
                assert p.verification_uri_complete is not None
                await approve_device_code(browser, p.verification_uri_complete, username, password)

            manager = AuthManager.from_config(config, require_token=False)
            try:
                await manager.login_device(prompt)
            finally:
                await manager.aclose()
        self._configs[username] = config
        return config

    def client(self, who: str | None = None, **overrides: Any) -> ProvenaClient:
        """A client signed in as a seeded or logged-in user, or as the seeded service client.

        Args:
            who: ``None`` or ``"researcher"`` for the regular user, ``"admin"``, the
                service client's id (``"pipeline"``), or any user passed to :meth:`login`.
            **overrides: further :class:`~provena_like.ProvenaConfig` fields.
        """
        who = who or self.user.username
        if who == self.service.client_id:
            config = self.config(
                client_id=self.service.client_id, client_secret=self.service.client_secret
            )
        elif who in self._configs:
            config = self._configs[who]
        else:
            raise KeyError(f"{who!r} has not signed in; call 'await stack.login(...)' first")
        return ProvenaClient(config.replace(**overrides) if overrides else config)

    async def _seed(self) -> None:
        await self.login(self.admin.username, self.admin.password)
        async with self.client(self.admin.username) as admin:
            await admin.auth_client.create_user(
                UserCreate(
                    username=self.user.username,
                    password=self.user.password,
                    display_name="Rita Researcher",
                    email="researcher@example.org",
                )
            )
            created = await admin.auth_client.create_client(
                OAuthClientCreate(client_id=self.service.client_id, name="CI pipeline")
            )
        assert created.client_secret is not None
        self.service = SeededClient(
            self.service.client_id, created.client_secret.get_secret_value()
        )
        await self.login(self.user.username, self.user.password)
