"""The session's reference server made to trust institutions' OpenID providers for a while."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from provena_like.server.auth.external import Authenticator
from provena_like.server.settings import TrustedIssuer
from provena_like.testing.server_thread import ServerThread


@asynccontextmanager
async def trusting(
    server: ServerThread, *issuers: TrustedIssuer, embedded: bool = True
) -> AsyncIterator[Authenticator]:
    """The session server, trusting ``issuers`` (and its own tokens if ``embedded``)."""
    state = server.app.state
    settings_before, before = state.settings, state.authenticator
    settings = settings_before.model_copy(
        update={"trusted_issuers": list(issuers), "embedded_issuer_enabled": embedded}
    )

    async def make() -> Authenticator:
        return Authenticator.from_settings(settings, state.tokens)

    authenticator = server.call(make)
    state.settings, state.authenticator = settings, authenticator
    try:
        yield authenticator
    finally:
        state.settings, state.authenticator = settings_before, before
        server.call(authenticator.aclose)
