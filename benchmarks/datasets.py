"""Benchmark: InteractiveDataset vs the Provena client's way (cloudpathlib, sequential).

One local stack (reference server + SeaweedFS), one dataset, the same prefix-scoped STS
credentials from the datastore for both sides. Workload (as in the datasets issue):

* 2,000 files of 4 KiB, and
* 2 files of 64 MiB,

uploaded and then downloaded

* with ``InteractiveDataset.upload`` / ``download`` (concurrent, sha256 computed once on the
  way up and verified on the way down, files registered in the manifest), and
* with cloudpathlib ``upload_from`` / ``download_to``, one file after the other, no checksums
  (what the Provena client does).

Every (tool, direction) runs in its own process so that its peak RSS is its own. Prints wall
times, the ratio and peak RSS. Not a test: the numbers depend on the machine (client and
server share its cores).

    uv run python benchmarks/datasets.py                 # the issue's workload (~2-3 min)
    uv run python benchmarks/datasets.py --small 300 --big-mib 16   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

MiB = 1024 * 1024
APPROVALS = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")


def make_files(root: Path, small: int, big: int, big_mib: int) -> int:
    total = 0
    for i in range(small):
        p = root / "small" / f"d{i // 200:02d}" / f"f{i:05d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(4096))
        total += 4096
    for i in range(big):
        p = root / "big" / f"big{i}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("wb") as fh:
            for _ in range(big_mib):
                fh.write(os.urandom(MiB))
        total += big_mib * MiB
    return total


# ---------------------------------------------------------------------- child processes


async def child_ours(args: argparse.Namespace) -> dict[str, Any]:
    from provena_like import ProvenaClient

    async with ProvenaClient(base_url=args.url, token_dir=Path(args.token_dir)) as pv:
        ds = await pv.datastore.interactive(args.dataset)
        await ds.credentials("write" if args.direction == "up" else "read")  # not timed
        start = time.perf_counter()
        if args.direction == "up":
            result = await ds.upload(Path(args.src), prefix="ours/")
        else:
            result = await ds.download(Path(args.dest), paths=["ours/"])
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "files": len(result.ok), "failed": len(result.failed)}


async def child_cloudpathlib(args: argparse.Namespace) -> dict[str, Any]:
    from cloudpathlib import S3Client, S3Path

    from provena_like import ProvenaClient

    async with ProvenaClient(base_url=args.url, token_dir=Path(args.token_dir)) as pv:
        creds = await pv.datastore.credentials(args.dataset, "write")
    client = S3Client(
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key.get_secret_value(),
        aws_session_token=creds.session_token.get_secret_value(),
        endpoint_url=creds.endpoint_url,
    )
    root = S3Path(f"s3://{creds.bucket}/{creds.prefix}cloudpathlib/", client=client)
    src = Path(args.src)
    files = sorted(p for p in src.rglob("*") if p.is_file())
    start = time.perf_counter()
    if args.direction == "up":
        for p in files:
            (root / p.relative_to(src).as_posix()).upload_from(p)
    else:
        dest = Path(args.dest)
        for p in files:
            rel = p.relative_to(src).as_posix()
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            (root / rel).download_to(target)
    return {"seconds": time.perf_counter() - start, "files": len(files), "failed": 0}


def run_child(args: argparse.Namespace) -> None:
    fn = child_ours if args.tool == "ours" else child_cloudpathlib
    out = anyio.run(fn, args)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


# ---------------------------------------------------------------------- parent


def record(org: str, person: str, by: str = "benchmarks/datasets.py") -> dict[str, Any]:
    no = {"relevant": False, "obtained": False}
    return {
        "associations": {"organisation_id": org, "point_of_contact": person},
        "approvals": {a: no for a in APPROVALS},
        "dataset_info": {
            "name": "Benchmark dataset",
            "description": f"Files moved by {by}",
            "access_info": {"reposited": True},
            "publisher_id": org,
            "created_date": "2024-01-01",
            "published_date": "2024-01-02",
            "license": "https://creativecommons.org/licenses/by/4.0/",
        },
    }


async def mint_dataset(pv: Any, by: str = "benchmarks/datasets.py") -> str:
    """Mint a dataset (with an organisation and a person to point at) as ``pv``'s user."""
    org = await pv.registry_client.create_item(
        {"subtype": "organisation", "record": {"name": "Bench"}}
    )
    person = await pv.registry_client.create_item(
        {
            "subtype": "person",
            "record": {"first_name": "B", "last_name": "M", "email": "b@m.org"},
        }
    )
    ds = await pv.datastore.mint(record(org.id, person.id, by))
    return str(ds.id)


def spawn(tool: str, direction: str, common: list[str], src: Path, dest: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--tool", tool, "--direction", direction]
    cmd += [*common, "--src", str(src), "--dest", str(dest)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def main(args: argparse.Namespace) -> None:
    from provena_like.testing import LocalStack

    with tempfile.TemporaryDirectory(prefix="provena-bench-") as tmp:
        work = Path(tmp)
        src = work / "src"
        total = make_files(src, args.small, args.big, args.big_mib)
        print(
            f"workload: {args.small} x 4 KiB + {args.big} x {args.big_mib} MiB = "
            f"{total / MiB:.1f} MiB"
        )
        async with LocalStack(work / "stack") as stack:
            async with stack.client() as pv:
                dataset_id = await mint_dataset(pv)
            token_dir = stack.data_dir / "tokens" / stack.user.username
            common = ["--url", stack.url, "--token-dir", str(token_dir), "--dataset", dataset_id]
            rows = []
            for direction in ("up", "down"):
                for tool in ("ours", "cloudpathlib"):
                    dest = work / f"{tool}-{direction}"
                    r = await anyio.to_thread.run_sync(spawn, tool, direction, common, src, dest)
                    rows.append((tool, direction, r))
                    print(
                        f"  {tool:13s} {direction:5s} {r['seconds']:7.2f} s  "
                        f"{r['files']} files ({r['failed']} failed)  "
                        f"peak RSS {r['peak_rss_mib']:.0f} MiB",
                        flush=True,
                    )
        print()
        print(f"{'direction':10s} {'ours':>9s} {'cloudpathlib':>13s} {'ratio':>7s}")
        for direction in ("up", "down"):
            ours = next(r for t, d, r in rows if t == "ours" and d == direction)
            cpl = next(r for t, d, r in rows if t == "cloudpathlib" and d == direction)
            print(
                f"{direction:10s} {ours['seconds']:8.2f}s {cpl['seconds']:12.2f}s "
                f"{cpl['seconds'] / ours['seconds']:6.1f}x"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--big", type=int, default=2)
    parser.add_argument("--big-mib", type=int, default=64)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("--tool", "--direction", "--url", "--token-dir", "--dataset", "--src", "--dest"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.child:
        run_child(ns)
    else:
        anyio.run(main, ns)
