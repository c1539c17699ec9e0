"""Transfer benchmark: TransferEngine vs cloudpathlib, boto3's transfer manager and the aws CLI.

One local SeaweedFS, ONE set of prefix-scoped STS credentials for every tool. Uploads
(``small``, ``medium``, ``big``) and downloads (``small-down``, ...) of

* ``small``: ``--small`` files of 4 KiB (default 2,000),
* ``medium``: ``--medium`` files of 1 MiB (default 200),
* ``big``: one file of ``--big-gib`` GiB (default 1),

and two re-syncs of the small dataset:

* ``resync-up``: syncing the unchanged folder up again (bytes sent must be 0); ``ours``
  decides from the listing (single-part ETags are md5s), ``ours-manifest`` from the manifest
  saved at upload (sha256 + the ETag it was recorded for);
* ``resync-down-foreign``: syncing down objects ``aws s3 sync`` uploaded (no
  ``x-amz-meta-sha256``) into an up-to-date copy (made once by ``aws s3 sync``, copied with
  its mtimes for each run, a cold hash cache each time): files rewritten must be 0,

by

* ``ours``: :class:`provena_like.storage.TransferEngine` (sha256 + S3 checksums on upload;
  downloads take the manifest saved at upload, as ``InteractiveDataset`` does, and check every
  file against its sha256),
* ``ours-nosum``: the same with checksums off (the cost of checksumming),
* ``cloudpathlib``: ``upload_from`` / ``download_to`` one file after the other (the Provena
  client's way),
* ``boto3-tm``: ``boto3.s3.transfer.S3Transfer.upload_file`` / ``download_file`` per file in
  a loop,
* ``aws``: ``aws s3 sync`` (folders) / ``aws s3 cp`` (the big file); awscli is in the dev
  group (it vendors its own botocore, so it co-installs with aiobotocore's pin).

Downloads fetch what ``ours`` uploaded in round 1 into a fresh folder, removed afterwards.

Each (tool, workload, round) runs in its own process, so its peak RSS is its own (for the aws
CLI, the peak of its process). Medians of ``--rounds`` rounds (cloudpathlib runs once per
workload: it is 4-20 times slower). Prints seconds, rates, ratios of ours against each tool,
peak RSS. The full run takes 10-12 minutes on 2 cores.

Run::

    uv run python benchmarks/transfer.py                       # full: 1 GiB, 3 rounds
    uv run python benchmarks/transfer.py --big-gib 0.25 --rounds 2   # quicker (~6 min)

Not a test: numbers depend on the machine (client and server share its cores).
"""

from __future__ import annotations

import argparse
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
WORKLOADS = (
    "small",
    "small-down",
    "medium",
    "medium-down",
    "big",
    "big-down",
    "resync-up",
    "resync-down-foreign",
)
RESYNCS = ("resync-up", "resync-down-foreign")
TOOLS = ("ours", "ours-nosum", "cloudpathlib", "boto3-tm", "aws", "ours-manifest")
RESYNC_TOOLS = {
    "resync-up": ("ours", "ours-manifest", "aws"),
    "resync-down-foreign": ("ours", "aws"),
}
FOREIGN = "aws-foreign"  # the prefix aws s3 sync uploads for resync-down-foreign


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
                    "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                    "Resource": [f"arn:aws:s3:::{BUCKET}"],
                    "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
                },
            ],
        }
    )


