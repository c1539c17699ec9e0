"""``AsyncCloseable``: ``async with`` closes through ``aclose()``, also when the block raises."""

from __future__ import annotations

import pytest

from provena_like import ProvenaClient
from provena_like._core.http import HTTPCore
from provena_like._core.lifecycle import AsyncCloseable
from provena_like.auth import AuthManager
from provena_like.storage import TransferEngine
from provena_like.testing.localstack import LocalStack

pytestmark = pytest.mark.anyio


class _Resource(AsyncCloseable):
    def __init__(self) -> None:
        self.closes = 0

    async def aclose(self) -> None:
        self.closes += 1


async def test_async_with_returns_the_object_and_closes_it() -> None:
    resource = _Resource()
    async with resource as entered:
        assert entered is resource
        assert resource.closes == 0
    assert resource.closes == 1


async def test_the_block_error_propagates_after_closing() -> None:
    resource = _Resource()
    with pytest.raises(KeyError):
        async with resource:
            raise KeyError("boom")
    assert resource.closes == 1


def test_aclose_is_required() -> None:
    class NoClose(AsyncCloseable):
        pass

    with pytest.raises(TypeError, match="aclose"):
        NoClose()  # type: ignore[abstract]


@pytest.mark.parametrize("cls", [HTTPCore, ProvenaClient, AuthManager, TransferEngine, LocalStack])
def test_the_library_objects_share_the_rule(cls: type[object]) -> None:
    assert issubclass(cls, AsyncCloseable)
    assert "__aexit__" not in vars(cls)
