"""Exit codes and error messages of ``provena-like``: one code per error class, no tracebacks."""

from __future__ import annotations

import fcntl
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from provena_like.cli._errors import ExitCode
from provena_like.cli.main import app
from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import bind_socket
from tests.support.cli_helpers import run_cli
from tests.support.cli_runner import CliRunner

runner = CliRunner()


def _user_env(stack: LocalStack) -> dict[str, str]:
    return {
        "PROVENA_BASE_URL": stack.url,
        "PROVENA_TOKEN_DIR": str(stack.data_dir / "tokens" / stack.user.username),
    }


def _json_error(output: str) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(output)["error"]
    return error


_cli = run_cli


def test_help_version_and_usage_errors() -> None:
    for flag in ("-h", "--help"):
        result = runner.invoke(app, [flag])
        assert result.exit_code == 0, result.output
        assert "Exit codes: 0 ok" in result.output
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.startswith("provena-like ")
    assert runner.invoke(app, ["whoami", "-h"]).exit_code == 0

    unknown = runner.invoke(app, ["no-such-command"])
    assert unknown.exit_code == ExitCode.USAGE
    # a usage error the command finds itself (typer.BadParameter): 2 too, also as JSON
    both = runner.invoke(app, ["access", "grant", "x", "data-read", "--json"])
    assert both.exit_code == ExitCode.USAGE
    error = _json_error(both.stdout)
    assert error["kind"] == "usage" and "--general or --group" in error["message"]


def test_not_signed_in_is_auth(tmp_path: Path) -> None:
    env = {"PROVENA_BASE_URL": "http://127.0.0.1:9", "PROVENA_TOKEN_DIR": str(tmp_path)}
    result = runner.invoke(app, ["whoami", "--json"], env=env)
    assert result.exit_code == ExitCode.AUTH, result.output
    assert _json_error(result.stdout)["kind"] == "auth"


def test_server_down_names_the_url(tmp_path: Path) -> None:
    sock = bind_socket()  # a port nothing listens on once closed
    port = sock.getsockname()[1]
    sock.close()
    env = {"PROVENA_BASE_URL": f"http://127.0.0.1:{port}", "PROVENA_ACCESS_TOKEN": "t"}
    result = runner.invoke(app, ["whoami"], env=env)
    assert result.exit_code == ExitCode.UNREACHABLE, result.output
    assert f"127.0.0.1:{port}" in result.output and "refused" in result.output
    assert "Traceback" not in result.output
    as_json = runner.invoke(app, ["whoami", "--json"], env=env)
    assert _json_error(as_json.stdout)["kind"] == "unreachable"


@pytest.fixture
def other_web_server() -> Iterator[str]:
    """A web server that is not provena_like: every path is an HTML 404."""

    class NotHere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>not here</html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = HTTPServer(("127.0.0.1", 0), NotHere)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_wrong_url_says_so(other_web_server: str) -> None:
    env = {"PROVENA_BASE_URL": other_web_server, "PROVENA_ACCESS_TOKEN": "t"}
    result = runner.invoke(app, ["whoami", "--json"], env=env)
    assert result.exit_code == ExitCode.UNREACHABLE, result.output
    error = _json_error(result.stdout)
    assert error["kind"] == "wrong_url" and "not provena_like" in error["message"]


def test_not_found_and_forbidden_are_4(localstack: LocalStack) -> None:
    env = _user_env(localstack)
    missing = runner.invoke(app, ["access", "show", "10378.1/0000000", "--json"], env=env)
    assert missing.exit_code == ExitCode.NOT_FOUND, missing.output
    assert _json_error(missing.stdout)["status"] == 404
    refused = runner.invoke(app, ["admin", "create-group", "nope"], env=env)
    assert refused.exit_code == ExitCode.NOT_FOUND, refused.output
    assert "403" in refused.output


def test_invalid_password_is_usage_and_never_echoed(localstack: LocalStack) -> None:
    env = {
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_TOKEN_DIR": str(localstack.data_dir / "tokens" / "admin"),
    }
    secret = "tiny7"
    result = _cli("admin", "create-user", "cli-short", "--password", secret, env=env)
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert "password" in result.stderr
    assert secret not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    as_json = _cli("admin", "create-user", "cli-short", "--password", secret, "--json", env=env)
    assert as_json.returncode == ExitCode.USAGE
    assert _json_error(as_json.stdout)["kind"] == "invalid" and secret not in as_json.stdout


def test_serve_port_in_use(tmp_path: Path) -> None:
    busy = bind_socket()
    busy.listen()
    port = busy.getsockname()[1]
    try:
        result = _cli("serve", "--port", str(port), "--data-dir", str(tmp_path / "srv"))
    finally:
        busy.close()
    assert result.returncode == ExitCode.FAILED, result.stdout + result.stderr
    assert f"port {port} is in use" in result.stderr
    assert "already running" in result.stderr and "Traceback" not in result.stderr


def test_serve_data_dir_in_use(tmp_path: Path) -> None:
    data_dir = tmp_path / "srv"
    data_dir.mkdir()
    with (data_dir / "serve.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242")
        held.flush()
        result = _cli("serve", "--port", "0", "--data-dir", str(data_dir), "--json")
    assert result.returncode == ExitCode.FAILED, result.stdout + result.stderr
    error = _json_error(result.stdout)
    assert error["kind"] == "in_use" and "pid 4242" in error["message"]


def test_every_command_has_json_and_help() -> None:
    import typer.main

    def leaves(command: Any, path: str) -> Iterator[tuple[str, Any]]:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            yield path, command
            return
        for name, sub in subcommands.items():
            yield from leaves(sub, f"{path} {name}".strip())

    found = dict(leaves(typer.main.get_command(app), ""))
    assert {"dataset mint", "dataset search", "item create", "upload", "serve"} <= set(found)
    for path, command in found.items():
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert "--json" in options, path
        assert runner.invoke(app, [*path.split(), "-h"]).exit_code == 0, path
