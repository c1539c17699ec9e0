"""Benchmark: patching 1,000 small registered files in two repositories vs. putting them there.

One ``LocalStack`` (reference server and SeaweedFS, on loopback) in a process of its own, as
deployed (``--in-process`` runs it in this process instead). Two
repositories: an S3 one in the server's bucket (the researcher's lab has data-write on it)
and a POSIX one in a temp directory. Workload: 1,000 files of 1-16 KiB (random sizes and
bytes) in one session, 5 dataset types.

* **first**: what it takes to get the files registered and stored the first time —
  ``pv.registration.register_files`` with a file record in each repository (one atomic
  request per repository), and every file stored in both repositories with one ``put_many``
  per repository, the two side by side (S3: one engine batch, 16 requests in flight; POSIX:
  small files several to a worker-thread hop), the batched calls the Patcher stages with
  (``--first put``: one ``put`` per file, 16 at once, the reference of earlier figures);
* **patch**: every file rewritten with new bytes, then ``pv.patcher.patch_files`` of all of
  them: plan (match, hash), stage in both repositories, read back each staged object and
  hash it, one commit, delete the old objects (16 objects or batches at once:
  ``--concurrency``).

Prints both times, the ratio (target: patch <= 1.5x first), each step's CPU time in the
client, the server and SeaweedFS (read from ``/proc``: Linux only, ``nan`` elsewhere) and
their sum for both sides (which moves much less with the machine's load than wall times),
and the peak RSS of the client and of the server. Not a test: the numbers depend on the
machine's load.

    uv run python benchmarks/patcher.py
    uv run python benchmarks/patcher.py --files 200
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import anyio

from provena_like import ProvenaClient, ProvenaConfig
from provena_like.modules.patcher import Patcher
from provena_like.repositories import RepositoryResolver, path_from_dataset
from provena_like.testing import LocalStack
from provena_like.testing.registration import seed_registration, seed_repositories

KiB = 1024
OBJECTS = ("trials", "wheel", "camera", "licks", "spikes")
EXT = ".npy"


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


Phases = dict[str, tuple[float, float, float, float]]
"""Name -> wall time, this process's CPU time, the server's, SeaweedFS's (seconds)."""

OthersCpu = Callable[[], Awaitable[tuple[float, float]]]
"""The CPU time so far of the server's process (0 when it is this one) and of SeaweedFS's."""


def process_cpu(pid: int | None) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``; nan elsewhere)."""
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def measured(phases: Phases, name: str, others_cpu: OthersCpu) -> AsyncIterator[None]:
    """Record the block's wall time and its CPU time here, in the server and in SeaweedFS."""
    wall, cpu = time.perf_counter(), time.process_time()
    server, store = await others_cpu()
    try:
        yield
    finally:
        server_after, store_after = await others_cpu()
        phases[name] = (
            time.perf_counter() - wall,
            time.process_time() - cpu,
            server_after - server,
            store_after - store,
        )


