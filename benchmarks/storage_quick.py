"""Quick storage benchmark: TransferEngine vs cloudpathlib (the Provena client's way).

Starts one local SeaweedFS, mints ONE set of prefix-scoped STS credentials, and moves

* 2,000 files of 4 KiB (upload, then download), and
* 2 files of 64 MiB (upload, then download)

with :class:`provena_like.storage.TransferEngine` (concurrent; sha256-verified, and again with
checksums off) and with cloudpathlib ``upload_from`` / ``download_to`` one file after the
other (no checksums).
Each (tool, phase) runs in its own process so that its peak RSS is its own. Prints wall
times, objects/s or MB/s, the engine's speed-up and peak RSS.

Small-file phases run once (cloudpathlib takes ~40 s each); big-file phases run ``--rounds``
times and the median is reported, because a SeaweedFS sharing two cores with the client
varies by 2x from one run to the next.

Run (about 3 minutes on a 2-core machine, mostly cloudpathlib)::

    uv run python benchmarks/storage_quick.py
    uv run python benchmarks/storage_quick.py --small 500 --big-mib 16   # quicker

Not a test: numbers depend on the machine (client and server share its cores).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

MiB = 1024 * 1024
BUCKET = "bench"
PHASES = ("small-up", "small-down", "big-up", "big-down")
TOOLS = ("engine", "engine-nosum", "cloudpathlib")


def _policy(prefix: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                    "Resource": [f"arn:aws:s3:::{BUCKET}/{prefix}*"],
                },
                {
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{BUCKET}"],
                    "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
                },
            ],
        }
    )


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _credentials(raw: dict[str, Any]) -> Any:
    from provena_like.storage import S3Credentials

    return S3Credentials(**raw)


# ---------------------------------------------------------------------------------- workers


def _engine_phase(
    phase: str, creds: Any, data: Path, out: Path, sub: str, *, checksum: bool = True
) -> dict[str, Any]:
    from provena_like.storage import TransferEngine

    async def run() -> dict[str, Any]:
        async with TransferEngine(creds, checksum=checksum) as engine:
            started = time.perf_counter()
            if phase.endswith("-up"):
                result = await engine.upload(data, prefix=sub)
            else:
                result = await engine.download(sub + "/", out)
            elapsed = time.perf_counter() - started
        result.raise_for_failures()
        return {"seconds": elapsed, "files": len(result.ok), "bytes": result.bytes}

    return anyio.run(run)


def _cloudpathlib_phase(phase: str, creds: Any, data: Path, out: Path, sub: str) -> dict[str, Any]:
    from provena_like.storage.paths import dataset_path

    root = dataset_path(creds, sub + "/")
    files = sorted(p for p in data.rglob("*") if p.is_file())
    started = time.perf_counter()
    total = 0
    for local in files:
        relative = local.relative_to(data).as_posix()
        if phase.endswith("-up"):
            (root / relative).upload_from(local)
        else:
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            (root / relative).download_to(target)
        total += local.stat().st_size
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "files": len(files), "bytes": total}


def worker(args: argparse.Namespace) -> None:
    raw = json.load(sys.stdin)
    creds = _credentials(raw)
    data, out = Path(args.data), Path(args.out)
    if args.worker == "cloudpathlib":
        outcome = _cloudpathlib_phase(args.phase, creds, data, out, args.sub)
    else:
        checksum = args.worker == "engine"
        outcome = _engine_phase(args.phase, creds, data, out, args.sub, checksum=checksum)
    outcome["peak_rss_mib"] = _peak_rss_mib()
    print(json.dumps(outcome))


# ---------------------------------------------------------------------------------- driver


def _make_data(root: Path, small: int, big_mib: int) -> tuple[Path, Path]:
    small_dir, big_dir = root / "small", root / "big"
    for i in range(small):
        path = small_dir / f"d{i % 20:02d}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(4096))
    big_dir.mkdir(parents=True)
    for name in ("a.bin", "b.bin"):
        with open(big_dir / name, "wb") as fh:
            for _ in range(big_mib):
                fh.write(os.urandom(MiB))
    return small_dir, big_dir


def _same_tree(a: Path, b: Path) -> bool:
    def digests(root: Path) -> dict[str, str]:
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*")
            if p.is_file()
        }

    return digests(a) == digests(b)


def _run_worker(
    tool: str, phase: str, creds: dict[str, Any], data: Path, out: Path, sub: str
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        tool,
        "--phase",
        phase,
        "--data",
        str(data),
        "--out",
        str(out),
        "--sub",
        sub,
    ]
    done = subprocess.run(
        command, input=json.dumps(creds), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{tool} {phase} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _warm_up(store: Any) -> None:
    """SeaweedFS allocates its volumes on the first writes (~1 s): not part of any timing."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=store.endpoint_url,
        region_name=store.region,
        aws_access_key_id=store.admin_access_key,
        aws_secret_access_key=store.admin_secret_key,
    )
    for i in range(20):
        s3.put_object(Bucket=BUCKET, Key=f"warm-up/{i}", Body=os.urandom(4096 if i else 8 * MiB))
    s3.close()


