"""``pv.archive``: archive raw data to storage locations, rebuild the records, fetch it back.

The map-ephys "raw data archival" workflow (``GlobusStorageManager`` with the
``ArchivedRawEphys`` tables) over the registry and the transfer service, without its
hazards:

- **storage locations** are registry items (``storage_location``, written by registry
  admins): an archive type (``kind``: ``raw-ephys``, ``raw-video``), a transfer collection
  and root, a **layout** placing a session's folder there
  (:class:`~provena_like.models.archive.Layout`), and file patterns. The local data root
  mirrors the layout: a session's files are those under its folder there.
- :meth:`Archive.publish` sends the files of the given sessions to every location of a kind
  in **one** task per location (``sync_level="checksum"``, ``verify_checksum=True``: the
  endpoint checks every copy against its source), reads the archive's sizes back, checks
  that the local files did not change while they were read, and only then records each
  file (path, size, sha256, task id). A task that fails, pauses (INACTIVE) or gets stuck is
  cancelled and records nothing; running publish again completes it. Files already recorded
  with the same size and sha256 are not sent again.
- :meth:`Archive.discover` walks a location breadth-first (``ls``, at most
  ``list_concurrency`` listings in flight and ``list_rate`` started a second), parses each
  path with the layout, finds its session, and (re)writes the records; files that don't
  fit the layout (or whose session is not registered) are reported, never dropped
  silently. The sha256 of a file without a record of the same size is read back: one task
  copies those files into the local endpoint's spool, where they are hashed and removed.
- :meth:`Archive.retrieve` copies recorded files back in one task per location, after
  refusing (:class:`ArchiveRefused`, before anything moves) to write over the originals they
  were published from or over an existing file whose sha256 differs; each file received is
  checked against its record.
- Tokens come from the SDK's auth (the token store, mode 0600), never from a config file;
  the local endpoint (a collection showing a directory of this machine) is the caller's
  configuration (``--local-endpoint COLLECTION=DIR`` in the CLI).

Example:
    ```python
    laptop = LocalEndpoint(local_collection_id, Path("/data/raw"))
    published = await pv.archive.publish("raw-ephys", sessions=[session], local=laptop)
    assert published.ok, published.problems
    back = await pv.archive.retrieve(
        "raw-ephys", session=session, dest=laptop.directory / "restore", local=laptop
    )
    ```
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import anyio

from provena_like._core.errors import NotFound, TransferError, UsageError
from provena_like.models.archive import (
    MAX_ARCHIVED_BATCH,
    STORAGE_LOCATION,
    ArchivedFile,
    ArchivedFileWrite,
    Layout,
    LayoutKey,
    StorageLocationRecord,
)
from provena_like.repositories.transfer import SPOOL, LocalEndpoint, TransferRepository
from provena_like.storage.hashing import hash_file

if TYPE_CHECKING:
    from provena_like.clients.archive import ArchiveClient
    from provena_like.clients.registry import RegistryClient
    from provena_like.clients.transfer import TransferClient

__all__ = [
    "Archive",
    "ArchiveEvent",
    "ArchiveFileResult",
    "ArchiveRefused",
    "ArchiveResult",
    "StorageLocation",
    "Unmatched",
]

FileStatus = Literal["archived", "already", "planned", "retrieved", "present", "failed"]
Step = Literal["hashed", "sent", "recorded", "listed", "checked", "retrieved"]


@dataclass(frozen=True)
class ArchiveEvent:
    """Progress of a publish, discover or retrieve (``on_progress=``).

    Attributes:
        step: ``hashed`` (a local file, publish), ``sent`` (a task succeeded, its id in
            ``path``), ``recorded`` (a record written), ``listed`` (a file found by
            discover), ``checked`` (a file planned by retrieve), ``retrieved``.
        location: The storage location's handle.
        path: The file's path under the location's root (the task id for ``sent``).
    """

    step: Step
    location: str
    path: str | None = None


ProgressHook = Callable[[ArchiveEvent], None]


class ArchiveRefused(UsageError):
    """Retrieve refused to write over originals or changed files (nothing was moved).

    Attributes:
        paths: The local files it would have written over.
    """

    def __init__(self, message: str, paths: Sequence[Path]) -> None:
        super().__init__(message)
        self.paths = list(paths)


@dataclass(frozen=True)
class StorageLocation:
    """A storage location item: its handle and record.

    Attributes:
        id: The item's handle.
        record: The location's record.
    """

    id: str
    record: StorageLocationRecord

    @property
    def layout(self) -> Layout:
        """The location's layout."""
        return self.record.parsed_layout()

    @property
    def root(self) -> str:
        """``<collection>:<root>``, a Globus root :class:`TransferRepository` takes."""
        return f"{self.record.collection}:{self.record.root}"

    def fits(self, rest: str) -> bool:
        """Whether a path inside a session's folder matches the location's patterns."""
        return any(fnmatch.fnmatchcase(rest, pattern) for pattern in self.record.patterns)


