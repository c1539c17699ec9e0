"""Helpers of the transfer service tests: collections to use, and calls into the live server.

* :func:`register_collection`: a local (POSIX) transfer collection, registered by an admin
  through the registry, with its root under the server's default ``transfer_roots``;
* :func:`mint_dataset`: a dataset (an S3 collection) owned by a user, and
  :func:`dataset_collection`: one opened for writing;
* :func:`in_server`: run a coroutine on the live server's loop (the objects it opens, such as
  a :class:`~provena_like.server.transfer.collections.Collection`, live there);
* :func:`open_as`: :func:`~provena_like.server.transfer.collections.open_collection` for a
  user, with the principal the server builds from the user's token;
* :func:`transfer_client`: the real ``globus_sdk.TransferClient`` against the live server;
  :func:`sdk` runs a blocking SDK call in a worker thread, :func:`call_as` one with a fresh
  client of a user;
* :func:`fixture_json` / :func:`fixture_status`: globus-sdk's registered responses (the shape
  oracle), and :func:`shape_mismatches` / :func:`same_shape` / :func:`like_fixture` /
  :func:`same_error` to compare answers with them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio.to_thread
from globus_sdk import AccessTokenAuthorizer, TransferClient
from globus_sdk.testing import get_response_set

from provena_like.server.security import load_principal
from provena_like.server.transfer.collections import Collection, open_collection
from provena_like.server.transfer.index import collection_id
from provena_like.server.transfer.s3 import S3Backend
from provena_like.testing.server_thread import ServerThread
from tests.support.datastore_helpers import Refs, mint, record
from tests.support.fixtures import service_client
from tests.support.registry_helpers import create, person
from tests.support.users import User

T = TypeVar("T")


def collections_dir(server: ServerThread) -> Path:
    """The server's default transfer root (``<data_dir>/collections``), created."""
    root: Path = server.settings.resolved_transfer_roots[0]
    root.mkdir(parents=True, exist_ok=True)
    return root


def new_root(server: ServerThread, name: str = "col") -> Path:
    """A fresh directory under the server's transfer root."""
    root = collections_dir(server) / f"{name}-{uuid.uuid4().hex[:8]}"
    root.mkdir()
    return root


async def register_collection(
    server: ServerThread, admin: User, root: Path | str, name: str = "Lab scratch", **access: Any
) -> dict[str, Any]:
    """Register a transfer collection as ``admin``; returns the item plus ``collection_id``.

    ``access`` are the item's access settings (``general=[...]``, ``groups={...}``).
    """
    async with service_client(server, "registry") as registry:
        item = await create(
            registry,
            admin,
            subtype="transfer_collection",
            record={"name": name, "root": str(root)},
            **access,
        )
    return {**item, "collection_id": collection_id(item["id"])}


async def mint_dataset(server: ServerThread, owner: User, **access: Any) -> dict[str, Any]:
    """Mint a dataset owned by ``owner``; returns its JSON plus ``collection_id``."""
    async with (
        service_client(server, "registry") as registry,
        service_client(server, "datastore") as datastore,
    ):
        org = await create(
            registry, owner, subtype="organisation", record={"name": "Marine Institute"}
        )
        who = await create(registry, owner, record=person())
        refs = Refs(organisation=org["id"], person=who["id"])
        dataset = await mint(datastore, owner, record(refs), **access)
    return {**dataset, "collection_id": collection_id(dataset["id"])}


