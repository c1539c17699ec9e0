"""The scale benchmark's code path, with tiny numbers, so that it can't rot.

Not a timed test: it runs ``benchmarks/scale.py --quick`` (its own ``provena-like serve`` in a
subprocess, a few hundred items, two clients for a second) and checks that every phase ran,
that the paginator listed exactly the seeded items and that the mixed load had no errors.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"


def test_the_scale_benchmark_runs_every_phase() -> None:
    args = ["--quick", "--items", "120", "--clients", "2", "--duration", "1"]
    args += ["--api-sample", "20", "--compare-requests", "10", "--page-size", "50"]
    done = subprocess.run(
        [sys.executable, str(_SCRIPT), *args], capture_output=True, text=True, timeout=600
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    assert re.search(r"seed, API\s+:\s+20 items", out), out
    assert re.search(r"seed, db layer\s+:\s+100 items", out), out
    assert re.search(r"list\s+:\s+120 items, 3 pages of 50", out), out
    assert "client RSS" in out and "pooled client" in out, out
    load = re.search(r"mixed load\s+:.*errors (\d+)", out)
    assert load is not None and load.group(1) == "0", out
