"""``provena-like transfer … --globus``: real Globus, answered by globus-sdk's registered responses.

No real Globus is reachable from the tests: Globus Auth and Transfer are ``responses`` mocks
(in-process, so the command runs in-process too). This is also where the wait outcomes real
Globus has and our service never shows (INACTIVE, STUCK) get their exit codes checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from provena_like.cli._errors import ExitCode
from provena_like.cli.main import app
from tests.support.cli_runner import CliRunner
from tests.support.globus_responses import (
    event_list,
    file_doc,
    file_list,
    globus_mock,
    register,
    register_task,
    register_token,
    task_doc,
)

__all__ = ["globus_mock"]

runner = CliRunner()

LAB = "6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e"
TASK = "42f5b2e0-0000-4000-8000-0000000000bb"
CLIENT_ID = "5c1e6a0b-cli-native-app"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "PROVENA_BASE_URL": "http://127.0.0.1:9",  # never used with --globus
        "PROVENA_TOKEN_DIR": str(tmp_path / "tokens"),
        "PROVENA_GLOBUS_CLIENT_ID": CLIENT_ID,
        "PROVENA_TRANSFER_LOCATIONS": json.dumps({"lab": [LAB, "/data"]}),
        "PROVENA_MAX_RETRIES": "0",
    }


def transfer(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["transfer", *args], env=env, input=stdin)
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stdout


def test_globus_needs_a_client_id_and_a_login(env: dict[str, str], globus_mock: object) -> None:
    del globus_mock
    code, out = transfer(
        {**env, "PROVENA_GLOBUS_CLIENT_ID": ""}, "ls", "lab:", "--globus", "--json"
    )
    assert code == ExitCode.USAGE and "globus_client_id" in out
    code, out = transfer(env, "ls", "lab:", "--globus", "--json")
    assert code == ExitCode.AUTH and "not signed in to Globus" in out
    assert not responses.calls  # nothing was sent without a login


def test_login_then_ls_and_wait_outcomes(env: dict[str, str], globus_mock: object) -> None:
    del globus_mock
    register_token("globus-access", "globus-refresh")
    code, out = transfer(env, "globus-login", stdin="the-code\n")
    assert code == 0, out
    (token_post,) = [c for c in responses.calls if c.request.url.endswith("/v2/oauth2/token")]
    body = token_post.request.body
    form = parse_qs(body if isinstance(body, str) else body.decode())
    assert form["code"] == ["the-code"] and form["client_id"] == [CLIENT_ID]

    register(
        f"/v0.10/operation/endpoint/{LAB}/ls",
        json_body=file_list(LAB, "/data/raw/", [file_doc("a.bin", size=7), file_doc("d", "dir")]),
    )
    code, out = transfer(env, "ls", "lab:raw", "--globus", "--json")
    assert code == 0, out
    listed = json.loads(out)
    assert [(e["path"], e["type"]) for e in listed["entries"]] == [
        ("/data/raw/a.bin", "file"),
        ("/data/raw/d", "dir"),
    ]
    ls_call = next(c for c in responses.calls if "/ls" in c.request.url)
    assert ls_call.request.headers["Authorization"] == "Bearer globus-access"
    assert parse_qs(urlsplit(ls_call.request.url).query)["path"] == ["/data/raw/"]

    outcomes: list[tuple[dict[str, Any], ExitCode, str]] = [
        ({"status": "INACTIVE", "nice_status": "PAUSED_BY_ADMIN"}, ExitCode.INACTIVE, "INACTIVE"),
        (
            {"status": "ACTIVE", "nice_status": "FILE_NOT_FOUND", "is_ok": False, "faults": 4},
            ExitCode.STUCK,
            "STUCK",
        ),
        ({"status": "ACTIVE", "nice_status": "OK", "is_ok": True, "faults": 0}, 6, "TIMED_OUT"),
    ]
    for changes, exit_code, outcome in outcomes:
        responses.reset()
        register_task(TASK, task_doc(TASK, completion_time=None, **changes))
        register(
            f"/v0.10/task/{TASK}/event_list",
            json_body=event_list([("FILE_NOT_FOUND", "No such file: /data/raw/x", True)]),
        )
        code, out = transfer(
            env, "task", "wait", TASK, "--globus", "--json", "--timeout", "0", "--stuck-after", "0"
        )
        doc = json.loads(out)
        assert (code, doc["outcome"], doc["exit_code"]) == (exit_code, outcome, exit_code), out
        assert doc["events"][0]["code"] == "FILE_NOT_FOUND"

    responses.reset()
    register_task(TASK, task_doc(TASK))  # SUCCEEDED
    code, out = transfer(env, "task", "wait", TASK, "--globus")
    assert code == 0 and "SUCCEEDED" in out
