"""What happened to each file of a batch.

A batch never raises halfway: every file gets a :class:`FileResult` (``ok``, ``skipped``
with a reason, or ``failed`` with a reason and the error), collected in a
:class:`TransferResult`. Call :meth:`TransferResult.raise_for_failures` to turn failures
into an exception when that is what the caller wants.

Example:
    ```python
    result = TransferResult([FileResult("a.csv", "ok", size=3)])
    assert (result.bytes, len(result.failed)) == (3, 0)
    assert repr(result) == "TransferResult: 1 ok, 0 failed, 3 B"
    ```

Their ``repr`` is one line of counts, however many files there are, and in a notebook
they show as a small table (failed files first, at most ten rows).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from provena_like._core.errors import TransferError
from provena_like._display import clip, html_table, human_bytes

__all__ = [
    "UNCHANGED",
    "CheckStatus",
    "FileCheck",
    "FileResult",
    "FileStatus",
    "TransferFailed",
    "TransferResult",
    "VerifyResult",
]

FileStatus = Literal["ok", "skipped", "failed"]
"""The outcome of one file."""

UNCHANGED = "unchanged"
"""The reason of a file a sync skipped because its size and sha256 match on both sides."""

CheckStatus = Literal["ok", "mismatch", "missing-local", "missing-remote"]
"""How one file of a local copy compares with the dataset's (see :class:`FileCheck`)."""

_LISTED_FAILURES = 5
_HTML_ROWS = 10


@dataclass(frozen=True, slots=True)
class FileResult:
    """The outcome of one file.

    Attributes:
        path: The key relative to the dataset root (what a manifest records).
        status: ``ok``, ``skipped`` or ``failed``.
        size: Bytes transferred (or the file's size when known).
        sha256: Lowercase hex sha256 of the bytes transferred (when checksums are on).
        md5: Lowercase hex md5 (only when asked for).
        etag: The object's ETag as S3 reports it (quotes stripped).
        reason: Why the file was skipped or failed.
        error: The error of a failed file.
        local: The local file read or written.

    Example:
        ```python
        assert not FileResult("raw/a.csv", "failed", reason="AccessDenied").ok
        ```
    """

    path: str
    status: FileStatus
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    etag: str | None = None
    reason: str | None = None
    error: BaseException | None = field(default=None, compare=False)
    local: Path | None = None

    @property
    def ok(self) -> bool:
        """Whether the file was transferred."""
        return self.status == "ok"


