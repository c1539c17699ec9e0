"""Benchmark: how long ``provena-like`` takes to start (``--help``, a client command).

Each command runs 5 times as a fresh process; the median wall time is printed, with
``aws --version`` beside it when the AWS CLI is installed. The client command is ``whoami``
with an empty token directory: it loads the SDK client and stops (exit 3, not signed in)
before any request, so the time is start-up, not network (``python -X importtime -m
provena_like.cli.main ...`` shows which imports cost what).

Not a test: the numbers depend on the machine and its load. The target (issue 14) is
under 0.5 s for ``--help`` and client commands.

    uv run python benchmarks/cli_startup.py
    uv run python benchmarks/cli_startup.py --runs 9
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def median_seconds(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    """Median wall time of ``runs`` fresh runs of ``cmd`` (output discarded)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Run the commands and print a table of medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    env = {
        **os.environ,
        "PROVENA_BASE_URL": "http://127.0.0.1:9",
        "PROVENA_TOKEN_DIR": tempfile.mkdtemp(prefix="cli-startup-"),
    }
    cli = [sys.executable, "-m", "provena_like.cli.main"]
    commands = {
        "python -c pass (interpreter alone)": [sys.executable, "-c", "pass"],
        "provena-like --help": [*cli, "--help"],
        "provena-like --version": [*cli, "--version"],
        "provena-like whoami (client, not signed in)": [*cli, "whoami"],
        "provena-like dataset list -h": [*cli, "dataset", "list", "-h"],
    }
    aws = shutil.which("aws")
    if aws:
        commands["aws --version"] = [aws, "--version"]
    print(f"median of {args.runs} runs, seconds")
    for name, cmd in commands.items():
        print(f"  {median_seconds(cmd, args.runs, env):6.3f}  {name}")


if __name__ == "__main__":
    main()
