"""Helpers for testing with a real local stack: server + object store on loopback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["LocalStack", "SeededAccount", "SeededClient"]

if TYPE_CHECKING:
    from provena_like.testing.localstack import LocalStack, SeededAccount, SeededClient


def __getattr__(name: str) -> Any:
    # imported lazily: the stack needs the server extra, the rest of the SDK does not
    if name in __all__:
        from provena_like.testing import localstack

        return getattr(localstack, name)
    raise AttributeError(name)
