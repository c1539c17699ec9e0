"""An upload never raises halfway or loses its results while registering its files.

Against the real server and SeaweedFS. The API is reached through a fault-injecting HTTP
proxy (a real aiohttp server forwarding to the reference server byte for byte) that drops
the connection of chosen requests, and counts them. Each test checks what the caller gets
back per file, what the manifest holds, and how many registration calls were made.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import anyio
import pytest
from aiohttp import web

from provena_like import ProvenaClient
from provena_like._core.errors import APIConnectionError, Forbidden, NotFound, Unprocessable
from provena_like.modules import interactive
from provena_like.modules.interactive import NOT_REGISTERED, InteractiveDataset
from provena_like.storage import (
    FileFinished,
    FileStarted,
    TransferEvent,
    TransferProgress,
    UploadInterrupted,
)
from provena_like.testing.server_thread import ServerThread

pytestmark = pytest.mark.anyio

_APPROVALS = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


class ApiFaultProxy:
    """Forwards every request to the server; ``fault`` may drop one's connection instead."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.fault: Callable[[web.Request], bool] = lambda _request: False
        self.seen: Counter[tuple[str, str]] = Counter()
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._client = aiohttp.ClientSession(auto_decompress=False)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def registrations(self) -> int:
        """Registration calls that reached the proxy (dropped ones included)."""
        return sum(n for (m, p), n in self.seen.items() if m == "POST" and p.endswith("/files"))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen[(request.method, request.path)] += 1
        body = await request.read()
        if self.fault(request):
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)  # never reaches the client
        assert self._client is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._client.request(
            request.method,
            self.upstream + request.raw_path,
            headers=headers,
            data=body if body else None,
            allow_redirects=False,
            skip_auto_headers=("Content-Type", "User-Agent", "Accept", "Accept-Encoding"),
        ) as upstream:
            data = await upstream.read()
            passed = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=upstream.status, headers=passed, body=data)


def _is_registration(request: web.Request) -> bool:
    return request.method == "POST" and request.path.endswith("/files")


@pytest.fixture
async def proxy(server: ServerThread) -> AsyncIterator[ApiFaultProxy]:
    instance = ApiFaultProxy(server.url)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


def _client(url: str, token: str, **config: object) -> ProvenaClient:
    return ProvenaClient(base_url=url, access_token=token, **config)


async def _mint(pv: ProvenaClient, *, general: tuple[str, ...] = ()) -> InteractiveDataset:
    suffix = uuid.uuid4().hex[:6]
    org = await pv.registry_client.create_item(
        {"subtype": "organisation", "record": {"name": f"Upload lab {suffix}"}}
    )
    person = await pv.registry_client.create_item(
        {
            "subtype": "person",
            "record": {"first_name": "Ada", "last_name": "Ocean", "email": "ada@example.org"},
        }
    )
    record = {
        "associations": {"organisation_id": org.id, "point_of_contact": person.id},
        "approvals": {a: {"relevant": False, "obtained": False} for a in _APPROVALS},
        "dataset_info": {
            "name": f"Registration {suffix}",
            "description": "Files whose registration is attacked.",
            "access_info": {"reposited": True},
            "publisher_id": org.id,
            "created_date": "2024-01-01",
            "published_date": "2024-06-30",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["upload"],
        },
    }
    return await pv.datastore.mint(record, general=general)  # type: ignore[arg-type]


def _files(root: Path, count: int) -> set[str]:
    root.mkdir()
    names = {f"f{i:02d}.csv" for i in range(count)}
    for name in names:
        (root / name).write_text(f"{name}: {uuid.uuid4().hex}\n")
    return names


async def _manifest(ds: InteractiveDataset) -> set[str]:
    return {entry.path for entry in await ds.list_files()}


async def test_dropped_registration_calls_are_retried(
    tmp_path: Path, proxy: ApiFaultProxy, make_token: Callable[..., str]
) -> None:
    names = _files(tmp_path / "src", 4)
    dropped: list[str] = []

    def drop_twice(request: web.Request) -> bool:
        if _is_registration(request) and len(dropped) < 2:
            dropped.append(request.path)
            return True
        return False

    async with _client(proxy.url, make_token("reg-retry"), backoff_initial=0.05) as pv:
        ds = await _mint(pv)
        proxy.fault = drop_twice
        result = await ds.upload(tmp_path / "src")
        assert {f.path for f in result.ok} == names, [f.reason for f in result.failed]
        assert await _manifest(ds) == names
    assert len(dropped) == 2
    assert proxy.registrations() == 3  # one batch, retried twice under one idempotency key


