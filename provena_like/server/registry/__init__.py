"""The registry service (placeholder until the registry service lands)."""

from fastapi import APIRouter

router = APIRouter(tags=["registry"])
