"""The transfer service benchmark's code path, on 5 files, so that it can't rot.

Not a timed test: it runs ``benchmarks/transfer_service.py``'s :class:`Bench` (setup, every
tool on every workload once, the report) against the session's stack and checks that each run
copied every file whole (``Bench.once`` checks the destination after each run); the bare
engine and the server run in the test's process. rclone takes part when it is installed
(``uv sync --group bench``).
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from provena_like.testing import LocalStack

pytestmark = pytest.mark.anyio

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "transfer_service.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_transfer_service", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


async def test_the_benchmark_copies_every_workload_with_every_tool(
    localstack: LocalStack,
) -> None:
    bench_module = _load()
    assert localstack.settings is not None
    root = localstack.settings.resolved_transfer_roots[0] / f"bench-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    tools = [
        t for t in bench_module.TOOLS if not t.startswith("rclone") or bench_module.rclone_binary()
    ]
    stack = await bench_module.StackInfo.of(localstack)  # the session's: in this process
    bench = bench_module.Bench(
        stack, root, small=5, big_mib=1, tools=tools, timeout=120, spawn=False
    )
    await bench.setup()
    await bench.run(rounds=1, big_rounds=1)
    for workload in bench_module.WORKLOADS:
        for tool in tools:
            assert bench.median(tool, workload) > 0, (tool, workload)
    report = bench.report().splitlines()
    assert [line.split()[0] for line in report[1:5]] == list(bench_module.WORKLOADS)
    assert "overhead" in report[0]
