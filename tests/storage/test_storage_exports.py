"""The storage package's public surface: ``__all__`` is importable and complete."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import provena_like.storage as storage


def test_all_names_are_importable_and_unique() -> None:
    assert len(storage.__all__) == len(set(storage.__all__))
    for name in storage.__all__:
        assert hasattr(storage, name), name


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from provena_like.storage import *", namespace)  # the point of the test
    namespace.pop("__builtins__")
    assert set(namespace) == set(storage.__all__)


def test_every_public_name_is_in_all() -> None:
    public = {
        name
        for name, value in vars(storage).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public <= set(storage.__all__)


def test_storage_imports_only_lower_layers() -> None:
    """modules → clients/storage → _core/auth → models: storage never imports upwards."""
    forbidden = ("provena_like.server", "provena_like.clients", "provena_like.modules")
    forbidden += ("provena_like.cli", "provena_like.testing", "provena_like.client")
    package = Path(storage.__file__).parent
    for source in package.glob("*.py"):
        for name in _imported(source):
            assert not name.startswith(forbidden), f"{source.name} imports {name}"


def test_no_module_outside_storage_imports_its_private_modules() -> None:
    """``storage._*`` is the package's own business: the rest of the SDK uses public names."""
    package = Path(storage.__file__).parent
    root = package.parent
    for source in sorted(root.rglob("*.py")):
        if package in source.parents:
            continue
        for name in _imported(source):
            assert not name.startswith("provena_like.storage._"), (
                f"{source.relative_to(root)} imports {name}"
            )


def _imported(source: Path) -> list[str]:
    """The modules a source file imports (absolute imports)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names
