"""The auth service of the reference server: an OAuth 2.0 / OIDC provider with user admin.

Routes (mounted under ``/auth``): discovery and JWKS, ``/token`` (client credentials,
refresh token with rotation, device code), ``/device_authorization`` and the ``/device``
approval page, ``/userinfo``, ``/revoke``, and the ``/users``, ``/groups``, ``/clients``
admin API. :func:`setup` loads the keys and runs :func:`bootstrap` at start-up.
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, FastAPI

from provena_like.server.auth import admin, device, discovery, oauth
from provena_like.server.auth.bootstrap import (
    ADMIN_USERNAME,
    CLI_CLIENT_ID,
    BootstrapResult,
    bootstrap,
)
from provena_like.server.auth.external import Authenticator
from provena_like.server.auth.keys import AuthKeys
from provena_like.server.auth.passwords import Passwords
from provena_like.server.auth.throttle import LoginThrottle
from provena_like.server.auth.tokens import TokenService

__all__ = [
    "ADMIN_USERNAME",
    "CLI_CLIENT_ID",
    "BootstrapResult",
    "bootstrap",
    "router",
    "setup",
]

router = APIRouter(tags=["auth"])
router.include_router(discovery.router)
router.include_router(oauth.router)
router.include_router(device.router)
router.include_router(admin.router)


async def setup(app: FastAPI) -> BootstrapResult:
    """Load the keys (``app.state.tokens``, ``app.state.auth_keys``) and bootstrap.

    Also sets up the password hasher (``app.state.passwords``), the throttle of failed
    sign-ins (``app.state.login_throttle``) and the
    verifier of every request's access token (``app.state.authenticator``: the embedded
    issuer's tokens and the trusted issuers'; the lifespan closes it).

    Runs in the app's lifespan once the schema exists; the result is also kept as
    ``app.state.bootstrap``.

    Example:
        ```python
        result = await setup(app)
        ```
    """
    settings = app.state.settings
    app.state.login_throttle = LoginThrottle(settings.throttle, app.state.engine)
    app.state.passwords = await anyio.to_thread.run_sync(Passwords, settings.password_hashing)
    app.state.tokens = await anyio.to_thread.run_sync(
        TokenService.from_data_dir, settings.data_dir, settings.issuer
    )
    app.state.authenticator = Authenticator.from_settings(settings, app.state.tokens)
    app.state.auth_keys = await anyio.to_thread.run_sync(AuthKeys.from_data_dir, settings.data_dir)
    result = await bootstrap(app)
    app.state.bootstrap = result
    return result
