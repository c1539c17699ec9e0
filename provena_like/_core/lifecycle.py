"""``AsyncCloseable``: ``async with`` for every object that is closed by ``aclose()``.

The clients, the auth manager, the transfer engine and the test stack all follow one rule:
``async with x`` returns ``x`` (after opening it, where opening does something) and leaving
the block calls ``await x.aclose()``, also when the block raised. The rule is written once,
here; a class overrides :meth:`~AsyncCloseable.__aenter__` only when opening does work.
:class:`Closeable` is the same rule for the blocking objects (``with`` and ``close()``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

__all__ = ["AsyncCloseable", "Closeable"]


class AsyncCloseable(ABC):
    """Base of the objects released by ``aclose()``; ``async with`` closes them on exit.

    Example:
        ```python
        from provena_like._core.lifecycle import AsyncCloseable

        class Resource(AsyncCloseable):
            closed = False

            async def aclose(self) -> None:
                self.closed = True

        async with Resource() as resource:
            pass
        assert resource.closed
        ```
    """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abstractmethod
    async def aclose(self) -> None:
        """Release what the object holds; calling it again must be harmless."""


class Closeable(ABC):
    """Base of the blocking objects released by ``close()``; ``with`` closes them on exit.

    Example:
        ```python
        from provena_like._core.lifecycle import Closeable

        class Resource(Closeable):
            closed = False

            def close(self) -> None:
                self.closed = True

        with Resource() as resource:
            pass
        assert resource.closed
        ```
    """

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None:
        """Release what the object holds; calling it again must be harmless."""
