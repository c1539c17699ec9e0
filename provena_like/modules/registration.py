"""``Registration``: sessions and their files, the ONE way (L3), reachable as ``pv.registration``.

It composes the registry's L2 calls with the local file system: it reads ALF paths
(:mod:`provena_like.alf`), creates session folders, hashes files and keeps their hashes, and
never builds a URL itself.

```python
async with ProvenaClient.from_env() as pv:
    ses = await pv.registration.create_session("KS023", root=Path("/data"))
    ses.path            # /data/cortexlab/Subjects/KS023/2026-12-06/001 (created)
    await pv.registration.register_session(ses.path, users=["alice"])
```

Subjects and labs are named by handle (``10378.1/42``) or by name (a subject's nickname, a
lab's name), as they appear in ALF paths. Hashes: every file's **sha256** (the server's
checksum of a file) and its md5 too where the repository the files are registered in keeps
md5s (its record's ``hashes``: for tools that compare with an S3 single-part ETag or with
Alyx), or with ``md5=True``. Both are computed in worker threads, in buffers no larger
than the file (at most 8 MiB), and kept in the local hash cache of the storage engine
(keyed by path, size and mtime), so a file registered again unchanged is not read again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import anyio

from provena_like._core.errors import (
    APIStatusError,
    PreconditionFailed,
    ResponseValidationError,
    UsageError,
)
from provena_like.alf import (
    AlfError,
    AlfPath,
    DatasetTypeError,
    SessionPath,
    is_revision_name,
    match_dataset_type,
    parse_rel_path,
    resolve_revision,
    split_session_path,
)
from provena_like.clients.registry import RegistryClient
from provena_like.models.registration import (
    MAX_FILES_PER_REQUEST,
    ProtectedFile,
    RegisteredDataset,
    RegisterFilesResult,
    UnchangedFile,
)
from provena_like.models.registry import Item
from provena_like.storage.cache import HashCache, default_cache_dir
from provena_like.storage.events import HashMeter, ProgressCallback, hashing_progress

__all__ = [
    "CreatedSession",
    "FileRegistrationResult",
    "FileRegistrationStatus",
    "FlagOutcome",
    "Registration",
    "RegistrationResult",
    "SessionRegistration",
]

FileRegistrationStatus = Literal["registered", "planned", "skipped", "failed"]
"""The outcome of one file: ``planned`` is what a dry run would register."""

_FLAG_SUFFIX = ".flag"
_HASH_BATCH = 256
"""The most files hashed per trip to a worker thread (a cached file costs less than a trip)."""
_SESSIONS_AT_ONCE = 4
"""Sessions whose requests are in flight at once."""
_SESSIONS_PAGE = 1000
"""Sessions per page when listing a subject's sessions of a day (at most 999 exist)."""


def _is_handle(text: str) -> bool:
    return "/" in text


class _NotRegistered(UsageError):
    """A file's session is not registered."""


class _DatasetType(NamedTuple):
    name: str
    filename_pattern: str


@dataclass(frozen=True, slots=True)
class CreatedSession:
    """A session created by :meth:`Registration.create_session`.

    Attributes:
        item: The session item (``item.record["number"]`` is its number).
        session: Its ALF parts.
        path: The local session folder created to match, or None when no ``root`` was given.
    """

    item: Item
    session: SessionPath
    path: Path | None

    @property
    def number(self) -> int:
        """The session number the server allocated."""
        return self.session.number


@dataclass(frozen=True, slots=True)
class FileRegistrationResult:
    """What happened to one file given to :meth:`Registration.register_files`.

    Attributes:
        path: The file as given.
        status: ``registered``, ``planned`` (dry run), ``skipped`` (with ``reason``: not an
            ALF dataset, unknown extension, no single dataset type) or ``failed`` (with
            ``reason`` and ``error``).
        reason: Why it was skipped or failed.
        error: The error of a failed file.
        session: Its ALF session, when its path has one.
        rel_path: Its path relative to the session (``collection/#revision#/name``), as
            registered (after a move into a revision folder).
        dataset_type: The dataset type it matched.
        size: Its size in bytes.
        sha256: Its sha256 (lowercase hex).
        md5: Its md5, when asked for.
        moved_from: Where it was before ``force=True`` moved it into a revision folder.
        moved_to: Where it is now, after such a move.
        response: What the server answered for this file, when it answered: a
            :class:`~provena_like.models.registration.FileRegistration` (its ``status``
            and revision), or, for a file whose revision the request left unchanged, an
            :class:`~provena_like.models.registration.UnchangedFile` (``status``
            ``unchanged`` and ``dataset_id``; the SDK asks for compact answers). Both have
            ``status`` and ``dataset_id``.
    """

    path: Path
    status: FileRegistrationStatus
    reason: str | None = None
    error: BaseException | None = field(default=None, compare=False)
    session: SessionPath | None = None
    rel_path: str | None = None
    dataset_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    moved_from: Path | None = None
    moved_to: Path | None = None
    response: Any = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        """Whether it was registered (or, in a dry run, would be)."""
        return self.status in ("registered", "planned")


