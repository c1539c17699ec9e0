"""``repositories`` sits between the L3 modules and the clients/storage: it never imports
``modules``, the client or the server (docs/architecture.md, the dependency rule)."""

from __future__ import annotations

import ast
from pathlib import Path

import provena_like.repositories

PACKAGE = Path(provena_like.repositories.__file__).parent
ALLOWED = ("storage", "clients", "models", "alf", "_core", "repositories")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_repositories_import_only_the_layers_below() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert {f.name for f in files} >= {"base.py", "mapping.py", "posix.py", "s3.py"}
    wrong = {
        f"{path.name}: {name}"
        for path in files
        for name in imported(path)
        if name.startswith("provena_like") and name.split(".")[1] not in ALLOWED
    }
    assert not wrong, wrong
