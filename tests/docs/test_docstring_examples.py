"""Every docstring example of ``provena_like/`` compiles, and every one that can runs.

Examples are ```python blocks (Google style, under ``Example:``), with top-level ``await``
allowed as in a notebook cell. Each runs in its module's globals, in a fresh working directory,
with a few names an example may take as given: ``pv`` (a client signed in to the session's
``LocalStack`` as a user of its own), ``url``, ``config`` and ``issuer``; ``ds``,
``dataset_id`` and ``record`` (a fresh dataset with a few files, and a valid record); and the
SDK's main classes. The placeholder handle ``10378.1/42`` stands for that fresh dataset. The
examples that can't run are listed in ``tests/docs/not_run.py`` with the reason.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from provena_like import ProvenaClient, ProvenaConfig
from provena_like.auth import AuthManager
from provena_like.models.auth import UserCreate
from provena_like.testing.localstack import LocalStack
from tests.docs.examples import FLAGS, Example, collect, compile_example
from tests.docs.not_run import NOT_RUN
from tests.support.l3_helpers import make_record

pytestmark = pytest.mark.anyio

EXAMPLES = collect()
_BY_ID = {e.id: e for e in EXAMPLES}
_RUNNABLE = [e for e in EXAMPLES if e.id not in NOT_RUN]
_STACK_NAMES = ("pv", "url", "config", "issuer", "ds", "dataset_id", "record", "new_record")
_DATASET_NAMES = ("ds", "dataset_id", "record", "new_record")
_PLACEHOLDER_ID = "10378.1/42"
"""The handle examples use for "some item"; on the stack it becomes a fresh dataset's id."""
_FILES = {
    "README.md": b"# reef\n",
    "raw/a.csv": b"t,temp\n0,21.5\n",
    "raw/table.csv": b"t,temp\n1,21.7\n",
    "raw/old.csv": b"t,temp\n",
    "raw/tmp.bin": b"\0" * 64,
    "data/a.csv": b"t,temp\n2,21.9\n",
}


def test_examples_are_found() -> None:
    assert len(EXAMPLES) > 200
    assert len({e.id for e in EXAMPLES}) == len(EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_example_compiles(example: Example) -> None:
    compile_example(example)


def test_no_doctest_or_literal_block_examples_left() -> None:
    """One style: no ``>>>`` prompts in the library (examples are fenced ```python blocks)."""
    offenders = []
    for path in sorted(Path(importlib.import_module("provena_like").__file__).parent.rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith(">>>"):
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_every_skip_has_a_reason_and_an_example() -> None:
    assert set(NOT_RUN) <= set(_BY_ID), set(NOT_RUN) - set(_BY_ID)
    assert all(reason.strip() for reason in NOT_RUN.values())
    assert len(_RUNNABLE) >= 150


@pytest.fixture(scope="module")
async def doc_user(localstack: LocalStack) -> str:
    """A user of the session's stack that only these examples use (they may change it)."""
    name = f"docs-{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    async with localstack.client(localstack.admin.username) as admin:
        await admin.auth_client.create_user(UserCreate(username=name, password=password))
    await localstack.login(name, password)
    return name


@pytest.fixture
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working directory with the files the examples read, and a clean environment.

    Caches and config files go under it too; the root logger (which an example may
    configure) is restored afterwards.
    """
    (tmp_path / "data.bin").write_bytes(b"test")
    (tmp_path / "a.bin").write_bytes(b"a" * 1000)
    (tmp_path / "notes.txt").write_text("reef temperatures\n")
    for folder in ("data", "run-7"):
        _write_tree(tmp_path / folder)
    for name in [n for n in os.environ if n.startswith("PROVENA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield tmp_path
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def _mentions(example: Example, names: tuple[str, ...]) -> bool:
    return any(re.search(rf"\b{name}\b", example.code) for name in names)


def _needs_stack(example: Example) -> bool:
    return _mentions(example, _STACK_NAMES) or _PLACEHOLDER_ID in example.code


def _write_tree(root: Path) -> None:
    for relative, data in _FILES.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)


async def _dataset_names(pv: ProvenaClient, tmp_path: Path) -> dict[str, Any]:
    """A fresh dataset with a few files, as ``ds``, ``dataset_id``, ``record``, ``new_record``."""
    org = await pv.registry_client.create_item(
        {"subtype": "organisation", "record": {"name": f"Docs {uuid.uuid4().hex[:6]}"}}
    )
    person = await pv.registry_client.create_item(
        {
            "subtype": "person",
            "record": {"first_name": "Ada", "last_name": "Docs", "email": "ada@example.org"},
        }
    )
    refs = {"organisation": org.id, "person": person.id}
    record = make_record(refs, name=f"Docs example {uuid.uuid4().hex[:6]}")
    ds = await pv.datastore.mint(record)
    _write_tree(tmp_path / "seed")
    (await ds.upload(tmp_path / "seed")).raise_for_failures()
    return {
        "ds": ds,
        "dataset_id": ds.id,
        "record": make_record(refs, name=f"Docs example {uuid.uuid4().hex[:6]}"),
        "new_record": make_record(refs, name="Docs example, renamed"),
    }


def _namespace(example: Example, tmp_path: Path) -> dict[str, Any]:
    namespace: dict[str, Any] = dict(vars(importlib.import_module(example.module)))
    namespace.update(
        pytest=pytest,
        httpx=httpx,
        anyio=anyio,
        Path=Path,
        os=os,
        ProvenaClient=ProvenaClient,
        ProvenaConfig=ProvenaConfig,
        AuthManager=AuthManager,
        tmp_path=tmp_path,
    )
    return namespace


async def _run(example: Example, namespace: dict[str, Any]) -> None:
    code = compile_example(example)
    if _PLACEHOLDER_ID in example.code and "dataset_id" in namespace:
        code = compile(
            example.code.replace(_PLACEHOLDER_ID, namespace["dataset_id"]),
            f"<{example.id}>",
            "exec",
            flags=FLAGS,
        )
    result = eval(code, namespace)  # the example's own code
    if inspect.iscoroutine(result):
        with anyio.fail_after(120):
            await result


@pytest.mark.parametrize(
    "example", [e for e in _RUNNABLE if not _needs_stack(e)], ids=lambda e: e.id
)
async def test_example_runs(example: Example, in_tmp_dir: Path) -> None:
    await _run(example, _namespace(example, in_tmp_dir))


@pytest.mark.parametrize("example", [e for e in _RUNNABLE if _needs_stack(e)], ids=lambda e: e.id)
async def test_example_runs_on_the_stack(
    example: Example,
    localstack: LocalStack,
    doc_user: str,
    in_tmp_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    namespace = _namespace(example, in_tmp_dir)
    async with localstack.client(doc_user) as pv:
        # ProvenaClient.from_env() in an example finds the stack and the user's sign-in
        monkeypatch.setenv("PROVENA_BASE_URL", localstack.url)
        monkeypatch.setenv("PROVENA_TOKEN_DIR", str(pv.config.resolved_token_dir))
        if _mentions(example, _DATASET_NAMES) or _PLACEHOLDER_ID in example.code:
            namespace.update(await _dataset_names(pv, in_tmp_dir))
        namespace.update(
            pv=pv, url=localstack.url, config=pv.config, issuer=pv.config.resolved_issuer
        )
        await _run(example, namespace)
