"""Benchmark: registering many small ALF files, against ONE's hashing path alone.

One ``LocalStack`` (reference server only, on loopback) in a process of its own, as deployed
(``--in-process`` runs it in this process instead, where the server's and the client's
objects share one garbage collector and its full collections). Workload (as in
the registration issue): 10,000 files of 1-64 KiB (random sizes and bytes) in 20 sessions,
each of one of 5 dataset types, registered with ``pv.registration.register_files``:

* **first**: end to end - ALF checks, dataset types and formats read once, sha256 of every
  file in worker threads, one atomic request per session (the server checks every file,
  then writes all of them);
* **again**: the same files, unchanged: hashes come from the hash cache (no file is read),
  and one small request per session carries a digest of its files instead of the files
  (``check-unchanged``): the server finds them exactly its registered revisions, runs
  every check of a registration on them and answers ``unchanged`` with their ids; no
  registration request is sent;
* **sha256 alone**: our hashing of every file, one after the other, for the breakdown;
* **ONE**: ``iblutil.io.hashfile.md5`` (what ONE's ``RegistrationClient.register_files``
  calls per file, before any request) on a random sample of the same files, one after the
  other - the hashing path alone, so the comparison flatters ONE.

Prints the per-file cost of each (ours: wall time / files; ONE: the median over the sample),
the CPU time of the client and of the server process for first and again (steadier than
wall time on a busy machine), the ratios and the peak RSS of the client and of the server.
Each timed phase starts after a full garbage collection in both processes, so that neither
pays for the garbage of the phase before it (without it, 'again', timed right after 'first',
pays a full collection of what 'first' left: about 0.25 s of client CPU); the collections
a phase causes itself are in its time.
Targets: first >= 100x faster per file than ONE's hashing path; again >= 5x faster than first.
Not a test: the numbers depend on the machine (client and server share its cores).

    uv run --group bench python benchmarks/registration.py            # the issue's workload
    uv run --group bench python benchmarks/registration.py --files 2000 --sample 100
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import anyio

from provena_like import ProvenaClient, ProvenaConfig
from provena_like.modules.registration import RegistrationResult
from provena_like.storage.hashing import CHUNK_SIZE, hash_file
from provena_like.testing import LocalStack
from provena_like.testing.registration import seed_registration

KiB = 1024
OBJECTS = ("trials", "wheel", "camera", "licks", "spikes")
EXT = ".npy"


def make_files(session_dirs: list[Path], count: int, seed: int) -> list[Path]:
    """``count`` files of 1-64 KiB spread over the sessions; one of 5 types each."""
    rng = random.Random(seed)
    files: list[Path] = []
    for i in range(count):
        session = session_dirs[i % len(session_dirs)]
        j = i // len(session_dirs)
        kind = OBJECTS[j % len(OBJECTS)]
        path = session / "alf" / f"c{j // len(OBJECTS):04d}" / f"_ibl_{kind}.table{EXT}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(rng.randint(1 * KiB, 64 * KiB)))
        files.append(path)
    return files


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def check(result: RegistrationResult, expected: str) -> None:
    statuses = {f.response.status for f in result if f.response is not None}
    if result.failed or result.skipped or statuses != {expected}:
        first = (result.failed or result.skipped or [None])[0]
        raise SystemExit(f"unexpected result: {statuses}, e.g. {first}")


async def seeded_stack(stack: LocalStack) -> None:
    """The lab, subject, dataset types and format the workload registers into."""
    await seed_registration(
        stack,
        lab="benchlab",
        subject="bench001",
        dataset_types=[(f"{o}.table", f"*{o}.table*") for o in OBJECTS],
        data_format=("npy", EXT),
    )


def serve_stack(conn: Connection) -> None:
    """In a child process: run a seeded stack, send its researcher's config, then answer
    "cpu" (and "collect", after a full garbage collection) with this process's CPU time
    until "stop" (answered with the peak RSS)."""

    async def serve() -> None:
        async with LocalStack(s3=False) as stack:
            await seeded_stack(stack)
            async with stack.client() as pv:
                config = pv.config
            conn.send({"base_url": config.base_url, "token_dir": str(config.token_dir)})
            while (asked := await anyio.to_thread.run_sync(conn.recv)) != "stop":
                if asked == "collect":
                    gc.collect()
                conn.send(time.process_time())
        conn.send(peak_rss_mib())

    anyio.run(serve)


class ServerCpu:
    """The server process's CPU time, asked over the pipe (0 when it runs in this process)."""

    def __init__(self, conn: Connection | None = None) -> None:
        self.conn = conn

    async def __call__(self, ask: str = "cpu") -> float:
        if self.conn is None:
            return 0.0
        conn = self.conn
        conn.send(ask)
        value: float = await anyio.to_thread.run_sync(conn.recv)
        return value

    async def start(self) -> tuple[float, float, float]:
        """Before a timed phase: a full garbage collection in both processes (neither
        pays for the garbage of what ran before), then (client CPU, server CPU, wall)."""
        gc.collect()
        server = await self("collect")
        return time.process_time(), server, time.perf_counter()


