"""pytest fixtures for testing code that uses provena_like.

Enable with ``pytest_plugins = ["provena_like.testing.pytest_plugin"]`` in ``conftest.py``.
The fixtures are async (anyio plugin) and session-scoped, so your ``anyio_backend`` fixture
must be session-scoped too:

```python
@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"
```
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from provena_like.testing.localstack import LocalStack


@pytest.fixture(scope="session")
async def localstack(anyio_backend: str) -> AsyncIterator[LocalStack]:
    """A started :class:`~provena_like.testing.LocalStack` shared by the whole session."""
    from provena_like.testing.localstack import LocalStack

    del anyio_backend  # requested so that the anyio plugin runs this fixture
    async with LocalStack() as stack:
        yield stack