class TimedPatcher(Patcher):
    """The Patcher, with each step's wall time and this process's CPU time recorded."""

    phases: Phases
    others_cpu: OthersCpu

    def _timed(self, name: str, step: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        async def run(*args: Any, **kwargs: Any) -> Any:
            async with measured(self.phases, name, self.others_cpu):
                return await step(*args, **kwargs)

        return run

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.phases = {}
        self._plan = self._timed("plan", self._plan)  # type: ignore[method-assign]
        self._stage = self._timed("stage", self._stage)  # type: ignore[method-assign]
        self._verify = self._timed("verify", self._verify)  # type: ignore[method-assign]
        self._commit = self._timed("commit", self._commit)  # type: ignore[method-assign]
        self._clean = self._timed("clean up", self._clean)  # type: ignore[method-assign]


def write_files(session: Path, count: int, rng: random.Random) -> list[Path]:
    """``count`` files of 1-16 KiB, one of 5 dataset types each, in collections of 5."""
    files: list[Path] = []
    for i in range(count):
        path = session / "alf" / f"c{i // len(OBJECTS):04d}" / f"_ibl_{OBJECTS[i % 5]}.table{EXT}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(rng.randint(1 * KiB, 16 * KiB)))
        files.append(path)
    return files


async def seeded(stack: LocalStack) -> dict[str, str]:
    """Seed the stack; the researcher's config and the two repositories' handles."""
    await seed_registration(
        stack,
        lab="benchlab",
        subject="bench001",
        dataset_types=[(f"{o}.table", f"*{o}.table*") for o in OBJECTS],
        data_format=("npy", EXT),
    )
    s3, posix = await seed_repositories(stack, "benchlab_members")
    async with stack.client() as pv:
        config = pv.config
    return {
        "base_url": config.base_url,
        "token_dir": str(config.token_dir),
        "s3": s3,
        "posix": posix,
    }


def serve_stack(conn: Connection) -> None:
    """In a child process: run a seeded stack, send what the client needs, wait for 'stop'."""

    async def serve() -> None:
        # the server owns this process, as `provena-like serve` does: its start-up objects
        # frozen out of the cyclic GC's sight (ServerSettings.gc_freeze)
        async with LocalStack(gc_freeze=True) as stack:
            conn.send(await seeded(stack))
            store = stack.s3.pid if stack.s3 is not None else None
            while (asked := await anyio.to_thread.run_sync(conn.recv)) != "stop":
                assert asked == "cpu"
                conn.send((time.process_time(), process_cpu(store)))
        conn.send(peak_rss_mib())

    anyio.run(serve)


@asynccontextmanager
async def stack_values(
    in_process: bool, rss: dict[str, float]
) -> AsyncIterator[tuple[dict[str, str], OthersCpu]]:
    """The seeded stack's values and how to ask the server's and SeaweedFS's CPU time.

    The stack runs here (the server's CPU time is then this process's: 0 is reported) or
    (as deployed) in a child process.
    """
    if in_process:
        async with LocalStack() as stack:
            store = stack.s3.pid if stack.s3 is not None else None

            async def store_cpu() -> tuple[float, float]:
                return 0.0, process_cpu(store)

            yield await seeded(stack), store_cpu
        return
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=serve_stack, args=(child,))
    process.start()
    try:
        values = await anyio.to_thread.run_sync(parent.recv)

        async def others_cpu() -> tuple[float, float]:
            parent.send("cpu")
            cpu: tuple[float, float] = await anyio.to_thread.run_sync(parent.recv)
            return cpu

        yield values, others_cpu
        parent.send("stop")
        rss["server"] = await anyio.to_thread.run_sync(parent.recv)
    finally:
        process.join(timeout=60)
        if process.is_alive():
            process.kill()


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    rss: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        mount = Path(tmp) / "lab-server"
        mount.mkdir()
        async with stack_values(args.in_process, rss) as (values, others_cpu):
            s3, posix = values["s3"], values["posix"]
            config = ProvenaConfig(base_url=values["base_url"], token_dir=values["token_dir"])
            async with ProvenaClient(config) as pv:
                first_s, patch_s, count, first, phases = await workload(
                    pv, s3, posix, mount, Path(tmp), args, rng, others_cpu
                )

    server = "server CPU" if not args.in_process else "(server in the client)"

    def show(steps: Phases) -> None:
        for name, (wall, cpu, server_s, store_s) in steps.items():
            print(
                f"  {name:<9}: {wall:6.2f} s wall, {cpu:6.2f} s client CPU, "
                f"{server_s:6.2f} s {server}, {store_s:6.2f} s SeaweedFS CPU"
            )

    def cpu_of(steps: Phases) -> float:
        return sum(cpu + server_s + store_s for _, cpu, server_s, store_s in steps.values())

    print(f"first (register + put)  : {first_s:7.2f} s  {first_s / count * 1e3:7.2f} ms/file")
    show(first)
    print(f"patch (all five steps)  : {patch_s:7.2f} s  {patch_s / count * 1e3:7.2f} ms/file")
    show(phases)
    print(f"ratio patch / first     : {patch_s / first_s:7.2f}x  (target <= 1.5x)")
    first_cpu, patch_cpu = cpu_of(first), cpu_of(phases)
    print(
        f"CPU, all processes      : first {first_cpu:.2f} s, patch {patch_cpu:.2f} s, "
        f"ratio {patch_cpu / first_cpu:.2f}x"
    )
    if args.in_process:
        print(
            f"peak RSS                : {peak_rss_mib():7.1f} MiB (this process, server included)"
        )
    else:
        print(
            f"peak RSS                : {peak_rss_mib():7.1f} MiB client, "
            f"{rss.get('server', float('nan')):.1f} MiB server (its own process)"
        )