@dataclass(slots=True)
class RegistrationResult:
    """Per-file results of :meth:`Registration.register_files`, aligned with the input.

    Example:
        ```python
        result = RegistrationResult([FileRegistrationResult(Path("a.npy"), "skipped", "no type")])
        assert (len(result.skipped), len(result.failed)) == (1, 0)
        ```
    """

    files: list[FileRegistrationResult] = field(default_factory=list)

    def __iter__(self) -> Any:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> FileRegistrationResult:
        return self.files[index]

    def _with(self, *status: FileRegistrationStatus) -> list[FileRegistrationResult]:
        return [f for f in self.files if f.status in status]

    @property
    def registered(self) -> list[FileRegistrationResult]:
        """The files registered (or planned, in a dry run)."""
        return self._with("registered", "planned")

    @property
    def skipped(self) -> list[FileRegistrationResult]:
        """The files skipped, with their reasons."""
        return self._with("skipped")

    @property
    def failed(self) -> list[FileRegistrationResult]:
        """The files that failed, with their errors."""
        return self._with("failed")

    @property
    def moved(self) -> list[FileRegistrationResult]:
        """The files ``force=True`` moved into a new revision folder."""
        return [f for f in self.files if f.moved_to is not None]


@dataclass(frozen=True, slots=True)
class SessionRegistration:
    """What :meth:`Registration.register_session` did.

    Attributes:
        item: The session item (created or updated; in a dry run, the existing one or None).
        session: Its ALF parts.
        path: The local session folder.
        created: Whether the session was created (else an existing one was updated); in a
            dry run, whether it would be.
        files: The files' results, when files were registered.
    """

    item: Item | None
    session: SessionPath
    path: Path
    created: bool
    files: RegistrationResult | None = None


@dataclass(frozen=True, slots=True)
class FlagOutcome:
    """One flag file found by :meth:`Registration.create_sessions`.

    Attributes:
        flag: The flag file.
        session_path: Its folder (the session).
        registration: What was registered (None in a dry run or on an error).
        error: Why the session could not be registered (the flag is then kept).
        flag_removed: Whether the flag was removed (only after a full success).
    """

    flag: Path
    session_path: Path
    registration: SessionRegistration | None = None
    error: BaseException | None = field(default=None, compare=False)
    flag_removed: bool = False


@dataclass(slots=True)
class _Planned:
    """A file that passed the local checks (index into the input)."""

    index: int
    path: Path
    root: Path
    session: SessionPath
    alf: AlfPath
    dataset_type: str
    size: int = 0
    sha256: str | None = None
    md5: str | None = None
    error: BaseException | None = None
    cache: HashCache | None = None
    version: str | None = None
    moved_from: Path | None = None


class _SessionFolders:
    """:func:`split_session_path` of local files, done once per folder.

    Many files share a folder; when the session lies within the folder (the file name is
    not part of it), every file of the folder has the same root and session, and the rest
    is the folder's rest and the file name. The files of one session share one root and
    one session object, so grouping them by (root, session) compares by identity.
    """

    def __init__(self) -> None:
        self._known: dict[str, tuple[Path, SessionPath, str]] = {}
        self._given: dict[str, tuple[Path, SessionPath, str]] = {}
        """The same, by the folder as given (not made absolute): no abspath per file."""
        self._sessions: dict[tuple[str, SessionPath], tuple[Path, SessionPath]] = {}

    def split(self, path: Path) -> tuple[Path, SessionPath, str]:
        """``(root, session, rest)`` of a file (made absolute first)."""
        given = os.fspath(path)
        given_folder, sep, given_name = given.rpartition(os.sep)
        # a file name (not a step like "..") in a folder: its folder, as given, decides
        plain = (
            bool(sep)
            and given_name not in ("", ".", "..")
            and (os.altsep is None or os.altsep not in given_name)
        )
        if plain:
            known = self._given.get(given_folder)
            if known is not None:
                root, session, prefix = known
                return root, session, f"{prefix}/{given_name}" if prefix else given_name
        text = os.path.abspath(given)
        if os.sep != "/":
            text = text.replace(os.sep, "/")
        folder, _, name = text.rpartition("/")
        known = self._known.get(folder)
        if known is None:
            root_text, found, rest = split_session_path(text)
            shared = self._sessions.get((root_text, found))
            if shared is None:
                shared = self._sessions[root_text, found] = (Path(root_text), found)
            root, session = shared
            if not rest:  # the file name is the session's number folder: not the folder's
                return root, session, rest
            known = self._known[folder] = (root, session, rest.rpartition("/")[0])
        if plain:
            self._given[given_folder] = known
        root, session, prefix = known
        return root, session, f"{prefix}/{name}" if prefix else name


class _Sessions:
    """The registered sessions of ALF session paths, for one call.

    A subject is looked up once, and its sessions of a day are listed in one request (the
    files of one call usually lie in a few sessions of a few days): no request per session.
    """

    def __init__(self, registration: Registration) -> None:
        self._registration = registration
        self._subjects: dict[tuple[str | None, str], Item] = {}
        self._days: dict[tuple[str, dt.date], dict[int, Item]] = {}
        self._lock = anyio.Lock()

    async def get(self, session: SessionPath) -> Item:
        """The registered session of ``session``.

        Raises:
            _NotRegistered: It is not registered (or you can't read it).
            UsageError: Its subject or lab can't be found.
        """
        reg = self._registration
        async with self._lock:  # concurrent callers of one subject and day wait for one list
            key = (session.lab, session.subject)
            subject = self._subjects.get(key)
            if subject is None:
                lab = await reg._lab(session.lab) if session.lab is not None else None
                subject = self._subjects[key] = await reg._subject(session.subject, lab)
            day = self._days.get((subject.id, session.date))
            if day is None:
                day = self._days[subject.id, session.date] = {
                    int(item.record["number"]): item
                    async for item in reg.client.iter_sessions(
                        subject=subject.id,
                        date_from=session.date,
                        date_to=session.date,
                        page_size=_SESSIONS_PAGE,
                    )
                }
        found = day.get(session.number)
        if found is None:
            raise _NotRegistered(f"session: {session} is not registered (register_session first)")
        return found


