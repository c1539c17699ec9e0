"""``provena-like --help`` loads neither the server nor the storage engine (lazy imports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from provena_like.testing.localstack import LocalStack

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


def _probe(
    code: str, args: list[str], heavy: tuple[str, ...], env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``code`` with ``args`` in a fresh interpreter; its report (which of ``heavy`` loaded)."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        input=json.dumps(heavy),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
        check=False,
    )
    assert done.stderr.strip(), done.stdout
    report: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])
    report["output"] = done.stdout + done.stderr
    return report


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
        ["crawl", "--help"],
        ["extract", "-h"],
    ],
)
def test_help_imports_no_server_or_engine(args: list[str]) -> None:
    report = _probe(PROBE, args, HEAVY)
    assert report["code"] == 0, report["output"]
    assert report["loaded"] == []


# What a client command must not pay for before it sends a request: the server, and the S3
# stack that only a transfer needs (built on first use).
CLIENT_HEAVY = (
    "fastapi",
    "sqlalchemy",
    "uvicorn",
    "aioboto3",
    "aiobotocore",
    "botocore",
    "boto3",
    "aiohttp",
    "cloudpathlib",
    "globus_sdk",
)

SDK_PROBE = """
import json, sys
import provena_like
from provena_like import ProvenaClient
pv = ProvenaClient(base_url="http://127.0.0.1:9", access_token="t")
for name in sys.argv[1:]:
    if name.startswith("import "):
        exec(name)
    else:
        getattr(pv, name)
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.stdin.read())))
sys.stderr.write(json.dumps({"loaded": loaded}))
"""


def _sdk_loaded(*steps: str) -> list[str]:
    loaded: list[str] = _probe(SDK_PROBE, list(steps), CLIENT_HEAVY)["loaded"]
    return loaded


def test_building_a_client_imports_no_server_or_s3_stack() -> None:
    steps = ("registry_client", "auth_client", "search_client", "datastore", "registration")
    assert _sdk_loaded(*steps) == []


def test_the_s3_stack_loads_when_a_transfer_needs_it() -> None:
    # the probe sees the S3 stack once something needs it (so the test above can fail)
    loaded = _sdk_loaded("datastore", "import provena_like.storage.engine")
    assert {"aioboto3", "botocore"} <= set(loaded)


@pytest.mark.parametrize("args", [["whoami"], ["dataset", "list", "--json"]])
def test_client_commands_import_no_server_or_s3_stack(args: list[str], tmp_path: Path) -> None:
    # not signed in: the command builds its client, then stops before any request (exit 3)
    env = {"PROVENA_BASE_URL": "http://127.0.0.1:9", "PROVENA_TOKEN_DIR": str(tmp_path)}
    report = _probe(PROBE, args, CLIENT_HEAVY, env)
    assert report["code"] == 3, report["output"]
    assert report["loaded"] == []


# The console script's path: ``main()`` builds only the command the arguments run.
MAIN_PROBE = PROBE.replace(
    "from provena_like.cli.main import app\ntry:\n    app(sys.argv[1:])",
    "from provena_like.cli.main import main\ntry:\n    main()",
)
OTHER_COMMANDS = (
    "provena_like.cli.serve",
    "provena_like.cli.demo",
    "provena_like.cli.transfer_service",
    "provena_like.cli.admin",
    "provena_like.cli.maintenance",
    "provena_like.cli.patch",
)


def _loaded_modules(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``provena-like ARGS`` as the console script does; which full module names loaded."""
    code = MAIN_PROBE.replace('{m.split(".")[0] for m in sys.modules}', "set(sys.modules)")
    return _probe(code, args, OTHER_COMMANDS, env)


def test_a_command_loads_only_its_own_cli_module(tmp_path: Path) -> None:
    env = {"PROVENA_BASE_URL": "http://127.0.0.1:9", "PROVENA_TOKEN_DIR": str(tmp_path)}
    report = _loaded_modules(["dataset", "show", "10378.1/1", "--json"], env)
    assert report["code"] == 3, report["output"]
    assert report["loaded"] == []
    # the top-level help still lists (and so loads) every command
    everything = _loaded_modules(["--help"], env)
    assert everything["code"] == 0, everything["output"]
    assert everything["loaded"] == sorted(OTHER_COMMANDS)
    assert "transfer" in everything["output"] and "delete-dataset" in everything["output"]


# Record models a command that only reads datasets does not need (the registry's
# RECORD_MODELS imports them on first use).
OTHER_RECORD_MODELS = (
    "provena_like.models.registration",
    "provena_like.models.archive",
    "provena_like.models.patching",
)

