"""Starting ``weed`` so that it dies with its parent, and finding one that did not.

Used by :mod:`.seaweed`. ``weed`` runs in a session of its own (so that a Ctrl+C in the
terminal reaches the parent, which stops it cleanly), which also means a parent killed with
SIGKILL used to leave it running: it kept its ports and the lock on its data directory, and
the next start on that directory failed. Two defences:

* On Linux the child asks the kernel for SIGKILL when its parent goes away
  (``prctl(PR_SET_PDEATHSIG)``). The kernel ties that to the *thread* that forked the
  child, so :func:`spawn` forks from a dedicated thread that lives exactly as long as the
  child (it waits for it); a worker thread of a pool (``anyio.to_thread``) would otherwise
  kill ``weed`` as soon as the pool retired it.
* Every start records the child's pid in ``weed.pid`` in the data directory, and
  :func:`stop_leftover` looks for a ``weed`` still running on the directory (by that pid
  file, and on Linux by scanning ``/proc`` for a ``weed mini -dir=<data dir>/store``
  command line) and stops it, or says exactly what to do when it can't.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from provena_like._private_files import write_private_file

log = logging.getLogger("provena_like.testing.seaweed")

PID_FILE = "weed.pid"
"""The pid of the last ``weed`` started on a data directory (0600)."""

_PR_SET_PDEATHSIG = 1
_STOP_GRACE = 5.0
_POLL = 0.05


def _load_prctl() -> Callable[..., int] | None:
    """The C library's ``prctl`` (Linux), resolved in the parent: no dlopen after fork."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()


def _parent_death_signal() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """In the child: get SIGKILL when the parent (thread) dies; keep created files private."""
    os.umask(0o077)
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# Replaced by tests that need to leave a ``weed`` behind (as a platform without prctl would).
_preexec: Callable[[], None] = _parent_death_signal


def spawn(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log_file: IO[bytes]
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, tied to this process's lifetime (Linux).

    Args:
        argv: The command line.
        cwd: The working directory.
        env: The complete environment.
        log_file: Receives stdout and stderr.

    Returns:
        The process. A daemon thread waits for it (reaping it when it exits); ``poll`` and
        ``wait`` on the returned object keep working as usual.

    Raises:
        OSError: If the process can't be started.
    """
    result: list[subprocess.Popen[bytes] | BaseException] = []
    started = threading.Event()
    preexec = _preexec

    def keeper() -> None:
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec if os.name == "posix" else None,  # not on Windows
            )
        except BaseException as exc:
            result.append(exc)
            started.set()
            return
        result.append(proc)
        started.set()
        # Keep this thread (the child's "parent" for PR_SET_PDEATHSIG) alive while the child
        # runs; it also reaps the child as soon as it exits.
        proc.wait()

    thread = threading.Thread(target=keeper, name=f"weed-keeper-{argv[0]}", daemon=True)
    thread.start()
    started.wait()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def write_pid_file(data_dir: Path, pid: int) -> None:
    """Record ``pid`` as the ``weed`` running on ``data_dir`` (owner-only file)."""
    write_private_file(data_dir / PID_FILE, f"{pid}\n".encode("ascii"))


def remove_pid_file(data_dir: Path, pid: int) -> None:
    """Remove the pid file if it still names ``pid``."""
    path = data_dir / PID_FILE
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text(encoding="ascii").strip()) == pid:
            path.unlink()


def _cmdline(pid: int) -> list[str] | None:
    """The command line of ``pid`` (``/proc``, else ``ps``), ``None`` when unknown."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        if Path("/proc/self/cmdline").exists():
            return None  # /proc works: the process is gone
    except OSError:
        return None
    else:
        return [part.decode("utf-8", "surrogateescape") for part in raw.split(b"\0") if part]
    if sys.platform == "win32":
        return None
    try:  # macOS and the BSDs: ps(1) prints the arguments separated by spaces
        out = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.split() or None


def _is_weed_on(argv: list[str], store_dir: Path) -> bool:
    if len(argv) < 2 or Path(argv[0]).name not in {"weed", "weed.exe"} or argv[1] != "mini":
        return False
    return f"-dir={store_dir}" in argv


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still "exists"; /proc tells whether it has already exited.
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        if state and state[0] in {"Z", "X"}:
            return False
    return True


def _owned_by_me(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}").stat().st_uid == os.getuid()
    except OSError:
        return False


def find_leftovers(data_dir: Path, store_dir: Path) -> list[int]:
    """Pids of ``weed mini`` processes still running on ``store_dir``.

    Args:
        data_dir: Holds the pid file.
        store_dir: The ``-dir`` the processes were started with.

    Returns:
        The pids, each verified by its command line (a recycled pid in the pid file is
        ignored).
    """
    if sys.platform == "win32":  # no /proc, no ps; and os.kill(pid, 0) terminates there
        return []
    found: set[int] = set()
    pid_path = data_dir / PID_FILE
    recorded: int | None = None
    with contextlib.suppress(OSError, ValueError):
        recorded = int(pid_path.read_text(encoding="ascii").strip())
    proc_fs = Path("/proc/self/cmdline").exists()
    if recorded is not None and recorded != os.getpid() and _alive(recorded):
        argv = _cmdline(recorded)
        if argv is not None and _is_weed_on(argv, store_dir):
            found.add(recorded)
    if proc_fs:
        with contextlib.suppress(OSError):
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                pid = int(entry.name)
                argv = _cmdline(pid)
                if argv is not None and _is_weed_on(argv, store_dir) and _alive(pid):
                    found.add(pid)
    return sorted(found)


def stop_leftover(data_dir: Path, store_dir: Path, *, grace: float = _STOP_GRACE) -> None:
    """Stop any ``weed`` an earlier, crashed run left on ``store_dir``.

    Args:
        data_dir: Holds the pid file.
        store_dir: The data directory ``weed`` was given.
        grace: Seconds between SIGTERM and SIGKILL.

    Raises:
        RuntimeError: If a leftover process can't be stopped (another user's, or it
            survives SIGKILL); the message names the pid and what to do.
    """
    for pid in find_leftovers(data_dir, store_dir):
        if Path("/proc").is_dir() and not _owned_by_me(pid):
            raise RuntimeError(
                f"another user's weed process (pid {pid}) is running on {store_dir}; "
                "stop it (or use another data directory) and start again"
            )
        log.warning("stopping a weed process left over by an earlier run (pid %d)", pid)
        try:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(_POLL)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + grace
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(_POLL)
        except ProcessLookupError:
            pass
        except PermissionError as exc:
            raise RuntimeError(
                f"a weed process (pid {pid}) from an earlier run still holds {store_dir} and "
                f"can't be stopped from here: stop it with 'kill {pid}' and start again"
            ) from exc
        if _alive(pid):
            raise RuntimeError(
                f"a weed process (pid {pid}) from an earlier run still holds {store_dir} after "
                f"SIGKILL: stop it with 'kill -9 {pid}' and start again"
            )
    with contextlib.suppress(OSError):
        (data_dir / PID_FILE).unlink()
