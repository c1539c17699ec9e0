"""Collecting the ```python examples of the library's docstrings (shared by the tests)."""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import provena_like

PACKAGE = Path(provena_like.__file__).parent
FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT

_FENCE = re.compile(
    r"^(?P<indent>[ ]*)```python[ ]*\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.M | re.S
)


@dataclass(frozen=True)
class Example:
    """One fenced example: where it is, its code, the module whose globals it runs in."""

    id: str
    module: str
    code: str
    path: Path
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _docstrings(tree: ast.Module) -> list[tuple[str, str, int]]:
    """(qualified name, docstring, line) of the module and of every class and function."""
    found: list[tuple[str, str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                doc = ast.get_docstring(child, clean=False)
                if doc:
                    found.append((name, doc, child.body[0].lineno))
                visit(child, name + ".")

    doc = ast.get_docstring(tree, clean=False)
    if doc:
        found.append(("", doc, 1))
    visit(tree, "")
    return found


def collect() -> list[Example]:
    """Every ```python block in a docstring under ``provena_like/``."""
    examples: list[Example] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        for qualname, doc, line in _docstrings(tree):
            for n, match in enumerate(_FENCE.finditer(doc)):
                code = textwrap.dedent(match.group("body"))
                where = f"{module}:{qualname}" if qualname else module
                examples.append(Example(f"{where}#{n}" if n else where, module, code, path, line))
    return examples


def compile_example(example: Example) -> object:
    """Compile with top-level ``await`` allowed (as in a notebook cell or ``python -m asyncio``)."""
    return compile(example.code, f"<{example.id}>", "exec", flags=FLAGS)
