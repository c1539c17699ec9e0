"""The ``provena-like`` command against the session's LocalStack (and its own, for the demo)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from provena_like.cli.main import app
from provena_like.testing.localstack import LocalStack
from tests.support.cli_helpers import approve_cli_login
from tests.support.cli_runner import CliRunner

runner = CliRunner()


def _env(stack: LocalStack, token_dir: Path) -> dict[str, str]:
    return {"PROVENA_BASE_URL": stack.url, "PROVENA_TOKEN_DIR": str(token_dir)}


def test_admin_commands(localstack: LocalStack) -> None:
    env = _env(localstack, localstack.data_dir / "tokens" / "admin")
    result = runner.invoke(
        app,
        ["admin", "create-user", "cli-carol", "--password", "carol-password-1"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "created user cli-carol" in result.output
    result = runner.invoke(app, ["admin", "create-group", "cli-team"], env=env)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["admin", "add-member", "cli-team", "cli-carol"], env=env)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["admin", "list-users"], env=env)
    assert "cli-carol" in result.output
    result = runner.invoke(app, ["admin", "create-client", "cli-robot"], env=env)
    assert result.exit_code == 0, result.output
    assert "client secret (shown once)" in result.output


def test_admin_command_refused_for_regular_user(localstack: LocalStack) -> None:
    env = _env(localstack, localstack.data_dir / "tokens" / localstack.user.username)
    result = runner.invoke(app, ["admin", "create-group", "nope"], env=env)
    assert result.exit_code == 4  # not found / no permission
    assert "403" in result.output


@pytest.mark.anyio
async def test_login_whoami_logout_through_the_real_command(
    localstack: LocalStack, tmp_path: Path
) -> None:
    env = {**os.environ, **_env(localstack, tmp_path / "tokens"), "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "provena_like.cli.main", "login"]
    async with await anyio.open_process(cmd, env=env, stderr=subprocess.STDOUT) as proc:
        assert proc.stdout is not None
        seen = await approve_cli_login(proc.stdout, localstack)
        with anyio.fail_after(30):
            rest = b"".join([chunk async for chunk in proc.stdout])
            await proc.wait()
    assert proc.returncode == 0, (seen + rest).decode()
    assert b"Signed in" in rest
    files = list((tmp_path / "tokens").glob("*.json"))  # beside it: the store's lock file
    assert len(files) == 1 and (files[0].stat().st_mode & 0o777) == 0o600

    def whoami() -> str:
        result = runner.invoke(app, ["whoami"], env=_env(localstack, tmp_path / "tokens"))
        assert result.exit_code == 0, result.output
        return result.output

    assert localstack.user.username in await anyio.to_thread.run_sync(whoami)

    def logout_then_whoami() -> tuple[int, int]:
        out = runner.invoke(app, ["logout"], env=_env(localstack, tmp_path / "tokens"))
        again = runner.invoke(app, ["whoami"], env=_env(localstack, tmp_path / "tokens"))
        return out.exit_code, again.exit_code

    assert await anyio.to_thread.run_sync(logout_then_whoami) == (0, 3)  # 3: not signed in
    assert list((tmp_path / "tokens").glob("*.json")) == []


def test_demo_passes_end_to_end() -> None:
    result = runner.invoke(app, ["demo", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "all steps passed" in result.output