def _peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak RSS. On Linux, this process's VmHWM: ``ru_maxrss`` survives fork+exec, so a
    child would report its parent's (the driver's) peak when that is higher."""
    if who == resource.RUSAGE_SELF and sys.platform.startswith("linux"):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    peak = resource.getrusage(who).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# ---------------------------------------------------------------------------------- workers


def _ours(
    creds: dict[str, Any],
    data: Path,
    sub: str,
    work: Path,
    *,
    checksum: bool,
    sync: str | None,
    dest: Path | None,
) -> Any:
    """Upload (saving a manifest, as the datastore would), download into ``dest``, or sync:
    up (``sync="listing"`` decides from the listing, ``sync="manifest"`` takes the saved
    manifest: sha256 and ETag per key), or down into ``dest``."""
    import inspect

    from provena_like.storage import S3Credentials, TransferEngine

    manifest_file = work / f"manifest-{sub}.json"

    async def run() -> dict[str, Any]:
        async with TransferEngine(S3Credentials(**creds), checksum=checksum) as engine:
            started = time.perf_counter()
            if dest is not None and sync:
                result = await engine.sync_down(dest, sub + "/")
            elif dest is not None:
                # as InteractiveDataset does: the manifest saved at upload gives each key's
                # sha256 and size (multipart objects hashed while uploading carry no
                # x-amz-meta-sha256, so this is what verifies them)
                saved = json.loads(await anyio.Path(manifest_file).read_text())
                specs = [
                    (key, key.removeprefix(sub + "/"), value[0], value[2])
                    for key, value in saved.items()
                ]
                result = await engine.download(specs, dest)
            elif sync:
                extra: dict[str, Any] = {}
                if sync == "manifest":
                    saved = json.loads(await anyio.Path(manifest_file).read_text())
                    extra["remote_sha256"] = {k: v[0] for k, v in saved.items()}
                    # (an engine before the ETag rule trusts the sha256 alone)
                    if "remote_etags" in inspect.signature(engine.sync_up).parameters:
                        extra["remote_etags"] = {k: v[1] for k, v in saved.items() if v[1]}
                result = await engine.sync_up(data, prefix=sub, **extra)
            else:
                result = await engine.upload(data, prefix=sub)
            elapsed = time.perf_counter() - started
        result.raise_for_failures()
        if not sync and checksum and dest is None:
            manifest = {f.path: [f.sha256, f.etag, f.size] for f in result.ok}
            await anyio.Path(manifest_file).write_text(json.dumps(manifest))
        files = len(result) if sync else len(result.ok)  # a re-sync checks every file
        return {"seconds": elapsed, "files": files, "bytes": result.bytes}

    return anyio.run(run)


def _files(data: Path) -> list[Path]:
    return sorted(p for p in data.rglob("*") if p.is_file())


def _cloudpathlib(creds: dict[str, Any], data: Path, sub: str, dest: Path | None) -> dict[str, Any]:
    from provena_like.storage import S3Credentials
    from provena_like.storage.paths import dataset_path

    root = dataset_path(S3Credentials(**creds), sub + "/")
    started = time.perf_counter()
    total = 0
    files = _files(data)
    for local in files:
        relative = local.relative_to(data).as_posix()
        if dest is None:
            (root / relative).upload_from(local)
        else:
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).download_to(dest / relative)
        total += local.stat().st_size
    return {"seconds": time.perf_counter() - started, "files": len(files), "bytes": total}


def _boto3_tm(creds: dict[str, Any], data: Path, sub: str, dest: Path | None) -> dict[str, Any]:
    import boto3  # type: ignore[import-untyped]
    from boto3.s3.transfer import S3Transfer  # type: ignore[import-untyped]

    client = boto3.client(
        "s3",
        endpoint_url=creds["endpoint_url"],
        region_name=creds["region"],
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        aws_session_token=creds["session_token"],
    )
    transfer = S3Transfer(client)
    started = time.perf_counter()
    total = 0
    files = _files(data)
    for local in files:
        relative = local.relative_to(data).as_posix()
        key = f"{creds['prefix']}{sub}/{relative}"
        if dest is None:
            transfer.upload_file(str(local), BUCKET, key)
        else:
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            transfer.download_file(BUCKET, key, str(dest / relative))
        total += local.stat().st_size
    return {"seconds": time.perf_counter() - started, "files": len(files), "bytes": total}


def _aws(
    creds: dict[str, Any], data: Path, sub: str, work: Path, dest: Path | None
) -> dict[str, Any]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": creds["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": creds["secret_access_key"],
        "AWS_SESSION_TOKEN": creds["session_token"],
        "AWS_DEFAULT_REGION": creds["region"],
        "AWS_CONFIG_FILE": str(work / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(work / "aws-credentials"),
    }
    target = f"s3://{BUCKET}/{creds['prefix']}{sub}/"
    files = _files(data)
    aws = shutil.which("aws") or "aws"
    base = [aws, "--endpoint-url", creds["endpoint_url"], "--only-show-errors", "s3"]
    if dest is not None and len(files) == 1:
        command = [*base, "cp", target + files[0].name, str(dest / files[0].name)]
    elif dest is not None:
        command = [*base, "sync", target, str(dest)]
    elif len(files) == 1:
        command = [*base, "cp", str(files[0]), target + files[0].name]
    else:
        command = [*base, "sync", str(data), target]
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    elapsed = time.perf_counter() - started
    total = sum(p.stat().st_size for p in files)
    return {
        "seconds": elapsed,
        "files": len(files),
        "bytes": total,
        "peak_rss_mib": _peak_rss_mib(resource.RUSAGE_CHILDREN),
    }


def worker(args: argparse.Namespace) -> None:
    creds = json.load(sys.stdin)
    data, sub, tool, work = Path(args.data), args.sub, args.worker, Path(args.work)
    dest = Path(args.dest) if args.dest else None
    if tool in ("ours", "ours-nosum", "ours-manifest"):
        sync = ("manifest" if tool == "ours-manifest" else "listing") if args.sync else None
        checksum = tool != "ours-nosum"
        outcome = _ours(creds, data, sub, work, checksum=checksum, sync=sync, dest=dest)
    elif tool == "cloudpathlib":
        outcome = _cloudpathlib(creds, data, sub, dest)
    elif tool == "boto3-tm":
        outcome = _boto3_tm(creds, data, sub, dest)
    else:
        outcome = _aws(creds, data, sub, work, dest)
    outcome.setdefault("peak_rss_mib", _peak_rss_mib())
    print(json.dumps(outcome))


# ---------------------------------------------------------------------------------- driver


def _make_data(root: Path, small: int, medium: int, big_gib: float) -> dict[str, Path]:
    dirs = {"small": root / "small", "medium": root / "medium", "big": root / "big"}
    for name, count, size in (("small", small, 4096), ("medium", medium, MiB)):
        for i in range(count):
            path = dirs[name] / f"d{i % 20:02d}" / f"f{i:05d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(size))
    dirs["big"].mkdir(parents=True)
    chunk = os.urandom(8 * MiB)
    with open(dirs["big"] / "big.bin", "wb") as fh:
        for i in range(int(big_gib * 1024) // 8):
            fh.write(chunk[: 8 * MiB - 1] + bytes([i % 256]))
    return dirs


def _run_worker(
    tool: str,
    creds: dict[str, Any],
    data: Path,
    sub: str,
    work: Path,
    *,
    sync: bool = False,
    dest: Path | None = None,
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", tool, "--data", str(data), "--sub", sub]
    command += ["--work", str(work)] + (["--sync"] if sync else [])
    command += ["--dest", str(dest)] if dest is not None else []
    env = {**os.environ, "PROVENA_CACHE_DIR": str(work / "cache")}
    done = subprocess.run(
        command, input=json.dumps(creds), capture_output=True, text=True, check=False, env=env
    )
    if done.returncode != 0:
        raise SystemExit(f"{tool} {sub} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _inodes(root: Path) -> dict[str, int]:
    """Each file's inode: a file written again (a new file renamed over) gets a new one."""
    return {p.relative_to(root).as_posix(): p.stat().st_ino for p in _files(root)}


