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
