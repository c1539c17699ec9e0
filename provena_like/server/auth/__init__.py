"""The auth service (being built: only the token service is wired yet)."""

from fastapi import APIRouter, FastAPI

from provena_like.server.auth.tokens import TokenService

router = APIRouter(tags=["auth"])


async def setup(app: FastAPI) -> None:
    """Load the signing key and expose the token verifier as ``app.state.tokens``."""
    settings = app.state.settings
    app.state.tokens = TokenService.from_data_dir(settings.data_dir, settings.issuer)
