"""``provena-like --help`` loads neither the server nor the storage engine (lazy imports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# (not pydantic: typer itself imports it to parse the options of a subcommand)
HEAVY = ("fastapi", "sqlalchemy", "uvicorn", "aioboto3", "botocore", "httpx", "globus_sdk")

PROBE = """
import json, sys
from provena_like.cli.main import app
try:
    app(sys.argv[1:])
except SystemExit as done:
    code = done.code
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.stdin.read())))
sys.stderr.write(json.dumps({"code": code, "loaded": loaded}))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["-h"],
        ["--version"],
        ["serve", "--help"],
        ["upload", "--help"],
        ["dataset", "-h"],
        ["transfer", "--help"],
        ["transfer", "cp", "--help"],
        ["transfer", "task", "wait", "-h"],
    ],
)
def test_help_imports_no_server_or_engine(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        input=json.dumps(HEAVY),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "120"},
        check=True,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, done.stdout
    assert report["loaded"] == []
