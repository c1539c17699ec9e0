"""ALF session paths and dataset paths.

A session path is ``[lab/Subjects/]subject/YYYY-MM-DD/NNN``: the lab is only there when the
literal ``Subjects`` folder follows it; the number has 1 to 3 digits and is written with 3
(``1`` and ``001`` are the same session). A dataset path adds, under the session, an optional
collection (one or more folders), an optional ``#revision#`` folder that must be the last
folder, and the dataset name::

    lab/Subjects/subject/2024-01-31/001/raw_ephys_data/probe00/#2024-02-01#/spikes.times.npy

Paths are POSIX (``/``); a ``PurePath`` of any flavour is read through ``as_posix()``.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from pathlib import PurePath

from provena_like.alf.errors import AlfError
from provena_like.alf.names import PARSE_CACHE_SIZE, DatasetName, PathT, parse_dataset_name

__all__ = [
    "AlfPath",
    "SessionPath",
    "as_date",
    "is_revision_name",
    "is_session_path",
    "padded_sequence",
    "parse_alf_path",
    "parse_rel_path",
    "parse_session_path",
    "split_session_path",
]

_LAB = re.compile(r"\w+", re.ASCII)
_NAME = re.compile(r"[\w.-]+", re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NUMBER = re.compile(r"[0-9]{1,3}")
_REVISION = re.compile(r"[\w.-]+", re.ASCII)

_EXPECTED = {
    "lab": "letters, digits and underscores, followed by a 'Subjects' folder",
    "subject": "letters, digits, '_', '.' and '-' (not '.' or '..')",
    "date": "a calendar date as YYYY-MM-DD",
    "number": "a session number of 1 to 3 digits (0-999)",
    "collection": "folders of letters, digits, '_', '.' and '-' (not '.' or '..')",
    "revision": "a '#revision#' folder of letters, digits, '_', '.' and '-'",
    "session": "a session path [lab/Subjects/]subject/YYYY-MM-DD/NNN",
}


def _posix(path: str | PurePath) -> str:
    return path.as_posix() if isinstance(path, PurePath) else path


def as_date(text: str) -> dt.date | None:
    """The date ``text`` names when it is exactly ``YYYY-MM-DD`` and a calendar date, else None.

    Args:
        text: The text, a session's date folder or the first 10 characters of a revision.

    Returns:
        The date, or None (``2024-02-30``, ``20240131`` and ``2024-W05-3`` are not dates here).
    """
    if _DATE.fullmatch(text) is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _check_name(part: str, value: str, path: str | None = None) -> None:
    if not isinstance(value, str) or _NAME.fullmatch(value) is None or value in (".", ".."):
        raise AlfError(part, str(value), _EXPECTED[part], path=path)


def is_revision_name(revision: str) -> bool:
    """Whether ``revision`` may name a revision (``""``, "no revision", is not a name).

    Args:
        revision: The name, without the ``#`` signs.

    Returns:
        True for names of letters, digits, ``_``, ``.`` and ``-``.
    """
    return _REVISION.fullmatch(revision) is not None


def _check_collection(collection: str, path: str | None = None) -> None:
    if not collection:
        return
    for folder in collection.split("/"):
        if folder.startswith("#") and folder.endswith("#") and len(folder) > 1:
            raise AlfError(
                "revision",
                folder,
                "the '#revision#' folder as the last folder before the file name",
                path=path,
                reason="is not the last folder before the file name",
            )
        if _NAME.fullmatch(folder) is None or folder in (".", ".."):
            raise AlfError("collection", folder, _EXPECTED["collection"], path=path)


@dataclass(frozen=True)
class SessionPath:
    """The parts of a session path; constructing one validates it.

    ``str(session)`` builds ``[lab/Subjects/]subject/YYYY-MM-DD/NNN`` with the number
    zero-padded to 3 digits.

    Attributes:
        subject: The subject's nickname.
        date: The session's date.
        number: The session number of that day (0-999).
        lab: The lab, or None for a path without ``lab/Subjects/``.

    Raises:
        AlfError: A part breaks the rules; ``.part`` names it.

    Example:
        ```python
        import datetime
        from provena_like.alf import SessionPath

        session = SessionPath("mouse1", datetime.date(2024, 1, 31), 2, lab="cortexlab")
        assert str(session) == "cortexlab/Subjects/mouse1/2024-01-31/002"
        ```
    """

    subject: str
    date: dt.date
    number: int
    lab: str | None = None

    def __post_init__(self) -> None:
        """Validate the parts."""
        if self.lab is not None and (not isinstance(self.lab, str) or not _LAB.fullmatch(self.lab)):
            raise AlfError("lab", str(self.lab), _EXPECTED["lab"])
        _check_name("subject", self.subject)
        if not isinstance(self.date, dt.date) or isinstance(self.date, dt.datetime):
            raise AlfError("date", str(self.date), "a datetime.date (not a datetime)")
        if isinstance(self.number, bool) or not isinstance(self.number, int):
            raise AlfError("number", str(self.number), "an int from 0 to 999")
        if not 0 <= self.number <= 999:
            raise AlfError("number", str(self.number), _EXPECTED["number"])

    def __str__(self) -> str:
        """The session path, number zero-padded to 3 digits."""
        tail = f"{self.subject}/{self.date.isoformat()}/{self.number:03d}"
        return f"{self.lab}/Subjects/{tail}" if self.lab else tail

    @property
    def short(self) -> str:
        """``subject/YYYY-MM-DD/NNN``, without the lab."""
        return f"{self.subject}/{self.date.isoformat()}/{self.number:03d}"


def _session_from(folders: list[str], i: int, *, path: str) -> tuple[int, SessionPath]:
    """The session whose date folder is ``folders[i]``: (index of its first folder, session)."""
    subject, date_text, number = folders[i - 1], folders[i], folders[i + 1]
    _check_name("subject", subject, path)
    date = as_date(date_text)
    if date is None:
        raise AlfError(
            "date", date_text, _EXPECTED["date"], path=path, reason="is not a calendar date"
        )
    if _NUMBER.fullmatch(number) is None:
        raise AlfError("number", number, _EXPECTED["number"], path=path)
    start, lab = i - 1, None
    if i >= 3 and folders[i - 2] == "Subjects":
        lab = folders[i - 3]
        if _LAB.fullmatch(lab) is None:
            raise AlfError("lab", lab, _EXPECTED["lab"], path=path)
        start = i - 3
    return start, SessionPath(subject, date, int(number), lab=lab)


def parse_session_path(path: str | PurePath) -> SessionPath:
    """Parse a path that is exactly a session path, ``[lab/Subjects/]subject/YYYY-MM-DD/N``.

    A trailing ``/`` is allowed; a root above the session is not (see
    :func:`split_session_path` for local paths).

    Args:
        path: The session path.

    Returns:
        The parts (the number as an int, so ``1`` and ``001`` parse the same).

    Raises:
        AlfError: The path breaks the rules; ``.part`` says which part.

    Example:
        ```python
        from provena_like.alf import parse_session_path

        session = parse_session_path("cortexlab/Subjects/mouse1/2024-01-31/1")
        assert (session.lab, session.subject, session.number) == ("cortexlab", "mouse1", 1)
        assert str(session) == "cortexlab/Subjects/mouse1/2024-01-31/001"
        ```
    """
    text = _posix(path)
    folders = text.removesuffix("/").split("/")
    if len(folders) not in (3, 5) or (len(folders) == 5 and folders[1] != "Subjects"):
        raise AlfError("session", text, _EXPECTED["session"], reason="is not a session path")
    if _DATE.fullmatch(folders[-2]) is None:
        raise AlfError("date", folders[-2], _EXPECTED["date"], path=text)
    _, session = _session_from(folders, len(folders) - 2, path=text)
    return session


def _find_session(folders: list[str], text: str) -> tuple[int, int, SessionPath]:
    """The first session in ``folders``: (index of its first folder, index after it, session)."""
    for i in range(1, len(folders) - 1):
        if (
            _DATE.fullmatch(folders[i])
            and _NUMBER.fullmatch(folders[i + 1])
            and folders[i - 1] not in ("", ".", "..")
        ):
            start, session = _session_from(folders, i, path=text)
            return start, i + 2, session
    raise AlfError("session", text, _EXPECTED["session"], reason="holds no session")


def split_session_path(path: str | PurePath) -> tuple[str, SessionPath, str]:
    """Find the session in a longer path: ``(root, session, rest)``.

    The session is the first ``subject/YYYY-MM-DD/NNN`` run of folders (with
    ``lab/Subjects/`` before it when present); ``root`` is what comes before it and ``rest``
    what comes after (collection, revision and file name), both without the joining ``/``.

    Args:
        path: Any path holding a session (a local file path, for example).

    Returns:
        The root, the session and the rest.

    Raises:
        AlfError: There is no session in the path (``.part == "session"``), or the first
            session-like folders break the rules (a date that is not a calendar date...).

    Example:
        ```python
        from provena_like.alf import split_session_path

        root, session, rest = split_session_path(
            "/data/cortexlab/Subjects/mouse1/2024-01-31/001/alf/trials.table.pqt"
        )
        assert (root, rest) == ("/data", "alf/trials.table.pqt")
        assert (session.lab, session.subject) == ("cortexlab", "mouse1")
        ```
    """
    text = _posix(path)
    folders = text.split("/")
    start, end, session = _find_session(folders, text)
    root = "/".join(folders[:start]) or ("/" if start else "")
    return root, session, "/".join(folders[end:])


def is_session_path(path: str | PurePath) -> bool:
    """Whether ``path`` ends with a session (a root above it is allowed).

    Args:
        path: The path to test.

    Returns:
        True for ``/data/Subjects/mouse1/2024-01-31/001`` (and with a trailing ``/``), False
        for a path with anything after the number.
    """
    try:
        _, _, rest = split_session_path(_posix(path).removesuffix("/"))
    except AlfError:
        return False
    return rest == ""


def padded_sequence(path: PathT) -> PathT:
    """The same path with the session number written with 3 digits.

    Args:
        path: A path holding a session (``str`` with ``/`` separators, or a ``PurePath`` of
            any flavour, which is returned as the same class).

    Returns:
        The path with ``.../subject/YYYY-MM-DD/001/...``.

    Raises:
        AlfError: The path holds no session.

    Example:
        ```python
        from provena_like.alf import padded_sequence

        assert padded_sequence("/rig/mouse1/2024-01-31/1/alf") == "/rig/mouse1/2024-01-31/001/alf"
        ```
    """
    text = _posix(path)
    folders = text.split("/")
    _, end, session = _find_session(folders, text)
    folders[end - 1] = f"{session.number:03d}"
    padded = "/".join(folders)
    return type(path)(padded) if isinstance(path, PurePath) else padded


@dataclass(frozen=True)
class AlfPath:
    """The parts of a dataset path; constructing one validates it.

    ``str(path)`` builds ``[session/][collection/][#revision#/]name``.

    Attributes:
        dataset: The dataset name's parts.
        session: The session, or None for a path relative to its session.
        collection: The collection, folders joined by ``/`` (``""`` for none).
        revision: The revision without its ``#`` signs (``""`` for none).

    Raises:
        AlfError: A part breaks the rules; ``.part`` names it.

    Example:
        ```python
        from provena_like.alf import AlfPath, parse_dataset_name

        name = parse_dataset_name("spikes.times.npy")
        path = AlfPath(name, collection="alf/probe00", revision="2024-02-01")
        assert str(path) == "alf/probe00/#2024-02-01#/spikes.times.npy"
        ```
    """

    dataset: DatasetName
    session: SessionPath | None = None
    collection: str = ""
    revision: str = ""

    def __post_init__(self) -> None:
        """Validate the collection and revision."""
        if not isinstance(self.dataset, DatasetName):
            raise AlfError("dataset_name", str(self.dataset), "a DatasetName")
        if self.session is not None and not isinstance(self.session, SessionPath):
            raise AlfError("session", str(self.session), "a SessionPath or None")
        if not isinstance(self.collection, str):
            raise AlfError("collection", str(self.collection), _EXPECTED["collection"])
        _check_collection(self.collection)
        if not isinstance(self.revision, str) or (
            self.revision and not is_revision_name(self.revision)
        ):
            raise AlfError("revision", str(self.revision), _EXPECTED["revision"])

    def __str__(self) -> str:
        """The path built from the parts."""
        return "/".join(
            p
            for p in (
                str(self.session) if self.session else "",
                self.rel_path,
            )
            if p
        )

    @functools.cached_property
    def rel_path(self) -> str:
        """The path relative to the session: ``[collection/][#revision#/]name``."""
        revision = f"#{self.revision}#" if self.revision else ""
        return "/".join(p for p in (self.collection, revision, str(self.dataset)) if p)

    @functools.cached_property
    def name(self) -> str:
        """The dataset (file) name."""
        return str(self.dataset)

    def with_revision(self, revision: str) -> AlfPath:
        """The same dataset in another revision folder (``""`` for none).

        Args:
            revision: The revision, without ``#`` signs.

        Returns:
            The new path's parts.
        """
        return AlfPath(self.dataset, self.session, self.collection, revision)

    def without_revision(self) -> AlfPath:
        """The same dataset outside any revision folder."""
        return self.with_revision("")


def _rel_parts(text: str, path: str) -> tuple[str, str, DatasetName]:
    folders = text.split("/")
    name = folders.pop()
    revision = ""
    if folders and folders[-1].startswith("#"):
        folder = folders.pop()
        revision = folder[1:-1] if len(folder) > 2 and folder.endswith("#") else ""
        if not revision or not is_revision_name(revision):
            raise AlfError("revision", folder, _EXPECTED["revision"], path=path)
    collection = "/".join(folders)
    if any(f == "" for f in folders):
        raise AlfError(
            "collection",
            collection,
            _EXPECTED["collection"],
            path=path,
            reason="has an empty folder",
        )
    _check_collection(collection, path)
    try:
        dataset = parse_dataset_name(name)
    except AlfError as err:
        raise AlfError(err.part, err.value, err.expected, path=path, reason=err.reason) from None
    return collection, revision, dataset


def parse_rel_path(path: str | PurePath) -> AlfPath:
    """Parse a dataset path relative to its session: ``[collection/][#revision#/]name``.

    Args:
        path: The relative path.

    Returns:
        The parts, with ``session`` None.

    Raises:
        AlfError: The path breaks the rules; ``.part`` says which part.

    Example:
        ```python
        from provena_like.alf import parse_rel_path

        path = parse_rel_path("raw_ephys_data/probe00/#v2#/_iblqc_ephysTimeRmsAP.timestamps.npy")
        assert (path.collection, path.revision) == ("raw_ephys_data/probe00", "v2")
        assert path.dataset.namespace == "iblqc"
        ```
    """
    return _parse_rel_text(_posix(path))


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse_rel_text(text: str) -> AlfPath:
    # a pure function of the text, and AlfPath is frozen: sessions repeat the same
    # relative paths, and a re-registration sends them all again
    if text.startswith("/"):
        raise AlfError("path", text, "a path relative to the session (no leading '/')")
    collection, revision, dataset = _rel_parts(text, text)
    return AlfPath(dataset, None, collection, revision)


def parse_alf_path(path: str | PurePath) -> AlfPath:
    """Parse a full dataset path: ``[lab/Subjects/]subject/YYYY-MM-DD/NNN/…/name``.

    The path starts with the session (no root above it; see :func:`split_session_path`).

    Args:
        path: The path.

    Returns:
        The parts.

    Raises:
        AlfError: The path breaks the rules; ``.part`` says which part.

    Example:
        ```python
        from provena_like.alf import parse_alf_path

        path = parse_alf_path("lab/Subjects/mouse1/2024-01-31/1/alf/#2024-02-01#/trials.table.pqt")
        assert path.session is not None and path.session.number == 1
        assert str(path) == "lab/Subjects/mouse1/2024-01-31/001/alf/#2024-02-01#/trials.table.pqt"
        ```
    """
    text = _posix(path)
    folders = text.split("/")
    i = 3 if len(folders) > 5 and folders[1] == "Subjects" else 1
    if len(folders) < i + 3 or _DATE.fullmatch(folders[i]) is None:
        raise AlfError(
            "session",
            text,
            _EXPECTED["session"] + " at the start of the path, then the file",
            reason="does not start with a session",
        )
    _, session = _session_from(folders, i, path=text)
    collection, revision, dataset = _rel_parts("/".join(folders[i + 2 :]), text)
    return AlfPath(dataset, session, collection, revision)
