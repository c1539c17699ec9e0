"""The Quick start commands: the same in README, docs index and CI, and PEP 668 safe."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _quick_start_commands(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, f"no bash block in the Quick start of {path.name}"
    return [
        line.strip()
        for line in block.group(1).splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_readme_and_docs_index_give_the_same_two_commands() -> None:
    readme = _quick_start_commands(ROOT / "README.md")
    index = _quick_start_commands(ROOT / "docs" / "index.md")
    assert len(readme) == 2
    assert readme == index


def test_ci_runs_the_test_command_verbatim() -> None:
    test_command = _quick_start_commands(ROOT / "README.md")[1]
    assert test_command.endswith(" pytest")
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci_lines


def test_no_command_installs_into_the_system_python() -> None:
    # PEP 668: `python3 -m pip install` (also with --user) is refused by the system Python
    # of many distributions; pip may only run inside a virtual environment made first.
    for command in _quick_start_commands(ROOT / "README.md"):
        first = command.split("&&")[0].strip()
        assert not re.match(r"python3? -m pip\b", first), command
        assert "--user" not in command and "--break-system-packages" not in command


def _cli_row(path: Path) -> str:
    rows = [
        line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("| CLI |")
    ]
    assert len(rows) == 1, f"one CLI row in the layers table of {path.name}"
    return rows[0]


def test_layer_tables_name_every_cli_command() -> None:
    import typer.main

    from provena_like.cli.main import app

    group = typer.main.get_command(app)
    commands = sorted(group.commands)  # type: ignore[attr-defined]
    assert {"serve", "login", "dataset", "item", "upload"} <= set(commands)
    for path in (ROOT / "README.md", ROOT / "docs" / "index.md"):
        row = _cli_row(path)
        named = set(re.findall(r"[a-z][a-z-]+", row))
        missing = [command for command in commands if command not in named]
        assert not missing, f"{path.name} does not list {missing}"