async def test_unreachable_registration_is_reported_per_file_and_sync_up_finishes_it(
    tmp_path: Path, proxy: ApiFaultProxy, make_token: Callable[..., str]
) -> None:
    src = tmp_path / "src"
    names = _files(src, 4)
    async with _client(
        proxy.url, make_token("reg-down"), max_retries=1, backoff_initial=0.05
    ) as pv:
        ds = await _mint(pv)
        proxy.fault = _is_registration
        result = await ds.upload(src)  # returns: no exception halfway
        assert {f.path for f in result.failed} == names
        for f in result.failed:
            assert f.reason is not None and f.reason.startswith(NOT_REGISTERED), f.reason
            assert isinstance(f.error, APIConnectionError)
            assert f.sha256 is not None and f.size is not None
        assert await _manifest(ds) == set()

        proxy.fault = lambda _request: False
        events: list[TransferEvent] = []
        rerun = await ds.sync_up(src, progress=events.append)
        assert not [e for e in events if isinstance(e, FileStarted)]  # nothing sent again
        assert {f.path for f in rerun.skipped} == names, [(f.path, f.reason) for f in rerun]
        assert all((f.reason or "").startswith("unchanged") for f in rerun.skipped)
        assert await _manifest(ds) == names


async def test_a_403_at_registration_fails_every_file_with_one_call_per_batch(
    tmp_path: Path,
    server: ServerThread,
    proxy: ApiFaultProxy,
    make_token: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(interactive, "_REGISTER_BATCH", 2)
    src = tmp_path / "src"
    names = _files(src, 5)
    suffix = uuid.uuid4().hex[:6]
    owner_name = f"owner-{suffix}"
    async with (
        _client(server.url, make_token(owner_name)) as owner,
        _client(proxy.url, make_token(f"helper-{suffix}")) as helper,
    ):
        owned = await _mint(owner, general=("data-write",))
        ds = await helper.datastore.interactive(owned.id)
        revoked: list[bool] = []

        async def revoke_after_transfer(event: TransferEvent) -> None:
            # every file is in the store: access goes before the files are registered
            if isinstance(event, TransferProgress) and event.files_done == event.files_total:
                if not revoked:
                    await owner.registry_client.update_access(owned.id, {"owner": owner_name})
                    revoked.append(True)

        result = await ds.upload(src, progress=revoke_after_transfer)
        assert revoked
        assert {f.path for f in result.failed} == names
        for f in result.failed:
            assert f.reason is not None and f.reason.startswith(NOT_REGISTERED), f.reason
            assert isinstance(f.error, Forbidden | NotFound), f.error
        assert await _manifest(owned) == set()
    assert proxy.registrations() == 3  # batches of 2, 2 and 1; no file-by-file retries


async def test_a_422_fails_only_the_files_it_names(
    tmp_path: Path, proxy: ApiFaultProxy, make_token: Callable[..., str]
) -> None:
    src = tmp_path / "src"
    names = _files(src, 4)
    async with _client(proxy.url, make_token("reg-422")) as pv:
        ds = await _mint(pv)
        gone: list[str] = []

        async def delete_one_after_transfer(event: TransferEvent) -> None:
            if isinstance(event, TransferProgress) and event.files_done == event.files_total:
                if not gone:
                    victim = await ds.path("f01.csv", access="write")
                    await anyio.to_thread.run_sync(victim.unlink)
                    gone.append("f01.csv")

        result = await ds.upload(src, progress=delete_one_after_transfer)
        assert gone == ["f01.csv"]
        assert [f.path for f in result.failed] == ["f01.csv"]
        failed = result.failed[0]
        assert failed.reason is not None and failed.reason.startswith(NOT_REGISTERED)
        assert "no object 'f01.csv'" in failed.reason
        assert isinstance(failed.error, Unprocessable)
        assert {f.path for f in result.ok} == names - {"f01.csv"}
        assert await _manifest(ds) == names - {"f01.csv"}
    assert proxy.registrations() == 2  # the batch, then the batch without the file it named


async def test_a_cancelled_upload_registers_what_finished_and_a_rerun_sends_only_the_rest(
    tmp_path: Path, server: ServerThread, make_token: Callable[..., str]
) -> None:
    src = tmp_path / "src"
    names = _files(src, 8)
    async with _client(server.url, make_token("reg-cancel")) as pv:
        ds = await _mint(pv)
        finished: list[str] = []
        seen: list[TransferEvent] = []

        with anyio.CancelScope() as scope:

            async def cancel_after_three(event: TransferEvent) -> None:
                seen.append(event)
                if isinstance(event, FileFinished) and event.result.ok:
                    finished.append(event.result.path)
                    if len(finished) == 3:
                        scope.cancel()  # as Ctrl-C would

            await ds.upload(src, concurrency=1, progress=cancel_after_three)
        assert scope.cancelled_caught
        registered = await _manifest(ds)
        assert set(finished) <= registered
        assert registered < names
        # the caller hears, last, what was kept and registered (the CLI's exit message)
        assert isinstance(seen[-1], UploadInterrupted)
        assert seen[-1].files_finished == seen[-1].files_registered == len(registered)
        assert seen[-1].bytes_finished == sum((src / p).stat().st_size for p in registered)

        events: list[TransferEvent] = []
        rerun = await ds.sync_up(src, progress=events.append)
        sent = {e.path for e in events if isinstance(e, FileStarted)}
        assert sent and sent <= names - registered
        assert {f.path for f in rerun.ok} == sent
        # a file whose upload completed as the cancellation came is in the store but was
        # never reported: the re-run registers it without sending it again
        in_store_only = names - registered - sent
        assert {f.path for f in rerun.skipped if f.reason != "unchanged"} == in_store_only
        assert not rerun.failed
        assert await _manifest(ds) == names
