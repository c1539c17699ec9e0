"""Benchmark: the reference server at scale - 100k items, 200 clients, pooled vs new clients.

Starts ``provena-like serve --json`` in a subprocess of its own (SeaweedFS included, as
deployed), on a throwaway data dir, passing ``--database-url`` (default: SQLite in the data
dir) and ``--workers N`` (when this version of ``serve`` has the option; otherwise it says so
and runs with 1). Then, from this process:

* **seed**: ``--items`` organisations owned by one user. ``--api-sample`` of them go through
  the API (``POST /registry/items``, ``--seed-concurrency`` at a time), the rest through the
  server's own database layer: :func:`provena_like.server.registry.service.create_item` on
  the server's engine, with the app's post-write hooks (search index, registration and
  transfer indexes), 1000 items per transaction. Both rates are printed; the database path
  is the one used for the bulk because it is the faster one by far (the API path pays a
  request, a transaction and an fsync per item).
* **list**: every item through the SDK's paginator (``iter_items().pages()``, 100 per page
  by default), keeping nothing: the client's RSS after 10k items and at the end (constant
  memory means the two are close), and the per-page round trip p50/p99 (on loopback, the
  server's time plus the client's parsing of one page).
* **pooled vs new client**: ``--compare-requests`` ``GET /items/{id}`` with one pooled
  :class:`~provena_like.ProvenaClient`, then each with a new client (a new connection per
  request: the pattern Provena's client uses), ``--compare-concurrency`` at a time.
  Target: pooled >= 3x.
* **mixed load**: ``--clients`` concurrent clients (one ProvenaClient each, no retries, so
  every failure counts) for ``--duration`` seconds, each looping over reads (get item, 50%),
  listings (first page, 10%), searches (20%) and writes (create item, 20%): throughput, p50
  and p99 per kind and overall, errors (target: 0).

Seeding 100k items takes minutes (the registry service's dozen statements per item, in
Python); ``--seeded DIR`` does it once and starts later runs of the same sizes and database
from a fresh copy of the seeded state (see :class:`Snapshot`). The machine's load average is
printed with every run, and the RSS of ``serve``, its API workers and SeaweedFS at the end.

Client and server share this machine's cores, so the figures are the machine's, not the
server's alone. Not a test (tests/benchmarks/test_scale_bench.py runs ``--quick`` once).

    uv run python benchmarks/scale.py                          # the issue's sizes, SQLite
    uv run python benchmarks/scale.py --workers 4 --database-url postgresql+asyncpg://...
    uv run python benchmarks/scale.py --seeded DIR --workers 4 # seed once, reuse after
    uv run python benchmarks/scale.py --quick                  # a few seconds
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from provena_like import ProvenaClient, ProvenaConfig

WORDS = (
    "alpha bravo cortex delta echo fjord granite harbour iris juniper kelp lumen meadow "
    "neuron orbit prairie quartz river summit tundra umber valley willow xenon yarrow zephyr"
).split()
USER = "scalebench"
KINDS = {"read": 50, "list": 10, "search": 20, "write": 20}


@dataclass
class Server:
    url: str
    issuer: str
    data_dir: Path
    database_url: str | None
    workers: int
    process: subprocess.Popen[bytes]


@dataclass
class Figures:
    lines: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.lines.append(text)
        print(text, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli() -> list[str]:
    script = Path(sys.executable).parent / "provena-like"
    return [str(script)] if script.exists() else [sys.executable, "-m", "provena_like.cli._entry"]


def serve_supports_workers() -> bool:
    out = subprocess.run([*cli(), "serve", "--help"], capture_output=True, text=True, check=True)
    return "--workers" in out.stdout


def rss_mib(pid: int | str = "self") -> float:
    """The current (not peak) resident set size of a process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # no /proc: the peak
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def children(pid: int) -> list[int]:
    """The direct children of a process (Linux ``/proc``; none elsewhere)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in task.read_text().split()]
    return found


def server_rss(pid: int) -> str:
    """The RSS of ``serve`` and of its descendants, by kind: API workers, SeaweedFS, others."""
    kinds: dict[str, list[float]] = defaultdict(list)
    todo = children(pid)
    while todo:
        child = todo.pop()
        todo += children(child)
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"weed" in cmdline:
            kind = "SeaweedFS"
        elif b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            kind = "API workers"
        else:
            kind = "others"
        kinds[kind].append(rss_mib(child))
    parts = [f"{rss_mib(pid):.1f} MiB serve process"]
    parts += [
        f"{sum(kinds[kind]):.1f} MiB {kind} ({len(kinds[kind])})"
        for kind in ("API workers", "SeaweedFS", "others")
        if kinds[kind]
    ]
    return ", ".join(parts)


def load() -> str:
    """This machine's load average (1, 5, 15 min), as ``uptime`` shows it."""
    try:
        return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average unknown"


