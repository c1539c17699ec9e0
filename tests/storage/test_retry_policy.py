"""One retry policy for both S3 request paths, seen on the wire through a fault proxy.

Small whole-object PUT/GET go through the direct path (aiohttp + our SigV4 signer);
multipart uploads and streamed GETs through aiobotocore. The proxy answers ``503 SlowDown``
to chosen requests; every path must make the same attempts and sleep the same backoff,
both taken from the one :class:`S3RetryPolicy` given to the engine (aiobotocore's own
retries are off: otherwise a persistent error would be tried 4 × 4 times).
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path

import pytest
from aiohttp import web

from provena_like import UsageError
from provena_like.storage import S3Credentials, S3RetryPolicy, TransferEngine
from tests.support.storage_helpers import FaultProxy

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
BACKOFF = 0.01


class Recorder:
    """The policy's sleep: records each wait (and waits next to nothing)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _policy(recorder: Recorder, attempts: int = 4) -> S3RetryPolicy:
    return S3RetryPolicy(
        attempts=attempts,
        backoff_initial=BACKOFF,
        backoff_max=4 * BACKOFF,
        sleep=recorder,
        jitter=lambda ceiling: ceiling,  # deterministic: wait the ceiling
    )


def _request_id(request: web.Request) -> tuple[str, str, str]:
    """(method, key name, part number or "") of a request through the proxy."""
    return request.method, request.path.rsplit("/", 1)[-1], request.query.get("partNumber", "")


class Faults:
    """Answer ``503 SlowDown`` to the first ``times`` matching requests (or all: ``None``)."""

    def __init__(self) -> None:
        self.attempts: Counter[tuple[str, str, str]] = Counter()
        self.plan: dict[tuple[str, str, str], int | None] = {}

    def __call__(self, request: web.Request) -> str | None:
        rid = _request_id(request)
        self.attempts[rid] += 1
        if rid not in self.plan:
            return None
        times = self.plan[rid]
        if times is None or self.attempts[rid] <= times:
            return "503 SlowDown"
        return None


def _via(creds: S3Credentials, proxy: FaultProxy) -> S3Credentials:
    return dataclasses.replace(creds, endpoint_url=proxy.url)


@pytest.fixture
def faults(proxy: FaultProxy) -> Faults:
    instance = Faults()
    proxy.fault = instance
    return instance


async def test_transient_503s_get_the_same_attempts_and_backoff_on_both_paths(
    tmp_path: Path, creds: S3Credentials, proxy: FaultProxy, faults: Faults
) -> None:
    small, big = os.urandom(4096), os.urandom(6 * MiB)  # big: 2 parts of 5 MiB
    src = tmp_path / "src"
    src.mkdir()
    (src / "small.bin").write_bytes(small)
    (src / "big.bin").write_bytes(big)
    recorder = Recorder()
    expected_waits = [BACKOFF, 2 * BACKOFF]  # after attempts 1 and 2; attempt 3 succeeds
    cases = {
        "direct PUT": ("PUT", "small.bin", ""),
        "direct UploadPart": ("PUT", "big.bin", "1"),
        "direct GET": ("GET", "small.bin", ""),
        "aiobotocore streamed GET": ("GET", "big.bin", ""),
    }
    seen: dict[str, tuple[int, list[float]]] = {}
    async with TransferEngine(
        _via(creds, proxy),
        multipart_threshold=5 * MiB,
        part_size=5 * MiB,
        retry_policy=_policy(recorder),
    ) as engine:
        for name, rid in cases.items():
            faults.plan = {rid: 2}
            recorder.waits.clear()
            method, key, _ = rid
            if method == "PUT":
                result = await engine.upload([(src / key, key)])
            else:
                # a known small size: one whole GET (direct); unknown: streamed (aiobotocore)
                size = len(small) if key == "small.bin" else None
                result = await engine.download([(key, key, None, size)], tmp_path / "dest")
            assert not result.failed, [f.reason for f in result.failed]
            seen[name] = (faults.attempts[rid], list(recorder.waits))
    assert seen == {name: (3, expected_waits) for name in cases}
    assert (tmp_path / "dest" / "small.bin").read_bytes() == small
    assert (tmp_path / "dest" / "big.bin").read_bytes() == big


async def test_a_persistent_503_gives_up_after_the_policys_attempts_on_both_paths(
    tmp_path: Path, creds: S3Credentials, proxy: FaultProxy, faults: Faults
) -> None:
    (tmp_path / "small.bin").write_bytes(os.urandom(4096))
    (tmp_path / "big.bin").write_bytes(os.urandom(6 * MiB))
    recorder = Recorder()
    cases = {
        "direct PUT": ("PUT", "small.bin", ""),
        "direct UploadPart": ("PUT", "big.bin", "2"),
    }
    outcome: dict[str, tuple[int, list[float], str]] = {}
    async with TransferEngine(
        _via(creds, proxy),
        multipart_threshold=5 * MiB,
        part_size=5 * MiB,
        retry_policy=_policy(recorder, attempts=3),
    ) as engine:
        for name, rid in cases.items():
            faults.plan = {rid: None}
            recorder.waits.clear()
            key = rid[1]
            result = await engine.upload([(tmp_path / key, key)])
            (failed,) = result.failed
            outcome[name] = (faults.attempts[rid], list(recorder.waits), failed.reason or "")
    for name, (attempts, waits, reason) in outcome.items():
        assert (attempts, waits) == (3, [BACKOFF, 2 * BACKOFF]), name
        assert reason.startswith("SlowDown (HTTP 503)"), (name, reason)


def test_the_policy_validates_its_numbers() -> None:
    with pytest.raises(UsageError, match="at least 1"):
        S3RetryPolicy(attempts=0)
    with pytest.raises(UsageError, match="negative"):
        S3RetryPolicy(backoff_initial=-1)
