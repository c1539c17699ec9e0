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


def _run(args: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, str(_SCRIPT), *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done.stdout


def test_every_phase_runs_and_a_seeded_state_is_kept_and_reused(tmp_path: Path) -> None:
    """``--seeded DIR``: the first run seeds and keeps the state, the second starts from it.

    The first run has every phase; the second skips the pooled vs new client phase
    (``--compare-requests 0``). Two runs, each with its own ``provena-like serve``.
    """
    seeded = tmp_path / "seeded"
    args = ["--quick", "--items", "120", "--clients", "2", "--duration", "1"]
    args += ["--api-sample", "20", "--page-size", "50", "--seeded", str(seeded)]
    first = _run([*args, "--compare-requests", "10"])
    assert re.search(r"seed, API\s+:\s+20 items", first), first
    assert re.search(r"seed, db layer\s+:\s+100 items", first), first
    assert "client RSS" in first and "pooled client" in first, first
    assert f"seeded state kept in {seeded}" in first, first
    assert (seeded / "seeded.json").is_file() and (seeded / "data").is_dir()

    second = _run([*args, "--compare-requests", "0"])
    # the second run seeds nothing: it reprints the kept rates and lists exactly the seeded
    # items, although the first run's mixed load wrote more into its own copy
    assert "seeded state kept" not in second, second
    assert re.search(r"^  seed, API\s+:\s+20 items", second, re.MULTILINE), second
    assert not re.search(r"^seed, ", second, re.MULTILINE), second
    assert "pooled client" not in second, second
    for out in (first, second):
        assert re.search(r"list\s+:\s+120 items, 3 pages of 50", out), out
        load = re.search(r"mixed load\s+:.*errors (\d+)", out)
        assert load is not None and load.group(1) == "0", out