@asynccontextmanager
async def researcher(
    in_process: bool, rss: dict[str, float], server_cpu: ServerCpu
) -> AsyncIterator[ProvenaClient]:
    """A client of the seeded stack's researcher; the stack runs here or in a child process."""
    if in_process:
        async with LocalStack(s3=False) as stack:
            await seeded_stack(stack)
            async with stack.client() as pv:
                yield pv
        return
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=serve_stack, args=(child,))
    process.start()
    try:
        values: dict[str, Any] = await anyio.to_thread.run_sync(parent.recv)
        server_cpu.conn = parent
        async with ProvenaClient(ProvenaConfig(**values)) as pv:
            yield pv
        server_cpu.conn = None
        parent.send("stop")
        rss["server"] = await anyio.to_thread.run_sync(parent.recv)
    finally:
        process.join(timeout=60)
        if process.is_alive():
            process.kill()


async def run(args: argparse.Namespace) -> None:
    from iblutil.io import hashfile

    rss: dict[str, float] = {}
    server_cpu = ServerCpu()
    cpu: dict[str, tuple[float, float]] = {}  # (client, server) CPU seconds
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        async with researcher(args.in_process, rss, server_cpu) as pv:
            pv.registration.cache_dir = Path(tmp) / "cache"
            sessions = [
                await pv.registration.create_session("bench001", root=root)
                for _ in range(args.sessions)
            ]
            dirs = [s.path for s in sessions if s.path is not None]
            t = time.perf_counter()
            files = make_files(dirs, args.files, args.seed)
            size = sum(f.stat().st_size for f in files)
            print(
                f"{len(files)} files, {size / 2**20:.1f} MiB, {len(dirs)} sessions, "
                f"{len(OBJECTS)} dataset types (written in {time.perf_counter() - t:.1f} s)"
            )
            # the hash cache trusts a file modified more than 2 s ago (a racy write
            # could change it unnoticed within the same mtime); let the files age
            await anyio.sleep(2.5)

            c, sc, t = await server_cpu.start()
            first = await pv.registration.register_files(files)
            first_s = time.perf_counter() - t
            cpu["first"] = (time.process_time() - c, await server_cpu() - sc)
            check(first, "registered")

            c, sc, t = await server_cpu.start()
            again = await pv.registration.register_files(files)
            again_s = time.perf_counter() - t
            cpu["again"] = (time.process_time() - c, await server_cpu() - sc)
            check(again, "unchanged")

        # our hashing alone, for the breakdown: sha256 of every file, one thread, in order
        t = time.perf_counter()
        for path in files:
            hash_file(path, chunk_size=min(CHUNK_SIZE, path.stat().st_size + 1))
        hash_s = time.perf_counter() - t

        sample = random.Random(args.seed).sample(files, min(args.sample, len(files)))
        one_times: list[float] = []
        for path in sample:
            t = time.perf_counter()
            hashfile.md5(path)
            one_times.append(time.perf_counter() - t)

    per_first = first_s / len(files)
    per_again = again_s / len(files)
    one_median = statistics.median(one_times)
    print(f"first registration : {first_s:8.2f} s  {per_first * 1e3:8.3f} ms/file (end to end)")
    print(f"again, unchanged   : {again_s:8.2f} s  {per_again * 1e3:8.3f} ms/file (end to end)")
    print(
        f"ONE hashfile.md5   : median {one_median * 1e3:8.3f} ms/file over {len(sample)} files "
        f"(p10 {statistics.quantiles(one_times, n=10)[0] * 1e3:.3f}, "
        f"p90 {statistics.quantiles(one_times, n=10)[-1] * 1e3:.3f}; hashing alone)"
    )
    print(
        f"our sha256 alone   : {hash_s:8.2f} s  {hash_s / len(files) * 1e3:8.3f} ms/file "
        "(one thread; 'first' hashes in 4)"
    )
    for name in ("first", "again"):
        client, server = cpu[name]
        where = "" if args.in_process else f" client, {server:.2f} s server"
        print(f"CPU time, {name:<6}   : {client:8.2f} s{where}")
    print(f"ratio ONE / first  : {one_median / per_first:8.1f}x   (target >= 100x)")
    print(f"ratio first / again: {first_s / again_s:8.1f}x   (target >= 5x)")
    first_cpu, again_cpu = sum(cpu["first"]), sum(cpu["again"])
    print(f"  in CPU time      : {first_cpu / again_cpu:8.1f}x   (client and server)")
    if args.in_process:
        print(f"peak RSS           : {peak_rss_mib():8.1f} MiB (this process, server included)")
    else:
        print(
            f"peak RSS           : {peak_rss_mib():8.1f} MiB client, "
            f"{rss.get('server', float('nan')):.1f} MiB server (its own process)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--sample", type=int, default=300, help="files hashed the ONE way")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--in-process", action="store_true", help="run the server in this process (shared GC)"
    )
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
