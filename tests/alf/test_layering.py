"""``provena_like.alf`` is the bottom layer: it imports only the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import provena_like.alf

ALLOWED = {"pydantic", "typing_extensions"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_alf_imports_only_the_standard_library_and_itself() -> None:
    package = Path(provena_like.alf.__file__).parent
    for path in sorted(package.glob("*.py")):
        for module in _imports(path):
            top = module.split(".")[0]
            assert (
                top in sys.stdlib_module_names
                or top in ALLOWED
                or module.startswith("provena_like.alf")
            ), f"{path.name} imports {module}"


def test_public_names_are_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from provena_like.alf import *", namespace)  # the point of the test
    namespace.pop("__builtins__")
    assert set(namespace) == set(provena_like.alf.__all__)
    assert len(provena_like.alf.__all__) == len(set(provena_like.alf.__all__))
    public = {n for n in vars(provena_like.alf) if not n.startswith("_")}
    modules = {"dataset_types", "errors", "names", "paths", "revisions"}
    assert public - modules == set(provena_like.alf.__all__)
