"""Many tasks at once: calls run in worker threads, each with its own globus-sdk client."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import anyio
import globus_sdk
import pytest
import responses

from provena_like import UsageError
from provena_like.clients.transfer import TransferClient
from tests.clients_transfer.conftest import LAB
from tests.support.globus_responses import GLOBUS_TRANSFER, file_doc

pytestmark = pytest.mark.anyio


class SlowStat:
    """Answers ``operation_stat`` after ``delay`` s, counting the requests in flight at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        responses.add_callback(
            responses.GET,
            f"{GLOBUS_TRANSFER}/v0.10/operation/endpoint/{LAB}/stat",
            callback=self,
        )

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= 1
        return 200, {}, json.dumps(file_doc("f"))


async def test_concurrent_calls_never_share_an_sdk_client(globus_mock: object) -> None:
    del globus_mock
    server = SlowStat(0.02)
    used: list[tuple[int, int]] = []  # (thread, SDK client) of every call
    tc = TransferClient(max_concurrency=4)
    original = tc._thread_client

    def spy(authorizer: Any) -> globus_sdk.TransferClient:
        client = original(authorizer)
        with server.lock:
            used.append((threading.get_ident(), id(client)))
        return client

    tc._thread_client = spy  # type: ignore[method-assign]
    async with tc:
        async with anyio.create_task_group() as tg:
            for i in range(32):
                tg.start_soon(tc.stat, LAB, f"/f{i}")
        clients = dict(tc._clients)
    assert len(used) == 32
    assert 1 <= server.peak <= 4  # the limiter
    client_of_thread: dict[int, int] = {}
    thread_of_client: dict[int, int] = {}
    for thread, client in used:
        assert client_of_thread.setdefault(thread, client) == client
        assert thread_of_client.setdefault(client, thread) == thread
    assert set(client_of_thread) == set(clients)
    assert {id(c) for c in clients.values()} == set(thread_of_client)
    assert len({id(c.transport.session) for c in clients.values()}) == len(clients)
    assert tc._clients == {}  # closed by aclose
    with pytest.raises(UsageError, match="closed"):
        await tc.stat(LAB, "/f")


async def test_a_cancelled_call_keeps_its_slot_until_its_thread_is_done(
    globus_mock: object,
) -> None:
    """requests can't be interrupted: a cancelled call holds the limiter until it returns,
    so the next call never runs beside it (the SDK client is never used twice at once)."""
    del globus_mock
    server = SlowStat(0.2)
    results: list[str] = []
    async with TransferClient(max_concurrency=1) as tc:
        first_scope = anyio.CancelScope()

        async def first() -> None:
            with first_scope:
                await tc.stat(LAB, "/f")

        async def second() -> None:
            results.append((await tc.stat(LAB, "/g")).path)

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await anyio.sleep(0.05)  # its request is in flight
            first_scope.cancel()
            tg.start_soon(second)
    assert results == ["/g"]
    assert server.peak == 1
    assert len(responses.calls) == 2


async def test_a_reused_thread_ident_closes_the_dead_threads_client(globus_mock: object) -> None:
    """Thread idents are reused after a thread ends: its SDK client is closed, not leaked."""
    del globus_mock

    class Old:
        closed: list[str] = []

        class transport:  # noqa: N801
            @staticmethod
            def close() -> None:
                Old.closed.append("transport")

        def close(self) -> None:
            Old.closed.append("client")

    async with TransferClient() as tc:

        def in_a_new_thread() -> tuple[object, object]:
            # what a dead thread with this ident left behind
            tc._clients[threading.get_ident()] = Old()  # type: ignore[assignment]
            return tc._thread_client(None), tc._clients[threading.get_ident()]

        new, registered = await anyio.to_thread.run_sync(in_a_new_thread)
        assert new is registered and isinstance(new, globus_sdk.TransferClient)
        assert Old.closed == ["transport", "client"]
