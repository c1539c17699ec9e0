"""``ServerSettings.gc_freeze``: a server that owns its process freezes start-up's objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from provena_like.server.settings import ServerSettings
from provena_like.testing import LocalStack

pytestmark = pytest.mark.anyio


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Nothing frozen before the test, and nothing after it (this process hosts the tests)."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
async def test_a_server_with_gc_freeze_freezes_what_start_up_built() -> None:
    async with LocalStack(s3=False, gc_freeze=True) as stack:
        assert gc.get_freeze_count() > 0  # the app, its routes, models and mappers
        async with stack.client() as pv:  # and it still answers
            assert (await pv.registry_client.list_items(page_size=1)).items is not None


@pytest.mark.usefixtures("unfrozen")
async def test_by_default_the_server_leaves_the_gc_of_its_host_process_alone() -> None:
    assert ServerSettings.model_fields["gc_freeze"].default is False
    async with LocalStack(s3=False):
        assert gc.get_freeze_count() == 0
