r"""NUL characters in SQL parameters: refused when stored, matching nothing when looked up.

PostgreSQL can't hold a NUL (``\x00``) in text, nor ``\u0000`` in JSON, and refuses any
statement that *sends* one - a lookup as much as a write - while SQLite stores and compares
it like any other character. So without help the same request answered differently: a
username with a NUL in ``POST /datastore/reviewers`` was a 400 on PostgreSQL and a 404 on
SQLite, and a record holding a NUL was stored by SQLite only.

:func:`install` puts one hook (``before_cursor_execute``) on an engine, for both databases:

- a statement that **writes** (an ``INSERT`` or ``UPDATE``) with a text parameter holding a
  NUL - or a JSON document holding ``\u0000`` - raises :class:`UnstorableText` before it
  reaches the database; the app answers it with the 400 ``unrepresentable_text`` that
  PostgreSQL's refusal gets (:func:`provena_like.server.errors.unrepresentable_text`);
- in any other statement (a ``SELECT``, the ``WHERE`` of a ``DELETE``) such a parameter is
  sent as ``NULL``: no stored value can hold a NUL, and a comparison with ``NULL`` is never
  true, so the lookup matches nothing - the answer to any other unknown value (a 404, an
  empty page). (Only a negated comparison, ``<> :value``, would differ from a comparison
  with the text itself; the server makes none with values of a request.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine.default import DefaultExecutionContext

__all__ = ["UnstorableText", "install"]

_JSON_NUL = "\\u0000"


class UnstorableText(ValueError):
    """A statement would store text holding a NUL character (no database here keeps it)."""


def _json_holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_json_holds_nul(k) or _json_holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_json_holds_nul(v) for v in value)
    return False


def _holds_nul(value: object) -> bool:
    """Whether a parameter (as sent to the driver) is text with a NUL, or JSON with one."""
    if not isinstance(value, str):
        return False
    if "\x00" in value:
        return True
    if _JSON_NUL not in value:  # JSON parameters arrive serialised, NUL escaped
        return False
    try:
        return _json_holds_nul(json.loads(value))
    except ValueError:
        return False


def _writes(context: DefaultExecutionContext | None, statement: str) -> bool:
    if context is not None and (context.isinsert or context.isupdate):
        return True
    if context is not None and context.isdelete:
        return False
    words = statement.split(maxsplit=1)
    return not words or words[0].upper() not in ("SELECT", "WITH")


def _lookup(params: Any) -> Any:
    """``params`` with every text holding a NUL replaced by None (same shape)."""
    if isinstance(params, Mapping):
        return {k: None if _holds_nul(v) else v for k, v in params.items()}
    if isinstance(params, tuple):
        return tuple(None if _holds_nul(v) else v for v in params)
    if isinstance(params, list):
        return [None if _holds_nul(v) else v for v in params]
    return params


def _any_nul(params: Any) -> bool:
    """Whether one set of parameters (a mapping or a sequence) holds text with a NUL."""
    if isinstance(params, Mapping):
        params = params.values()
    elif not isinstance(params, Sequence) or isinstance(params, str | bytes):
        return False
    return any(_holds_nul(v) for v in params)


def _before_cursor_execute(
    _conn: Any,
    _cursor: Any,
    statement: str,
    parameters: Any,
    context: DefaultExecutionContext | None,
    executemany: bool,
) -> tuple[str, Any]:
    if not (any(map(_any_nul, parameters)) if executemany else _any_nul(parameters)):
        return statement, parameters
    if _writes(context, statement):
        raise UnstorableText("a text value to store holds a NUL character")
    if executemany:
        return statement, type(parameters)(_lookup(batch) for batch in parameters)
    return statement, _lookup(parameters)


def install(engine: Engine) -> None:
    """Put the NUL rules (see the module) on ``engine`` (the sync engine of an async one)."""
    event.listen(engine, "before_cursor_execute", _before_cursor_execute, retval=True)