@dataclass(frozen=True)
class ArchiveFileResult:
    """What happened to one file.

    Attributes:
        location: The storage location's handle.
        path: The file's path under the location's root.
        status: ``archived`` / ``already`` (publish), ``planned`` (a dry run),
            ``retrieved`` / ``present`` (retrieve), or ``failed``.
        session: The session's handle.
        size: Its size in bytes.
        sha256: Its sha256.
        task_id: The task that moved it.
        reason: Why it failed.
    """

    location: str
    path: str
    status: FileStatus
    session: str | None = None
    size: int | None = None
    sha256: str | None = None
    task_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Unmatched:
    """A path of a location that discover could not turn into a record.

    Attributes:
        location: The storage location's handle.
        path: The path under the location's root.
        reason: Why (doesn't fit the layout or patterns, or no such session).
    """

    location: str
    path: str
    reason: str


@dataclass
class ArchiveResult:
    """The result of a publish, discover or retrieve: per file, never half-raised.

    Attributes:
        files: One result per file.
        tasks: Location handle → the id of the task sent there.
        unmatched: Paths that fit no record (discover).
        problems: Sessions or locations that could not be handled, and why.
        records_changed: Records the server wrote or changed.
    """

    files: list[ArchiveFileResult] = field(default_factory=list)
    tasks: dict[str, str] = field(default_factory=dict)
    unmatched: list[Unmatched] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    records_changed: int = 0

    @property
    def ok(self) -> bool:
        """No file failed and no session or location was left out."""
        return not self.problems and all(f.status != "failed" for f in self.files)

    def count(self, status: FileStatus) -> int:
        """How many files have ``status``."""
        return sum(1 for f in self.files if f.status == status)


@dataclass(frozen=True)
class _Local:
    """A local file of a session to publish."""

    session: str
    path: str
    local: Path
    size: int
    sha256: str


def _walk(folder: Path) -> list[str]:
    """Regular files under ``folder`` (relative, ``/``-separated, sorted); no spool or temps."""
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != SPOOL)
        for name in files:
            full = Path(top) / name
            if ".provena-tmp-" in name or full.is_symlink() or not full.is_file():
                continue
            found.append(full.relative_to(folder).as_posix())
    return sorted(found)


def _digest(path: Path) -> tuple[int, str]:
    size = path.stat().st_size
    return size, hash_file(path).sha256 or ""


