"""The blocking client runs the getting-started flow in a plain script and inside a loop."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provena_like import UsageError
from provena_like.blocking import BlockingClient, BlockingIterator
from provena_like.modules.datastore import Datastore
from provena_like.testing.localstack import LocalStack
from tests.support.blocking_flow import getting_started, make_refs
from tests.support.l3_helpers import make_record
from tests.support.users import User

REPO = Path(__file__).resolve().parents[2]


def check(outcome: dict[str, Any], user: str) -> None:
    assert outcome["user"] == user
    assert outcome["uploaded_ok"] == len(outcome["expected"]) == 13
    assert outcome["uploaded"].startswith("TransferResult: 13 ok, 0 failed")
    assert set(outcome["expected"]) <= set(outcome["listed"]) == set(outcome["walked"])
    assert outcome["hits"] == [outcome["dataset"]]
    assert outcome["mine"]
    assert outcome["downloaded_ok"] >= 13
    assert outcome["matches"] and outcome["verified"].startswith("VerifyResult: matches")
    assert outcome["same_bytes"]


def test_a_plain_script(
    localstack: LocalStack, new_user: Callable[..., User], tmp_path: Path
) -> None:
    user = new_user("script")
    env = {
        **os.environ,
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_ACCESS_TOKEN": user.token,
        "PROVENA_TOKEN_DIR": str(tmp_path / "tokens"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.blocking_flow", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    check(json.loads(done.stdout.strip().splitlines()[-1]), user.name)
    # the background loop thread ended with the client: nothing kept the script alive
    assert "Traceback" not in done.stderr


def test_inside_a_running_event_loop_as_in_jupyter(localstack: LocalStack, tmp_path: Path) -> None:
    pv = BlockingClient.wrap(localstack.client())  # the seeded researcher, signed in

    async def cell() -> dict[str, Any]:
        asyncio.get_running_loop()  # a loop runs here, as in a notebook cell
        return getting_started(pv, tmp_path)

    try:
        outcome = asyncio.run(cell())
        outcome_again = asyncio.run(cell())  # a second "cell", in another loop: still fine
    finally:
        pv.close()
    check(outcome, localstack.user.username)
    assert outcome_again["dataset"] != outcome["dataset"]
    assert pv.closed and pv.wrapped.is_closed
    with pytest.raises(UsageError, match="closed"):
        pv.auth_client.userinfo()


async def test_inside_an_anyio_test(localstack: LocalStack, new_user: Callable[..., User]) -> None:
    user = new_user("anyio")
    with BlockingClient(localstack.config(access_token=user.token)) as pv:
        assert pv.auth_client.userinfo().preferred_username == user.name
        view = pv.as_user(user.token)  # views run on the same private loop
        assert view.auth_client.userinfo().preferred_username == user.name


def test_the_facade_keeps_names_docs_and_signatures(localstack: LocalStack) -> None:
    with BlockingClient.wrap(localstack.client()) as pv:
        mint = pv.datastore.mint
        assert mint.__name__ == "mint" and mint.__doc__ == Datastore.mint.__doc__
        assert inspect.signature(mint) == inspect.signature(pv.wrapped.datastore.mint)
        assert "mint" in dir(pv.datastore)
        assert isinstance(pv.datastore.wrapped, Datastore)
        assert pv.config is pv.wrapped.config  # plain attributes as they are
        # iterators: stop early and close, or walk a paginator's pages
        with pv.registry_client.iter_items(page_size=1).pages() as pages:
            assert isinstance(pages, BlockingIterator)
            first = next(pages)
            assert len(first.items) <= 1


def test_an_iterator_stopped_early_is_ended_by_close(
    localstack: LocalStack, new_user: Callable[..., User], tmp_path: Path
) -> None:
    user = new_user("early")
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name)
    with BlockingClient(localstack.config(access_token=user.token)) as pv:
        ds = pv.datastore.mint(make_record(make_refs(pv)))
        assert len(ds.upload(tmp_path).ok) == 2
        files = ds.iter_files(page_size=1)
        assert next(files).path == "a.txt"  # then stopped, never closed
        generator = files._iterator  # type: ignore[attr-defined]
        assert generator.ag_frame is not None  # suspended, holding its listing
    assert generator.ag_frame is None  # ended when the client closed


def test_a_progress_callback_calling_the_client_is_refused(
    localstack: LocalStack, tmp_path: Path, new_user: Callable[..., User]
) -> None:
    user = new_user("callback")
    errors: list[BaseException] = []
    threads: set[str] = set()
    (tmp_path / "a.txt").write_text("a")
    with BlockingClient(localstack.config(access_token=user.token)) as pv:
        ds = pv.datastore.mint(make_record(make_refs(pv)))

        def progress(event: object) -> None:
            del event
            threads.add(threading.current_thread().name)
            try:
                pv.auth_client.userinfo()
            except UsageError as err:
                errors.append(err)

        result = ds.upload(tmp_path, progress=progress)
    assert len(result.ok) == 1
    assert threads == {"provena-like-blocking"}
    assert errors and "own event loop" in str(errors[0])


def test_a_client_left_open_is_closed_at_interpreter_exit(
    localstack: LocalStack, new_user: Callable[..., User], tmp_path: Path
) -> None:
    user = new_user("atexit")
    script = (
        "import atexit, sys\n"
        "# registered before the client exists, so it runs after the client's exit hook\n"
        "atexit.register(lambda: print('pool closed:', pv.wrapped.is_closed))\n"
        "from provena_like.blocking import BlockingClient\n"
        "url, token, tokens = sys.argv[1:]\n"
        "pv = BlockingClient(base_url=url, access_token=token, token_dir=tokens)\n"
        "print(pv.auth_client.userinfo().preferred_username)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, localstack.url, user.token] + [str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [user.name, "pool", "closed:", "True"]
    assert done.stderr == ""  # no unclosed socket or transport warned about
