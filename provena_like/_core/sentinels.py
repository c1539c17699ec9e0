"""``NOT_GIVEN``: a default that is distinct from ``None``.

Some arguments give ``None`` a meaning of its own. ``idempotency_key=None`` means "send no
key", while leaving the argument out means "let the SDK choose one":

```python
await core.request("POST", "registry", "/items", json=body)                       # new key
await core.request("POST", "registry", "/items", json=body, idempotency_key=None)  # no key
```
"""

from __future__ import annotations

from typing import Final, Literal, final

__all__ = ["NOT_GIVEN", "NotGiven"]


@final
class NotGiven:
    """The type of :data:`NOT_GIVEN`: falsy, a singleton, printed as ``NOT_GIVEN``.

    Example:
        ```python
        from provena_like import NOT_GIVEN
        assert (bool(NOT_GIVEN), repr(NOT_GIVEN)) == (False, 'NOT_GIVEN')
        ```
    """

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __reduce__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()
"""The argument was left out (as opposed to passed as ``None``)."""
