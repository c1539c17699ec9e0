"""Records on the command line: from a JSON or TOML file (or stdin), changed by ``--set``.

Shared by ``provena-like dataset ...`` and ``provena-like item ...``: a record is a JSON
object; ``--record FILE`` gives all of it (``.toml`` files are read as TOML, anything else
as JSON, ``-`` is stdin), and each ``--set PATH=VALUE`` then sets one field, ``PATH`` dotted
(``dataset_info.name``) and ``VALUE`` JSON when it parses as JSON (``["a", "b"]``, ``true``,
``3``), else the text itself.
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provena_like.cli._errors import CliFailure, ExitCode

if TYPE_CHECKING:
    from provena_like.models.registry import Role

__all__ = [
    "GeneralGrantOption",
    "GroupGrantOption",
    "RecordOption",
    "SetOption",
    "EditOption",
    "build_record",
    "edit_record",
    "parse_grants",
    "read_record",
]

RecordOption = Annotated[
    Path | None,
    typer.Option(
        "--record",
        "-r",
        help="The record as a JSON or TOML file (.toml), or - for JSON on stdin.",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Set one field: dotted.path=VALUE (VALUE is JSON if it parses, else text; "
        "repeatable).",
    ),
]


EditOption = Annotated[
    bool,
    typer.Option(
        "--edit",
        "-e",
        help="Open the record (after --record/--set) in $VISUAL or $EDITOR, as JSON.",
    ),
]


def edit_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` as edited in the user's editor (``$VISUAL``, else ``$EDITOR``), as JSON.

    Raises:
        CliFailure: no editor is set, it failed, or what was saved is not a JSON object.
    """
    import os
    import shlex
    import subprocess
    import tempfile

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        raise CliFailure(ExitCode.USAGE, "--edit needs an editor: set VISUAL or EDITOR")
    with tempfile.TemporaryDirectory(prefix="provena-record-") as tmp:
        path = Path(tmp) / "record.json"
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        done = subprocess.run([*shlex.split(editor), str(path)], check=False)
        if done.returncode != 0:
            raise CliFailure(
                ExitCode.FAILED, f"the editor exited with {done.returncode}: nothing was changed"
            )
        return read_record(path)


def read_record(source: Path) -> dict[str, Any]:
    """The JSON object in ``source`` (TOML for ``.toml``; ``-`` reads JSON from stdin)."""
    try:
        if str(source) == "-":
            data: Any = json.load(sys.stdin)
        elif source.suffix.lower() == ".toml":
            data = tomllib.loads(source.read_text(encoding="utf-8"))
        else:
            data = json.loads(source.read_text(encoding="utf-8"))
    except OSError as err:
        raise CliFailure(ExitCode.USAGE, f"cannot read {source}: {err.strerror}") from err
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise CliFailure(ExitCode.USAGE, f"{source} is not valid: {err}") from err
    if not isinstance(data, dict):
        raise CliFailure(ExitCode.USAGE, f"{source} must hold an object, not {type(data).__name__}")
    return data


def _set(record: dict[str, Any], assignment: str) -> None:
    path, sep, raw = assignment.partition("=")
    keys = [k for k in path.strip().split(".") if k]
    if not sep or not keys:
        raise CliFailure(ExitCode.USAGE, f"--set {assignment!r}: expected dotted.path=VALUE")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    node = record
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise CliFailure(ExitCode.USAGE, f"--set {assignment!r}: {key} is not an object")
        node = child
    node[keys[-1]] = value


def build_record(
    base: Mapping[str, Any] | None,
    record_file: Path | None,
    sets: Sequence[str] = (),
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The record to send: ``record_file`` (else a copy of ``base``) with the changes applied.

    Args:
        base: the current record (for an update), or ``None``.
        record_file: a file that replaces ``base`` entirely.
        sets: ``dotted.path=VALUE`` assignments, applied in order.
        fields: dotted path → value from named options (``None`` values are left out),
            applied before ``sets``.

    Returns:
        The new record.
    """
    record = read_record(record_file) if record_file else json.loads(json.dumps(base or {}))
    for path, value in (fields or {}).items():
        if value is not None:
            _set(record, f"{path}={json.dumps(value)}")
    for assignment in sets:
        _set(record, assignment)
    return record


def parse_grants(
    general: str | None, groups: Sequence[str]
) -> tuple[list[Role], dict[str, list[Role]]]:
    """``--general ROLE`` and ``--group NAME=ROLE`` options as ``general`` and ``groups``."""
    from provena_like.cli.access import parse_role

    grants: dict[str, list[Role]] = {}
    for spec in groups:
        name, sep, role = spec.partition("=")
        if not sep or not name or not role:
            raise CliFailure(ExitCode.USAGE, f"--group {spec!r}: expected NAME=ROLE")
        grants[name] = [parse_role(role)]
    return ([parse_role(general)] if general else []), grants


GeneralGrantOption = Annotated[
    str | None,
    typer.Option("--general", help="A role for everyone signed in (e.g. metadata-read)."),
]
GroupGrantOption = Annotated[
    list[str] | None,
    typer.Option("--group", "-g", help="A role for a group: NAME=ROLE (repeatable)."),
]
