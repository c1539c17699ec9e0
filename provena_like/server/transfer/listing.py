"""``ls`` options of the Globus Transfer API: ``filter``, ``orderby``, ``show_hidden``, paging.

Globus lists a whole directory and then filters, sorts and pages it (GridFTP can't page), and
so does this service.

**filter** (one or more ``filter`` parameters: an entry is listed if it matches any of them, as
``globus ls --recursive --filter`` relies on to walk every directory with ``filter=type:dir&
filter=name:~*.csv``; within one, clauses separated by ``/`` must all match, e.g.
``type:file/name:~*.csv``):

- ``name:value`` or ``name:=value`` (equal), ``name:!=value``, ``name:~glob``,
  ``name:!~glob``; a comma-separated list of values or globs matches any of them;
- ``type:file``, ``type:dir``, ``type:file,dir`` (``invalid_symlink`` too);
- ``size:>N``, ``size:>=N``, ``size:<N``, ``size:<=N``, ``size:=N``, ``size:!=N``;
- ``last_modified:START,END`` (either may be empty; dates or ISO times, UTC; END excluded).

**orderby**: comma-separated ``field [ASC|DESC]`` with fields ``name``, ``type``, ``size``,
``last_modified``, ``permissions``, ``user``, ``group``; the default is by name.

Anything else is a 400 ``ClientError.BadRequest`` naming the clause.
"""

from __future__ import annotations

import fnmatch
import operator
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from provena_like.server.transfer.backend import FileInfo
from provena_like.server.transfer.errors import bad_request

__all__ = ["apply_filters", "order_entries"]

Predicate = Callable[[FileInfo], bool]

_SIZE_OPS: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}
_TYPES = frozenset({"file", "dir", "invalid_symlink"})
_ORDER_FIELDS: dict[str, Callable[[FileInfo], Any]] = {
    "name": lambda f: f.name,
    "type": lambda f: f.type,
    "size": lambda f: f.size,
    "last_modified": lambda f: f.last_modified or datetime.min.replace(tzinfo=UTC),
    "permissions": lambda f: f.permissions,
    "user": lambda f: f.user or "",
    "group": lambda f: f.group or "",
}


def _name(value: str) -> Predicate:
    negate = value.startswith("!")
    body = value[1:] if negate else value
    if body.startswith("~"):
        patterns = body[1:].split(",")

        def matches(f: FileInfo) -> bool:
            return any(fnmatch.fnmatchcase(f.name, p) for p in patterns)
    else:
        names = set(body.removeprefix("=").split(","))

        def matches(f: FileInfo) -> bool:
            return f.name in names

    return (lambda f: not matches(f)) if negate else matches


def _type(value: str, clause: str) -> Predicate:
    wanted = set(value.split(","))
    if not wanted <= _TYPES:
        raise bad_request(f"Invalid filter {clause!r}: types are file, dir and invalid_symlink.")
    return lambda f: f.type in wanted


def _size(value: str, clause: str) -> Predicate:
    for symbol, compare in _SIZE_OPS.items():
        if value.startswith(symbol):
            number = value[len(symbol) :]
            if number.isdigit():
                limit = int(number)
                return lambda f: compare(f.size, limit)
    raise bad_request(f"Invalid filter {clause!r}: use size:>N, size:<=N, size:=N, ...")


def _when(value: str, clause: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(f"Invalid filter {clause!r}: dates are ISO 8601.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _last_modified(value: str, clause: str) -> Predicate:
    start_text, _, end_text = value.partition(",")
    start, end = _when(start_text, clause), _when(end_text, clause)

    def matches(f: FileInfo) -> bool:
        when = f.last_modified
        if when is None:
            return False
        return (start is None or when >= start) and (end is None or when < end)

    return matches


def _clause(clause: str) -> Predicate:
    field, sep, value = clause.partition(":")
    if not sep:
        raise bad_request(f"Invalid filter {clause!r}: clauses are field:value.")
    if field == "name":
        return _name(value)
    if field == "type":
        return _type(value, clause)
    if field == "size":
        return _size(value, clause)
    if field == "last_modified":
        return _last_modified(value, clause)
    raise bad_request(f"Invalid filter {clause!r}: fields are name, type, size and last_modified.")


def apply_filters(entries: Iterable[FileInfo], filters: Iterable[str]) -> list[FileInfo]:
    """The entries that some filter lets through (all of them when there is none).

    A filter is a ``/``-separated list of clauses that must all match; with several filters
    (several ``filter`` parameters), matching one is enough.

    Example:
        ```python
        files = [FileInfo("a.csv", "file", 3), FileInfo("b.txt", "file", 1), FileInfo("raw", "dir")]
        assert [f.name for f in apply_filters(files, ["type:file/name:~*.csv"])] == ["a.csv"]
        either = apply_filters(files, ["type:dir", "name:~*.csv"])
        assert [f.name for f in either] == ["a.csv", "raw"]
        ```
    """
    groups = [[_clause(c) for c in f.split("/") if c] for f in filters]
    if not groups:
        return list(entries)
    return [e for e in entries if any(all(p(e) for p in group) for group in groups)]


def order_entries(entries: list[FileInfo], orderby: str | None) -> list[FileInfo]:
    """``entries`` sorted by ``orderby`` (``"type ASC, name DESC"``); by name by default.

    Example:
        ```python
        files = [FileInfo("b", "file", 1), FileInfo("a", "file", 2)]
        assert [f.name for f in order_entries(files, "size DESC")] == ["a", "b"]
        ```
    """
    keys: list[tuple[Callable[[FileInfo], Any], bool]] = []
    for part in (orderby or "name").split(","):
        words = part.split()
        if not words:
            continue
        direction = words[1].upper() if len(words) > 1 else "ASC"
        if words[0] not in _ORDER_FIELDS or direction not in ("ASC", "DESC") or len(words) > 2:
            fields = ", ".join(_ORDER_FIELDS)
            raise bad_request(f"Invalid orderby {part.strip()!r}: fields are {fields}.")
        keys.append((_ORDER_FIELDS[words[0]], direction == "DESC"))
    ordered = list(entries)
    for key, descending in reversed(keys):  # stable sorts, least significant first
        ordered.sort(key=key, reverse=descending)
    return ordered