@dataclass(frozen=True, slots=True)
class _Request:
    """The options of one ``register_files`` call that every request carries."""

    repository: str | None
    exists: bool
    default: bool
    dry_run: bool
    force: bool
    sessions: _Sessions
    """The registered sessions of the call's files, looked up once per subject and day."""


class Registration:
    """Sessions and file registration (ONE's ``RegistrationClient``, made atomic).

    Args:
        registry_client: The registry's L2 client.
        cache_dir: Where local file hashes are kept (default: the storage engine's,
            ``$PROVENA_CACHE_DIR`` or the user's cache folder).
        hash_workers: Worker threads hashing files at once.

    Example:
        ```python
        reg = pv.registration
        ses = await reg.create_session("KS023", lab="cortexlab", root=Path("/data"))
        ```
    """

    def __init__(
        self,
        registry_client: RegistryClient,
        *,
        cache_dir: Path | str | None = None,
        hash_workers: int = 4,
    ) -> None:
        self.client = registry_client
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._limiter = anyio.CapacityLimiter(max(1, hash_workers))

    def __repr__(self) -> str:
        return f"Registration({self.client!r})"

    # ------------------------------------------------------------------ lookups

    async def _named(self, subtype: str, key: str, value: str) -> list[Item]:
        folded = value.casefold()
        return [
            item
            async for item in self.client.iter_items(subtype=subtype, page_size=500)
            if str(item.record.get(key, "")).casefold() == folded
        ]

    async def _lab(self, lab: str) -> Item:
        """A lab by handle or name."""
        if _is_handle(lab):
            return await self.client.get_item(lab)
        found = await self._named("lab", "name", lab)
        if not found:
            raise UsageError(f"lab: no lab named {lab!r} that you may read")
        return found[0]

    async def _subject(self, subject: str, lab: Item | None = None) -> Item:
        """A subject by handle, or by nickname (within ``lab`` when given)."""
        if _is_handle(subject):
            return await self.client.get_item(subject)
        found = [
            item
            for item in await self._named("subject", "nickname", subject)
            if lab is None or item.record.get("lab") == lab.id
        ]
        where = f" in lab {lab.record.get('name')!r}" if lab is not None else ""
        if not found:
            raise UsageError(f"subject: no subject {subject!r}{where} that you may read")
        if len(found) > 1:
            labs = ", ".join(str(item.record.get("lab")) for item in found)
            raise UsageError(
                f"subject: {subject!r} is a subject of several labs ({labs}); name the lab"
            )
        return found[0]

    async def _find_session(self, subject: Item, date: dt.date, number: int) -> Item | None:
        page = await self.client.list_sessions(
            subject=subject.id, date_from=date, date_to=date, number=number, page_size=1
        )
        return page.items[0] if page.items else None

    # ------------------------------------------------------------------ sessions

    async def create_session(
        self,
        subject: str,
        *,
        date: dt.date | str | None = None,
        lab: str | None = None,
        root: Path | str | None = None,
        lab_folders: bool = True,
        **fields: Any,
    ) -> CreatedSession:
        """Create a session with the next free number, and a local folder to match.

        The server allocates the number (never a scan of the local disk), so two rigs
        creating sessions of one subject on one day get different numbers.

        Args:
            subject: The subject's handle or nickname.
            date: The session's date (default: today, on this machine's clock).
            lab: The lab's handle or name (default: the subject's lab).
            root: Where to create the folder ``root/[lab/Subjects/]subject/YYYY-MM-DD/NNN``;
                None creates no folder.
            lab_folders: Put ``lab/Subjects/`` in the folder's path.
            **fields: More fields of the session record (``users``, ``procedures``,
                ``start_time``, ``task_protocol``...).

        Returns:
            The session item, its ALF parts and the folder.

        Raises:
            UsageError: The subject or lab can't be found.
            Unprocessable: The server refused a field (its details name it).
            Forbidden: You are not a member of the lab.

        Example:
            ```python
            ses = await pv.registration.create_session("KS023", root=Path("/data"))
            ses.number, ses.path
            ```
        """
        lab_item = await self._lab(lab) if lab is not None else None
        subject_item = await self._subject(subject, lab_item)
        if lab_item is None:
            lab_item = await self.client.get_item(str(subject_item.record["lab"]))
        day = _as_date(date) if date is not None else dt.date.today()
        body = {
            **fields,
            "subject": subject_item.id,
            "lab": lab_item.id,
            "date": day.isoformat(),
        }
        item = await self.client.create_session(body)
        session = SessionPath(
            str(subject_item.record["nickname"]),
            day,
            int(item.record["number"]),
            lab=str(lab_item.record["name"]) if lab_folders else None,
        )
        path = None
        if root is not None:
            path = Path(root) / str(session)
            path.mkdir(parents=True, exist_ok=True)
        return CreatedSession(item, session, path)

    async def register_session(
        self,
        path: Path | str,
        *,
        users: Sequence[str] | None = None,
        file_list: bool | Sequence[Path | str] = True,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        **fields: Any,
    ) -> SessionRegistration:
        """Create or update the session of a local session folder, then register its files.

        The folder's path is parsed with the ALF rules; the session with its subject, date
        and number is updated if it exists (ONE's semantics), created with that number if
        not.

        Args:
            path: The session folder, ``…/[lab/Subjects/]subject/YYYY-MM-DD/NNN``.
            users: Usernames of the people who ran it.
            file_list: ``True`` registers every file under the folder (but flag files),
                ``False`` none, a list those files.
            dry_run: Check everything and plan the files, write nothing.
            progress: Called with the hashing of the files, as by :meth:`register_files`.
            **fields: More fields of the session record; ``lab`` (handle or name) must agree
                with the lab in the path, and ``start_time`` must fall on the path's date.

        Returns:
            The session item, whether it was created, and the files' results.

        Raises:
            AlfError: The path is not a session folder (``.part`` names the part).
            UsageError: The lab or start date disagree with the path (the message names the
                part), or the subject can't be found.

        Example:
            ```python
            done = await pv.registration.register_session(
                Path("/data/cortexlab/Subjects/KS023/2026-12-06/001"), users=["alice"])
            done.created, len(done.files.registered)
            ```
        """
        folder = Path(path)
        _, session, rest = split_session_path(folder.absolute())
        if rest:
            raise AlfError("session", str(folder), "a session folder", reason="is not one")
        lab_arg = fields.pop("lab", None)
        lab_item = await self._lab(str(lab_arg)) if lab_arg is not None else None
        if session.lab is not None:
            if lab_item is None:
                lab_item = await self._lab(session.lab)
            elif str(lab_item.record["name"]).casefold() != session.lab.casefold():
                raise UsageError(
                    f"lab: {lab_item.record['name']!r} does not match the lab in the path "
                    f"{session.lab!r} ({folder})"
                )
        start = fields.get("start_time")
        if start is not None:
            start_day = _as_datetime(start, "start_time").date()
            if start_day != session.date:
                raise UsageError(
                    f"start_time: {start_day.isoformat()} does not match the date in the path "
                    f"{session.date.isoformat()} ({folder})"
                )
            fields["start_time"] = _as_datetime(start).isoformat()
        subject = await self._subject(session.subject, lab_item)
        if users is not None:
            fields["users"] = list(users)
        existing = await self._find_session(subject, session.date, session.number)
        item: Item | None = existing
        if dry_run:
            pass
        elif existing is None:
            body = {
                **fields,
                "subject": subject.id,
                "date": session.date.isoformat(),
                "number": session.number,
            }
            if lab_item is not None:
                body["lab"] = lab_item.id
            item = await self.client.create_session(body)
        else:
            record = {**existing.record, **fields}
            item = await self.client.update_item(
                existing.id,
                {"record": record, "reason": "register_session"},
                if_match=existing.revision,
            )
        files: RegistrationResult | None = None
        if file_list is True:
            found = _session_files(folder)
            files = (
                await self.register_files(found, dry_run=dry_run, progress=progress)
                if found
                else RegistrationResult()
            )
        elif file_list:
            files = await self.register_files(
                [Path(p) for p in file_list], dry_run=dry_run, progress=progress
            )
        return SessionRegistration(item, session, folder, existing is None, files)

    async def create_sessions(
        self,
        root: Path | str,
        flag_glob: str = "**/create_me.flag",
        *,
        register_files: bool = False,
        dry_run: bool = False,
    ) -> list[FlagOutcome]:
        """Register the session of every flag file under ``root``, then remove the flag.

        A flag is removed only after its session (and, with ``register_files``, every one
        of its files that could be registered) is registered: a file skipped for its name
        (not a dataset, unknown extension) does not keep the flag, a refusal does. One
        session's error doesn't stop the others.

        Args:
            root: Where to look.
            flag_glob: The flags' pattern, relative to ``root``.
            register_files: Register the files of each session too.
            dry_run: Only list the flags' sessions; register nothing, remove nothing.

        Returns:
            One outcome per flag, in path order.

        Example:
            ```python
            for outcome in await pv.registration.create_sessions(Path("/data")):
                print(outcome.session_path, outcome.flag_removed, outcome.error)
            ```
        """
        outcomes: list[FlagOutcome] = []
        for flag in sorted(Path(root).glob(flag_glob)):
            folder = flag.parent
            if dry_run:
                outcomes.append(FlagOutcome(flag, folder))
                continue
            try:
                done = await self.register_session(folder, file_list=register_files)
            except Exception as exc:  # one session's failure doesn't stop the others
                outcomes.append(FlagOutcome(flag, folder, error=exc))
                continue
            failed = done.files.failed if done.files is not None else []
            if failed:
                error = failed[0].error or UsageError(str(failed[0].reason))
                outcomes.append(FlagOutcome(flag, folder, done, error=error))
                continue
            flag.unlink(missing_ok=True)
            outcomes.append(FlagOutcome(flag, folder, done, flag_removed=True))
        return outcomes

    async def iter_sessions(
        self,
        *,
        subject: str | None = None,
        lab: str | None = None,
        date_from: dt.date | str | None = None,
        date_to: dt.date | str | None = None,
        number: int | None = None,
        order: Literal["asc", "desc"] = "asc",
    ) -> AsyncIterator[Item]:
        """Every session you may read, by subject (handle or nickname), lab, dates, number.

        Example:
            ```python
            async for ses in pv.registration.iter_sessions(subject="KS023", number=1):
                print(ses.display_name)
            ```
        """
        lab_item = await self._lab(lab) if lab is not None else None
        subject_id = (await self._subject(subject, lab_item)).id if subject is not None else None
        async for item in self.client.iter_sessions(
            subject=subject_id,
            lab=lab_item.id if lab_item is not None else None,
            date_from=date_from,
            date_to=date_to,
            number=number,
            order=order,
        ):
            yield item

    # ------------------------------------------------------------------ husbandry

    async def register_weight(
        self,
        subject: str,
        grams: float,
        *,
        time: dt.datetime | str | None = None,
        user: str | None = None,
        lab: str | None = None,
    ) -> Item:
        """Record a subject's weight (a ``weighing`` item).

        Args:
            subject: The subject's handle or nickname.
            grams: The weight, > 0.
            time: When (an aware time; default now).
            user: Who weighed (a username).
            lab: The subject's lab (handle or name), to tell apart subjects of one nickname.

        Example:
            ```python
            await pv.registration.register_weight("KS023", 21.3, user="alice")
            ```
        """
        record = {"grams": grams, **({"user": user} if user is not None else {})}
        return await self._husbandry("weighing", subject, lab, time, record)

    async def register_water_administration(
        self,
        subject: str,
        ml: float,
        *,
        time: dt.datetime | str | None = None,
        user: str | None = None,
        water_type: str | None = None,
        lab: str | None = None,
    ) -> Item:
        """Record water given to a subject (a ``water_administration`` item).

        Example:
            ```python
            await pv.registration.register_water_administration("KS023", 0.75, user="alice")
            ```
        """
        record: dict[str, Any] = {"ml": ml}
        if user is not None:
            record["user"] = user
        if water_type is not None:
            record["water_type"] = water_type
        return await self._husbandry("water_administration", subject, lab, time, record)

    async def _husbandry(
        self,
        subtype: str,
        subject: str,
        lab: str | None,
        time: dt.datetime | str | None,
        record: dict[str, Any],
    ) -> Item:
        lab_item = await self._lab(lab) if lab is not None else None
        subject_item = await self._subject(subject, lab_item)
        when = _as_datetime(time) if time is not None else dt.datetime.now(dt.UTC)
        body = {**record, "subject": subject_item.id, "time": when.isoformat()}
        return await self.client.create_item({"subtype": subtype, "record": body})

    # ------------------------------------------------------------------ files

    async def register_files(
        self,
        paths: Sequence[Path | str],
        *,
        versions: str | Sequence[str | None] | None = None,
        default: bool = True,
        repository: str | None = None,
        exists: bool = True,
        dry_run: bool = False,
        revision: str | None = None,
        force: bool = False,
        md5: bool = False,
        progress: ProgressCallback | None = None,
    ) -> RegistrationResult:
        """Register files of sessions: one atomic request per session.

        Each file's path must hold an ALF session (registered already) and a dataset name;
        its extension must be a known data format and exactly one dataset type must match
        it, else it is ``skipped`` with the reason (the dataset types and data formats are
        read once per call). Sizes and hashes are computed in worker threads, or taken from
        the hash cache when the file is unchanged. Then each session's files go in one
        request, which the server checks whole and writes all or nothing.

        A request refused because a revision is protected (412) fails all its files, unless
        ``force=True``: then every file of it is moved into the revision folder ONE's table
        gives (:func:`provena_like.alf.resolve_revision`, named after today's UTC date) and
        the request is sent again. A move is never silent: ``moved_from`` and ``moved_to``
        say where each file went.

        Args:
            paths: The files.
            versions: One version for all files, or one per file.
            default: Make each registered revision its dataset's default.
            repository: The repository holding the files (handle or name), for a file
                record there; None for none. When its record's ``hashes`` has ``md5``, the
                files' md5s are computed and sent too (the server requires them).
            exists: Whether the files are in ``repository`` now.
            dry_run: Check everything (the server's checks too, read-only) and return the
                exact plan; nothing is registered, moved or written (but the hash cache).
            revision: Register the files under this revision: a file not in its
                ``#revision#`` folder is moved there first.
            force: On a protected revision, move the files to a new revision and register
                them there.
            md5: Compute md5 too (sha256 always), whatever the repository; by default
                only for a repository that keeps md5s.
            progress: Called with a
                :class:`~provena_like.storage.events.HashingProgress` event as the files
                are hashed (bytes hashed of the bytes to hash; a file whose hashes are
                cached takes its size off the total): at the start, every 0.1 s while the
                counts change, and once at the end. Plain or async; it must not block.

        Returns:
            One result per file, in the input's order.

        Raises:
            UsageError: ``versions`` doesn't align with ``paths``, ``repository`` is
                unknown, or ``revision`` is not a revision name.

        Example:
            ```python
            result = await pv.registration.register_files(
                sorted(Path("/data/lab/Subjects/KS023/2026-12-06/001").rglob("*.npy")),
                versions="1.2.0", force=True)
            for f in result.moved:
                print(f"{f.moved_from} -> {f.moved_to}")
            ```
        """
        files = [p if isinstance(p, Path) else Path(p) for p in paths]
        version_of = _versions(versions, len(files))
        if revision is not None and (not revision or not is_revision_name(revision)):
            raise UsageError(f"revision: {revision!r} is not a revision name")
        repository_id, wants_md5 = (
            await self._repository(repository) if repository is not None else (None, False)
        )
        results: list[FileRegistrationResult | None] = [None] * len(files)
        planned = await self._plan(files, results)
        await self._hash(planned, md5=md5 or wants_md5, progress=progress)
        groups: dict[tuple[Path, SessionPath], list[_Planned]] = {}
        for p in planned:
            if p.error is not None:
                results[p.index] = _failed(p, p.error)
            else:
                p.version = version_of[p.index]
                groups.setdefault((p.root, p.session), []).append(p)
        request = _Request(repository_id, exists, default, dry_run, force, _Sessions(self))
        limiter = anyio.CapacityLimiter(_SESSIONS_AT_ONCE)

        async def one_session(group: list[_Planned]) -> None:
            async with limiter:
                if revision is not None:
                    try:
                        _move(group, lambda _p: revision, dry_run=dry_run)
                    except (OSError, UsageError) as err:
                        for p in group:
                            results[p.index] = _failed(p, err)
                        return
                for p, outcome in await self._register_group(group, request):
                    results[p.index] = outcome

        async with anyio.create_task_group() as tg:
            for group in groups.values():
                tg.start_soon(one_session, group)
        return RegistrationResult([r for r in results if r is not None])

    async def _register_group(
        self, group: list[_Planned], request: _Request
    ) -> list[tuple[_Planned, FileRegistrationResult]]:
        """Register one session's files (in requests of at most the server's maximum)."""
        first = group[0]
        try:
            session = await request.sessions.get(first.session)
        except _NotRegistered as err:
            if request.dry_run:  # the plan of a session to register first: the local checks
                note = f"{err}; only the local checks ran"
                return [(p, _result(p, "planned", reason=note)) for p in group]
            return [(p, _failed(p, err)) for p in group]
        except (APIStatusError, UsageError) as err:
            return [(p, _failed(p, err)) for p in group]
        if not request.dry_run:
            kept = await self._unchanged(session, group, request)
            if kept is not None:
                return kept
        outcomes: list[tuple[_Planned, FileRegistrationResult]] = []
        for start in range(0, len(group), MAX_FILES_PER_REQUEST):
            chunk = group[start : start + MAX_FILES_PER_REQUEST]
            outcomes.extend(await self._register_chunk(session, chunk, request))
        return outcomes

    async def _unchanged(
        self, session: Item, group: list[_Planned], request: _Request
    ) -> list[tuple[_Planned, FileRegistrationResult]] | None:
        """The results of a session's files if registering them would change nothing.

        One small request (:meth:`RegistryClient.check_unchanged`: a digest of the files,
        not the files): when the server answers ``unchanged`` the files are exactly its
        registered revisions of the session and their registration would pass every check
        and write nothing, so it is not sent; each file's response is then what a compact
        answer gives (:class:`UnchangedFile`). None when the files must be registered: the
        server says so, it can't say (several revisions of a dataset whose default would
        depend on their order), or it refuses the check (the registration says why).
        """
        datasets = {(p.alf.collection, p.alf.name) for p in group}
        if request.default and len(datasets) != len(group):
            return None
        paths = [p.alf.rel_path for p in group]
        try:
            check = await self.client.check_unchanged(
                session.id,
                [(path, p.sha256 or "") for path, p in zip(paths, group, strict=True)],
                repository=request.repository,
                exists=request.exists,
                default=request.default,
                session_path=str(group[0].session),
                md5=all(p.md5 is not None for p in group),
                versions={p.version for p in group},
            )
        except (APIStatusError, ValueError):  # ValueError: pydantic's, e.g. a bad version
            return None
        if not check.unchanged or len(check.ids) != len(group):
            return None
        ids = dict(zip(sorted(paths), check.ids, strict=True))
        return [
            (
                p,
                _result(
                    p,
                    "registered",
                    response=UnchangedFile(path, i % MAX_FILES_PER_REQUEST, ids[path]),
                ),
            )
            for i, (path, p) in enumerate(zip(paths, group, strict=True))
        ]

    async def _register_chunk(
        self, session: Item, chunk: list[_Planned], request: _Request
    ) -> list[tuple[_Planned, FileRegistrationResult]]:
        try:
            answer = await self._send(session, chunk, request)
        except PreconditionFailed as err:
            if not request.force:
                return [(p, _failed(p, err)) for p in chunk]
            try:
                check = await self.client.check_protected(
                    session.id, [p.alf.rel_path for p in chunk]
                )
                today = dt.datetime.now(dt.UTC).date()
                existing = {
                    f.path: [(r.revision, r.protected) for r in f.revisions] for f in check.files
                }
                _move(
                    chunk,
                    lambda p: resolve_revision(
                        p.alf.revision, existing.get(p.alf.rel_path, []), today=today
                    ),
                    dry_run=request.dry_run,
                )
                answer = await self._send(session, chunk, request)
            except (APIStatusError, OSError, UsageError) as again:
                return [(p, _failed(p, again)) for p in chunk]
        except APIStatusError as err:
            return [(p, _failed(p, _file_error(err, i))) for i, p in enumerate(chunk)]
        status: FileRegistrationStatus = "planned" if request.dry_run else "registered"
        try:
            answers = answer.aligned([p.alf.rel_path for p in chunk])
        except ValueError as err:
            bad = ResponseValidationError(f"register_files: the answer does not fit: {err}")
            return [(p, _failed(p, bad)) for p in chunk]
        return [
            (p, _result(p, status, response=done)) for p, done in zip(chunk, answers, strict=True)
        ]

    async def _send(
        self, session: Item, chunk: list[_Planned], request: _Request
    ) -> RegisterFilesResult:
        # the JSON form of a RegisterFilesRequest, built from what the SDK itself computed
        # (the ALF parser's path, stat's size, hashlib's digests): no model per file, not
        # validated again here; the server validates the request. None fields go unsaid.
        files: list[dict[str, Any]] = []
        for p in chunk:
            file: dict[str, Any] = {"path": p.alf.rel_path, "size": p.size, "sha256": p.sha256}
            if p.md5 is not None:
                file["md5"] = p.md5
            if p.version is not None:
                file["version"] = p.version
            files.append(file)
        body: dict[str, Any] = {
            "files": files,
            "exists": request.exists,
            "default": request.default,
            "dry_run": request.dry_run,
            "session_path": str(chunk[0].session),
            "answer": "compact",
        }
        if request.repository is not None:
            body["repository"] = request.repository
        return await self.client._post_files(session.id, body)

    async def _repository(self, repository: str) -> tuple[str, bool]:
        """A repository's handle (given it or its name), and whether it keeps md5s.

        Whether it does is its record's ``hashes`` (``["sha256", "md5"]``); a record from
        before that field keeps sha256 only.
        """
        if _is_handle(repository):
            item = await self.client.get_item(repository)
        else:
            found = await self._named("repository", "name", repository)
            if not found:
                raise UsageError(f"repository: no repository named {repository!r}")
            item = found[0]
        return item.id, "md5" in (item.record.get("hashes") or ())

    async def check_protected_files(self, paths: Sequence[Path | str]) -> list[ProtectedFile]:
        """Whether each file's revision is protected, with its dataset's revisions.

        Read-only. One request per session.

        Args:
            paths: Files inside registered session folders.

        Returns:
            One entry per path, in order: ``protected``, and the dataset's revisions newest
            first (empty for a dataset not registered yet).

        Raises:
            AlfError: A path is not an ALF dataset path in a session.
            UsageError: A session is not registered.

        Example:
            ```python
            checks = await pv.registration.check_protected_files(
                [Path("/data/lab/Subjects/KS023/2026-12-06/001/alf/_ibl_trials.table.pqt")])
            checks[0].protected
            ```
        """
        parsed: list[tuple[SessionPath, str]] = []
        for path in paths:
            _, session, rest = split_session_path(Path(path).absolute())
            parsed.append((session, parse_rel_path(rest).rel_path))
        by_session: dict[str, list[int]] = {}
        for index, (session, _) in enumerate(parsed):
            by_session.setdefault(str(session), []).append(index)
        found: dict[int, ProtectedFile] = {}
        sessions = _Sessions(self)
        for indexes in by_session.values():
            item = await sessions.get(parsed[indexes[0]][0])
            check = await self.client.check_protected(item.id, [parsed[i][1] for i in indexes])
            found.update(zip(indexes, check.files, strict=True))
        return [found[i] for i in range(len(parsed))]

    async def iter_datasets(
        self,
        *,
        session: str | None = None,
        subject: str | None = None,
        lab: str | None = None,
        date_from: dt.date | str | None = None,
        date_to: dt.date | str | None = None,
        collection: str | None = None,
        name: str | None = None,
        revision: str | None = None,
        last_before: str | None = None,
        default_only: bool = False,
    ) -> AsyncIterator[RegisteredDataset]:
        """Every registered dataset you may read (subject and lab by handle or name).

        ``last_before`` gives, per dataset, its newest revision at or before that one
        (ONE's "last before"); ``session`` is a session's handle.

        Example:
            ```python
            async for d in pv.registration.iter_datasets(subject="KS023", default_only=True):
                print(d.rel_path, d.revision)
            ```
        """
        lab_item = await self._lab(lab) if lab is not None else None
        subject_id = (await self._subject(subject, lab_item)).id if subject is not None else None
        async for dataset in self.client.iter_registered_datasets(
            session=session,
            subject=subject_id,
            lab=lab_item.id if lab_item is not None else None,
            date_from=date_from,
            date_to=date_to,
            collection=collection,
            name=name,
            revision=revision,
            last_before=last_before,
            default_only=default_only,
        ):
            yield dataset

    async def _vocabulary(self) -> tuple[list[_DatasetType], set[str]]:
        """The dataset types and the known extensions (lower-case, with the dot)."""
        types = [
            _DatasetType(str(i.record["name"]), str(i.record.get("filename_pattern") or ""))
            async for i in self.client.iter_items(subtype="dataset_type", page_size=500)
        ]
        extensions = {
            str(i.record["file_extension"]).casefold()
            async for i in self.client.iter_items(subtype="data_format", page_size=500)
        }
        return types, extensions

    async def _plan(
        self, files: list[Path], results: list[FileRegistrationResult | None]
    ) -> list[_Planned]:
        """The local checks: ALF path, extension, dataset type (results get the skipped)."""
        types, extensions = await self._vocabulary()
        planned: list[_Planned] = []
        folders = _SessionFolders()
        matched: dict[str, str | DatasetTypeError] = {}  # by dataset name: files share them
        for index, path in enumerate(files):
            try:
                root, session, rest = folders.split(path)
                alf = parse_rel_path(rest)
            except AlfError as err:
                results[index] = FileRegistrationResult(
                    path, "skipped", f"not an ALF dataset: {err}"
                )
                continue
            extension = "." + alf.dataset.extension.casefold()
            if extension not in extensions:
                results[index] = FileRegistrationResult(
                    path,
                    "skipped",
                    f"unknown extension {extension!r} (not a registered data format)",
                    session=session,
                    rel_path=alf.rel_path,
                )
                continue
            dataset_type = matched.get(alf.name)
            if dataset_type is None:
                try:
                    dataset_type = match_dataset_type(alf.name, types).name
                except DatasetTypeError as err:
                    dataset_type = err
                matched[alf.name] = dataset_type
            if isinstance(dataset_type, DatasetTypeError):
                results[index] = FileRegistrationResult(
                    path, "skipped", str(dataset_type), session=session, rel_path=alf.rel_path
                )
                continue
            planned.append(_Planned(index, path, root, session, alf, dataset_type))
        return planned

    async def _hash(
        self, planned: list[_Planned], *, md5: bool, progress: ProgressCallback | None = None
    ) -> None:
        """Sizes and hashes, in worker threads, from the hash cache when unchanged.

        With ``progress``, the files are sized first (for the bytes to hash) and the hashing
        is reported as :class:`~provena_like.storage.events.HashingProgress` events.
        """
        caches: dict[tuple[Path, SessionPath], HashCache] = {}
        for p in planned:
            cache = caches.get((p.root, p.session))
            if cache is None:
                folder = p.root / str(p.session)
                cache = await anyio.to_thread.run_sync(
                    HashCache.for_root, self.cache_dir, folder, limiter=self._limiter
                )
                caches[p.root, p.session] = cache
            p.cache = cache

        expected = [0] * len(planned)  # bytes each file is counted for in the total
        if progress is not None and planned:
            expected = await anyio.to_thread.run_sync(
                _sizes, [p.path for p in planned], limiter=self._limiter
            )

        def work(batch: list[tuple[_Planned, int]], meter: HashMeter) -> None:
            for p, counted in batch:
                read = 0

                def on_bytes(n: int) -> None:
                    nonlocal read
                    read += n
                    meter.add(n)

                try:
                    self._hash_one(p, md5=md5, on_bytes=on_bytes)
                finally:
                    meter.file_done(expected=counted, read=read)

        total = sum(expected)
        files = list(zip(planned, expected, strict=True))
        async with hashing_progress(progress, files_total=len(files), bytes_total=total) as meter:

            async def run(batch: list[tuple[_Planned, int]]) -> None:
                await anyio.to_thread.run_sync(work, batch, meter, limiter=self._limiter)

            async with anyio.create_task_group() as tg:
                # big batches (fewer trips), but at least four per worker thread
                workers = int(self._limiter.total_tokens)
                size = max(1, min(_HASH_BATCH, -(-len(files) // (4 * workers))))
                for start in range(0, len(files), size):
                    tg.start_soon(run, files[start : start + size])
        for cache in caches.values():
            with contextlib.suppress(OSError):
                await anyio.to_thread.run_sync(cache.save)

    @staticmethod
    def _hash_one(p: _Planned, *, md5: bool, on_bytes: Callable[[int], None]) -> None:
        """One file's size and hashes (in a worker thread); a failure goes to ``p.error``."""
        try:
            info = os.stat(p.path)
        except OSError as err:
            p.error = err
            return
        assert p.cache is not None
        hashes = p.cache.digest(p.path, info, md5=md5, on_bytes=on_bytes)
        if hashes is None:
            p.error = OSError(f"{p.path} can't be read")
            return
        p.size, (p.sha256, p.md5) = info.st_size, hashes


def _sizes(paths: list[Path]) -> list[int]:
    """Each file's size (0 if it can't be read): the bytes a hashing phase expects."""
    sizes = []
    for path in paths:
        try:
            sizes.append(os.stat(path).st_size)
        except OSError:
            sizes.append(0)
    return sizes


def _versions(versions: str | Sequence[str | None] | None, count: int) -> list[str | None]:
    if versions is None or isinstance(versions, str):
        return [versions] * count
    if len(versions) != count:
        raise UsageError(f"versions: {len(versions)} versions for {count} files")
    return list(versions)


def _result(p: _Planned, status: FileRegistrationStatus, **extra: Any) -> FileRegistrationResult:
    moved = p.moved_from is not None
    return FileRegistrationResult(
        p.moved_from or p.path,
        status,
        session=p.session,
        rel_path=p.alf.rel_path,
        dataset_type=p.dataset_type,
        size=p.size,
        sha256=p.sha256,
        md5=p.md5,
        moved_from=p.moved_from,
        moved_to=p.path if moved else None,
        **extra,
    )


def _move(group: list[_Planned], revision_of: Callable[[_Planned], str], *, dry_run: bool) -> None:
    """Move each file whose revision changes into its new ``#revision#`` folder.

    In a dry run nothing moves, but the plan says where each file would go. A file's hash
    cache entry follows it (same content, size and mtime).
    """
    for p in group:
        target = revision_of(p)
        if target == p.alf.revision:
            continue
        folder = p.root / str(p.session)
        alf = p.alf.with_revision(target) if target else p.alf.without_revision()
        destination = folder / alf.rel_path
        if not dry_run:
            if destination.exists():
                raise UsageError(f"revision: {destination} exists; not overwriting it")
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p.path, destination)
            if p.cache is not None and p.sha256 is not None:
                with contextlib.suppress(OSError):
                    p.cache.put(destination, os.stat(destination), p.sha256, p.md5)
                    p.cache.save()
        if p.moved_from is None:
            p.moved_from = p.path
        p.path, p.alf = destination, alf


def _file_error(err: APIStatusError, index: int) -> BaseException:
    """The error of the ``index``-th file of a refused request: its own detail, if any."""
    prefix = f"files.{index}."
    for detail in err.details or []:
        if isinstance(detail, dict) and str(detail.get("field", "")).startswith(prefix):
            message = detail.get("message") or detail.get("type") or str(err)
            return UsageError(f"{message} ({err.status_code} {err.code})")
    return err


def _failed(p: _Planned, error: BaseException) -> FileRegistrationResult:
    return _result(p, "failed", reason=str(error), error=error)


def _session_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(_FLAG_SUFFIX))


def _as_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        raise UsageError("date: a date, not a datetime")
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"date: {value!r} is not YYYY-MM-DD") from None


def _as_datetime(value: dt.datetime | str, name: str = "time") -> dt.datetime:
    try:
        when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{name}: {value!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise UsageError(f"{name}: {value!r} has no UTC offset")
    return when