class Archive:
    """The archive workflows (see the module docstring); ``pv.archive``.

    Args:
        registry: The registry client (locations, sessions, subjects, labs).
        records: The archived-file records' client.
        transfer: The transfer client, or a function giving it (called on first use).
        timeout: Seconds a task may take before it is cancelled and fails.
        poll: Seconds between two looks at a running task.
        stuck_after: Seconds a task may keep retrying errors before it counts as stuck.
        list_concurrency: ``ls`` calls in flight at once while discovering.
        list_rate: At most this many ``ls`` calls started per second while discovering
            (``None``: no rate limit).

    Example:
        ```python
        locations = await pv.archive.locations("raw-ephys")
        ```
    """

    def __init__(
        self,
        registry: RegistryClient,
        records: ArchiveClient,
        transfer: TransferClient | Callable[[], TransferClient],
        *,
        timeout: float = 3600.0,
        poll: float = 1.0,
        stuck_after: float = 60.0,
        list_concurrency: int = 4,
        list_rate: float | None = 10.0,
    ) -> None:
        self.registry = registry
        self.records = records
        self._transfer = transfer
        self.timeout = timeout
        self.poll = poll
        self.stuck_after = stuck_after
        self.list_concurrency = list_concurrency
        self.list_rate = list_rate
        self._names: dict[str, str] = {}

    def _client(self) -> TransferClient:
        if callable(self._transfer):
            self._transfer = self._transfer()
        return self._transfer

    def _repository(self, location: StorageLocation, local: LocalEndpoint) -> TransferRepository:
        return TransferRepository(
            self._client(),
            location.root,
            local,
            name=location.record.name,
            timeout=self.timeout,
            poll=self.poll,
            stuck_after=self.stuck_after,
            list_concurrency=self.list_concurrency,
            list_rate=self.list_rate,
        )

    async def locations(self, kind: str | None = None) -> list[StorageLocation]:
        """The storage locations you may read (of archive type ``kind``), by handle.

        Example:
            ```python
            [loc.record.name for loc in await pv.archive.locations("raw-ephys")]
            ```
        """
        found = []
        async for item in self.registry.iter_items(subtype=STORAGE_LOCATION):
            record = StorageLocationRecord.model_validate(item.record)
            if kind is None or record.kind == kind:
                found.append(StorageLocation(item.id, record))
        return found

    async def _of_kind(self, kind: str) -> list[StorageLocation]:
        found = await self.locations(kind)
        if not found:
            raise UsageError(f"there is no storage location of kind {kind!r} you may read")
        return found

    async def _session_key(self, session: str) -> LayoutKey:
        item = await self.registry.get_item(session)
        if item.subtype != "session":
            raise UsageError(f"{session} is a {item.subtype}, not a session")
        record = item.record
        subject = await self.registry.get_item(str(record["subject"]))
        lab = await self.registry.get_item(str(record["lab"]))
        return LayoutKey(
            subject=str(subject.record["nickname"]),
            date=date.fromisoformat(str(record["date"])),
            number=int(record["number"]),
            lab=str(lab.record["name"]),
        )

    async def _recorded(self, location: str, session: str | None) -> dict[str, ArchivedFile]:
        return {
            r.path: r async for r in self.records.iter_archived_files(location, session=session)
        }

    async def _record(
        self, location: str, writes: Sequence[ArchivedFileWrite], hook: ProgressHook
    ) -> int:
        changed = 0
        for start in range(0, len(writes), MAX_ARCHIVED_BATCH):
            batch = writes[start : start + MAX_ARCHIVED_BATCH]
            changed += (await self.records.record_archived_files(location, batch)).changed
            for write in batch:
                hook(ArchiveEvent("recorded", location, write.path))
        return changed

    # ------------------------------------------------------------------ publish

    async def publish(
        self,
        kind: str,
        *,
        sessions: Iterable[str],
        local: LocalEndpoint,
        source: Path | str | None = None,
        dry_run: bool = False,
        read_back: bool = False,
        on_progress: ProgressHook | None = None,
    ) -> ArchiveResult:
        """Archive the files of ``sessions`` to every storage location of ``kind``.

        Args:
            kind: The archive type (``raw-ephys``).
            sessions: Session handles.
            local: The local endpoint the files are read through.
            source: The local data root laid out like the archive (default: the local
                endpoint's directory; it must be inside it).
            dry_run: Find and hash the files and say what would be sent; send nothing.
            read_back: Also read the archive's copies back (one more task, a full read of
                each) and compare their sha256 before recording them; by default the
                endpoint's own checksum verification and the sizes read back are trusted.
            on_progress: Called with an :class:`ArchiveEvent` per file hashed and recorded,
                and per task that succeeded (``sent``).

        Returns:
            Per file ``archived``, ``already`` (recorded with the same size and sha256),
            ``planned`` (dry run) or ``failed``; ``problems`` names sessions that have no
            place in a layout or no local files.

        Example:
            ```python
            result = await pv.archive.publish("raw-ephys", sessions=[s1, s2], local=laptop)
            print(result.count("archived"), result.tasks)
            ```
        """
        root = Path(source).absolute() if source is not None else local.directory
        wanted = list(dict.fromkeys(sessions))
        keys = {s: await self._session_key(s) for s in wanted}
        result = ArchiveResult()
        hook = on_progress or _quiet
        for location in await self._of_kind(kind):
            await self._publish_one(location, keys, local, root, (dry_run, read_back), result, hook)
        return result

    async def _publish_one(
        self,
        location: StorageLocation,
        keys: dict[str, LayoutKey],
        local: LocalEndpoint,
        root: Path,
        modes: tuple[bool, bool],
        result: ArchiveResult,
        hook: ProgressHook,
    ) -> None:
        dry_run, read_back = modes
        layout = location.layout
        files: list[_Local] = []
        folders: list[str] = []
        for session, key in keys.items():
            try:
                folder = layout.folder(
                    subject=key.subject, date=key.date, number=key.number, lab=key.lab
                )
            except ValueError as exc:
                result.problems.append(f"{location.record.name}: session {session}: {exc}")
                continue
            here = root / folder
            names = [n for n in await anyio.to_thread.run_sync(_walk, here) if location.fits(n)]
            if not names:
                result.problems.append(
                    f"{location.record.name}: session {session}: no files under {here}"
                )
                continue
            folders.append(folder)
            for name in names:
                size, sha = await anyio.to_thread.run_sync(_digest, here / name)
                files.append(_Local(session, f"{folder}/{name}", here / name, size, sha))
                hook(ArchiveEvent("hashed", location.id, f"{folder}/{name}"))
        recorded: dict[str, ArchivedFile] = {}
        for session in keys:
            recorded.update(await self._recorded(location.id, session))
        todo = []
        for f in files:
            old = recorded.get(f.path)
            if old is not None and (old.size, old.sha256) == (f.size, f.sha256):
                result.files.append(
                    ArchiveFileResult(
                        location.id, f.path, "already", f.session, f.size, f.sha256, old.task_id
                    )
                )
            else:
                todo.append(f)
        if dry_run or not todo:
            result.files.extend(
                ArchiveFileResult(location.id, f.path, "planned", f.session, f.size, f.sha256)
                for f in todo
            )
            return
        repo = self._repository(location, local)
        try:
            sent = await repo.send(
                [(f.local, f.path) for f in todo], what=f"archive {len(todo)} files"
            )
        except (TransferError, NotFound) as exc:  # failed, paused or stuck: cancelled
            task_id = getattr(exc, "task_id", None)
            result.files.extend(
                ArchiveFileResult(
                    location.id, f.path, "failed", f.session, f.size, f.sha256, task_id, str(exc)
                )
                for f in todo
            )
            return
        result.tasks[location.id] = sent.task_id
        hook(ArchiveEvent("sent", location.id, sent.task_id))
        archived = {}
        for folder in folders:
            async for info in repo.list(folder + "/"):
                archived[info.path] = info.size
        digests: dict[str, str | None] = {}
        unread = None
        if read_back:
            try:
                verified = await repo.verify_many([f.path for f in todo])
                digests = {path: info.sha256 for path, info in verified.items()}
            except (TransferError, NotFound) as exc:
                unread = f"the archive's copies could not be read back: {exc}"
        writes = []
        for f in todo:
            now = await anyio.to_thread.run_sync(_digest, f.local)
            reason = None
            if archived.get(f.path) != f.size:
                reason = f"the archive holds {archived.get(f.path)} bytes, {f.size} were sent"
            elif now != (f.size, f.sha256):
                reason = "the local file changed while it was archived; publish again"
            elif unread is not None:
                reason = unread
            elif read_back and digests.get(f.path) != f.sha256:
                reason = f"the archive's copy read back has sha256 {digests.get(f.path)}"
            if reason is not None:
                result.files.append(
                    ArchiveFileResult(
                        location.id, f.path, "failed", f.session, f.size, f.sha256,
                        sent.task_id, reason,
                    )
                )  # fmt: skip
                continue
            source = local.location.joinpath(repo.local_relative(f.local))
            writes.append(
                ArchivedFileWrite(
                    session=f.session, path=f.path, size=f.size, sha256=f.sha256,
                    task_id=sent.task_id, source=f"{source.collection}:{source.path}",
                )
            )  # fmt: skip
            result.files.append(
                ArchiveFileResult(
                    location.id, f.path, "archived", f.session, f.size, f.sha256, sent.task_id
                )
            )
        result.records_changed += await self._record(location.id, writes, hook)

    # ------------------------------------------------------------------ discover

    async def discover(
        self,
        kind: str,
        *,
        local: LocalEndpoint,
        dry_run: bool = False,
        on_progress: ProgressHook | None = None,
    ) -> ArchiveResult:
        """Walk every location of ``kind`` and (re)build its records from what is there.

        Args:
            kind: The archive type.
            local: The local endpoint whose spool receives the files whose sha256 must be
                read back (those without a record of the same size).
            dry_run: Walk, parse and report; read nothing back and write no record.
            on_progress: Called with an :class:`ArchiveEvent` per file found and recorded.

        Returns:
            ``files``: one ``archived`` result per record written or confirmed (``planned``
            in a dry run); ``unmatched``: the paths that fit no record, with the reason.

        Example:
            ```python
            found = await pv.archive.discover("raw-ephys", local=laptop)
            for u in found.unmatched:
                print(u.path, u.reason)
            ```
        """
        result = ArchiveResult()
        sessions: dict[LayoutKey, str | None] = {}
        self._names = {}
        for location in await self._of_kind(kind):
            await self._discover_one(
                location, local, dry_run, sessions, result, on_progress or _quiet
            )
        return result

    async def _find_session(self, key: LayoutKey, found: dict[LayoutKey, str | None]) -> str | None:
        """The session ``key`` names: one ``GET /sessions`` of that date and number.

        The subjects (and labs) of the candidates are read once per discover, so the cost
        follows the sessions of the archive, not every subject the user may read.
        """
        if key in found:
            return found[key]
        handle = None
        async for ses in self.registry.iter_sessions(
            date_from=key.date, date_to=key.date, number=key.number
        ):
            if await self._name_of(str(ses.record.get("subject")), "nickname") != key.subject:
                continue
            if key.lab is None or await self._name_of(str(ses.record["lab"]), "name") == key.lab:
                handle = ses.id
        found[key] = handle
        return handle

    async def _name_of(self, handle: str, field: str) -> str:
        """The ``field`` of the item ``handle`` (read once per discover)."""
        if handle not in self._names:
            item = await self.registry.get_item(handle)
            self._names[handle] = str(item.record.get(field))
        return self._names[handle]

    async def _discover_one(
        self,
        location: StorageLocation,
        local: LocalEndpoint,
        dry_run: bool,
        sessions: dict[LayoutKey, str | None],
        result: ArchiveResult,
        hook: ProgressHook,
    ) -> None:
        repo = self._repository(location, local)
        layout = location.layout
        name = location.record.name
        placed: list[tuple[str, str, int]] = []  # session, path, size
        async for info in repo.list(""):
            hook(ArchiveEvent("listed", location.id, info.path))
            parsed = layout.parse(info.path)
            if parsed is None:
                reason = f"does not fit layout {layout.template!r}"
            elif not location.fits(parsed[1]):
                reason = f"matches none of the patterns {location.record.patterns}"
            else:
                session = await self._find_session(parsed[0], sessions)
                if session is not None:
                    placed.append((session, info.path, info.size))
                    continue
                reason = f"no registered session {parsed[0]} that you may read"
            result.unmatched.append(Unmatched(location.id, info.path, f"{name}: {reason}"))
        recorded = await self._recorded(location.id, None)
        digests: dict[str, str] = {
            path: r.sha256
            for path, r in recorded.items()
            if any(p == path and size == r.size for _, p, size in placed)
        }
        missing = [path for _, path, _ in placed if path not in digests]
        if dry_run:
            result.files.extend(
                ArchiveFileResult(location.id, path, "planned", session, size)
                for session, path, size in placed
            )
            return
        if missing:
            digests.update(await self._read_back(repo, missing, result))
        writes = []
        for session, path, size in placed:
            sha = digests.get(path)
            if sha is None:
                continue
            old = recorded.get(path)
            keep = old is not None and (old.session, old.size, old.sha256) == (session, size, sha)
            writes.append(
                ArchivedFileWrite(
                    session=session, path=path, size=size, sha256=sha,
                    task_id=old.task_id if keep and old else None,
                    source=old.source if keep and old else None,
                    archived_at=old.archived_at if keep and old else None,
                )
            )  # fmt: skip
            result.files.append(
                ArchiveFileResult(location.id, path, "archived", session, size, sha)
            )
        result.records_changed += await self._record(location.id, writes, hook)

    async def _read_back(
        self, repo: TransferRepository, paths: list[str], result: ArchiveResult
    ) -> dict[str, str]:
        """The sha256 of ``paths``, from copies read back into the spool in one task."""
        try:
            infos = await repo.verify_many(paths)
        except (TransferError, NotFound) as exc:
            result.files.extend(
                ArchiveFileResult(repo.name, p, "failed", reason=str(exc)) for p in paths
            )
            return {}
        return {path: info.sha256 for path, info in infos.items() if info.sha256}

    # ------------------------------------------------------------------ retrieve, ls

    async def ls(
        self, kind: str, *, session: str | None = None, path_prefix: str | None = None
    ) -> list[ArchivedFile]:
        """The archived-file records of every location of ``kind``.

        Example:
            ```python
            for record in await pv.archive.ls("raw-ephys", session=session):
                print(record.path, record.size)
            ```
        """
        found = []
        for location in await self._of_kind(kind):
            records = self.records.iter_archived_files(
                location.id, session=session, path_prefix=path_prefix
            )
            found.extend([r async for r in records])
        return found

    async def retrieve(
        self,
        kind: str,
        *,
        dest: Path | str,
        local: LocalEndpoint,
        session: str | None = None,
        path_prefix: str | None = None,
        overwrite: bool = False,
        dry_run: bool = False,
        on_progress: ProgressHook | None = None,
    ) -> ArchiveResult:
        """Copy recorded files of ``kind`` back to ``dest`` (laid out as in the archive).

        Args:
            kind: The archive type.
            dest: Where to put them: a folder inside the local endpoint's directory.
            local: The local endpoint the files arrive through.
            session: Only this session's files.
            path_prefix: Only paths starting with this.
            overwrite: Write over the originals and over existing files whose sha256
                differs from the record (refused otherwise).
            dry_run: Check and say what would be fetched; move nothing.
            on_progress: Called with an :class:`ArchiveEvent` per file checked and
                retrieved.

        Raises:
            ArchiveRefused: Before anything moves, naming the files it won't write over.

        Example:
            ```python
            back = await pv.archive.retrieve(
                "raw-ephys", session=session, dest=laptop.directory / "restore", local=laptop
            )
            ```
        """
        target_root = Path(dest).absolute()
        hook = on_progress or _quiet
        result = ArchiveResult()
        plans: list[tuple[StorageLocation, list[tuple[ArchivedFile, Path]]]] = []
        refused: list[tuple[Path, str]] = []
        for location in await self._of_kind(kind):
            repo = self._repository(location, local)
            wanted = []
            async for r in self.records.iter_archived_files(
                location.id, session=session, path_prefix=path_prefix
            ):
                target = target_root / r.path
                hook(ArchiveEvent("checked", location.id, r.path))
                here = local.location.joinpath(repo.local_relative(target))
                exists = await anyio.to_thread.run_sync(target.is_file)
                if r.source == f"{here.collection}:{here.path}" and not overwrite:
                    refused.append((target, "it is the original this file was archived from"))
                    continue
                if exists:
                    size, sha = await anyio.to_thread.run_sync(_digest, target)
                    if (size, sha) == (r.size, r.sha256):
                        result.files.append(
                            ArchiveFileResult(location.id, r.path, "present", r.session, size, sha)
                        )
                        continue
                    if not overwrite:
                        refused.append((target, "it exists and its sha256 differs"))
                        continue
                wanted.append((r, target))
            plans.append((location, wanted))
        if refused:
            lines = "; ".join(f"{p} ({why})" for p, why in refused[:5])
            more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
            raise ArchiveRefused(
                f"retrieve refused to write over {len(refused)} files: {lines}{more}. "
                "Retrieve to another folder, or pass overwrite=True (--overwrite).",
                [p for p, _ in refused],
            )
        for location, wanted in plans:
            if dry_run or not wanted:
                result.files.extend(
                    ArchiveFileResult(location.id, r.path, "planned", r.session, r.size, r.sha256)
                    for r, _ in wanted
                )
                continue
            await self._fetch(location, local, wanted, result, hook)
        return result

    async def _fetch(
        self,
        location: StorageLocation,
        local: LocalEndpoint,
        wanted: list[tuple[ArchivedFile, Path]],
        result: ArchiveResult,
        hook: ProgressHook,
    ) -> None:
        repo = self._repository(location, local)
        await anyio.to_thread.run_sync(_make_parents, [target for _, target in wanted])
        try:
            got = await repo.receive(
                [(r.path, target) for r, target in wanted], what=f"retrieve {len(wanted)} files"
            )
        except (TransferError, NotFound) as exc:
            result.files.extend(
                ArchiveFileResult(
                    location.id, r.path, "failed", r.session, r.size, r.sha256,
                    getattr(exc, "task_id", None), str(exc),
                )
                for r, _ in wanted
            )  # fmt: skip
            return
        result.tasks[location.id] = got.task_id
        for r, target in wanted:
            size, sha = await anyio.to_thread.run_sync(_digest, target)
            ok = (size, sha) == (r.size, r.sha256)
            hook(ArchiveEvent("retrieved", location.id, r.path))
            result.files.append(
                ArchiveFileResult(
                    location.id, r.path, "retrieved" if ok else "failed", r.session, size, sha,
                    got.task_id, None if ok else "the received file does not match its record",
                )
            )  # fmt: skip


def _quiet(event: ArchiveEvent) -> None:
    del event


def _make_parents(paths: list[Path]) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