def quantiles(values: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    if len(values) < 2:
        v = values[0] * 1e3 if values else float("nan")
        return v, v
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] * 1e3, cuts[98] * 1e3


@contextlib.contextmanager
def started_server(
    data_dir: Path, database_url: str | None, workers: int, say: Figures
) -> Iterator[Server]:
    cmd = [*cli(), "serve", "--json", "--data-dir", str(data_dir), "--port", str(free_port())]
    if database_url:
        cmd += ["--database-url", database_url]
    if workers > 1:
        if serve_supports_workers():
            cmd += ["--workers", str(workers)]
        else:
            say.say(
                f"NOTE: this version of `provena-like serve` has no --workers option: "
                f"running with 1 worker, not {workers}"
            )
            workers = 1
    log = (data_dir.parent / "serve.log").open("ab")
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=30)
            log.flush()
            tail = (data_dir.parent / "serve.log").read_text()[-3000:]
            raise SystemExit(f"serve exited with {process.returncode}:\n{tail}")
        doc = json.loads(line)
        yield Server(doc["url"], doc["issuer"], data_dir, database_url, workers, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        log.close()


class Database:
    """The server's own database layer, opened from this process on the server's database."""

    def __init__(self, server: Server) -> None:
        from provena_like.server.app import create_app
        from provena_like.server.settings import ServerSettings

        settings = ServerSettings(data_dir=server.data_dir, database_url=server.database_url)
        self.settings = settings
        # the app's post-write hooks (search, registration and transfer indexes); the app
        # itself is never started here
        self.hooks = create_app(settings).state.item_hooks

    @contextlib.asynccontextmanager
    async def sessions(self) -> AsyncIterator[Any]:
        from provena_like.server.db.base import create_engine, create_sessionmaker
        from provena_like.server.registry.events import session_info

        engine = create_engine(self.settings.resolved_database_url)
        try:
            yield create_sessionmaker(engine, info=session_info(self.hooks))
        finally:
            await engine.dispose()

    async def token(self, server: Server, username: str) -> str:
        """Create ``username`` and sign an access token for them with the server's key."""
        from provena_like.server.auth.tokens import TokenService
        from provena_like.server.db.identity import UserRow

        async with self.sessions() as sessions, sessions() as session, session.begin():
            if await session.get(UserRow, username) is None:
                session.add(UserRow(username=username, system_roles=[]))
        tokens = TokenService.from_data_dir(server.data_dir, server.issuer)
        token: str = tokens.issue_access_token(
            subject=username, client_id="scale-bench", scope="openid", ttl=6 * 3600
        )
        return token

    async def seed(self, start: int, count: int, batch: int = 1000) -> None:
        """``count`` organisations through the registry service, ``batch`` per transaction."""
        from provena_like.models.registry import ItemCreate
        from provena_like.server.registry import service
        from provena_like.server.security import Principal

        principal = Principal(username=USER)
        prefix = self.settings.handle_prefix
        async with self.sessions() as sessions:
            for first in range(start, start + count, batch):
                async with sessions() as session, session.begin():
                    for i in range(first, min(first + batch, start + count)):
                        body = ItemCreate(subtype="organisation", record={"name": org_name(i)})
                        await service.create_item(session, principal, body, prefix=prefix)


class Snapshot:
    """A seeded state kept in ``--seeded DIR``, so that runs after the first skip the seeding.

    The first run with a DIR that holds no matching snapshot seeds as usual on a server of
    its own, stops that server and keeps a copy: the data dir (the SQLite database, the
    server's keys, the object store's files) in ``DIR/data`` and, on PostgreSQL, a template
    database ``<database>_seeded`` beside the one in ``--database-url``. Every run with the
    same DIR, items and database then starts from a fresh copy of that state (a copied data
    dir; on PostgreSQL the database dropped and re-created from the template), so each run
    measures the same starting point, as if it had just seeded. ``DIR/seeded.json`` says
    what was seeded, and how fast; a snapshot of other sizes or another database is
    replaced. On PostgreSQL the database in ``--database-url`` is dropped and re-created:
    give one that holds nothing else (not ``postgres``).
    """

    def __init__(self, root: Path, args: argparse.Namespace) -> None:
        self.root = root
        self.database_url = args.database_url
        self.key = {
            "format": 1,
            "items": args.items,
            "api_sample": min(args.api_sample, args.items),
            "seed_concurrency": args.seed_concurrency,
            "database": self._where(),
        }
        if self.database_url and self._names()[0] in ("postgres", "template0", "template1"):
            raise SystemExit(
                "--seeded drops and re-creates the database in --database-url: "
                "name one of its own, not postgres"
            )

    @property
    def meta(self) -> Path:
        return self.root / "seeded.json"

    def _where(self) -> str:
        if not self.database_url:
            return "sqlite (data dir)"
        from sqlalchemy import make_url

        return make_url(self.database_url).render_as_string(hide_password=True)

    def _names(self) -> tuple[str, str]:
        """(the run's database, its template) on PostgreSQL."""
        from sqlalchemy import make_url

        name = make_url(self.database_url).database or ""
        return name, f"{name}_seeded"

    def seed_lines(self) -> list[str] | None:
        """What the seeding printed, if DIR holds a snapshot of this run's sizes, else None."""
        try:
            doc = json.loads(self.meta.read_text())
        except (OSError, ValueError):
            return None
        if doc.get("key") != self.key or not (self.root / "data").is_dir():
            return None
        lines: list[str] = doc["lines"]
        return lines

    async def _admin(self, *statements: str) -> None:
        from sqlalchemy import make_url, text
        from sqlalchemy.ext.asyncio import create_async_engine

        url = make_url(self.database_url).set(database="postgres")
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                for statement in statements:
                    await conn.execute(text(statement))
        finally:
            await engine.dispose()

    async def empty_database(self) -> None:
        """On PostgreSQL, drop and re-create the run's database, empty."""
        if self.database_url:
            name, _ = self._names()
            await self._admin(
                f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
            )

    async def save(self, data_dir: Path, lines: list[str]) -> None:
        """Keep the seeded state (the server that seeded it is stopped)."""
        with contextlib.suppress(FileNotFoundError):
            self.meta.unlink()
        shutil.rmtree(self.root / "data", ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.copytree(data_dir, self.root / "data", symlinks=True)
        if self.database_url:
            name, template = self._names()
            await self._admin(
                f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)',
                f'CREATE DATABASE "{template}" TEMPLATE "{name}"',
            )
        doc = {
            "key": self.key,
            "lines": lines,
            "saved": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        self.meta.write_text(json.dumps(doc, indent=2))

    async def restore(self, data_dir: Path) -> None:
        """A fresh copy of the seeded state: ``data_dir`` and, on PostgreSQL, the database."""
        shutil.copytree(self.root / "data", data_dir, symlinks=True)
        if self.database_url:
            name, template = self._names()
            await self._admin(
                f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                f'CREATE DATABASE "{name}" TEMPLATE "{template}"',
            )


def org_name(i: int) -> str:
    return f"{WORDS[i % len(WORDS)]} {WORDS[(i * 7 + 3) % len(WORDS)]} institute {i}"


def client_for(server: Server, token: str) -> ProvenaClient:
    config = ProvenaConfig(base_url=server.url, access_token=token, max_retries=0, timeout=120)
    return ProvenaClient(config)


async def seed(
    server: Server, db: Database, token: str, args: argparse.Namespace, say: Figures
) -> None:
    api = min(args.api_sample, args.items)
    done = 0

    async def one(pv: ProvenaClient, i: int) -> None:
        nonlocal done
        item = {"subtype": "organisation", "record": {"name": org_name(i)}}
        await pv.registry_client.create_item(item)
        done += 1

    t = time.perf_counter()
    async with client_for(server, token) as pv:
        limiter = anyio.Semaphore(args.seed_concurrency)

        async def limited(i: int) -> None:
            async with limiter:
                await one(pv, i)

        async with anyio.create_task_group() as tg:
            for i in range(api):
                tg.start_soon(limited, i)
    api_s = time.perf_counter() - t
    t = time.perf_counter()
    await db.seed(api, args.items - api)
    db_s = time.perf_counter() - t
    say.say(
        f"seed, API         : {api:7d} items in {api_s:7.1f} s = {api / api_s:8.0f} items/s "
        f"({args.seed_concurrency} concurrent requests)"
    )
    if args.items > api:
        n = args.items - api
        say.say(
            f"seed, db layer    : {n:7d} items in {db_s:7.1f} s = {n / db_s:8.0f} items/s "
            "(registry service on the server's engine, 1000 per transaction)"
        )


async def list_all(server: Server, token: str, args: argparse.Namespace, say: Figures) -> list[str]:
    """Walk every item with the paginator; keep a sample of ids (for the reads)."""
    rng = random.Random(args.seed)
    sample: list[str] = []
    page_times: list[float] = []
    rss: dict[int, float] = {}
    listed = 0
    marks = [m for m in (10_000, 100_000) if m <= args.items] or [args.items // 10 or 1]
    async with client_for(server, token) as pv:
        rss_start = rss_mib()
        walk = pv.registry_client.iter_items(page_size=args.page_size).pages()
        t0 = t = time.perf_counter()
        async for page in walk:
            now = time.perf_counter()
            page_times.append(now - t)
            for item in page.items:
                listed += 1
                if len(sample) < 2000:
                    sample.append(item.id)
                elif (j := rng.randrange(listed)) < len(sample):
                    sample[j] = item.id
                if listed in marks:
                    rss[listed] = rss_mib()
            t = time.perf_counter()
        total_s = time.perf_counter() - t0
    rss_end = rss_mib()
    if listed != args.items:
        raise SystemExit(f"listed {listed} items, seeded {args.items}")
    p50, p99 = quantiles(page_times)
    say.say(
        f"list              : {listed:7d} items, {len(page_times)} pages of {args.page_size} "
        f"in {total_s:.1f} s = {listed / total_s:.0f} items/s"
    )
    say.say(f"  per page        : p50 {p50:7.1f} ms   p99 {p99:7.1f} ms (round trip, loopback)")
    shown = ", ".join(f"{rss[m]:.1f} MiB after {m:,} items" for m in sorted(rss))
    say.say(
        f"  client RSS      : {rss_start:.1f} MiB before, {shown}, {rss_end:.1f} MiB at the end"
    )
    return sample


async def pooled_vs_new(
    server: Server, token: str, ids: list[str], args: argparse.Namespace, say: Figures
) -> None:
    rng = random.Random(args.seed + 1)
    picks = [rng.choice(ids) for _ in range(args.compare_requests)]

    async def run(get_one: Any) -> float:
        limiter = anyio.Semaphore(args.compare_concurrency)

        async def limited(item_id: str) -> None:
            async with limiter:
                await get_one(item_id)

        t = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for item_id in picks:
                tg.start_soon(limited, item_id)
        return len(picks) / (time.perf_counter() - t)

    async with client_for(server, token) as pooled:
        await pooled.registry_client.get_item(picks[0])  # warm: connection and token

        async def with_pool(item_id: str) -> None:
            await pooled.registry_client.get_item(item_id)

        pooled_rate = await run(with_pool)

    async def with_new_client(item_id: str) -> None:
        async with client_for(server, token) as pv:
            await pv.registry_client.get_item(item_id)

    new_rate = await run(with_new_client)
    say.say(
        f"pooled client     : {pooled_rate:8.0f} req/s   new client per request: "
        f"{new_rate:8.0f} req/s   ratio {pooled_rate / new_rate:.1f}x (target >= 3x; "
        f"{len(picks)} GET item, {args.compare_concurrency} at a time)"
    )


async def mixed_load(
    server: Server, token: str, ids: list[str], args: argparse.Namespace, say: Figures
) -> None:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    first_error: list[str] = []
    kinds = list(KINDS)
    weights = list(KINDS.values())
    deadline = time.perf_counter() + args.duration
    written = 0

    async def client(n: int) -> None:
        nonlocal written
        rng = random.Random(args.seed * 1000 + n)
        async with client_for(server, token) as pv:
            while time.perf_counter() < deadline:
                kind = rng.choices(kinds, weights)[0]
                t = time.perf_counter()
                try:
                    if kind == "read":
                        await pv.registry_client.get_item(rng.choice(ids))
                    elif kind == "list":
                        await pv.registry_client.list_items(page_size=args.page_size)
                    elif kind == "search":
                        await pv.search_client.search_items(rng.choice(WORDS))
                    else:
                        name = f"load {n} {written} {rng.choice(WORDS)}"
                        written += 1
                        await pv.registry_client.create_item(
                            {"subtype": "organisation", "record": {"name": name}}
                        )
                except Exception as exc:  # every failure counts; the first is shown
                    errors[kind] += 1
                    if not first_error:
                        first_error.append(f"{kind}: {type(exc).__name__}: {exc}")
                    continue
                latencies[kind].append(time.perf_counter() - t)

    t = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for n in range(args.clients):
            tg.start_soon(client, n)
    elapsed = time.perf_counter() - t
    every = [v for values in latencies.values() for v in values]
    p50, p99 = quantiles(every)
    say.say(
        f"mixed load        : {args.clients} clients, {elapsed:.0f} s: {len(every) / elapsed:7.0f} "
        f"req/s, p50 {p50:.0f} ms, p99 {p99:.0f} ms, errors {sum(errors.values())}"
    )
    for kind in kinds:
        k50, k99 = quantiles(latencies[kind])
        say.say(
            f"  {kind:<7}         : {len(latencies[kind]) / elapsed:7.0f} req/s, "
            f"p50 {k50:6.0f} ms, p99 {k99:6.0f} ms, errors {errors[kind]}"
        )
    if first_error:
        say.say(f"  first error     : {first_error[0][:300]}")


async def run(args: argparse.Namespace) -> None:
    say = Figures()
    where = args.database_url.split("://")[0] if args.database_url else "sqlite (data dir)"
    say.say(
        f"scale benchmark: {args.items} items, {args.clients} clients for {args.duration} s, "
        f"database {where}, {args.workers} worker(s) asked, {os.cpu_count()} CPUs, {load()}"
    )
    snapshot = Snapshot(args.seeded, args) if args.seeded else None
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        seeded = snapshot.seed_lines() if snapshot else None
        if snapshot is not None and seeded is None:
            # seed on a server of its own (1 worker, whatever the run's), keep the state,
            # then measure on a fresh start
            await snapshot.empty_database()
            with started_server(data_dir, args.database_url, 1, say) as server:
                db = Database(server)
                first = len(say.lines)
                await seed(server, db, await db.token(server, USER), args, say)
                seeded = say.lines[first:]
            await snapshot.save(data_dir, seeded)
            shutil.rmtree(data_dir)
            say.say(f"seeded state kept in {args.seeded}")
        if snapshot is not None and seeded is not None:
            await snapshot.restore(data_dir)
        t = time.perf_counter()
        with started_server(data_dir, args.database_url, args.workers, say) as server:
            say.say(f"server up in {time.perf_counter() - t:.1f} s, {server.workers} worker(s)")
            db = Database(server)
            token = await db.token(server, USER)
            if snapshot is None:
                await seed(server, db, token, args, say)
            else:
                say.say(f"seeded state from {args.seeded} (a fresh copy), as seeded:")
                for line in seeded or ():
                    say.say(f"  {line}")
            ids = await list_all(server, token, args, say)
            if args.compare_requests:
                await pooled_vs_new(server, token, ids, args, say)
            say.say(f"before mixed load : {load()}")
            await mixed_load(server, token, ids, args, say)
            say.say(f"after mixed load  : {load()}")
            say.say(f"server RSS        : {server_rss(server.process.pid)}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="registry items to seed")
    parser.add_argument("--clients", type=int, default=200, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of mixed load")
    parser.add_argument("--workers", type=int, default=1, help="API worker processes")
    parser.add_argument("--database-url", default=None, help="SQLAlchemy async URL")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--api-sample", type=int, default=2000, help="items seeded via the API")
    parser.add_argument("--seed-concurrency", type=int, default=20)
    parser.add_argument(
        "--compare-requests", type=int, default=2000, help="0 skips pooled vs new client"
    )
    parser.add_argument("--compare-concurrency", type=int, default=10)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--seeded",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the seeded state in DIR and start later runs of the same sizes from a copy "
        "of it (on PostgreSQL the --database-url database is dropped and re-created)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes (a few seconds): checks the script runs"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.items = min(args.items, 300)
        args.clients = min(args.clients, 5)
        args.duration = min(args.duration, 2.0)
        args.api_sample = min(args.api_sample, 50)
        args.compare_requests = min(args.compare_requests, 50)
    return args


def main(argv: list[str] | None = None) -> None:
    anyio.run(run, parse_args(argv))


if __name__ == "__main__":
    main()
