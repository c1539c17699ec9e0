"""How the executor files a file whose copy failed (no server needed: the outcome mapping).

The executor no longer stats each source again before copying it when no ``sync_level`` asks
for a comparison: a source gone since the expansion surfaces as the transfer engine's error
(a ``FileNotFoundError`` on upload, a 404 ``ClientError`` on download). Those must still be
``FILE_NOT_FOUND`` (a skipped error under ``skip_source_errors``), as a missing source seen
by a stat is.
"""

from __future__ import annotations

import errno
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError

from provena_like.server.transfer.executor import _Run


def _run(*, skip_source_errors: bool) -> _Run:
    row = SimpleNamespace(
        task_id="0f6d3a2e-0000-4000-8000-000000000000",
        owner="alice",
        options={"skip_source_errors": skip_source_errors},
        deadline=datetime(2100, 1, 1, tzinfo=UTC),
    )
    nothing = cast(Any, None)
    return _Run(nothing, nothing, cast(Any, row), nothing, nothing, nothing)


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


GONE = [
    FileNotFoundError(errno.ENOENT, "No such file or directory", "/data/a.bin"),
    _client_error("NoSuchKey", 404),
]


@pytest.mark.parametrize("err", GONE, ids=["upload", "download"])
def test_a_source_gone_since_the_expansion_is_file_not_found(err: Exception) -> None:
    failed = _run(skip_source_errors=False).failed(err)
    assert failed.state == "failed"
    assert failed.error is not None and failed.error["code"] == "FILE_NOT_FOUND"
    skipped = _run(skip_source_errors=True).failed(err)
    assert skipped.state == "error"  # a skipped source error, not a fault
    assert skipped.error is not None and skipped.error["code"] == "FILE_NOT_FOUND"


@pytest.mark.parametrize(
    "err", [OSError(errno.EIO, "I/O error"), _client_error("AccessDenied", 403)]
)
def test_other_engine_errors_stay_endpoint_errors(err: Exception) -> None:
    failed = _run(skip_source_errors=True).failed(err)
    assert failed.state == "failed"
    assert failed.error is not None and failed.error["code"] == "ENDPOINT_ERROR"
