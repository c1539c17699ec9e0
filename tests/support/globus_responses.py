"""Canned Globus Transfer responses for the transfer client's tests, built on globus-sdk's own.

``globus_sdk.testing`` ships registered responses for most Transfer routes (the shape oracle:
copies of real API answers); for routes it has none of (``get_task``, ``operation_ls``,
``event_list``, ``successful_transfers``, ``skipped_errors``) the documents here are derived
from its fixtures (a task document of its ``task_list`` response, a ``file`` document of its
``operation_stat`` response) and from globus-cli's recorded answers (GLOBUS.md §1).
They stand in for real Globus, which no test can reach.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from globus_sdk.testing import RegisteredResponse, get_response_set

__all__ = [
    "GLOBUS_TRANSFER",
    "event_list",
    "file_doc",
    "file_list",
    "globus_mock",
    "register",
    "register_task",
    "register_token",
    "sent_json",
    "task_doc",
    "token_answer",
]

GLOBUS_TRANSFER = "https://transfer.api.globus.org"
"""Real Globus Transfer's URL (what a client built without ``base_url`` calls)."""


@pytest.fixture
def globus_mock() -> Iterator[responses.RequestsMock]:
    """Every ``requests`` call answered by registered responses (none reaches a network)."""
    responses.start()
    try:
        yield responses.mock
    finally:
        responses.stop()
        responses.reset()


def task_doc(task_id: str, **changes: Any) -> dict[str, Any]:
    """The task document of globus-sdk's ``task_list`` fixture, for ``task_id``, changed."""
    doc = copy.deepcopy(get_response_set("transfer.task_list").lookup("default").json)
    assert isinstance(doc, dict)
    task: dict[str, Any] = doc["DATA"][0]
    task.update(task_id=task_id, **changes)
    return task


def file_doc(name: str, type: str = "file", size: int = 4, **changes: Any) -> dict[str, Any]:
    """A ``file`` document shaped like globus-sdk's ``operation_stat`` fixture."""
    doc = copy.deepcopy(get_response_set("transfer.operation_stat").lookup("default").json)
    assert isinstance(doc, dict)
    doc.update(name=name, type=type, size=size, **changes)
    return doc


def file_list(collection: str, path: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """An ``operation_ls`` answer (``file_list``; ``path`` normalised with a trailing slash)."""
    return {
        "DATA_TYPE": "file_list",
        "DATA": entries,
        "absolute_path": path,
        "endpoint": collection,
        "length": len(entries),
        "path": path,
        "rename_supported": True,
        "symlink_supported": False,
        "total": len(entries),
    }


def event_list(events: list[tuple[str, str, bool]], *, offset: int = 0) -> dict[str, Any]:
    """An ``event_list`` answer: (code, description, is_error) per event, newest first."""
    return {
        "DATA_TYPE": "event_list",
        "DATA": [
            {
                "DATA_TYPE": "event",
                "code": code,
                "description": description,
                "details": f"{code} details",
                "is_error": is_error,
                "time": "2021-09-02T18:04:48+00:00",
            }
            for code, description, is_error in events
        ],
        "length": len(events),
        "limit": 10,
        "offset": offset,
        "total": offset + len(events),
    }


def register(
    path: str,
    *,
    method: str = "GET",
    json_body: Any = None,
    status: int = 200,
    base: str = GLOBUS_TRANSFER,
) -> RegisteredResponse:
    """Register one answer for ``base + path`` (answers for one URL are used in order)."""
    return RegisteredResponse(
        path=base.rstrip("/") + path,
        method=method,  # type: ignore[arg-type]
        json=json_body,
        status=status,
    ).add()


def register_task(task_id: str, *docs: dict[str, Any]) -> None:
    """``GET /v0.10/task/<id>`` answers ``docs`` in turn (the last one from then on)."""
    for doc in docs:
        register(f"/v0.10/task/{task_id}", json_body=doc)


def sent_json(call_index: int = -1, *, path_endswith: str | None = None) -> dict[str, Any]:
    """The JSON body of a recorded request (the last one, or the last to ``path_endswith``)."""
    calls = [
        c
        for c in responses.calls
        if path_endswith is None or c.request.url.split("?")[0].endswith(path_endswith)
    ]
    body = calls[call_index].request.body
    assert body is not None
    data: dict[str, Any] = json.loads(body)
    return data


def token_answer(access: str, refresh: str | None) -> dict[str, object]:
    """globus-sdk's token-endpoint fixture, with our tokens (and a refresh token)."""
    base = get_response_set("auth.oauth2_exchange_code_for_tokens").lookup("default").json
    assert isinstance(base, dict)
    answer = dict(base, access_token=access)
    if refresh is not None:
        answer["refresh_token"] = refresh
    return answer


def register_token(access: str, refresh: str | None) -> None:
    """Globus Auth's token endpoint answers with these tokens (once per registration)."""
    RegisteredResponse(
        service="auth", path="/v2/oauth2/token", method="POST", json=token_answer(access, refresh)
    ).add()
