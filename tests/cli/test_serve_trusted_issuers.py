"""``provena-like serve --trusted-issuers FILE``: checked before anything starts.

The server side of trusted issuers is tested in tests/oidc/test_trusted_issuer.py; here, the
file (or ``PROVENA_LIKE_TRUSTED_ISSUERS``) and ``--no-embedded-issuer`` are read and refused
with a usage error (exit 2) before a port, the data dir or the object store is touched.
"""

from __future__ import annotations

import json
from pathlib import Path

from provena_like.cli._errors import ExitCode
from provena_like.cli.main import app
from provena_like.cli.serve import load_trusted_issuers
from tests.support.cli_runner import CliRunner

runner = CliRunner()

KEYCLOAK = {
    "issuer": "https://login.uni.example/realms/research",
    "audiences": ["provena-like"],
    "groups_claim": "groups",
    "group_map": {"/reef-lab": "reef-lab"},
    "role_map": {"data-steward": "reviewer"},
}


def test_a_file_of_trusted_issuers_is_read(tmp_path: Path) -> None:
    file = tmp_path / "issuers.json"
    file.write_text(json.dumps([KEYCLOAK, {"issuer": "https://idp.example", "audiences": ["x"]}]))
    keycloak, generic = load_trusted_issuers(file)
    assert keycloak.resolved_discovery_url == (
        "https://login.uni.example/realms/research/.well-known/openid-configuration"
    )
    assert keycloak.role_map == {"data-steward": "reviewer"}
    assert (generic.username_claim, generic.provision) == ("preferred_username", True)


def test_an_invalid_file_is_a_usage_error(tmp_path: Path) -> None:
    file = tmp_path / "issuers.json"
    file.write_text(json.dumps([{"issuer": "https://idp.example"}]))  # no audiences
    data_dir = tmp_path / "data"
    result = runner.invoke(
        app, ["serve", "--data-dir", str(data_dir), "--trusted-issuers", str(file)]
    )
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "audiences" in result.output
    assert not data_dir.exists()  # refused before anything started


def test_the_file_can_come_from_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "issuers.json"
    file.write_text(json.dumps([{**KEYCLOAK, "role_map": {"x": "superuser"}}]))
    result = runner.invoke(
        app,
        ["serve", "--data-dir", str(tmp_path / "data")],
        env={"PROVENA_LIKE_TRUSTED_ISSUERS": str(file)},
    )
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "role_map" in result.output


def test_turning_the_embedded_issuer_off_needs_a_trusted_one(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["serve", "--data-dir", str(tmp_path / "data"), "--no-embedded-issuer"]
    )
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "needs at least one trusted issuer" in " ".join(result.output.split())


def test_the_introspection_secret_is_checked_before_starting(tmp_path: Path) -> None:
    file = tmp_path / "issuers.json"
    variable = "PROVENA_TEST_UNSET_INTROSPECTION_SECRET"
    introspection = {"client_id": "provena-like-api", "client_secret_env": variable}
    file.write_text(json.dumps([{**KEYCLOAK, "introspection": introspection}]))
    data_dir = tmp_path / "data"
    result = runner.invoke(
        app,
        ["serve", "--data-dir", str(data_dir), "--trusted-issuers", str(file)],
        env={variable: ""},
    )
    assert result.exit_code == ExitCode.USAGE, result.output
    assert variable in result.output and "login.uni.example" in result.output
    assert not data_dir.exists()
