"""No access to private attributes of third-party objects (botocore, aiobotocore, aiohttp, ...).

Private attributes change without notice between releases; writing one (as the engine once
wrote ``client._request_signer._credentials``) can break credential refresh silently on an
upgrade. The package's source is read with :mod:`ast` and three rules apply:

1. ``obj._name`` (``obj`` not ``self``/``cls``) where no class or module of ``provena_like``
   defines ``_name``: that can only be someone else's private attribute;
2. ``obj._name = ...`` (``obj`` not ``self``/``cls``): writing another object's private
   state; allowed only for our own classes, listed below with the reason;
3. a class of ours that subclasses a third-party class and reads or writes ``self._name``
   where ``_name`` also appears in that base class's source: reaching into the base's
   internals by inheritance (as ``_AioBridge`` did with ``_frozen_credentials``);

plus ``getattr``/``setattr``/``hasattr`` with a private name literal that we don't define.
Anything new fails until it is removed or added to :data:`ALLOWED` with a reason.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import gc
import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import provena_like

PACKAGE = Path(provena_like.__file__).parent

ALLOWED: dict[tuple[str, str], str] = {
    **{
        ("server/jobs/runner.py", f"ctx.{name}"): (
            "the JobRunner's heartbeat keeps the state of the JobContext it made (same package)"
        )
        for name in ("_nudge", "_renewed_at", "_lost", "_cancel")
    },
    ("_redaction.py", "parts._replace"): (
        "namedtuple._replace is public API (the underscore only avoids field-name clashes)"
    ),
    ("_core/http.py", "copy._config"): "HTTPCore.with_config fills in a copy of its own class",
    ("_core/http.py", "copy._policy"): "HTTPCore.with_config fills in a copy of its own class",
    ("_core/http.py", "copy._pool"): "HTTPCore.with_config fills in a copy of its own class",
    ("_core/http.py", "copy._owns_pool"): "HTTPCore.with_config fills in a copy of its own class",
    ("_core/http.py", "copy._view_closed"): (
        "HTTPCore.with_config fills in a copy of its own class"
    ),
    ("_core/http.py", "copy._auth"): "HTTPCore.with_auth fills in a copy of its own class",
    ("modules/credentials.py", "copy._client"): (
        "CredentialsCache.scoped fills in a copy of its own class (a view's client)"
    ),
    ("modules/credentials.py", "copy._custom_identity"): (
        "CredentialsCache.scoped fills in a copy of its own class"
    ),
    ("modules/datastore.py", "copy._search"): "Datastore.scoped fills in a copy of its own class",
    ("modules/datastore.py", "copy._session"): "Datastore.scoped fills in a copy of its own class",
    ("modules/engines.py", "copy._cache"): "EnginePool.scoped fills in a copy of its own class",
    ("modules/engines.py", "copy._max_idle"): "EnginePool.scoped fills in a copy of its own class",
    ("modules/engines.py", "copy._shared"): "EnginePool.scoped fills in a copy of its own class",
    ("modules/engines.py", "copy._owner"): "EnginePool.scoped fills in a copy of its own class",
    ("_core/pagination.py", "paginator._next_cursor"): (
        "_PageWalk drives the AsyncPaginator of the same module"
    ),
    ("_core/pagination.py", "paginator._exhausted"): (
        "_PageWalk drives the AsyncPaginator of the same module"
    ),
    ("_core/pagination.py", "p._next_cursor"): (
        "_PageWalk drives the AsyncPaginator of the same module"
    ),
    ("_core/pagination.py", "p._exhausted"): (
        "_PageWalk drives the AsyncPaginator of the same module"
    ),
    **{
        ("server/db/sqlite_driver.py", f"self.{name}"): (
            "OneTripConnection runs a whole statement in one trip to aiosqlite's thread, which "
            "needs its queue (_execute) and its sqlite3 connection (_conn) there; both have "
            "been in aiosqlite since 0.11, and pyproject pins the release the tests cover"
        )
        for name in ("_conn", "_execute")
    },
    ("_core/http.py", "getattr(cast_to, '_type', 'value')"): (
        "pydantic's TypeAdapter has no public accessor for its type; used only to name it in "
        "an error message, with a fallback if the attribute goes away"
    ),
}
"""``(path relative to the package, expression)`` -> why it is fine."""

_SELF = frozenset({"self", "cls"})


@dataclass(frozen=True)
class Access:
    path: str
    line: int
    expression: str
    rule: str

    def __str__(self) -> str:
        return f"provena_like/{self.path}:{self.line}: {self.expression} ({self.rule})"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@dataclass(frozen=True)
class _Module:
    """A parsed source file of the package and every node of its tree (``ast.walk`` order)."""

    path: str
    nodes: tuple[ast.AST, ...]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: parsing makes some 10^5 acyclic nodes, and the
    collections they trigger would trace them (and the rest of the heap) again and again."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@functools.cache
def _modules(root: Path) -> tuple[_Module, ...]:
    """The package's modules, parsed and walked once (the rules and the tests share them)."""
    with _collector_paused():
        return tuple(
            _Module(
                path.relative_to(root).as_posix(),
                tuple(ast.walk(ast.parse(path.read_text(encoding="utf-8")))),
            )
            for path in sorted(root.rglob("*.py"))
        )


