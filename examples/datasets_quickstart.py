"""Datasets quick start: mint a dataset, upload a folder, find it, download it, verify it.

Runs anywhere, with nothing else started: it brings up its own ``LocalStack`` (the reference
server and a SeaweedFS object store on free loopback ports, in a temporary directory), signs
in the seeded ``researcher`` account and works as that user::

    uv run python examples/datasets_quickstart.py

Against a real server, replace the ``LocalStack`` block in ``main`` with
``async with ProvenaClient.from_env() as pv:`` and keep the rest.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio

from provena_like import ProvenaClient
from provena_like.modules import InteractiveDataset
from provena_like.storage import FileFinished, TransferEvent, TransferProgress, TransferResult
from provena_like.testing import LocalStack

T = TypeVar("T")
MiB = 1024 * 1024
TIMINGS: dict[str, float] = {}


async def timed(step: str, work: Callable[[], Awaitable[T]]) -> T:
    """Run one step and remember how long it took."""
    start = time.perf_counter()
    try:
        return await work()
    finally:
        TIMINGS[step] = time.perf_counter() - start


def dataset_record(org_id: str, person_id: str) -> dict[str, Any]:
    """A complete dataset record in the collection format (only the required parts, plus a few)."""
    not_needed = {"relevant": False, "obtained": False}
    return {
        "associations": {"organisation_id": org_id, "point_of_contact": person_id},
        "approvals": {
            "ethics_registration": not_needed,
            "ethics_access": not_needed,
            "indigenous_knowledge": not_needed,
            "export_controls": not_needed,
        },
        "dataset_info": {
            "name": "Outer reef temperatures 2023",
            "description": "Hourly sea temperature from loggers on the outer reef.",
            "access_info": {"reposited": True},  # the files live in this system's storage
            "publisher_id": org_id,
            "created_date": "2024-01-15",
            "published_date": "2024-06-30",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["reef", "sea temperature", "loggers"],
            "temporal_info": {"begin_date": "2023-01-01", "end_date": "2023-12-31"},
        },
    }


def write_sample(root: Path) -> dict[str, str]:
    """Write a small dataset folder (blocking: run it in a thread); return path → sha256."""
    rng = random.Random(42)
    digests: dict[str, str] = {}

    def put(relative: str, data: bytes) -> None:
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        digests[relative] = hashlib.sha256(data).hexdigest()

    put("README.md", b"# Outer reef temperatures\n\nHourly logger readings, 2023.\n")
    for site in range(3):
        for day in range(20):
            rows = "".join(f"{hour},{20 + rng.random() * 5:.3f}\n" for hour in range(24))
            put(f"raw/site-{site}/day-{day:03d}.csv", f"hour,temp_c\n{rows}".encode())
    # 20 MiB: above the 16 MiB multipart threshold, so it goes up in parts
    put("derived/grid.bin", rng.randbytes(20 * MiB))
    # scratch files the upload leaves out (exclude=["*.tmp"]); not part of the dataset
    (root / "scratch.tmp").write_bytes(b"work in progress")
    return digests


def verify(dest: Path, digests: dict[str, str]) -> list[str]:
    """Paths whose downloaded bytes differ from the originals (blocking: run it in a thread)."""
    return [
        relative
        for relative, sha256 in digests.items()
        if hashlib.sha256((dest / relative).read_bytes()).hexdigest() != sha256
    ]


class ProgressSummary:
    """A progress callback: a line at each quarter of the files, and every failure at once.

    The storage engine calls it on the event loop with typed events, so it must not block.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.quarters_shown = 0
        self.start = time.perf_counter()

    def __call__(self, event: TransferEvent) -> None:
        if isinstance(event, FileFinished) and not event.result.ok:
            result = event.result
            print(f"    {self.label}: {result.path} {result.status}: {result.reason}")
        elif isinstance(event, TransferProgress) and event.files_total:
            quarters = 4 * event.files_done // event.files_total
            if quarters > self.quarters_shown:
                self.quarters_shown = quarters
                of = f" of {size(event.bytes_total)}" if event.bytes_total is not None else ""
                print(
                    f"    {self.label}: {event.files_done}/{event.files_total} files, "
                    f"{size(event.bytes_done)}{of}, {time.perf_counter() - self.start:.2f} s"
                )


def size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n / 1024:.1f} KiB"