async def in_server(server: ServerThread, fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn()`` on the server's loop (from a test's loop, without blocking it)."""
    return await anyio.to_thread.run_sync(lambda: server.call(fn, timeout=120))


async def open_as(server: ServerThread, user: User, cid: str, *, write: bool = False) -> Collection:
    """Open collection ``cid`` as ``user`` (the principal built from the user's token)."""

    async def work() -> Collection:
        claims = server.app.state.tokens.verify_access_token(user.token)
        async with server.app.state.sessions() as session:
            principal = await load_principal(session, claims)
        return await open_collection(server.app, principal, cid, write=write)

    return await in_server(server, work)


async def dataset_collection(server: ServerThread, owner: User) -> tuple[Collection, S3Backend]:
    """A fresh dataset of ``owner``, opened for writing as an S3 collection, and its backend."""
    dataset = await mint_dataset(server, owner)
    opened = await open_as(server, owner, dataset["collection_id"], write=True)
    assert isinstance(opened.backend, S3Backend)
    return opened, opened.backend


# -- the real globus-sdk against the live server ---------------------------------------------


class Served(Protocol):
    """A running server (a ``ServerThread``, or a server process of a test)."""

    @property
    def url(self) -> str:
        """Its base URL."""
        ...


def transfer_client(server: Served, user: User) -> TransferClient:
    """The real, unmodified ``globus_sdk.TransferClient`` pointed at the live server, as
    ``user`` (``AccessTokenAuthorizer`` with the user's token of our own auth)."""
    return TransferClient(base_url=server.url + "/", authorizer=AccessTokenAuthorizer(user.token))


async def sdk(fn: Callable[[], T]) -> T:
    """Run the blocking SDK call ``fn`` in a worker thread (never on the test's loop)."""
    return await anyio.to_thread.run_sync(fn)


async def call_as(server: Served, user: User, fn: Callable[[TransferClient], T]) -> T:
    """Run ``fn(tc)`` with a fresh SDK client for ``user`` in a worker thread (the SDK
    blocks; one client per call, as it is not thread safe)."""

    def work() -> T:
        with transfer_client(server, user) as tc:
            return fn(tc)

    return await sdk(work)


# -- globus-sdk's registered responses: the shape oracle -------------------------------------


def fixture_json(name: str, case: str = "default") -> Any:
    """The JSON of globus-sdk's registered response ``transfer.<name>`` (``case``)."""
    return get_response_set(f"transfer.{name}").lookup(case).json


def fixture_status(name: str, case: str = "default") -> int:
    """The HTTP status of globus-sdk's registered response ``transfer.<name>``."""
    status: int = get_response_set(f"transfer.{name}").lookup(case).status
    return status


_KINDS = {bool: "boolean", int: "number", float: "number", str: "string"}


def shape_mismatches(
    ours: Any, theirs: Any, where: str = "$", *, ignore: frozenset[str] = frozenset()
) -> list[str]:
    """Where ``ours`` differs in shape from ``theirs`` (a globus-sdk registered response).

    Dicts must have the same keys (but those in ``ignore``, at any depth); values the same
    JSON type where both are non-null (a null stands for any type: the fixtures are full of
    them); every item of a list is compared with the first item of the other's list when
    both have items.
    """
    if ours is None or theirs is None:
        return []
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{where}: {type(ours).__name__}, expected an object"]
        problems = []
        mine, expected = set(ours) - ignore, set(theirs) - ignore
        if mine != expected:
            extra, missing = sorted(mine - expected), sorted(expected - mine)
            problems.append(f"{where}: extra keys {extra}, missing keys {missing}")
        for key in sorted(mine & expected):
            problems += shape_mismatches(ours[key], theirs[key], f"{where}.{key}", ignore=ignore)
        return problems
    if isinstance(theirs, list):
        if not isinstance(ours, list):
            return [f"{where}: {type(ours).__name__}, expected an array"]
        if ours and theirs:
            return [
                problem
                for item in ours
                for problem in shape_mismatches(item, theirs[0], f"{where}[]", ignore=ignore)
            ]
        return []
    if _KINDS.get(type(ours)) != _KINDS.get(type(theirs)):
        return [f"{where}: {type(ours).__name__}, expected {type(theirs).__name__}"]
    return []


def same_shape(ours: Any, theirs: Any, *, ignore: frozenset[str] = frozenset()) -> None:
    """Assert that ``ours`` has the shape of ``theirs`` (see :func:`shape_mismatches`)."""
    assert shape_mismatches(ours, theirs, ignore=ignore) == [], ours


def like_fixture(
    ours: Any, name: str, case: str = "default", *, ignore: frozenset[str] = frozenset()
) -> None:
    """Assert that ``ours`` has the shape of the registered response ``transfer.<name>``,
    and the same ``DATA_TYPE`` and ``code`` values."""
    theirs = fixture_json(name, case)
    assert shape_mismatches(ours, theirs, ignore=ignore) == [], (name, ours)
    for key in ("DATA_TYPE", "code"):
        if isinstance(theirs, dict) and key in theirs and key not in ignore:
            assert ours[key] == theirs[key], (name, key, ours)


FILE_LIST_KEYS = frozenset(
    {
        "DATA_TYPE",
        "DATA",
        "absolute_path",
        "endpoint",
        "length",
        "path",
        "rename_supported",
        "symlink_supported",
        "total",
    }
)
"""The keys of a real ``ls`` answer (globus-cli's recorded ``ls_results``)."""


TYPE_ZERO = frozenset({"code", "message", "request_id", "resource"})
"""The keys of a Type-Zero error document."""


def same_error(status: int, body: Any, name: str, case: str) -> None:
    """Assert that an error answer (``status``, JSON ``body``) is the registered error
    response ``transfer.<name>`` (``case``): status, ``code`` and the Type-Zero keys."""
    expected = fixture_json(name, case)
    assert status == fixture_status(name, case), (name, case, status, body)
    assert body["code"] == expected["code"], (name, case, body)
    assert set(body) == set(expected) == TYPE_ZERO
