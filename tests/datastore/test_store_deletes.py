"""The server's object-store deletes: ``Content-MD5`` for every store, per-key accounting."""

from __future__ import annotations

from typing import Any

import pytest

from provena_like.server.datastore import storage
from provena_like.testing.server_thread import ServerThread

pytestmark = pytest.mark.anyio


async def test_server_delete_sends_content_md5(server: ServerThread) -> None:
    """MinIO-family stores refuse ``DeleteObjects`` without ``Content-MD5``; the server sends it."""
    sent: list[dict[str, str]] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(dict(request.headers))

    keys = ["test-store-deletes/a", "test-store-deletes/b"]
    async with storage.open_object_store(server.settings.s3) as store:
        for key in keys:
            await storage.put_object(store, key, b"x")
        store.s3.meta.events.register("before-send.s3.DeleteObjects", capture)
        await storage.delete_objects(store, keys)
        for key in keys:
            assert await storage.head_object(store, key) is None
    assert sent and all("Content-MD5" in h for h in sent)
