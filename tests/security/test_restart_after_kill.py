"""A server killed with SIGKILL can start again on the same data dir (issue 9, item 6).

Real processes: ``provena-like serve`` (API + SeaweedFS) is killed with SIGKILL and started
again on the same data directory; its ``weed`` child must not outlive it. When a ``weed``
does survive (a platform without parent-death signals, or a ``weed`` started by an older
version), the next start must find it by its data directory and stop it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provena_like.testing import _weed_process
from provena_like.testing.seaweed import SeaweedS3
from tests.support.processes import alive, free_port, wait_until_serving

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SIGKILL/proc semantics checked on Linux"
)

START_TIMEOUT = 180.0  # a shared, slow machine: generous on purpose


def _wait_until(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _weed_pid(data_dir: Path) -> int:
    """The pid of the ``weed mini`` running on ``data_dir`` (found in /proc)."""
    found = _weeds(data_dir)
    assert len(found) == 1, found
    return found[0]


def _weeds(data_dir: Path) -> list[int]:
    """Pids of every live ``weed mini`` on ``data_dir``."""
    wanted = f"-dir={data_dir / 'store'}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if argv[0].endswith(b"weed") and wanted in argv and alive(int(entry.name)):
                    found.append(int(entry.name))
    return found


@contextlib.contextmanager
def _serve(data_dir: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``provena-like serve`` on ``data_dir``, up and answering; killed on the way out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROVENA_", "WEED_"))}
    env["PROVENA_CACHE_DIR"] = str(data_dir.parent / "cache")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from provena_like.cli.main import main; main()",
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_until_serving(
            proc, f"http://127.0.0.1:{port}/openapi.json", log, timeout=START_TIMEOUT
        )
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)


def test_serve_killed_with_sigkill_restarts_on_the_same_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "server"
    log = tmp_path / "serve.log"
    port = free_port()
    try:
        with _serve(data_dir, port, log) as first:
            weed = _weed_pid(data_dir / "s3")
            assert alive(weed)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=60)
        # weed goes with it: it must not keep its lock and ports
        _wait_until(lambda: not alive(weed), 60, f"weed (pid {weed}) to exit with its parent")

        with _serve(data_dir, port, log) as second:
            new_weed = _weed_pid(data_dir / "s3")
            assert new_weed != weed and alive(new_weed)
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=120) == 0
        _wait_until(lambda: not alive(new_weed), 60, "weed to stop with serve")
    finally:  # never leave a weed behind, even when the test fails
        for pid in _weeds(data_dir / "s3"):
            os.kill(pid, signal.SIGKILL)


_ORPHAN_MAKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from provena_like.testing import seaweed
    from provena_like.testing.seaweed import SeaweedS3

    # As on a platform without parent-death signals: nothing ties weed to this process.
    if hasattr(seaweed, "_weed_process"):
        seaweed._weed_process._preexec = lambda: os.umask(0o077)
    store = SeaweedS3(Path(sys.argv[1]))
    store.start(timeout=120)
    print(store.pid, flush=True)
    time.sleep(3600)
    """
)


def test_weed_left_over_by_a_crash_is_stopped_on_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "s3"
    helper = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_MAKER, str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    leftover: int | None = None
    try:
        assert helper.stdout is not None
        line = helper.stdout.readline()
        assert line.strip(), "the helper did not start SeaweedFS"
        leftover = int(line)
        helper.kill()
        helper.wait(timeout=60)
        time.sleep(1)
        assert alive(leftover), "weed should have survived its parent in this set-up"

        store = SeaweedS3(data_dir)
        # One we may not stop (another user's): the message names it and says what to do.
        with monkeypatch.context() as patch:
            patch.setattr(_weed_process, "_owned_by_me", lambda _pid: False)
            with pytest.raises(RuntimeError, match=rf"pid {leftover}\).*stop it"):
                store.start(timeout=120)
        assert alive(leftover)
        try:
            store.start(timeout=120)
            assert not alive(leftover)
            store.create_bucket("after-crash")
            assert store.pid != leftover
        finally:
            store.stop()
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait(timeout=60)
        if helper.stdout is not None:
            helper.stdout.close()
        if leftover is not None and alive(leftover):
            os.kill(leftover, signal.SIGKILL)
