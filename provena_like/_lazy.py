"""Lazily imported package exports (PEP 562), so importing a package stays cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports each of ``names`` on first access.

    Args:
        package: the package's name (for the error message).
        names: exported name → the module it is defined in.
        namespace: the package's ``globals()``; a name, once imported, is stored there.

    Returns:
        The function to assign to the package's ``__getattr__``.

    Example:
        ```python
        from provena_like._lazy import lazy_exports

        __getattr__ = lazy_exports(__name__, {"ProvenaClient": "provena_like.client"}, globals())
        ```
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
