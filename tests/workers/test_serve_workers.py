"""``provena-like serve --workers 2``: one object store, two API processes on the port.

The command line on SQLite; two workers on PostgreSQL are tested in test_workers.py, and
``serve --database`` in tests/cli/test_serve_database.py.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx

from tests.support.processes import alive, free_port, serve_process, wait_until_serving


def test_serve_with_two_workers_answers_from_both_and_stops_them(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVENA_")}
    env["PROVENA_CACHE_DIR"] = str(tmp_path / "cache")
    data_dir, port, log = tmp_path / "data", free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    args = ["--data-dir", str(data_dir), "--port", str(port), "--workers", "2", "--json"]
    with serve_process(args, env, log) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, log.read_text()
        doc = json.loads(line)
        assert doc["workers"] == 2 and doc["initial_admin"]["username"] == "admin"
        wait_until_serving(proc, f"{url}/healthz", log, timeout=120)
        pids: set[int] = set()
        deadline = time.monotonic() + 120
        while len(pids) < 2:  # a new connection each time: either worker may take it
            assert time.monotonic() < deadline, f"only worker {pids} answered"
            pids.add(int(httpx.get(f"{url}/healthz", timeout=30).json()["worker"]))
        assert proc.pid not in pids
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        assert [pid for pid in pids if alive(pid)] == []
