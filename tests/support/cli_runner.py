"""typer's ``CliRunner``, running the ``provena-like`` app as the console script does.

``typer.testing.CliRunner.invoke(app, args)`` builds every command of ``app`` (the options
of some 400 commands, their annotations evaluated: 0.15-0.35 s of CPU) at each call. For the
full ``provena_like.cli.main.app`` this runner builds what the console script builds for the
same arguments (:func:`provena_like.cli.main.app_for`): the command they run, alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import typer
import typer.testing
from typer.testing import Result

from provena_like.cli import main as cli_main

__all__ = ["CliRunner", "Result"]


class CliRunner(typer.testing.CliRunner):
    """As :class:`typer.testing.CliRunner`; the full app is narrowed as ``main()`` does."""

    def invoke(  # type: ignore[override]
        self,
        app: typer.Typer,
        args: str | Sequence[str] | None = None,
        input: bytes | str | None = None,
        env: Mapping[str, str | None] | None = None,
        catch_exceptions: bool = True,
        color: bool = False,
        **extra: Any,
    ) -> Result:
        completing = any(k.startswith("_") and k.endswith("_COMPLETE") for k in env or {})
        listed = args if isinstance(args, Sequence) and not isinstance(args, str) else None
        if app is cli_main.app and listed is not None and not completing:
            app = cli_main.app_for(list(listed))
        return super().invoke(
            app, args, input=input, env=env, catch_exceptions=catch_exceptions, color=color, **extra
        )