async def workload(
    pv: ProvenaClient,
    s3: str,
    posix: str,
    mount: Path,
    tmp: Path,
    args: argparse.Namespace,
    rng: random.Random,
    others_cpu: OthersCpu,
) -> tuple[float, float, int, Phases, Phases]:
    """Register and put the files (timed), rewrite them, patch them (timed)."""
    pv.registration.cache_dir = tmp / "cache"
    patcher = TimedPatcher(
        pv.registry_client,
        pv.registration,
        local_roots={posix: mount},
        journal_dir=tmp / "journals",
        concurrency=args.concurrency,
    )
    patcher.others_cpu = others_cpu
    created = await pv.registration.create_session("bench001", root=tmp / "data")
    assert created.path is not None
    files = write_files(created.path, args.files, rng)
    size = sum(f.stat().st_size for f in files)
    print(f"{len(files)} files, {size / 2**20:.1f} MiB, 2 repositories (S3 + POSIX)")
    resolver = RepositoryResolver(pv.registry_client, local_roots={posix: mount})
    async with await resolver.open([s3, posix], access="write") as repos:
        first: Phases = {}
        t = time.perf_counter()
        async with measured(first, "register", others_cpu):
            for handle in (posix, s3):
                result = await pv.registration.register_files(files, repository=handle)
                if result.failed or result.skipped:
                    raise SystemExit(f"registration failed: {result.files[0]}")
            registered = {
                d.rel_path: d
                async for d in pv.registry_client.iter_registered_datasets(
                    session=created.item.id, page_size=1000
                )
            }
            datasets = [registered[str(f.relative_to(created.path))] for f in files]

        limiter = anyio.CapacityLimiter(args.concurrency)  # --first put: both repositories'

        async def put(handle: str) -> None:
            pairs = [
                (f, path_from_dataset(d, handle)) for f, d in zip(files, datasets, strict=True)
            ]
            if args.first == "put_many":
                await repos[handle].put_many(pairs)
                return

            async def one(local: Path, path: str) -> None:
                async with limiter:
                    await repos[handle].put(local, path)

            async with anyio.create_task_group() as each_file:
                for local, path in pairs:
                    each_file.start_soon(one, local, path)

        async with measured(first, "put", others_cpu), anyio.create_task_group() as tg:
            for handle in (s3, posix):
                tg.start_soon(put, handle)
        first_s = time.perf_counter() - t

        for f in files:
            f.write_bytes(os.urandom(rng.randint(1 * KiB, 16 * KiB)))
        t = time.perf_counter()
        outcome = await patcher.patch_files(files)
        patch_s = time.perf_counter() - t
        if outcome.step != "done" or len(outcome.plan.files) != len(files):
            raise SystemExit(f"the patch did not complete: {outcome.step}")
        left = [o.path async for o in repos[s3].list()]
        assert len(left) == len(files), "old objects were left behind"
    return first_s, patch_s, len(files), first, patcher.phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--concurrency", type=int, default=16, help="the Patcher's objects in flight at once"
    )
    parser.add_argument(
        "--first",
        choices=("put_many", "put"),
        default="put_many",
        help="how the first upload stores the files: one put_many per repository (default), "
        "or one put per file, --concurrency at once (the reference of earlier figures)",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="run the server in this process (shared GC)"
    )
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
