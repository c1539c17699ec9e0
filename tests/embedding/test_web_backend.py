"""The FastAPI recipe of ``docs/guides/web-backends.md``, run as written against the real stack.

Two users, 20 concurrent requests each through one app (one shared ``ProvenaClient``, a view
per request): each sees only their own identity, their own dataset and their own S3 keys;
the other's private dataset is the server's 403, never keys left in a cache.
"""

from __future__ import annotations

import os
import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from provena_like.testing.localstack import LocalStack
from tests.embedding.conftest import Owner

pytestmark = pytest.mark.anyio

GUIDE = Path(__file__).parents[2] / "docs" / "guides" / "web-backends.md"
REQUESTS_PER_USER = 20


def recipe() -> types.ModuleType:
    """The guide's app: its ```python block that builds a FastAPI app, as a module."""
    blocks = re.findall(r"^```python\n(.*?)^```$", GUIDE.read_text(), re.M | re.S)
    (code,) = [block for block in blocks if "FastAPI(" in block]
    module = types.ModuleType("web_backend_recipe")
    exec(compile(code, str(GUIDE), "exec"), module.__dict__)  # the guide's own code
    return module


@pytest.fixture
def backend_env(
    localstack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """What the recipe's ``ProvenaClient.from_env()`` reads: the stack's URL, no sign-in."""
    for name in [n for n in os.environ if n.startswith("PROVENA_")]:
        monkeypatch.delenv(name)
    (tmp_path / "config.toml").write_text("")
    monkeypatch.setenv("PROVENA_CONFIG_FILE", str(tmp_path / "config.toml"))
    monkeypatch.setenv("PROVENA_BASE_URL", localstack.url)
    monkeypatch.setenv("PROVENA_TOKEN_DIR", str(tmp_path / "tokens"))
    yield


async def test_two_users_in_parallel_never_see_each_others_credentials_or_items(
    backend_env: None, alice: Owner, bob: Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = recipe().app
    calls: list[tuple[Owner, str]] = []
    for _ in range(REQUESTS_PER_USER):
        for me, other in ((alice, bob), (bob, alice)):
            calls += [
                (me, "/me"),
                (me, f"/datasets/{me.dataset_id}/read-access"),
                (me, f"/datasets/{other.dataset_id}/read-access"),
            ]
    answers: list[tuple[Owner, str, httpx.Response]] = []
    made: list[object] = []

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://backend") as http:
            original = httpx.AsyncClient.__init__

            def record(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
                original(self, *args, **kwargs)
                made.append(self)

            monkeypatch.setattr(httpx.AsyncClient, "__init__", record)

            async def one(me: Owner, path: str) -> None:
                headers = {"Authorization": f"Bearer {me.user.token}"}
                answers.append((me, path, await http.get(path, headers=headers)))

            async with anyio.create_task_group() as tg:
                for me, path in calls:
                    tg.start_soon(one, me, path)
            monkeypatch.undo()

            refused = await http.get("/me", headers={"Authorization": "Basic abc"})
            assert refused.status_code == 401

    assert made == []  # no HTTP client (no pool) per request: every view shares the app's
    assert len(answers) == len(calls)
    keys: dict[str, set[str]] = {alice.user.name: set(), bob.user.name: set()}
    for me, path, r in answers:
        other = bob if me is alice else alice
        if path == "/me":
            assert r.status_code == 200 and r.json() == {"username": me.user.name}
        elif me.dataset_id in path:
            assert r.status_code == 200, r.text
            keys[me.user.name].add(r.json()["access_key_id"])
        else:
            assert other.dataset_id in path
            assert r.status_code == 403, r.text
            assert "access_key_id" not in r.json()
    # each user's 20 requests shared one set of keys (cached for them), never the other's
    assert len(keys[alice.user.name]) == len(keys[bob.user.name]) == 1
    assert keys[alice.user.name].isdisjoint(keys[bob.user.name])
    bob_text = " ".join(r.text for me, _, r in answers if me is bob)
    alice_text = " ".join(r.text for me, _, r in answers if me is alice)
    assert next(iter(keys[alice.user.name])) not in bob_text
    assert next(iter(keys[bob.user.name])) not in alice_text
