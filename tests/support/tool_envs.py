"""Separate Python environments for third-party tools the tests run as they are.

The real ``globus`` CLI (globus-cli pins an exact globus-sdk, not the one of our lock) and
globus-sdk 3.x (it sends full v3 documents) cannot live in the project's environment. Each gets
a virtual environment of its own, made by uv from a requirements file in
``tests/transfer_service/envs/`` whose every version and hash is pinned:

* :func:`uv_command` — the uv that runs the tests (``uv run`` exports it as ``UV``), else
  ``uv`` on ``PATH``;
* :func:`tool_env` — a fresh environment for one requirements file (with the test's own
  Python; uv's cache makes a second install a matter of links, about 2 s);
* :func:`tool_env_fixture` — a session fixture building one such environment.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import run_setup

ENVS_DIR = Path(__file__).parent.parent / "transfer_service" / "envs"
"""Where the pinned requirements files of the tool environments live."""

INSTALL_TIMEOUT = 240.0
"""Bounds one ``uv pip install`` (a cold cache downloads a few MB from PyPI)."""


@dataclass(frozen=True)
class ToolEnv:
    """A virtual environment with a tool installed: its interpreter and scripts directory."""

    root: Path

    @property
    def bin(self) -> Path:
        """The directory of its console scripts."""
        return self.root / ("Scripts" if os.name == "nt" else "bin")

    @property
    def python(self) -> Path:
        """Its Python interpreter."""
        return self.bin / ("python.exe" if os.name == "nt" else "python")

    def script(self, name: str) -> Path:
        """The console script ``name`` (e.g. ``globus``)."""
        return self.bin / (f"{name}.exe" if os.name == "nt" else name)


def uv_command() -> str:
    """The uv executable: the one ``uv run`` exported as ``UV``, else ``uv`` on ``PATH``."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.fail(
            "uv is needed to build the tool environments of tests/transfer_service "
            "(run the tests with `uv run pytest`, or put uv on PATH)"
        )
    return found


def _uv(*args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT")}
    run_setup(
        [uv_command(), *args],
        what=f"`uv {' '.join(args[:2])}`",
        needs="PyPI or uv's cache (to install a tool of tests/transfer_service/envs)",
        timeout=INSTALL_TIMEOUT,
        env=env,
    )


def tool_env(requirements: str, dest: Path) -> ToolEnv:
    """A new virtual environment at ``dest`` with ``envs/<requirements>`` installed.

    The environment uses the interpreter running the tests; the install requires the hashes
    of the file (nothing unpinned can slip in).
    """
    env = ToolEnv(dest)
    _uv("venv", "--quiet", "--python", sys.executable, str(dest))
    _uv(
        "pip",
        "install",
        "--quiet",
        "--python",
        str(env.python),
        "--require-hashes",
        "--requirement",
        str(ENVS_DIR / requirements),
    )
    return env


def tool_env_fixture(requirements: str, name: str) -> Callable[..., ToolEnv]:
    """A session fixture ``name`` giving a :class:`ToolEnv` with ``requirements`` installed."""

    @pytest.fixture(scope="session", name=name)
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> ToolEnv:
        return tool_env(requirements, tmp_path_factory.mktemp(name) / "venv")

    return fixture
