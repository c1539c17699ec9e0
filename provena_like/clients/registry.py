"""``RegistryClient``: the L2 client of the registry service.

One method per route, one HTTP call per method. Item ids are handles (``10378.1/42``) and go
into the path as they are. Listing methods return one :class:`~provena_like.models.shared.Page`;
the ``iter_*`` methods return an :class:`~provena_like.AsyncPaginator` that does the looping.

Access and groups: an item's access settings (:meth:`RegistryClient.get_access`,
:meth:`RegistryClient.update_access`) grant roles to its owner, to everyone signed in
(``general``) and to groups by name; :meth:`RegistryClient.my_access` says what the caller
may do and why. Groups themselves (create, members, a user's groups) are managed with the
auth service's client (:class:`~provena_like.clients.auth.AuthClient`).

Registered files (ALF datasets) of sessions: :meth:`RegistryClient.register_files` (one
request per session, all or nothing), :meth:`RegistryClient.check_protected`,
:meth:`RegistryClient.set_default`, :meth:`RegistryClient.tag_dataset` /
:meth:`RegistryClient.untag_dataset` and the listing pair
:meth:`RegistryClient.list_registered_datasets` / :meth:`RegistryClient.iter_registered_datasets`.

Patching and deleting registered datasets (the server side of the Patcher):
:meth:`RegistryClient.commit_patch` (new content already staged in every repository, one
transaction), :meth:`RegistryClient.get_patch`, :meth:`RegistryClient.list_dataset_patches`;
:meth:`RegistryClient.mark_deleting`, :meth:`RegistryClient.update_file_record` and
:meth:`RegistryClient.delete_registered_dataset`; and
:meth:`RegistryClient.get_repository_credentials` for an S3 repository in the server's bucket.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, Literal

from pydantic import TypeAdapter

from provena_like._core.errors import UsageError
from provena_like._core.http import HTTPCore
from provena_like._core.pagination import AsyncPaginator
from provena_like._core.sentinels import NOT_GIVEN, NotGiven
from provena_like.clients._base import ServiceClient
from provena_like.clients._encoding import coerce_model, encode_body, item_path
from provena_like.clients._list_route import ListRoute
from provena_like.models.datastore import AccessLevel, CredentialsRequest, ScopedCredentials
from provena_like.models.patching import (
    FileRecordUpdate,
    PatchHistoryEntry,
    PatchRequest,
    PatchResult,
)
from provena_like.models.registration import (
    AnswerForm,
    DefaultRequest,
    FileToRegister,
    ProtectedCheck,
    ProtectedCheckRequest,
    RegisteredDataset,
    RegisterFilesRequest,
    RegisterFilesResult,
    SessionCreate,
    TagRequest,
    UnchangedCheck,
    UnchangedCheckRequest,
    files_digest,
)
from provena_like.models.registry import (
    AccessSettings,
    HistoryEntry,
    Item,
    ItemCreate,
    ItemUpdate,
    LockEvent,
    LockRequest,
    MyAccess,
    RevertRequest,
    SortKey,
)
from provena_like.models.shared import Page

__all__ = ["RegistryClient"]

SortOrder = Literal["asc", "desc"]

_LOCK_EVENTS = TypeAdapter(list[LockEvent])


class RegistryClient(ServiceClient):
    """Typed calls to the registry service.

    Args:
        core: the shared HTTP core (normally ``ProvenaClient.registry`` builds this).

    Example:
        ```python
        async with ProvenaClient.from_env() as pv:
            item = await pv.registry_client.get_item("10378.1/42")
        ```
    """

    _service = "registry"

    def __init__(self, core: HTTPCore) -> None:
        super().__init__(core)
        self._items = self._list_route("/items", Page[Item])
        self._sessions = self._list_route("/sessions", Page[Item])
        self._registered = self._list_route("/registered-datasets", Page[RegisteredDataset])

    # -- items ---------------------------------------------------------------------------

    async def create_item(
        self,
        item: ItemCreate | Mapping[str, Any],
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> Item:
        """Register a new item (``POST /items``).

        Args:
            item: the subtype, record and initial access.
            idempotency_key: replays the first result when the same key is sent again;
                left out, a fresh key protects this call's own retries; ``None`` sends none.

        Returns:
            The created item, with its new handle.

        Raises:
            UsageError: ``item`` doesn't validate as an :class:`ItemCreate`.
            Unprocessable: the server rejected the record for its subtype.

        Example:
            ```python
            org = await pv.registry_client.create_item(
                {"subtype": "organisation", "record": {"name": "CSIRO"}})
            ```
        """
        return await self._core.request(
            "POST",
            "registry",
            "/items",
            json=encode_body(ItemCreate, item, "item"),
            idempotency_key=idempotency_key,
            cast_to=Item,
            expected=(200, 201),
        )

    async def get_item(self, item_id: str, *, include_history: bool = False) -> Item:
        """Fetch one item (``GET /items/{id}``).

        Args:
            item_id: the handle, e.g. ``10378.1/42``.
            include_history: also return the item's history entries.

        Raises:
            UsageError: ``item_id`` is not a handle.
            NotFound: no such item (or it is hidden from the caller).

        Example:
            ```python
            item = await pv.registry_client.get_item("10378.1/42", include_history=True)
            ```
        """
        params = {"include_history": "true"} if include_history else None
        return await self._core.request(
            "GET", "registry", item_path(item_id), params=params, cast_to=Item
        )

    async def update_item(
        self,
        item_id: str,
        update: ItemUpdate | Mapping[str, Any],
        *,
        if_match: int | None = None,
    ) -> Item:
        """Replace an item's record (``PUT /items/{id}``).

        Args:
            item_id: the handle.
            update: the new record and the reason for the change.
            if_match: the revision the change is based on (sent as ``If-Match: "<rev>"``);
                a stale revision gets :class:`PreconditionFailed`.

        Raises:
            Conflict: the item is locked.
            PreconditionFailed: the item changed since ``if_match``.

        Example:
            ```python
            item = await pv.registry_client.update_item(
                item.id, {"record": new_record, "reason": "fix typo"}, if_match=item.revision)
            ```
        """
        headers = {"If-Match": f'"{if_match}"'} if if_match is not None else None
        return await self._core.request(
            "PUT",
            "registry",
            item_path(item_id),
            json=encode_body(ItemUpdate, update, "update", exclude_unset=False),
            headers=headers,
            cast_to=Item,
        )

    async def list_items(
        self,
        *,
        subtype: str | None = None,
        owner: str | None = None,
        sort: SortKey = "created",
        order: SortOrder = "asc",
        page_size: int = 100,
        cursor: str | None = None,
    ) -> Page[Item]:
        """Fetch one page of items the caller may see (``GET /items``).

        Args:
            subtype: only items of this subtype.
            owner: only items owned by this user.
            sort: ``created``, ``updated`` or ``name``.
            order: ``asc`` or ``desc``.
            page_size: items per page.
            cursor: the ``next_cursor`` of the previous page.

        Example:
            ```python
            page = await pv.registry_client.list_items(subtype="person", page_size=50)
            page.items, page.next_cursor
            ```
        """
        params = _list_params(subtype=subtype, owner=owner, sort=sort, order=order)
        return await self._items.page(params, page_size=page_size, cursor=cursor)

    def iter_items(
        self,
        *,
        subtype: str | None = None,
        owner: str | None = None,
        sort: SortKey = "created",
        order: SortOrder = "asc",
        page_size: int = 100,
        cursor: str | None = None,
        max_items: int | None = None,
    ) -> AsyncPaginator[Item]:
        """Every item the caller may see, fetched page by page.

        Args:
            subtype: only items of this subtype.
            owner: only items owned by this user.
            sort: ``created``, ``updated`` or ``name``.
            order: ``asc`` or ``desc``.
            page_size: items per page.
            cursor: resume from a previous paginator's ``next_cursor``.
            max_items: stop after this many items.

        Example:
            ```python
            async for item in pv.registry_client.iter_items(subtype="person"):
                print(item.display_name)
            ```
        """
        params = _list_params(subtype=subtype, owner=owner, sort=sort, order=order)
        return self._items.iterate(params, page_size=page_size, cursor=cursor, max_items=max_items)

    # -- history -------------------------------------------------------------------------

    async def get_history(
        self, item_id: str, *, page_size: int = 100, cursor: str | None = None
    ) -> Page[HistoryEntry]:
        """Fetch one page of an item's history (``GET /items/{id}/history``).

        Example:
            ```python
            page = await pv.registry_client.get_history("10378.1/42")
            [entry.reason for entry in page.items]
            ```
        """
        return await self._history(item_id).page(page_size=page_size, cursor=cursor)

    def iter_history(
        self,
        item_id: str,
        *,
        page_size: int = 100,
        cursor: str | None = None,
        max_items: int | None = None,
    ) -> AsyncPaginator[HistoryEntry]:
        """Every history entry of an item, fetched page by page.

        Example:
            ```python
            async for entry in pv.registry_client.iter_history("10378.1/42"):
                print(entry.time, entry.reason)
            ```
        """
        history = self._history(item_id)
        return history.iterate(page_size=page_size, cursor=cursor, max_items=max_items)

    def _history(self, item_id: str) -> ListRoute[HistoryEntry]:
        return self._list_route(item_path(item_id) + "/history", Page[HistoryEntry])

    async def revert_item(
        self,
        item_id: str,
        revert: RevertRequest | Mapping[str, Any],
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> Item:
        """Restore the record of a history entry (``POST /items/{id}/revert``).

        Args:
            item_id: the handle.
            revert: the history entry id and the reason.
            idempotency_key: see :meth:`create_item`.

        Example:
            ```python
            item = await pv.registry_client.revert_item(
                "10378.1/42", {"history_id": 3, "reason": "undo bad edit"})
            ```
        """
        return await self._core.request(
            "POST",
            "registry",
            item_path(item_id) + "/revert",
            json=encode_body(RevertRequest, revert, "revert request"),
            idempotency_key=idempotency_key,
            cast_to=Item,
        )

    # -- locks ---------------------------------------------------------------------------

    async def lock_item(self, item_id: str, reason: str) -> Item:
        """Lock an item against changes (``POST /items/{id}/lock``).

        Example:
            ```python
            item = await pv.registry_client.lock_item("10378.1/42", "under review")
            ```
        """
        return await self._core.request(
            "POST",
            "registry",
            item_path(item_id) + "/lock",
            json=encode_body(LockRequest, {"reason": reason}, "lock request"),
            cast_to=Item,
            idempotency_key=None,  # the server doesn't dedupe locks: never replay a lock
        )

    async def unlock_item(self, item_id: str, reason: str) -> Item:
        """Unlock an item (``POST /items/{id}/unlock``).

        Example:
            ```python
            item = await pv.registry_client.unlock_item("10378.1/42", "review done")
            ```
        """
        return await self._core.request(
            "POST",
            "registry",
            item_path(item_id) + "/unlock",
            json=encode_body(LockRequest, {"reason": reason}, "unlock request"),
            cast_to=Item,
            idempotency_key=None,  # the server doesn't dedupe locks: never replay a lock
        )

    async def get_lock_history(self, item_id: str) -> list[LockEvent]:
        """Every lock and unlock of an item (``GET /items/{id}/lock-history``).

        Example:
            ```python
            events = await pv.registry_client.get_lock_history("10378.1/42")
            ```
        """
        return await self._core.request(
            "GET", "registry", item_path(item_id) + "/lock-history", cast_to=_LOCK_EVENTS
        )

    # -- access --------------------------------------------------------------------------

    async def get_access(self, item_id: str) -> AccessSettings:
        """An item's access settings (``GET /items/{id}/access``).

        Example:
            ```python
            access = await pv.registry_client.get_access("10378.1/42")
            access.groups
            ```
        """
        return await self._core.request(
            "GET", "registry", item_path(item_id) + "/access", cast_to=AccessSettings
        )

    async def update_access(
        self, item_id: str, access: AccessSettings | Mapping[str, Any]
    ) -> AccessSettings:
        """Replace an item's access settings (``PUT /items/{id}/access``); needs ``admin``.

        The settings are replaced as a whole: send every grant that should remain. Roles
        imply the weaker ones (``data-read`` also gives ``metadata-read`` and
        ``metadata-write``). Only the owner or a system admin may change the owner.

        Raises:
            Forbidden: the caller lacks ``admin`` on the item.
            Unprocessable: a group or the new owner doesn't exist.

        Example:
            ```python
            await pv.registry_client.update_access(
                "10378.1/42", {"owner": "alice", "groups": {"lab": ["metadata-read"]}})
            ```
        """
        return await self._core.request(
            "PUT",
            "registry",
            item_path(item_id) + "/access",
            json=encode_body(AccessSettings, access, "access settings", exclude_unset=False),
            cast_to=AccessSettings,
        )

    async def my_access(self, item_id: str) -> MyAccess:
        """What you may do with an item, and why (``GET /items/{id}/my-access``).

        Works for any signed-in caller, whatever their roles: ``roles`` is empty when you
        have no access, and ``sources`` names where each grant comes from (``owner``,
        ``general``, ``group:<name>``, ``reviewer``, ``system-admin``).

        Raises:
            Unauthorized: not signed in.
            NotFound: no such item.

        Example:
            ```python
            mine = await pv.registry_client.my_access("10378.1/42")
            mine.roles, mine.sources   # ['metadata-read'], ['general']
            ```
        """
        return await self._core.request(
            "GET", "registry", item_path(item_id) + "/my-access", cast_to=MyAccess
        )

    # -- sessions --------------------------------------------------------------------------

    async def create_session(
        self,
        session: SessionCreate | Mapping[str, Any],
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> Item:
        """Create a session with the next free number (``POST /sessions``).

        The server allocates the number in the same transaction as the session, so
        concurrent callers get distinct numbers; a ``number`` given is used as it is.

        Args:
            session: the subject (handle), date and the rest of the session record;
                ``lab`` defaults to the subject's lab, ``number`` to the next free one.
            idempotency_key: replays the first result (the same session) when the same
                key is sent again; left out, a fresh key protects this call's own retries.

        Returns:
            The session item; ``record["number"]`` is its number.

        Raises:
            Unprocessable: a field is invalid or names an item that doesn't exist (the
                error's details name the field).
            Forbidden: you are not a member of the session's lab or the subject's lab.
            Conflict: the ``number`` given is taken (``session_number_taken``).

        Example:
            ```python
            ses = await pv.registry_client.create_session(
                {"subject": subject.id, "date": "2026-12-06"})
            ses.record["number"]   # 1, then 2, ...
            ```
        """
        return await self._core.request(
            "POST",
            "registry",
            "/sessions",
            json=encode_body(SessionCreate, session, "session"),
            idempotency_key=idempotency_key,
            cast_to=Item,
            expected=(200, 201),
        )

    async def list_sessions(
        self,
        *,
        subject: str | None = None,
        lab: str | None = None,
        date_from: date | str | None = None,
        date_to: date | str | None = None,
        number: int | None = None,
        order: SortOrder = "asc",
        page_size: int = 100,
        cursor: str | None = None,
    ) -> Page[Item]:
        """Fetch one page of the sessions you may read (``GET /sessions``).

        Sorted by date, then number, then handle (``order`` applies to all three).

        Args:
            subject: only sessions of this subject (handle).
            lab: only sessions of this lab (handle).
            date_from: only sessions on or after this date.
            date_to: only sessions on or before this date.
            number: only sessions with this number.
            order: ``asc`` or ``desc``.
            page_size: sessions per page.
            cursor: the ``next_cursor`` of the previous page.

        Example:
            ```python
            page = await pv.registry_client.list_sessions(
                date_from="2026-12-01", date_to="2026-12-31", page_size=50)
            [ses.display_name for ses in page.items]   # ['KS023/2026-12-06/001', ...]
            ```
        """
        params = _session_params(subject, lab, date_from, date_to, number, order)
        return await self._sessions.page(params, page_size=page_size, cursor=cursor)

    def iter_sessions(
        self,
        *,
        subject: str | None = None,
        lab: str | None = None,
        date_from: date | str | None = None,
        date_to: date | str | None = None,
        number: int | None = None,
        order: SortOrder = "asc",
        page_size: int = 100,
        cursor: str | None = None,
        max_items: int | None = None,
    ) -> AsyncPaginator[Item]:
        """Every session you may read, fetched page by page (filters: see :meth:`list_sessions`).

        Example:
            ```python
            async for ses in pv.registry_client.iter_sessions(number=1, order="desc"):
                print(ses.display_name)   # KS023/2026-12-06/001
            ```
        """
        return self._sessions.iterate(
            _session_params(subject, lab, date_from, date_to, number, order),
            page_size=page_size,
            cursor=cursor,
            max_items=max_items,
        )

    # -- registered files ------------------------------------------------------------------

    async def register_files(
        self,
        session: str,
        files: Sequence[FileToRegister | Mapping[str, Any]],
        *,
        repository: str | None = None,
        exists: bool = True,
        default: bool = True,
        dry_run: bool = False,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
        session_path: str | None = None,
        answer: AnswerForm = "full",
    ) -> RegisterFilesResult:
        """Register files of one session, all or nothing (``POST /sessions/{id}/files``).

        The server checks every file first (ALF path, exactly one dataset type, a known data
        format), the repository, your membership of the session's lab and protection, then
        writes everything in one transaction. At most
        :data:`~provena_like.models.registration.MAX_FILES_PER_REQUEST` files a request.

        Args:
            session: the session's handle.
            files: ``{path, size, sha256, md5?, version?}`` each, ``path`` relative to the
                session folder (``[collection/][#revision#/]name``).
            repository: handle of the repository holding the files (a file record is
                written there), or None.
            exists: whether the files are in ``repository`` now (your claim for POSIX and
                Globus repositories, which the server can't look into).
            default: make each registered revision its dataset's default.
            dry_run: check everything (read-only) and return the plan; nothing is written.
            idempotency_key: a retry with the same key registers once and replays the first
                answer; left out, a fresh key protects this call's own retries.
            session_path: the session part of the files' local paths
                (``[lab/Subjects/]subject/YYYY-MM-DD/NNN``); the server refuses it unless it
                is the session's lab, subject, date and number.
            answer: ``full`` answers every file with its revision; ``compact`` answers the
                files whose status is ``unchanged`` by index and dataset id only (in
                ``unchanged``), far cheaper for a re-registration. ``result.aligned(paths)``
                gives one entry per file either way.

        Returns:
            One entry per file, in order: its dataset revision and ``status``
            (``registered``, ``unchanged`` or ``updated``); with ``answer="compact"`` the
            unchanged files are in ``unchanged`` instead.

        Raises:
            Unprocessable: a file is refused; each detail names ``files.N.path`` and the
                ALF ``part`` (``no_dataset_type``, ``ambiguous_dataset_type`` with
                ``candidates``, ``unknown_data_format``, ``invalid_alf_path``); or
                ``session_path`` disagrees with the session (``session_mismatch``, ``part``
                ``lab``, ``subject``, ``date`` or ``number``).
            Forbidden: you are not a member of the session's lab.
            NotFound: no such session (or you can't read it).
            PreconditionFailed: a target revision is protected (``code == "protected"``);
                the details list every file's revisions, newest first. Nothing changed.

        Example:
            ```python
            result = await pv.registry_client.register_files(
                ses.id,
                [{"path": "alf/_ibl_trials.table.pqt", "size": 1024, "sha256": "ab" * 32}],
            )
            result.files[0].status   # 'registered'
            ```
        """
        body = RegisterFilesRequest(
            files=[_coerce_file(f) for f in files],
            repository=repository,
            exists=exists,
            default=default,
            dry_run=dry_run,
            session_path=session_path,
            answer=answer,
        )
        # the default answer goes unsaid (servers from before the compact answer refuse the
        # field), and so do the None fields (md5, version...): the server's defaults
        return await self._post_files(
            session,
            body.model_dump(
                mode="json", exclude_none=True, exclude={"answer"} if answer == "full" else None
            ),
            idempotency_key=idempotency_key,
        )

    async def _post_files(
        self,
        session: str,
        body: dict[str, Any],
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> RegisterFilesResult:
        """``POST /sessions/{id}/files`` with a JSON body, not validated here.

        The body is the JSON form of a
        :class:`~provena_like.models.registration.RegisterFilesRequest`: from
        :meth:`register_files` (which validates first), or from the SDK's registration
        module, whose bodies hold only what it computed (the ALF parser's paths, stat's
        sizes, hashlib's digests): no model per file. The server validates every request.
        """
        return await self._core.request(
            "POST",
            "registry",
            _session_path(session) + "/files",
            json=body,
            idempotency_key=idempotency_key,
            cast_to=RegisterFilesResult,
            expected=(200, 201),
        )

    async def check_protected(self, session: str, paths: Sequence[str]) -> ProtectedCheck:
        """Whether each path of a session names a protected revision (read-only).

        Args:
            session: the session's handle.
            paths: paths relative to the session folder.

        Returns:
            Per path, in order: ``protected`` and the dataset's revisions newest first,
            with ``protected`` and ``default`` flags (what
            :func:`provena_like.alf.resolve_revision` takes).

        Example:
            ```python
            check = await pv.registry_client.check_protected(ses.id, ["alf/trials.table.pqt"])
            check.protected   # False
            ```
        """
        body = ProtectedCheckRequest(paths=list(paths))
        return await self._core.request(
            "POST",
            "registry",
            _session_path(session) + "/files/check-protected",
            json=body.model_dump(mode="json"),
            cast_to=ProtectedCheck,
        )

    async def check_unchanged(
        self,
        session: str,
        files: Iterable[tuple[str, str]],
        *,
        repository: str | None = None,
        exists: bool = True,
        default: bool = True,
        session_path: str | None = None,
        md5: bool = False,
        versions: Iterable[str | None] = (),
    ) -> UnchangedCheck:
        """Whether registering these files would change nothing; one small request (read-only).

        The request carries the files' digest
        (:func:`~provena_like.models.registration.files_digest`), not the files: the server
        compares it with its registered revisions of the session and runs the checks of
        :meth:`register_files` with these options. ``unchanged`` means the files are exactly
        the session's registered revisions (same paths and sha256) and registering them
        would write nothing: then ``ids`` has the revisions' ids, by sorted path, and there
        is nothing to send. Otherwise register them (``reason`` says why not).

        Args:
            session: the session's handle.
            files: ``(path, sha256)`` per file of the registration, ``path`` relative to
                the session folder.
            repository: as for :meth:`register_files`.
            exists: as for :meth:`register_files`.
            default: as for :meth:`register_files`.
            session_path: as for :meth:`register_files`.
            md5: whether the registration would send an md5 of every file.
            versions: the files' versions (None for none).

        Returns:
            ``unchanged``, and the ids of the registered revisions by sorted path.

        Raises:
            Forbidden: you are not a member of the session's lab.
            NotFound: no such session (or you can't read it), or no such repository.
            Unprocessable: ``session_path`` disagrees with the session, or a version is
                not a version.

        Example:
            ```python
            check = await pv.registry_client.check_unchanged(
                ses.id, [("alf/_ibl_trials.table.pqt", "ab" * 32)]
            )
            check.unchanged   # False: no such revision is registered
            ```
        """
        pairs = list(files)
        body = UnchangedCheckRequest(
            count=len(pairs),
            digest=files_digest(pairs),
            md5=md5,
            versions=sorted({v for v in versions if v is not None}),
            repository=repository,
            exists=exists,
            default=default,
            session_path=session_path,
        )
        return await self._core.request(
            "POST",
            "registry",
            _session_path(session) + "/files/check-unchanged",
            json=body.model_dump(mode="json", exclude_none=True),
            cast_to=UnchangedCheck,
        )

    async def get_registered_dataset(self, dataset_id: str) -> RegisteredDataset:
        """One registered dataset revision by its id."""
        return await self._core.request(
            "GET", "registry", _dataset_path(dataset_id), cast_to=RegisteredDataset
        )

    async def set_default(
        self, dataset_id: str, *, revision: str | None = None
    ) -> RegisteredDataset:
        """Make a revision of a dataset its default; its other revisions lose the flag.

        Args:
            dataset_id: a registered dataset revision's id.
            revision: another revision of the same dataset to make default (``""`` for the
                one without a revision folder); None for ``dataset_id`` itself.

        Returns:
            The revision that is now the default.

        Example:
            ```python
            first = await pv.registry_client.set_default(dataset.id, revision="")
            first.default   # True
            ```
        """
        return await self._core.request(
            "POST",
            "registry",
            _dataset_path(dataset_id) + "/default",
            json=DefaultRequest(revision=revision).model_dump(mode="json"),
            cast_to=RegisteredDataset,
        )

    async def tag_dataset(self, dataset_id: str, tag: str) -> RegisteredDataset:
        """Put a tag (a ``tag`` record's handle) on a registered dataset; lab members only.

        A protected tag freezes the revision: registering it again is refused with 412.
        """
        return await self._core.request(
            "POST",
            "registry",
            _dataset_path(dataset_id) + "/tags",
            json=TagRequest(tag=tag).model_dump(mode="json"),
            cast_to=RegisteredDataset,
        )

    async def untag_dataset(self, dataset_id: str, tag: str) -> RegisteredDataset:
        """Take a tag off a registered dataset (lab members; a protected tag: registry admins)."""
        return await self._core.request(
            "DELETE",
            "registry",
            _dataset_path(dataset_id) + "/tags" + item_path(tag).removeprefix("/items"),
            cast_to=RegisteredDataset,
        )

    # -- patches and deletion of registered datasets ----------------------------------------

    async def commit_patch(
        self,
        request: PatchRequest | Mapping[str, Any],
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> PatchResult:
        """Commit a patch: registered revisions' new content, staged in every repository.

        One transaction (``POST /patches``): each revision's size, hashes and version, and
        each repository's file record switched to the location given. Committing the same
        request again (same ``patch_id``) answers the same, so a retry after a lost answer
        is safe; :meth:`get_patch` tells whether a commit happened.

        Args:
            request: ``{patch_id, force?, files: [{dataset, expected_sha256, size, sha256,
                md5?, version?, default?, locations: [{repository, relative_path, size,
                sha256}]}]}``; a file with ``default`` also becomes its dataset's default
                revision.
            idempotency_key: see :meth:`register_files`.

        Returns:
            Per file, the revision as committed and its ``old_locations`` (to clean up).

        Raises:
            UsageError: ``request`` doesn't validate as a :class:`PatchRequest`.
            Conflict: ``patch_conflict`` (a revision's sha256 is not ``expected_sha256``
                any more), ``dataset_deleting``, ``patch_id_used``.
            PreconditionFailed: a revision is protected (``force`` doesn't change that:
                register the new content as a new revision instead).
            Unprocessable: a location disagrees with its file, a repository holding a
                revision has no location, an md5 is missing, or an object in the server's
                own bucket is not the new bytes; each detail names the field.
            Forbidden: you are not a member of a session's lab.
            NotFound: no such dataset (or you can't read it).
        """
        body = coerce_model(PatchRequest, request, "a patch")
        return await self._core.request(
            "POST",
            "registry",
            "/patches",
            json=body.model_dump(mode="json", exclude_none=True),
            idempotency_key=idempotency_key,
            cast_to=PatchResult,
            expected=(200, 201),
        )

    async def get_patch(self, patch_id: str | uuid.UUID) -> PatchResult:
        """A committed patch, as its commit answered (``NotFound`` if it never was)."""
        return await self._core.request(
            "GET", "registry", f"/patches/{_uuid(patch_id, 'patch')}", cast_to=PatchResult
        )

    async def list_dataset_patches(
        self, dataset_id: str, *, page_size: int = 100, cursor: str | None = None
    ) -> Page[PatchHistoryEntry]:
        """One page of a registered revision's patches, oldest first."""
        return await self._patches(dataset_id).page(page_size=page_size, cursor=cursor)

    def iter_dataset_patches(
        self,
        dataset_id: str,
        *,
        page_size: int = 100,
        cursor: str | None = None,
        max_items: int | None = None,
    ) -> AsyncPaginator[PatchHistoryEntry]:
        """Every patch of a registered revision, oldest first, page by page."""
        patches = self._patches(dataset_id)
        return patches.iterate(page_size=page_size, cursor=cursor, max_items=max_items)

    def _patches(self, dataset_id: str) -> ListRoute[PatchHistoryEntry]:
        return self._list_route(_dataset_path(dataset_id) + "/patches", Page[PatchHistoryEntry])

    async def mark_deleting(self, dataset_id: str) -> RegisteredDataset:
        """Mark a registered revision ``deleting``: the first step of deleting it.

        Its content, tags and default flag can't change from then on; reads keep working.
        Calling it again changes nothing.

        Raises:
            PreconditionFailed: the revision is protected.
        """
        return await self._core.request(
            "POST",
            "registry",
            _dataset_path(dataset_id) + "/deletion",
            cast_to=RegisteredDataset,
        )

    async def update_file_record(
        self,
        dataset_id: str,
        repository: str,
        *,
        exists: bool,
        size: int | None = None,
        sha256: str | None = None,
    ) -> RegisteredDataset:
        """Mark a revision's replica in ``repository`` present or absent.

        Args:
            dataset_id: the registered revision's id.
            repository: the repository's handle.
            exists: True: the replica is there (pass the ``size`` and ``sha256`` read back
                from the repository; they must be the revision's); False: it was deleted.
            size: the size read back (with ``exists=True``).
            sha256: the sha256 read back (with ``exists=True``).

        Raises:
            Unprocessable: ``size`` or ``sha256`` is not the revision's, or the object in
                the server's own bucket is not its bytes.
            Conflict: ``object_present``: marked absent while the object is still in the
                server's own bucket.
            NotFound: no such revision, or it has no file record in ``repository``.
        """
        body = FileRecordUpdate(exists=exists, size=size, sha256=sha256)
        return await self._core.request(
            "PUT",
            "registry",
            _dataset_path(dataset_id) + "/files" + item_path(repository).removeprefix("/items"),
            json=body.model_dump(mode="json", exclude_none=True),
            cast_to=RegisteredDataset,
        )

    async def delete_registered_dataset(self, dataset_id: str) -> None:
        """Remove a revision's records: the last step of deleting it.

        Raises:
            Conflict: ``not_deleting`` (call :meth:`mark_deleting` first) or
                ``replicas_remain`` (a file record still says it exists, or its object is
                still in the server's own bucket; the details list them).
        """
        await self._core.request("DELETE", "registry", _dataset_path(dataset_id))

    async def get_repository_credentials(
        self,
        repository: str,
        access: AccessLevel = "read",
        *,
        duration_seconds: int | None = None,
    ) -> ScopedCredentials:
        """S3 credentials limited to an S3 repository's root prefix in the server's bucket.

        Args:
            repository: the repository's handle (``kind`` ``s3``, root in the server's
                bucket; otherwise 422 naming ``root``).
            access: ``read`` needs ``data-read`` on the repository item, ``write``
                ``data-write`` (a registry admin grants them in the item's access settings).
            duration_seconds: as for the datastore's credentials.
        """
        body = encode_body(
            CredentialsRequest,
            {"access": access, "duration_seconds": duration_seconds},
            "credentials request",
        )
        return await self._core.request(
            "POST",
            "registry",
            "/repositories" + item_path(repository).removeprefix("/items") + "/credentials",
            json=body,
            cast_to=ScopedCredentials,
        )

    async def list_registered_datasets(
        self,
        *,
        session: str | None = None,
        subject: str | None = None,
        lab: str | None = None,
        date_from: date | str | None = None,
        date_to: date | str | None = None,
        dataset_type: str | None = None,
        collection: str | None = None,
        name: str | None = None,
        revision: str | None = None,
        last_before: str | None = None,
        default_only: bool = False,
        page_size: int = 100,
        cursor: str | None = None,
    ) -> Page[RegisteredDataset]:
        """One page of the registered datasets of sessions you may read.

        Sorted by session date, session, collection, name and revision sequence.

        Args:
            session: only this session's (handle).
            subject: only sessions of this subject (handle).
            lab: only sessions of this lab (handle).
            date_from: only sessions on or after this date.
            date_to: only sessions on or before this date.
            dataset_type: only this dataset type (handle).
            collection: only this collection (``""`` for none).
            name: only datasets of this name.
            revision: only this revision (``""`` for none).
            last_before: per dataset, the newest revision in the server's order among those
                named at or before this one (ONE's ``index_last_before``).
            default_only: only default revisions.
            page_size: datasets per page.
            cursor: the ``next_cursor`` of the previous page.

        Example:
            ```python
            page = await pv.registry_client.list_registered_datasets(
                date_from="2026-12-01", default_only=True)
            [d.rel_path for d in page.items]   # ['alf/_ibl_trials.table.pqt', ...]
            ```
        """
        params = _dataset_params(
            session,
            subject,
            lab,
            date_from,
            date_to,
            dataset_type,
            collection,
            name,
            revision,
            last_before,
            default_only,
        )
        return await self._registered.page(params, page_size=page_size, cursor=cursor)

    def iter_registered_datasets(
        self,
        *,
        session: str | None = None,
        subject: str | None = None,
        lab: str | None = None,
        date_from: date | str | None = None,
        date_to: date | str | None = None,
        dataset_type: str | None = None,
        collection: str | None = None,
        name: str | None = None,
        revision: str | None = None,
        last_before: str | None = None,
        default_only: bool = False,
        page_size: int = 100,
        cursor: str | None = None,
        max_items: int | None = None,
    ) -> AsyncPaginator[RegisteredDataset]:
        """Every registered dataset you may read, page by page.

        Filters: see :meth:`list_registered_datasets`.

        Example:
            ```python
            async for d in pv.registry_client.iter_registered_datasets(last_before="2026-12-06"):
                print(d.session, d.rel_path, d.revision_seq, d.default)
            ```
        """
        params = _dataset_params(
            session,
            subject,
            lab,
            date_from,
            date_to,
            dataset_type,
            collection,
            name,
            revision,
            last_before,
            default_only,
        )
        return self._registered.iterate(
            params, page_size=page_size, cursor=cursor, max_items=max_items
        )


def _coerce_file(value: FileToRegister | Mapping[str, Any]) -> FileToRegister:
    return coerce_model(FileToRegister, value, "a file to register")


def _session_path(session: str) -> str:
    return "/sessions" + item_path(session).removeprefix("/items")


def _uuid(value: str | uuid.UUID, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise UsageError(f"a {what}'s id is a UUID, got {value!r}") from None


def _dataset_path(dataset_id: str) -> str:
    return f"/registered-datasets/{_uuid(dataset_id, 'registered dataset')}"


def _dataset_params(
    session: str | None,
    subject: str | None,
    lab: str | None,
    date_from: date | str | None,
    date_to: date | str | None,
    dataset_type: str | None,
    collection: str | None,
    name: str | None,
    revision: str | None,
    last_before: str | None,
    default_only: bool,
) -> dict[str, Any]:
    given = {
        "session": session,
        "dataset_type": dataset_type,
        "collection": collection,
        "name": name,
        "revision": revision,
        "last_before": last_before,
    }
    params = _session_params(subject, lab, date_from, date_to, None, "asc")
    del params["order"]
    if default_only:
        params["default_only"] = True
    return {**params, **{k: v for k, v in given.items() if v is not None}}


def _session_params(
    subject: str | None,
    lab: str | None,
    date_from: date | str | None,
    date_to: date | str | None,
    number: int | None,
    order: str,
) -> dict[str, Any]:
    given = {
        "subject": subject,
        "lab": lab,
        "date_from": date_from.isoformat() if isinstance(date_from, date) else date_from,
        "date_to": date_to.isoformat() if isinstance(date_to, date) else date_to,
        "number": number,
    }
    return {"order": order, **{k: v for k, v in given.items() if v is not None}}


def _list_params(
    *, subtype: str | None, owner: str | None, sort: str, order: str
) -> dict[str, Any]:
    params: dict[str, Any] = {"sort": sort, "order": order}
    if subtype is not None:
        params["subtype"] = subtype
    if owner is not None:
        params["owner"] = owner
    return params