# The console script itself (``provena_like.cli._entry``): what it loaded, and whether its
# start-up imports ran with the cyclic GC paused (what they built is frozen: out of the GC's
# sight) and the GC was back on for the command's work.
ENTRY_PROBE = """
import gc, json, sys
from provena_like.cli._entry import main
try:
    main()
except SystemExit as done:
    code = done.code
present = {m for m, module in sys.modules.items() if module is not None}  # None: kept out
names = present | {m.split(".")[0] for m in present}
loaded = sorted(names & set(json.loads(sys.stdin.read())))
report = {"code": code, "loaded": loaded, "gc": gc.isenabled(), "frozen": gc.get_freeze_count()}
sys.stderr.write(json.dumps(report))
"""


# What the console script keeps out of a client command's start-up (it would be loaded, and
# unused, otherwise): httpx's own command line (`import httpx` loads it, and with it click,
# pygments and much of rich).
NOT_AT_START_UP = ("httpx._main", "click", "pygments")


@pytest.mark.parametrize("args", [["whoami"], ["dataset", "show", "10378.1/1", "--json"]])
def test_console_script_start_up_skips_unused_modules(args: list[str], tmp_path: Path) -> None:
    # not signed in: the command builds its client, then stops before any request (exit 3)
    env = {"PROVENA_BASE_URL": "http://127.0.0.1:9", "PROVENA_TOKEN_DIR": str(tmp_path)}
    report = _probe(ENTRY_PROBE, args, NOT_AT_START_UP, env)
    assert report["code"] == 3, report["output"]
    assert report["loaded"] == []


@pytest.mark.anyio
async def test_signed_in_client_commands_load_no_server_or_s3_stack(
    localstack: LocalStack,
) -> None:
    # whole commands against the server (requests, answers, output): the S3 stack is for
    # transfers only, the server for `serve`
    from tests.support.l3_helpers import mint_dataset

    async with localstack.client() as pv:
        ds = await mint_dataset(pv, "Start-up probe")
    env = {
        "PROVENA_BASE_URL": localstack.url,
        "PROVENA_TOKEN_DIR": str(localstack.data_dir / "tokens" / localstack.user.username),
    }
    commands = [
        ["dataset", "show", ds.id, "--json"],
        ["dataset", "ls", ds.id, "--json"],
        ["dataset", "search", "start-up probe", "--json"],
        ["upload", "--help"],
    ]
    for args in commands:
        # (a help page is rich's work: it may load what a client command doesn't need)
        quick = () if "--help" in args else NOT_AT_START_UP
        unwanted = CLIENT_HEAVY + OTHER_RECORD_MODELS + quick
        report = await anyio.to_thread.run_sync(_probe, ENTRY_PROBE, args, unwanted, env)
        assert report["code"] == 0, (args, report["output"])
        assert report["loaded"] == [], args
        # the start-up imports ran with the GC paused, and it is on again
        assert report["frozen"] > 10_000, args
        assert report["gc"] is True, args


def test_a_group_command_builds_only_that_subcommand() -> None:
    # typer builds every command of a group before it parses: main() hands it only the one run
    from typer.main import get_command

    from provena_like.cli.main import make_app

    def group(name: str, only: str) -> Any:
        return get_command(make_app([name], only=only)).commands[name]  # type: ignore[attr-defined]

    assert list(group("dataset", "show").commands) == ["show"]
    # a sub-group keeps its own commands
    task = group("transfer", "task").commands
    assert list(task) == ["task"] and {"show", "wait"} <= set(task["task"].commands)
    # an unknown name (a typo) keeps them all, so that the error can suggest the closest
    assert {"show", "list", "search"} <= set(group("dataset", "shw").commands)


# After the console script ran: is a wire model the command did not use built?
MODELS_PROBE = """
import json, sys
from provena_like.cli._entry import main
try:
    main()
except SystemExit as done:
    code = done.code
from provena_like.models.auth import UserCreate
sys.stderr.write(json.dumps({"code": code, "built": UserCreate.__pydantic_complete__}))
"""


@pytest.mark.parametrize(
    ("args", "code", "built"), [(["whoami"], 3, False), (["serve", "-h"], 0, True)]
)
def test_console_script_builds_models_on_first_use(
    args: list[str], code: int, built: bool, tmp_path: Path
) -> None:
    # a client command builds the few models it uses; the server (serve, demo) builds them all
    env = {"PROVENA_BASE_URL": "http://127.0.0.1:9", "PROVENA_TOKEN_DIR": str(tmp_path)}
    report = _probe(MODELS_PROBE, args, (), env)
    assert report["code"] == code, report["output"]
    assert report["built"] is built
    # a program that imports the SDK builds them at import, as before
    plain = "import json, sys\nfrom provena_like.models.auth import UserCreate\n"
    plain += 'sys.stderr.write(json.dumps({"built": UserCreate.__pydantic_complete__}))'
    assert _probe(plain, [], ())["built"] is True
