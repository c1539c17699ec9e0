"""Benchmark: how long ``provena-like`` takes to start (``--help``, client commands).

Each command runs 10 times as a fresh process of the ``provena-like`` console script (the
one next to this Python; ``python -m provena_like.cli.main`` when there is none); the median
wall time and the median CPU time (user + system, which the machine's load inflates less)
are printed, with ``aws --version`` beside it when the AWS CLI is installed. Rows:

* ``--help``, ``--version`` and a subcommand's ``-h``: the CLI alone;
* ``whoami`` with an empty token directory: loads the SDK client and stops (exit 3, not
  signed in) before any request, so the time is start-up, not network;
* ``dataset show|list|ls|search --json`` and ``item show --json`` signed in, against a
  ``LocalStack`` server started by this script (in this process, on loopback) with one
  dataset minted: whole client commands, their requests included (the server's time is in
  the wall time, not the CPU).

Python's bytecode cache is on for the runs (in a temporary ``PYTHONPYCACHEPREFIX``, after one
warm-up run of each command), as after any install: with ``PYTHONDONTWRITEBYTECODE`` set,
every start compiles every module again and takes several times longer.
``python -X importtime .venv/bin/provena-like ...`` shows which imports cost what.

Not a test: the numbers depend on the machine and its load (on a busy machine the CPU
column is the steadier one). The target (issue 14) is under 0.5 s for ``--help`` and client
commands.

    uv run python benchmarks/cli_startup.py
    uv run python benchmarks/cli_startup.py --runs 21
"""

from __future__ import annotations

import argparse
import os
import resource
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

from provena_like.testing import LocalStack


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def medians(cmd: list[str], runs: int, env: dict[str, str]) -> tuple[float, float, int]:
    """Median wall and CPU seconds of ``runs`` fresh runs of ``cmd``, after one warm-up run."""
    warm = subprocess.run(cmd, env=env, capture_output=True, check=False)
    walls, cpus = [], []
    for _ in range(runs):
        cpu = _children_cpu()
        start = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=False)
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus), warm.returncode


def table(runs: int, commands: dict[str, tuple[list[str], dict[str, str]]]) -> None:
    """Print the medians of each command (and its exit code)."""
    print(f"median of {runs} runs, seconds")
    print("    wall     cpu  exit  command")
    for name, (cmd, env) in commands.items():
        wall, cpu, code = medians(cmd, runs, env)
        print(f"  {wall:6.3f}  {cpu:6.3f}  {code:4d}  {name}")


async def main() -> None:
    """Run the commands and print a table of medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    base = {k: v for k, v in os.environ.items() if not k.startswith("PROVENA_")}
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    base["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="cli-startup-pyc-")
    offline = {
        **base,
        "PROVENA_BASE_URL": "http://127.0.0.1:9",
        "PROVENA_TOKEN_DIR": tempfile.mkdtemp(prefix="cli-startup-"),
    }
    script = Path(sys.executable).with_name("provena-like")
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "provena_like.cli.main"]
    async with LocalStack() as stack:
        signed_in = {
            **base,
            "PROVENA_BASE_URL": stack.url,
            "PROVENA_TOKEN_DIR": str(stack.data_dir / "tokens" / stack.user.username),
        }
        mint = runpy.run_path(str(Path(__file__).with_name("datasets.py")))["mint_dataset"]
        async with stack.client() as pv:
            handle = await mint(pv, "benchmarks/cli_startup.py")
        commands = {
            "python -c pass (interpreter alone)": ([sys.executable, "-c", "pass"], base),
            "provena-like --help": ([*cli, "--help"], offline),
            "provena-like --version": ([*cli, "--version"], offline),
            "provena-like dataset list -h": ([*cli, "dataset", "list", "-h"], offline),
            "provena-like upload --help": ([*cli, "upload", "--help"], offline),
            "provena-like whoami (client, not signed in)": ([*cli, "whoami"], offline),
        }
        for sub in (["show", handle], ["list"], ["ls", handle], ["search", "benchmark"]):
            name = f"provena-like dataset {sub[0]} --json (signed in, LocalStack)"
            commands[name] = ([*cli, "dataset", *sub, "--json"], signed_in)
        name = "provena-like item show --json (signed in, LocalStack)"
        commands[name] = ([*cli, "item", "show", handle, "--json"], signed_in)
        aws = shutil.which("aws")
        if aws:
            commands["aws --version"] = ([aws, "--version"], base)
        # the server runs in this process: measure from a thread, so it keeps serving
        await anyio.to_thread.run_sync(table, args.runs, commands)


if __name__ == "__main__":
    anyio.run(main)