def main(args: argparse.Namespace) -> None:
    import boto3

    from provena_like.testing.seaweed import SeaweedS3

    work = Path(tempfile.mkdtemp(prefix="storage-bench-"))
    try:
        print(f"preparing {args.small} x 4 KiB and 2 x {args.big_mib} MiB files in {work} ...")
        small_dir, big_dir = _make_data(work / "data", args.small, args.big_mib)
        with SeaweedS3(work / "s3") as store:
            store.create_bucket(BUCKET)
            prefix = "datasets/bench/"
            sts = boto3.client(
                "sts",
                endpoint_url=store.endpoint_url,
                region_name=store.region,
                aws_access_key_id=store.admin_access_key,
                aws_secret_access_key=store.admin_secret_key,
            )
            sts_creds = sts.assume_role(
                RoleArn=store.role_arn,
                RoleSessionName="storage-bench",
                Policy=_policy(prefix),
                DurationSeconds=3600,
            )["Credentials"]
            sts.close()
            _warm_up(store)
            creds = {
                "access_key_id": sts_creds["AccessKeyId"],
                "secret_access_key": sts_creds["SecretAccessKey"],
                "session_token": sts_creds["SessionToken"],
                "expiration": None,
                "endpoint_url": store.endpoint_url,
                "region": store.region,
                "bucket": BUCKET,
                "prefix": prefix,
                "access": "write",
            }
            results: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for phase in PHASES:
                size = "small" if phase.startswith("small") else "big"
                data = small_dir if size == "small" else big_dir
                rounds = 1 if size == "small" else args.rounds
                for round_ in range(rounds):
                    for tool in TOOLS:  # tools alternate: each sees the same server state
                        out = work / "out" / f"{tool}-{size}-{round_}"
                        sub = f"{tool}-{size}-{round_}"
                        print(f"  {tool:12} {phase:10} #{round_ + 1} ...", end="", flush=True)
                        outcome = _run_worker(tool, phase, creds, data, out, sub)
                        results.setdefault((tool, phase), []).append(outcome)
                        print(f" {outcome['seconds']:.2f} s")
                        if phase.endswith("-down") and not _same_tree(data, out):
                            raise SystemExit(f"{tool} {phase}: downloaded files differ")
                        if phase.endswith("-down"):
                            shutil.rmtree(out)
        _report(results, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _report(results: dict[tuple[str, str], list[dict[str, Any]]], args: argparse.Namespace) -> None:
    print()
    header = f"{'phase':11}" + "".join(f"{tool:>23}" for tool in TOOLS)
    print(f"{header}  {'cpl/engine':>10}  peak RSS MiB ({' / '.join(TOOLS)})")
    for phase in PHASES:
        runs = [results[(tool, phase)] for tool in TOOLS]
        median = [statistics.median(r["seconds"] for r in tool_runs) for tool_runs in runs]

        def rate(seconds: float, first: dict[str, Any], phase: str = phase) -> str:
            if phase.startswith("small"):
                return f"{seconds:6.2f} s {first['files'] / seconds:6.0f} obj/s"
            return f"{seconds:6.2f} s {first['bytes'] / seconds / 1e6:6.0f} MB/s"

        cells = "".join(f"{rate(m, r[0]):>23}" for m, r in zip(median, runs, strict=True))
        rss = " / ".join(f"{max(x['peak_rss_mib'] for x in r):.0f}" for r in runs)
        print(f"{phase:11}{cells}  {median[-1] / median[0]:9.1f}x  {rss}")
    print("\nspread of the big phases (seconds, every round):")
    for phase in PHASES[2:]:
        for tool in TOOLS:
            times = ", ".join(f"{r['seconds']:.2f}" for r in results[(tool, phase)])
            print(f"  {phase:9} {tool:13} {times}")
    print(
        f"\n{args.small} x 4 KiB (1 round), 2 x {args.big_mib} MiB (median of {args.rounds} "
        "rounds). engine: 16 requests in flight, sha256 computed, sent and verified; "
        "engine-nosum: the same without checksums; cloudpathlib: one file after the other, no "
        "checksums. Same scoped credentials, same SeaweedFS."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000, help="number of 4 KiB files")
    parser.add_argument("--big-mib", type=int, default=64, help="size of each of the 2 big files")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the big-file phases")
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--sub", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.worker:
        worker(parsed)
    else:
        main(parsed)
