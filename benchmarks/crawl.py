"""Crawl + ``basic`` over many small files on local disk, against the physical floor.

In one run, over the same tree (default 100,000 files, 100 per folder, ten top folders):

- ``scandir``: a plain ``os.scandir`` walk with ``stat`` per file (the floor: what Python
  must do at least);
- ``find``: ``find ROOT -type f -printf '%p %s %T@\\n'`` (what a shell user would do);
- ``crawl``: :func:`provena_like.crawler.crawl` alone (typed records, MIME types);
- ``crawl+basic``: the crawl through :class:`ExtractionRunner` with ``basic`` (stat only),
  one :class:`FileResult` per file — the target is >= 50 % of the floor's files/s;
- ``crawl+basic/1p``: the same without listing processes (``LocalSource(processes=0)``);
- ``crawl+basic+sha256``: the same with sha256 of every file.

Each measurement runs in its own process, so its peak RSS (``ru_maxrss``) is its own; ours
run on one top folder (N/10 files) and on the whole tree, to show that memory stays flat.
(A listing process stays at ~13 MiB; ``RUSAGE_CHILDREN`` can't show it: a child's peak
counts the parent's pages it was forked with.) Besides files per second of wall time, each
row gives its CPU time (user + system, its children's included: ``find``, the listing
processes) against the floor's: on a machine other work keeps busy, that ratio moves less
(but a crawl that uses two cores shows its cost there, not its wall-time gain).

    uv run python benchmarks/crawl.py             # 100,000 files
    uv run python benchmarks/crawl.py --files 10000
    uv run python benchmarks/crawl.py --tree DIR  # make the tree in DIR once, keep it

``crawl+basic`` takes the runner's fast path (``basic`` without checksums runs in the crawl's
thread from its ``stat``); ``crawl`` measures the walk and the records alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PER_DIR = 100
TOP = 10


def make_tree(root: Path, files: int) -> None:
    """``files`` small files: TOP top folders, PER_DIR files per leaf folder."""
    per_top = files // TOP
    body = b"0123456789abcdef"
    for t in range(TOP):
        for i in range(per_top):
            folder = root / f"top{t}" / f"d{i // PER_DIR:04d}"
            if i % PER_DIR == 0:
                folder.mkdir(parents=True)
            (folder / f"f{i % PER_DIR:03d}.csv").write_bytes(body)


def floor(root: Path) -> int:
    count = 0
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    entry.stat()
                    count += 1
    return count


def run_find(root: Path) -> int:
    done = subprocess.run(
        ["find", str(root), "-type", "f", "-printf", "%p %s %T@\\n"],
        capture_output=True,
        check=True,
    )
    return done.stdout.count(b"\n")


async def ours(root: Path, mode: str) -> int:
    from provena_like.crawler import ExtractionRunner, FileRecord, FileResult, LocalSource, crawl
    from provena_like.extractors.basic import BasicExtractor

    count = 0
    if mode == "crawl":
        async for record in crawl(root):
            count += isinstance(record, FileRecord)
        return count
    basic = BasicExtractor(sha256=mode.endswith("sha256"))
    source = LocalSource(root, processes=0 if mode.endswith("/1p") else None)
    async with ExtractionRunner([basic]) as runner:
        async for result in runner.extract(crawl(source)):
            assert isinstance(result, FileResult) and result.extractions[0].status == "ok"
            count += 1
    return count


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def child(mode: str, root: Path) -> None:
    """One measurement in this process; prints files, seconds, CPU seconds, peak RSS (MiB)."""
    if mode not in ("scandir", "find"):  # imports are not part of the walk
        import anyio

        import provena_like.crawler.runner
        import provena_like.crawler.walk
        import provena_like.extractors.basic  # noqa: F401
    started, cpu = time.perf_counter(), _cpu()
    if mode == "scandir":
        n = floor(root)
    elif mode == "find":
        n = run_find(root)
    else:
        n = anyio.run(ours, root, mode)
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"files": n, "seconds": seconds, "cpu": cpu, "rss_mib": rss}))


def measure(mode: str, root: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(root)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="files in the tree")
    parser.add_argument(
        "--tree", type=Path, help="make the tree here (or reuse the one made before) and keep it"
    )
    parser.add_argument("--child", nargs=2, metavar=("MODE", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    if args.files < TOP * PER_DIR:
        parser.error(f"--files must be at least {TOP * PER_DIR}")
    work = Path(tempfile.mkdtemp(prefix="crawl-bench-"))
    try:
        root = work / "tree" if args.tree is None else args.tree / f"tree-{args.files}"
        total = args.files // TOP * TOP
        if not root.exists():
            started = time.perf_counter()
            make_tree(root, args.files)
            print(f"tree: {total} files in {time.perf_counter() - started:.1f} s ({root})")
        for path in (root, root / "top0"):  # warm the page cache for every tool alike
            floor(path)
        modes = ("scandir", "find", "crawl", "crawl+basic", "crawl+basic/1p", "crawl+basic+sha256")
        rows = [(mode, "all", measure(mode, root)) for mode in modes]
        rows.append(("crawl+basic", "top0", measure("crawl+basic", root / "top0")))
        base = rows[0][2]["files"] / rows[0][2]["seconds"]
        cpu_base = rows[0][2]["files"] / rows[0][2]["cpu"]
        print(
            f"{'tool':<22}{'tree':>6}{'files':>9}{'seconds':>9}{'files/s':>10}"
            f"{'vs floor':>10}{'CPU s':>8}{'CPU vs floor':>14}{'peak RSS':>11}"
        )
        for mode, where, r in rows:
            rate = r["files"] / r["seconds"]
            cpu_rate = r["files"] / r["cpu"]
            print(
                f"{mode:<22}{where:>6}{int(r['files']):>9}{r['seconds']:>9.2f}{rate:>10.0f}"
                f"{rate / base:>9.0%}{r['cpu']:>8.2f}{cpu_rate / cpu_base:>13.0%}"
                f"{r['rss_mib']:>8.0f} MiB"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
