"""``TransferEngine.stat``, ``digest`` and ``delete``: one object at a time."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from provena_like import TransferError, UnsafePath
from provena_like.storage import S3Credentials, TransferEngine

pytestmark = pytest.mark.anyio


async def test_stat_digest_and_delete(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    data = b"reef" * 1000
    (tmp_path / "a.csv").write_bytes(data)
    async with TransferEngine(creds) as engine:
        (await engine.upload([(tmp_path / "a.csv", "raw/a.csv")])).raise_for_failures()
        head = await engine.stat("raw/a.csv")
        assert head is not None
        assert (head.key, head.size) == ("raw/a.csv", len(data))
        assert head.sha256 == hashlib.sha256(data).hexdigest()  # stored at upload
        assert head.etag and head.last_modified.year >= 2024

        # the stored bytes change behind the engine's back, their metadata doesn't
        admin.put_object(
            Bucket=creds.bucket,
            Key=prefix + "raw/a.csv",
            Body=b"rot" + data[3:],
            Metadata={"sha256": head.sha256},
        )
        assert (await engine.stat("raw/a.csv")).sha256 == head.sha256  # type: ignore[union-attr]
        read_back = await engine.digest("raw/a.csv")
        assert read_back.sha256 == hashlib.sha256(b"rot" + data[3:]).hexdigest()
        assert read_back.size == len(data)
        # one GET: its headers say what the HEAD said, the digests are of the stored bytes
        seen = await engine.read_back("raw/a.csv")
        assert seen is not None
        now = await engine.stat("raw/a.csv")
        assert now is not None
        assert seen[0] == now  # key, size, ETag, time, the sha256 stored at upload
        assert seen[1] == read_back

        results = await engine.delete(["raw/a.csv", "raw/never-there.csv"])
        assert [(r.path, r.status) for r in results] == [
            ("raw/a.csv", "ok"),
            ("raw/never-there.csv", "ok"),
        ]
        assert await engine.stat("raw/a.csv") is None
        with pytest.raises(TransferError):
            await engine.digest("raw/a.csv")
        assert await engine.read_back("raw/a.csv") is None
        for bad in ("../x", "/x", ""):
            with pytest.raises(UnsafePath):
                await engine.stat(bad)
            with pytest.raises(UnsafePath):
                await engine.digest(bad)
            with pytest.raises(UnsafePath):
                await engine.read_back(bad)
            with pytest.raises(UnsafePath):
                await engine.delete(["ok.csv", bad])


async def test_delete_sends_content_md5(tmp_path: Path, creds: S3Credentials) -> None:
    """MinIO-family stores refuse ``DeleteObjects`` without ``Content-MD5``; the engine sends it."""
    (tmp_path / "b.csv").write_bytes(b"x")
    sent: list[dict[str, str]] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(dict(request.headers))

    async with TransferEngine(creds) as engine:
        (await engine.upload([(tmp_path / "b.csv", "b.csv")])).raise_for_failures()
        client = engine._requests.client  # type: ignore[union-attr]
        client.meta.events.register("before-send.s3.DeleteObjects", capture)
        results = await engine.delete(["b.csv"])
    assert [(r.path, r.status) for r in results] == [("b.csv", "ok")]
    assert sent and all("Content-MD5" in h for h in sent)