def _our_names(modules: tuple[_Module, ...]) -> set[str]:
    """Every name the package defines: functions, classes, module names, members, arguments."""
    names = {module.path.rsplit("/", 1)[-1].removesuffix(".py") for module in modules}
    for module in modules:
        for node in module.nodes:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id in _SELF
            ):
                names.add(node.attr)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def _third_party_bases(package: str, source: _Module) -> dict[str, list[type]]:
    """Our classes in ``source`` -> the third-party classes in their MRO."""
    classes = [node for node in source.nodes if isinstance(node, ast.ClassDef)]
    if not any(node.bases for node in classes):
        return {}  # nothing inherited (and scripts such as migrations/env.py aren't imported)
    dotted = source.path.removesuffix(".py").removesuffix("__init__").rstrip("/")
    dotted = dotted.replace("/", ".")
    module = importlib.import_module(f"{package}.{dotted}" if dotted else package)
    found: dict[str, list[type]] = {}
    for node in classes:
        cls = getattr(module, node.name, None)
        if not isinstance(cls, type):
            continue  # defined inside a function
        foreign = [
            base
            for base in cls.__mro__[1:]
            if not base.__module__.startswith((package, "builtins", "typing", "abc"))
        ]
        if foreign:
            found[node.name] = foreign
    return found


@functools.cache
def _source(cls: type) -> str:
    """The source of a class (cached: ``inspect`` re-parses the whole module on every call)."""
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        return ""


def find_private_accesses(root: Path = PACKAGE, package: str = "provena_like") -> list[Access]:
    """Every access breaking the rules of the module docstring, allow-list applied."""
    modules = _modules(root)
    ours = _our_names(modules)
    found: list[Access] = []
    for source in modules:
        path = source.path
        for node in source.nodes:
            if isinstance(node, ast.Attribute) and _private(node.attr):
                base = node.value
                if isinstance(base, ast.Name) and base.id in _SELF:
                    continue
                text = ast.unparse(node)
                if node.attr not in ours:
                    found.append(Access(path, node.lineno, text, "not defined by the package"))
                elif isinstance(node.ctx, ast.Store):
                    found.append(Access(path, node.lineno, text, "writes another object's state"))
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"getattr", "setattr", "hasattr", "delattr"}
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
                and _private(node.args[1].value)
                and node.args[1].value not in ours
            ):
                found.append(Access(path, node.lineno, ast.unparse(node), "by name"))
        bases = _third_party_bases(package, source)
        for node in source.nodes:
            if not isinstance(node, ast.ClassDef) or node.name not in bases:
                continue
            foreign_source = "\n".join(_source(base) for base in bases[node.name])
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.Attribute)
                    and isinstance(inner.value, ast.Name)
                    and inner.value.id in _SELF
                    and _private(inner.attr)
                    and f".{inner.attr}" in foreign_source
                ):
                    names = ", ".join(b.__qualname__ for b in bases[node.name])
                    found.append(
                        Access(path, inner.lineno, ast.unparse(inner), f"internal of {names}")
                    )
    return [a for a in found if (a.path, a.expression) not in ALLOWED]


def test_no_new_private_access_to_third_party_objects() -> None:
    found = find_private_accesses()
    assert not found, "private attributes of other libraries' objects:\n" + "\n".join(
        map(str, found)
    )


def test_every_allowed_access_still_exists() -> None:
    """A stale allow-list entry would hide the next access of the same text."""
    present = set()
    for source in _modules(PACKAGE):
        for node in source.nodes:
            # every entry is a private attribute or a call of getattr & co. with a private name
            if (isinstance(node, ast.Attribute) and _private(node.attr)) or (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"getattr", "setattr", "hasattr", "delattr"}
            ):
                present.add((source.path, ast.unparse(node)))
    assert not set(ALLOWED) - present


def test_the_scan_catches_what_the_engine_used_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The three rules on the code the engine and the credentials module had before."""
    package = tmp_path / "planted_private_access"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "engine.py").write_text(
        "from botocore.credentials import RefreshableCredentials\n"
        "\n"
        "\n"
        "class Bridge(RefreshableCredentials):\n"
        "    def adopt(self, frozen):\n"
        "        self._frozen_credentials = frozen\n"
        "        self._owner = None\n"
        "\n"
        "\n"
        "def open_client(client, bridge):\n"
        "    signer = client._request_signer\n"
        "    signer._credentials = bridge\n"
        "    return getattr(client, '_endpoint')\n"
        "\n"
        "\n"
        "class Own:\n"
        "    def __init__(self):\n"
        "        self._state = 1\n"
        "\n"
        "\n"
        "def poke(own):\n"
        "    own._state = 2\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    found = find_private_accesses(package, "planted_private_access")
    assert sorted((a.expression, a.rule) for a in found) == [
        ("client._request_signer", "not defined by the package"),
        ("getattr(client, '_endpoint')", "by name"),
        ("own._state", "writes another object's state"),
        ("self._frozen_credentials", "internal of RefreshableCredentials, Credentials"),
        ("signer._credentials", "not defined by the package"),
    ]
