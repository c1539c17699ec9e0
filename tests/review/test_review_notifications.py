"""The notifiers on their own: what they send, and that a failure is only logged."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from provena_like.server.notifications import (
    LoggingNotifier,
    NoopNotifier,
    Notifier,
    ReleaseNotice,
    WebhookNotifier,
    notifier_from_settings,
    notify_safely,
)
from provena_like.server.settings import ServerSettings

pytestmark = pytest.mark.anyio

NOTICE = ReleaseNotice(
    action="approve",
    dataset_id="10378.1/42",
    dataset_name="Reef temperatures",
    status="RELEASED",
    actor="rob",
    reviewer="rob",
    requester="alice",
    notes="checked",
    time=datetime(2024, 6, 30, 12, 0, tzinfo=UTC),
)


async def test_the_webhook_posts_the_notice_as_json() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    hook = WebhookNotifier(
        "https://hooks.example.org/provena",
        timeout=2,
        headers={"X-Secret": "s"},
        transport=httpx.MockTransport(answer),
    )
    await hook.notify(NOTICE)
    (request,) = seen
    assert request.method == "POST" and str(request.url) == "https://hooks.example.org/provena"
    assert request.headers["x-secret"] == "s"
    body = json.loads(request.content)
    assert body["event"] == "dataset.release.approve"
    assert body["notice"]["dataset_id"] == "10378.1/42"
    assert body["notice"]["time"] == "2024-06-30T12:00:00+00:00"
    assert "hooks.example.org" in repr(hook)


async def test_a_failing_webhook_raises_and_notify_safely_only_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook = WebhookNotifier(
        "https://hooks.example.org/down",
        transport=httpx.MockTransport(lambda _r: httpx.Response(503)),
    )
    with pytest.raises(httpx.HTTPStatusError):
        await hook.notify(NOTICE)
    caplog.set_level(logging.ERROR, logger="provena_like.server.notifications")
    await notify_safely(hook, NOTICE)  # does not raise
    (record,) = caplog.records
    assert "the notifier" in record.getMessage() and "10378.1/42" in record.getMessage()
    assert record.exc_info is not None


async def test_logging_and_noop_notifiers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="provena_like.server.notifications")
    await LoggingNotifier().notify(NOTICE)
    await NoopNotifier().notify(NOTICE)
    (record,) = caplog.records
    assert record.getMessage() == (
        "release approve of dataset 10378.1/42 by rob: now RELEASED (reviewer rob, requester alice)"
    )


def test_the_settings_choose_the_notifier(tmp_path: Path) -> None:
    assert isinstance(notifier_from_settings(ServerSettings(data_dir=tmp_path)), LoggingNotifier)
    none = ServerSettings(data_dir=tmp_path, notifier="none")
    assert isinstance(notifier_from_settings(none), NoopNotifier)
    hook = ServerSettings(
        data_dir=tmp_path, notifier="webhook", notifier_webhook_url="http://h/x", notifier_timeout=1
    )
    chosen = notifier_from_settings(hook)
    assert isinstance(chosen, WebhookNotifier) and chosen.timeout == 1
    assert isinstance(chosen, Notifier)
    with pytest.raises(ValidationError, match="notifier_webhook_url"):
        ServerSettings(data_dir=tmp_path, notifier="webhook")
