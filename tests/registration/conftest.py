"""Fixtures of the registration tests (``new_user`` and ``client`` come from ``tests.support``).

The tests run on SQLite and on PostgreSQL (see :mod:`tests.support.databases`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like.storage import cache
from provena_like.testing.localstack import LocalStack
from tests.support.registration_helpers import (
    Lab,
    Vocabulary,
    make_lab,
    make_subject,
    make_vocabulary,
)
from tests.support.registration_sdk import SdkVocabulary, make_sdk_vocabulary
from tests.support.users import User


@pytest.fixture
def client_service() -> str:
    return "registry"


@pytest.fixture
async def lab(client: httpx.AsyncClient, new_user: Callable[..., User]) -> Lab:
    """A new lab, its group and a member."""
    return await make_lab(client, new_user)


@pytest.fixture
def registry_admin(new_user: Callable[..., User]) -> User:
    """A registry admin (system role ``admin``): writes the shared vocabulary."""
    return new_user("regadmin", system_roles=("admin",))


@pytest.fixture
async def vocabulary(client: httpx.AsyncClient, registry_admin: User) -> Vocabulary:
    """Dataset types, a data format, a repository and tags no other test uses."""
    return await make_vocabulary(client, registry_admin)


@pytest.fixture
def connect(localstack: LocalStack) -> Callable[[User], ProvenaClient]:
    """An SDK client signed in as a given user (use it as an async context manager)."""

    def make(user: User) -> ProvenaClient:
        return ProvenaClient(localstack.config(access_token=user.token))

    return make


@pytest.fixture
async def pv(connect: Callable[[User], ProvenaClient], lab: Lab) -> AsyncIterator[ProvenaClient]:
    """An SDK client signed in as the lab's member."""
    async with connect(lab.member) as client:
        yield client


@pytest.fixture
async def admin_pv(
    connect: Callable[[User], ProvenaClient], registry_admin: User
) -> AsyncIterator[ProvenaClient]:
    """An SDK client signed in as the registry admin."""
    async with connect(registry_admin) as client:
        yield client


@pytest.fixture
def lab_pv(pv: ProvenaClient, tmp_path: Path) -> ProvenaClient:
    """``pv`` (the lab's member) with a hash cache of its own."""
    pv.registration.cache_dir = tmp_path / "cache"
    return pv


@pytest.fixture
async def vocab(admin_pv: ProvenaClient) -> SdkVocabulary:
    """Dataset types matched by pattern and a data format, readable by everyone signed in."""
    return await make_sdk_vocabulary(admin_pv)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files read by the hash cache's hashing (``hash_file`` of the storage engine)."""
    read: list[Path] = []
    real = cache.hash_file

    def counting(path: Path, **kwargs: Any) -> Any:
        read.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr(cache, "hash_file", counting)
    return read


@pytest.fixture
async def session_dir(
    client: httpx.AsyncClient, lab_pv: ProvenaClient, lab: Lab, tmp_path: Path
) -> Path:
    """A new session (of a new subject) of ``lab`` on 2026-12-06, and its local folder."""
    subject = await make_subject(client, lab)
    created = await lab_pv.registration.create_session(
        subject["record"]["nickname"], date="2026-12-06", root=tmp_path / "data"
    )
    assert created.path is not None
    return created.path