def summary(result: TransferResult, seconds: float) -> str:
    rate = result.bytes / MiB / seconds if seconds else 0.0
    return (
        f"{len(result.ok)} ok, {len(result.failed)} failed, {len(result.skipped)} skipped; "
        f"{size(result.bytes)} at {rate:.0f} MiB/s"
    )


async def datasets_tour(pv: ProvenaClient, workdir: Path) -> None:
    # 1. The registry items a dataset record refers to: an organisation and a person.
    org = await pv.registry_client.create_item(
        {"subtype": "organisation", "record": {"name": "Coastal Ecology Institute"}}
    )
    person = await pv.registry_client.create_item(
        {
            "subtype": "person",
            "record": {
                "first_name": "Ada",
                "last_name": "Ocean",
                "email": "ada@example.org",
                "organisation": org.id,
            },
        }
    )
    print(f"organisation {org.id}, person {person.id}")

    # 2. Check the record, then mint: a handle, a storage prefix and metadata.json, all or
    #    nothing. The idempotency key makes a retried mint (after a crash, say) replay the
    #    first result instead of minting a twin.
    record = dataset_record(org.id, person.id)
    check = await pv.datastore.validate(record)
    assert check.valid, check.errors
    ds: InteractiveDataset = await timed(
        "mint", lambda: pv.datastore.mint(record, idempotency_key="quickstart-reef-2023")
    )
    print(f"minted {ds.id}: {ds.dataset.display_name!r} at {ds.dataset.storage.s3_uri}")

    # 3. A sample folder (file I/O goes to a worker thread: never block the event loop).
    src = workdir / "sample"
    digests = await timed("write sample", lambda: anyio.to_thread.run_sync(write_sample, src))
    size = sum((src / p).stat().st_size for p in digests) / MiB
    print(f"sample folder: {len(digests)} files, {size:.1f} MiB (+ one *.tmp to leave out)")

    # 4. Upload the folder's contents: concurrent, each file hashed once while it is read,
    #    then registered in the dataset's manifest. Every file gets a result; nothing raises
    #    halfway through.
    print("uploading")
    start = time.perf_counter()
    up = await timed(
        "upload",
        lambda: ds.upload(src, exclude=["*.tmp"], progress=ProgressSummary("upload")),
    )
    print(f"  upload: {summary(up, time.perf_counter() - start)}")
    up.raise_for_failures()  # turn failed files into one exception, if that is what you want

    manifest = await ds.list_files()
    first = manifest[0]
    print(f"  manifest: {len(manifest)} files, e.g. {first.path} sha256 {first.sha256[:12]}…")

    # 5. Search: words are ANDed, "phrases" quoted, prefix* matches; best match first.
    hits = await timed(
        "search",
        lambda: _collect(pv.datastore.search('"outer reef" temperat*', max_items=5)),
    )
    for hit in hits:
        print(f"  hit {hit.item.id} score={hit.score:.3g} {hit.highlights.get('display_name')}")
    assert hits and hits[0].item.id == ds.id

    # 6. Download the whole dataset somewhere else. Each file is checked against the sha256
    #    in the manifest and appears in `dest` only once it matched (temp file + rename).
    dest = workdir / "copy"
    print("downloading")
    start = time.perf_counter()
    down = await timed("download", lambda: ds.download(dest, progress=ProgressSummary("download")))
    print(f"  download: {summary(down, time.perf_counter() - start)}")
    down.raise_for_failures()

    # 7. Belt and braces: compare every file with the original.
    bad = await timed("verify", lambda: anyio.to_thread.run_sync(verify, dest, digests))
    assert not bad, f"sha256 differs for {bad}"
    print(f"verified: all {len(digests)} sha256 checksums match the originals")


async def _collect(iterator: AsyncIterator[T]) -> list[T]:
    return [item async for item in iterator]


async def main() -> None:
    started = time.perf_counter()
    stack = LocalStack()  # the reference server + SeaweedFS, on free loopback ports
    await timed("start the local stack", stack.start)
    try:
        print(f"local stack running at {stack.url}")
        with tempfile.TemporaryDirectory(prefix="provena-datasets-") as tmp:
            async with stack.client() as pv:  # signed in as the seeded user "researcher"
                await datasets_tour(pv, Path(tmp))
    finally:
        await timed("stop the local stack", stack.stop)
    TIMINGS["total"] = time.perf_counter() - started

    print("\ntimings")
    for step, seconds in TIMINGS.items():
        print(f"  {step:<22} {seconds:7.2f} s")


if __name__ == "__main__":
    anyio.run(main)
