"""Who hears of release requests and decisions: a pluggable :class:`Notifier`.

The release routes call the app's notifier (``app.state.notifier``) *after* the step has
committed, through :func:`notify_safely`, as a background task of the response: a notifier
that fails or hangs can neither undo the step nor hide it from the caller; its failure is
logged and that is all.

Three notifiers ship, chosen by the server settings (``notifier``):

- ``none`` → :class:`NoopNotifier`;
- ``log`` (the default) → :class:`LoggingNotifier`, one INFO line per step on the logger
  ``provena_like.server.notifications``;
- ``webhook`` → :class:`WebhookNotifier`, a JSON ``POST`` of the :class:`ReleaseNotice` to
  ``notifier_webhook_url`` with a timeout (``notifier_timeout``).

Anything with an ``async notify(notice)`` method is a notifier, e.g. one that sends e-mail.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import httpx

from provena_like.server.settings import ServerSettings

__all__ = [
    "LoggingNotifier",
    "NoopNotifier",
    "Notifier",
    "ReleaseNotice",
    "WebhookNotifier",
    "notifier_from_settings",
    "notify_safely",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReleaseNotice:
    """One committed step of a dataset's release workflow.

    Attributes:
        action: ``request``, ``approve``, ``reject`` or ``withdraw``.
        dataset_id: the dataset's handle.
        dataset_name: its display name.
        status: the release status the step left it in.
        actor: who took the step.
        reviewer: the reviewer of the request.
        requester: who asked for the release.
        notes: the step's notes.
        time: when the step committed.
    """

    action: str
    dataset_id: str
    dataset_name: str
    status: str
    actor: str
    reviewer: str | None
    requester: str | None
    notes: str
    time: datetime

    def to_json(self) -> dict[str, Any]:
        """The notice as a JSON-able dict (``time`` in ISO 8601)."""
        data = asdict(self)
        data["time"] = self.time.isoformat()
        return data


@runtime_checkable
class Notifier(Protocol):
    """Tells someone about a release step. May raise: callers use :func:`notify_safely`."""

    async def notify(self, notice: ReleaseNotice) -> None:
        """Deliver ``notice``."""
        ...


class NoopNotifier:
    """Tells nobody.

    Example:
        ```python
        app.state.notifier = NoopNotifier()
        ```
    """

    async def notify(self, notice: ReleaseNotice) -> None:
        """Do nothing."""
        del notice

    def __repr__(self) -> str:
        return "NoopNotifier()"


class LoggingNotifier:
    """Writes one INFO line per step to a logger.

    Args:
        logger: where to write (default: this module's logger).

    Example:
        ```python
        app.state.notifier = LoggingNotifier(logging.getLogger("review"))
        ```
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log

    def __repr__(self) -> str:
        return f"LoggingNotifier(logger={self._log.name!r})"

    async def notify(self, notice: ReleaseNotice) -> None:
        """Log the notice."""
        self._log.info(
            "release %s of dataset %s by %s: now %s (reviewer %s, requester %s)",
            notice.action,
            notice.dataset_id,
            notice.actor,
            notice.status,
            notice.reviewer,
            notice.requester,
        )


class WebhookNotifier:
    """POSTs each notice as JSON to a URL; a non-2xx answer or a timeout raises.

    The body is ``{"event": "dataset.release.<action>", "notice": {...}}``.

    Args:
        url: where to post.
        timeout: seconds to wait for the answer.
        headers: extra request headers (e.g. a shared secret).
        transport: an httpx transport instead of the network (tests).

    Example:
        ```python
        app.state.notifier = WebhookNotifier("https://hooks.example.org/provena", timeout=3)
        ```
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._headers = dict(headers or {})
        self._transport = transport

    def __repr__(self) -> str:
        return f"WebhookNotifier(url={self.url!r}, timeout={self.timeout})"

    async def notify(self, notice: ReleaseNotice) -> None:
        """Post the notice; raise on a failed request."""
        body = {"event": f"dataset.release.{notice.action}", "notice": notice.to_json()}
        async with httpx.AsyncClient(timeout=self.timeout, transport=self._transport) as http:
            response = await http.post(self.url, json=body, headers=self._headers)
            response.raise_for_status()


def notifier_from_settings(settings: ServerSettings) -> Notifier:
    """The notifier the settings ask for.

    Example:
        ```python
        app.state.notifier = notifier_from_settings(settings)
        ```
    """
    if settings.notifier == "none":
        return NoopNotifier()
    if settings.notifier == "webhook":
        assert settings.notifier_webhook_url is not None  # checked by the settings
        return WebhookNotifier(settings.notifier_webhook_url, timeout=settings.notifier_timeout)
    return LoggingNotifier()


async def notify_safely(notifier: Notifier, notice: ReleaseNotice) -> None:
    """Call ``notifier``; log and swallow whatever it raises (the step stands regardless).

    Example:
        ```python
        background.add_task(notify_safely, request.app.state.notifier, notice)
        ```
    """
    try:
        await notifier.notify(notice)
    except Exception:
        log.exception(
            "the notifier %r failed for release %s of dataset %s; the step stands",
            notifier,
            notice.action,
            notice.dataset_id,
        )