class TransferFailed(TransferError):
    """Some files of a batch failed (raised by :meth:`TransferResult.raise_for_failures`).

    Attributes:
        result: The whole batch's result.
    """

    def __init__(self, message: str, result: TransferResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(slots=True)
class TransferResult:
    """Per-file results of one upload or download batch, in the order files were given.

    Example:
        ```python
        result = await engine.upload(Path("./data"))
        for f in result.failed:
            print(f.path, f.reason)
        result.raise_for_failures()
        ```
    """

    files: list[FileResult] = field(default_factory=list)

    def __iter__(self) -> Iterator[FileResult]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def ok(self) -> list[FileResult]:
        """The files transferred."""
        return [f for f in self.files if f.status == "ok"]

    @property
    def failed(self) -> list[FileResult]:
        """The files that failed."""
        return [f for f in self.files if f.status == "failed"]

    @property
    def skipped(self) -> list[FileResult]:
        """The files skipped (with a reason)."""
        return [f for f in self.files if f.status == "skipped"]

    @property
    def bytes(self) -> int:
        """Bytes transferred by the files that succeeded."""
        return sum(f.size or 0 for f in self.files if f.status == "ok")

    def __repr__(self) -> str:
        """One line: ``TransferResult: 304 ok, 0 failed, 944 MB`` (and the first failure)."""
        failed, skipped = self.failed, len(self.skipped)
        parts = [f"{len(self.ok)} ok", f"{len(failed)} failed"]
        if skipped:
            parts.append(f"{skipped} skipped")
        text = f"TransferResult: {', '.join(parts)}, {human_bytes(self.bytes)}"
        if failed:
            text += f"; first failure {clip(f'{failed[0].path}: {failed[0].reason}')}"
        return text

    def _repr_html_(self) -> str:
        """A notebook table: failed files first, then skipped, then the others (bounded)."""
        order = {"failed": 0, "skipped": 1, "ok": 2}
        files = sorted(self.files, key=lambda f: order[f.status])
        rows = [
            [f.path, f.status, human_bytes(f.size) if f.size is not None else "", f.reason or ""]
            for f in files[:_HTML_ROWS]
        ]
        header = ["path", "status", "size", "reason"]
        return html_table(repr(self), header, rows, total=len(self.files))

    def raise_for_failures(self) -> None:
        """Raise :class:`TransferFailed` if any file failed.

        The exception's ``__cause__`` is the first file's error.

        Raises:
            TransferFailed: Naming the first few failed files and why.

        Example:
            ```python
            TransferResult([FileResult("a", "ok")]).raise_for_failures()
            ```
        """
        failed = self.failed
        if not failed:
            return
        listed = "; ".join(f"{f.path}: {f.reason}" for f in failed[:_LISTED_FAILURES])
        more = len(failed) - _LISTED_FAILURES
        suffix = f"; and {more} more" if more > 0 else ""
        message = f"{len(failed)} of {len(self.files)} files failed: {listed}{suffix}"
        raise TransferFailed(message, self) from failed[0].error


@dataclass(frozen=True, slots=True)
class FileCheck:
    """How one file of a local copy compares with the remote one (by size and sha256).

    Attributes:
        path: The key relative to the dataset root; for ``missing-remote``, the local file's
            path relative to the copy.
        status: ``ok`` (same size and sha256), ``mismatch`` (``reason`` says what differs),
            ``missing-local`` (the remote file has no local copy) or ``missing-remote`` (a
            local file the remote side doesn't have).
        reason: What differs, for ``mismatch`` (and a short note for the missing ones).
        size: The remote file's size (``None`` for ``missing-remote``).
        sha256: The local file's sha256, when it was read.
        local: The local file (where it is, or where it would be).

    Example:
        ```python
        assert not FileCheck("raw/a.csv", "missing-local").ok
        ```
    """

    path: str
    status: CheckStatus
    reason: str | None = None
    size: int | None = None
    sha256: str | None = None
    local: Path | None = None

    @property
    def ok(self) -> bool:
        """Whether the local file matches."""
        return self.status == "ok"


@dataclass(slots=True)
class VerifyResult:
    """Per-file checks of a local copy: remote files in the order given, then local extras.

    Example:
        ```python
        result = VerifyResult([FileCheck("a", "ok"), FileCheck("b", "mismatch", "sha256")])
        assert ([f.path for f in result.differences], result.matches) == (["b"], False)
        ```
    """

    files: list[FileCheck] = field(default_factory=list)

    def __iter__(self) -> Iterator[FileCheck]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def _with(self, status: CheckStatus) -> list[FileCheck]:
        return [f for f in self.files if f.status == status]

    @property
    def ok(self) -> list[FileCheck]:
        """The files that match."""
        return self._with("ok")

    @property
    def mismatched(self) -> list[FileCheck]:
        """The files whose size or sha256 differ (or couldn't be compared)."""
        return self._with("mismatch")

    @property
    def missing_local(self) -> list[FileCheck]:
        """The remote files the local copy lacks."""
        return self._with("missing-local")

    @property
    def missing_remote(self) -> list[FileCheck]:
        """The local files the remote side doesn't have."""
        return self._with("missing-remote")

    @property
    def differences(self) -> list[FileCheck]:
        """Mismatched and missing-local files: what makes the copy incomplete or wrong."""
        return [f for f in self.files if f.status in ("mismatch", "missing-local")]

    @property
    def matches(self) -> bool:
        """Whether every remote file has an identical local copy (local extras allowed)."""
        return not self.differences

    def __repr__(self) -> str:
        """One line: ``VerifyResult: matches, 300 ok`` or what differs, counted by kind."""
        counts: dict[str, int] = {}
        for f in self.files:
            counts[f.status] = counts.get(f.status, 0) + 1
        verdict = "matches" if self.matches else "differs"
        parts = [f"{counts.pop('ok', 0)} ok"]
        parts += [f"{n} {status}" for status, n in counts.items()]
        return f"VerifyResult: {verdict}, {', '.join(parts)}"

    def _repr_html_(self) -> str:
        """A notebook table: differences first, then local extras, then matches (bounded)."""
        order = {"mismatch": 0, "missing-local": 1, "missing-remote": 2, "ok": 3}
        files = sorted(self.files, key=lambda f: order[f.status])
        rows = [[f.path, f.status, f.reason or ""] for f in files[:_HTML_ROWS]]
        return html_table(repr(self), ["path", "status", "reason"], rows, total=len(self.files))