def _admin(store: Any, service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=store.endpoint_url,
        region_name=store.region,
        aws_access_key_id=store.admin_access_key,
        aws_secret_access_key=store.admin_secret_key,
    )


def main(args: argparse.Namespace) -> None:
    from provena_like.testing.seaweed import SeaweedS3

    work = Path(tempfile.mkdtemp(prefix="transfer-bench-"))
    try:
        print(
            f"preparing {args.small} x 4 KiB, {args.medium} x 1 MiB, 1 x {args.big_gib} GiB "
            f"in {work} ..."
        )
        dirs = _make_data(work / "data", args.small, args.medium, args.big_gib)
        with SeaweedS3(work / "s3") as store:
            store.create_bucket(BUCKET)
            prefix = "datasets/bench/"
            sts = _admin(store, "sts")
            raw = sts.assume_role(
                RoleArn=store.role_arn,
                RoleSessionName="transfer-bench",
                Policy=_policy(prefix),
                DurationSeconds=3600,
            )["Credentials"]
            sts.close()
            s3 = _admin(store, "s3")
            for i in range(20):  # SeaweedFS allocates volumes on the first writes
                s3.put_object(Bucket=BUCKET, Key=f"warm-up/{i}", Body=os.urandom(8 * MiB))
            s3.close()
            creds = {
                "access_key_id": raw["AccessKeyId"],
                "secret_access_key": raw["SecretAccessKey"],
                "session_token": raw["SessionToken"],
                "expiration": None,
                "endpoint_url": store.endpoint_url,
                "region": store.region,
                "bucket": BUCKET,
                "prefix": prefix,
                "access": "write",
            }
            results: dict[tuple[str, str], list[dict[str, Any]]] = {}
            foreign_copy = work / "foreign-copy"
            if "resync-down-foreign" in args.workloads:
                print("  aws          uploads and copies the foreign dataset ...", flush=True)
                _run_worker("aws", creds, dirs["small"], FOREIGN, work)
                _run_worker("aws", creds, dirs["small"], FOREIGN, work, dest=foreign_copy)
            for workload in args.workloads:
                base = workload.removesuffix("-down")
                down = workload.endswith("-down")
                data = dirs["small" if workload in RESYNCS else base]
                tools = RESYNC_TOOLS.get(workload, TOOLS[:-1])
                tools = tuple(t for t in tools if not args.tools or t in args.tools)
                for round_ in range(args.rounds):
                    # rotate the order each round: no tool always runs first (or last)
                    shift = round_ % len(tools)
                    for tool in tools[shift:] + tools[:shift]:
                        if tool == "cloudpathlib" and round_ > 0:  # 4-20x slower: once
                            continue
                        dest = work / "downloads" if down else None
                        before: dict[str, int] = {}
                        if workload == "resync-down-foreign":
                            # a fresh path each run: ours starts with a cold hash cache
                            dest = work / f"downloads-{tool}-{round_}"
                            shutil.copytree(foreign_copy, dest)  # copy2: mtimes kept
                            before = _inodes(dest)
                            sub = FOREIGN
                        elif workload == "resync-up":
                            uploader = "ours" if tool.startswith("ours") else tool
                            sub = f"{uploader}-small-0"  # the copy that tool uploaded
                        elif down:
                            sub = f"ours-{base}-0"  # what ours uploaded in round 1
                        else:
                            sub = f"{tool}-{workload}-{round_}"
                        print(f"  {tool:12} {workload:11} #{round_ + 1} ...", end="", flush=True)
                        try:
                            outcome = _run_worker(
                                tool, creds, data, sub, work, sync=workload in RESYNCS, dest=dest
                            )
                            if before and dest is not None:
                                after = _inodes(dest)
                                outcome["rewritten"] = sum(
                                    after.get(k) != v for k, v in before.items()
                                )
                        finally:
                            if dest is not None:
                                shutil.rmtree(dest, ignore_errors=True)
                        results.setdefault((tool, workload), []).append(outcome)
                        rewritten = outcome.get("rewritten")
                        extra = "" if rewritten is None else f", {rewritten} rewritten"
                        print(
                            f" {outcome['seconds']:.2f} s, {outcome['peak_rss_mib']:.0f} MiB{extra}"
                        )
        _report(results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _report(results: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    print()
    print(
        "| workload | tool | median s | rate | ours is × faster | peak RSS MiB | bytes moved "
        "| files rewritten |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for workload in WORKLOADS:
        ours = results.get(("ours", workload))
        if not ours:
            continue
        ours_s = statistics.median(r["seconds"] for r in ours)
        for tool in TOOLS:
            runs = results.get((tool, workload))
            if not runs:
                continue
            seconds = statistics.median(r["seconds"] for r in runs)
            first = runs[0]
            if workload.startswith("small") or workload in RESYNCS:
                rate = f"{first['files'] / seconds:,.0f} files/s"
            else:
                rate = f"{first['bytes'] / seconds / 1e6:,.0f} MB/s"
            ratio = "—" if tool == "ours" else f"{seconds / ours_s:.2f}"
            rss = max(r["peak_rss_mib"] for r in runs)
            ours_tool = tool.startswith("ours")
            sent = first["bytes"] if ours_tool or workload not in RESYNCS else "n/a"
            rewritten = max((r.get("rewritten", -1) for r in runs), default=-1)
            row = [workload, tool, f"{seconds:.2f}", rate, ratio, f"{rss:.0f}", str(sent)]
            row.append(str(rewritten) if rewritten >= 0 else "")
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--small", type=int, default=2000, help="number of 4 KiB files")
    parser.add_argument("--medium", type=int, default=200, help="number of 1 MiB files")
    parser.add_argument("--big-gib", type=float, default=1.0, help="size of the big file")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per (tool, workload)")
    parser.add_argument(
        "--workloads",
        type=lambda text: [w for w in text.split(",") if w],
        default=list(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)} "
        "(a -down or the resync-up workload needs its upload workload too)",
    )
    parser.add_argument(
        "--tools",
        type=lambda text: [t for t in text.split(",") if t],
        default=[],
        help=f"comma-separated subset of {','.join(TOOLS)} (default: all)",
    )
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--sub", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--sync", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dest", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.worker:
        worker(parsed)
    else:
        main(parsed)
