"""Several server processes starting at once on one fresh data dir (``serve --workers N``).

Each runs the migrations, loads (or creates) the signing key and bootstraps the first
administrator; they must all come up, and with one and the same key. On SQLite and on
PostgreSQL (a new, empty database of the session's server).
"""

from __future__ import annotations

import multiprocessing
import queue
from pathlib import Path

from provena_like.server.settings import ServerSettings
from tests.support.auth_helpers import CHEAP_PASSWORD_HASHING
from tests.support.startup_child import start_once

PROCESSES = 4


def test_processes_starting_at_once_share_one_schema_key_and_admin(
    tmp_path: Path, own_database_url: str | None
) -> None:
    settings = ServerSettings.model_validate(
        {
            "data_dir": tmp_path / "server",
            "public_url": "http://127.0.0.1:9",
            "password_hashing": CHEAP_PASSWORD_HASHING,
            "database_url": own_database_url,
        }
    )
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES, timeout=240)
    results = context.Queue()
    processes = [
        context.Process(target=start_once, args=(settings, barrier, results), daemon=True)
        for _ in range(PROCESSES)
    ]
    for p in processes:
        p.start()
    try:
        answers = [results.get(timeout=240) for _ in range(PROCESSES)]
    except queue.Empty:
        raise AssertionError(f"exit codes {[p.exitcode for p in processes]}") from None
    finally:
        for p in processes:
            p.join(60)
            if p.is_alive():
                p.kill()
    assert [a for a in answers if a[0] != "ok"] == []
    assert len({jwks for _, jwks in answers}) == 1, "each process made its own signing key"
