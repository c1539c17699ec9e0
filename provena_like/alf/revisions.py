"""Revisions: their order, "last before", the next free name and the protected-dataset table.

**Order.** Revisions are ordered lexicographically (by code point, which for the ASCII
revision alphabet is plain string order), and ``""`` (no revision folder) is the oldest. Date
revisions ``YYYY-MM-DD`` therefore sort by date, and a sub-revision ``2024-01-31a`` after its
date. This is ONE's order (``one.util.index_last_before``).

**Next revision.** :func:`next_revision` appends a suffix from the sequence
``a, b, …, z, za, zb, …, zz, zza, …`` (any number of ``z`` then one letter ``a``-``z``) and
returns the first one that sorts after every reserved revision extending the same base.
Each suffix sorts after the one before it (``y < z < za``, ``zz < zza``), so the order of
the names is the order they were created in, and names never leave the revision alphabet
(ONE's ``_next_revision`` walks from ``z`` to ``{``, which is not a valid revision).
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from provena_like.alf.errors import AlfError
from provena_like.alf.paths import as_date, is_revision_name

__all__ = [
    "ExistingRevision",
    "index_last_before",
    "last_before",
    "next_revision",
    "resolve_revision",
    "sort_revisions",
]


def sort_revisions(revisions: Iterable[str], *, newest_first: bool = False) -> list[str]:
    """Revisions in the documented order: ``""`` first, then lexicographically.

    Args:
        revisions: Revision names (``""`` for no revision).
        newest_first: Newest first instead of oldest first.

    Returns:
        A new sorted list.

    Example:
        ```python
        from provena_like.alf import sort_revisions

        revisions = ["2024-02-01", "", "2024-01-31a", "2024-01-31"]
        assert sort_revisions(revisions) == ["", "2024-01-31", "2024-01-31a", "2024-02-01"]
        ```
    """
    return sorted(revisions, reverse=newest_first)


def index_last_before(revisions: Sequence[str], revision: str | None) -> int | None:
    """Where in ``revisions`` the last revision at or before ``revision`` is.

    ONE's "last before" rule: a dataset asked for at revision R is given its newest revision
    that is not newer than R; with no R, its newest revision.

    Args:
        revisions: The revisions of one dataset, in any order.
        revision: The revision asked for, or None for the newest.

    Returns:
        The index (of the first occurrence) in ``revisions``, or None when every revision is
        newer than ``revision`` or there are none.

    Example:
        ```python
        from provena_like.alf import index_last_before

        revisions = ["2021-01-01", "2020-08-01", "", "2020-09-30"]
        assert index_last_before(revisions, "2020-09-15") == 1
        assert index_last_before(revisions, None) == 0
        ```
    """
    found = last_before(revisions, revision)
    return None if found is None else revisions.index(found)


def last_before(revisions: Iterable[str], revision: str | None) -> str | None:
    """The last revision at or before ``revision`` (the newest when ``revision`` is None).

    Args:
        revisions: The revisions of one dataset.
        revision: The revision asked for, or None for the newest.

    Returns:
        The revision, or None when there is none at or before ``revision``.
    """
    eligible = [r for r in revisions if revision is None or r <= revision]
    return max(eligible) if eligible else None


def _suffixes() -> Iterator[str]:
    """``a``…``z``, ``za``…``zz``, ``zza``…: each sorts after the one before."""
    run = ""
    while True:
        for letter in string.ascii_lowercase:
            yield run + letter
        run += "z"


def next_revision(revision: str, reserved: Iterable[str] = ()) -> str:
    """The next sub-revision of ``revision``: free, newest of its kind, in the alphabet.

    The result is ``revision`` plus the first suffix of ``a``…``z``, ``za``…``zz``,
    ``zza``… that sorts after every reserved name starting with ``revision`` (names outside
    the revision alphabet are only avoided, not sorted after).

    Args:
        revision: The base revision (a date, usually); ``""`` gives ``"a"``, ``"b"``….
        reserved: Revisions already taken.

    Returns:
        The new revision name.

    Raises:
        AlfError: ``revision`` is not a valid revision name (``.part == "revision"``).

    Example:
        ```python
        from provena_like.alf import next_revision

        assert next_revision("2024-01-31") == "2024-01-31a"
        assert next_revision("2024-01-31", ["2024-01-31a", "2024-01-31b"]) == "2024-01-31c"
        assert next_revision("2024-01-31", ["2024-01-31z"]) == "2024-01-31za"
        ```
    """
    if revision and not is_revision_name(revision):
        raise AlfError("revision", revision, "letters, digits, '_', '.' and '-' (or '' for none)")
    taken = set(reserved)
    newest = max(
        (r for r in taken if r.startswith(revision) and is_revision_name(r)), default=revision
    )
    for suffix in _suffixes():
        candidate = revision + suffix
        if candidate > newest and candidate not in taken:
            return candidate
    raise AssertionError("unreachable: the suffixes are unbounded")  # pragma: no cover


class ExistingRevision(NamedTuple):
    """One revision of a dataset as the server reports it (newest first in a list).

    Attributes:
        revision: The revision name (``""`` for none).
        protected: Whether a protected tag freezes it.
    """

    revision: str
    protected: bool


def resolve_revision(
    path_revision: str, existing: Sequence[tuple[str, bool]], *, today: dt.date
) -> str:
    """The revision to register a file under when its dataset may be protected.

    ONE's table for a refused (protected) registration, as a pure function. Given the
    file's revision (from its path) and the dataset's existing revisions newest first, with
    their protection flags:

    | case | result |
    |---|---|
    | no existing revision | the path's revision, unchanged |
    | the path has revision R, R not protected | R, unchanged |
    | the path has revision R, R protected | ``next_revision(R, protected)`` |
    | no path revision; newest is ``""`` and unprotected | ``""``, unchanged |
    | newest L unprotected and ``L[:10]`` is a date | L |
    | today's date or one of its sub-revisions is protected | ``next_revision(today, protected)`` |
    | otherwise (newest protected, or unprotected but not a date) | today's date |

    Args:
        path_revision: The revision in the file's path (``""`` for none).
        existing: The dataset's revisions, newest first, as ``(revision, protected)``
            pairs (:class:`ExistingRevision` or plain tuples).
        today: The date a new revision is named after (the server's, for a deterministic
            answer).

    Returns:
        The revision to register under (``""`` for none); equal to ``path_revision`` when
        the file can stay where it is.

    Example:
        ```python
        import datetime
        from provena_like.alf import ExistingRevision, resolve_revision

        today = datetime.date(2024, 1, 31)
        existing = [ExistingRevision("2024-01-31", True), ExistingRevision("", True)]
        assert resolve_revision("", existing, today=today) == "2024-01-31a"
        assert resolve_revision("", [("", False)], today=today) == ""
        ```
    """
    if not existing:
        return path_revision
    protected = [revision for revision, is_protected in existing if is_protected]
    if path_revision:
        if path_revision not in protected:
            return path_revision
        return next_revision(path_revision, protected)
    newest, newest_protected = existing[0]
    if not newest_protected:
        if newest == "":
            return ""
        if as_date(newest[:10]) is not None:
            return newest
    day = today.isoformat()
    if any(revision.startswith(day) for revision in protected):
        return next_revision(day, protected)
    return day
