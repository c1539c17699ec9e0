"""The auth service (placeholder until the auth service lands)."""

from fastapi import APIRouter, FastAPI

router = APIRouter(tags=["auth"])


async def setup(app: FastAPI) -> None:
    """Prepare signing keys and the token verifier on ``app.state.tokens``."""
    del app
