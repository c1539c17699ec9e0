"""The test suite imports its helpers by package path, never by a bare module name.

A bare ``import datastore_helpers`` works only because pytest's ``prepend`` import mode puts
a test folder on ``sys.path``; it breaks with ``importlib`` mode, from other folders, and
when two folders hold a module of the same name.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _local_module_names() -> set[str]:
    """The names a bare import could resolve to inside ``tests/`` (files and packages)."""
    names = {p.stem for p in TESTS.rglob("*.py") if "node_modules" not in p.parts}
    names |= {p.parent.name for p in TESTS.rglob("__init__.py")}
    names.discard("__init__")
    names.discard("tests")  # the package itself: ``tests.support.x`` is the way in
    return names


def _bare_imports(path: Path, local: set[str], root: Path = TESTS) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            heads = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            heads = [node.module.split(".")[0]]
        else:
            continue
        found += [f"{path.relative_to(root)}:{node.lineno}: {h}" for h in heads if h in local]
    return found


def test_every_folder_of_tests_is_a_package() -> None:
    folders = {
        p.parent
        for p in TESTS.rglob("*.py")
        if "node_modules" not in p.parts and "__pycache__" not in p.parts
    }
    missing = sorted(
        str(f.relative_to(TESTS.parent)) for f in folders if not (f / "__init__.py").exists()
    )
    assert not missing, f"add an __init__.py to {missing}"


def test_no_bare_name_imports_of_test_modules() -> None:
    local = _local_module_names()
    offenders = [
        hit
        for path in sorted(TESTS.rglob("*.py"))
        if "node_modules" not in path.parts
        for hit in _bare_imports(path, local)
    ]
    assert not offenders, "import test helpers as tests.support.<name>:\n" + "\n".join(offenders)


def test_the_check_sees_a_bare_import(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "import datastore_helpers\nfrom l3_helpers import make_record\n"
        "from tests.support.l3_helpers import make_record as ok\n"
    )
    hits = _bare_imports(sample, {"datastore_helpers", "l3_helpers"}, root=tmp_path)
    assert [h.rsplit(": ", 1)[1] for h in hits] == ["datastore_helpers", "l3_helpers"]
