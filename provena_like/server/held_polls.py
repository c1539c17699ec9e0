"""Held polls: a status route that answers when its resource changes (standard HTTP).

A client waiting for something the server does (a transfer task, a crawl job) can only poll
its status. Polling every few seconds learns of the end seconds late; polling often spends
the server's CPU on answers that say nothing new. Status routes that hold polls speak two
standard headers instead:

* every answer carries an ``ETag``: a weak tag of the state the document shows
  (:func:`weak_tag`);
* a request with ``If-None-Match: <that tag>`` is answered ``304 Not Modified`` while the
  state has that tag (:func:`not_modified`); with ``Prefer: wait=<seconds>`` (RFC 7240) as
  well (:func:`preferred_wait`), the poll of an unfinished resource is held until the state
  changes (then ``200`` with the new document) or the seconds pass (then ``304``), at most
  :data:`MAX_WAIT`, and the answer says ``Preference-Applied: wait=<seconds>``.

No database connection is kept while a poll is held; one process holds at most
:data:`MAX_HELD` polls of a kind (:class:`PollCap`), and answers the others at once.

Example:
    ```python
    first = await client.get(f"/crawl/jobs/{job_id}")
    held = await client.get(
        f"/crawl/jobs/{job_id}",
        headers={"If-None-Match": first.headers["ETag"], "Prefer": "wait=10"},
    )
    assert held.status_code in (200, 304)
    ```
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

__all__ = [
    "MAX_HELD",
    "MAX_WAIT",
    "RECHECK",
    "PollCap",
    "not_modified",
    "preferred_wait",
    "weak_tag",
]

MAX_WAIT = 10.0
"""The longest a poll is held (seconds). A graceful shutdown waits for held polls, so this
is also the most one can delay it."""

RECHECK = 0.25
"""Seconds between a held poll's readings of its resource (changes made in another
process, or no wake-up at all)."""

MAX_HELD = 256
"""Polls of a kind held at once by one server process; beyond, a poll is answered at once
(its client then polls again later). Each held poll reads its resource every
:data:`RECHECK` seconds: this bounds those reads to about 1,000 a second."""

_WAIT = re.compile(r"(?:^|[;,])\s*wait\s*=\s*([0-9]{1,6}(?:\.[0-9]{1,3})?)\s*(?=$|[;,])", re.I)


class PollCap:
    """Counts the polls held now, up to ``max_held``. Used from one event loop."""

    def __init__(self, max_held: int = MAX_HELD) -> None:
        self.max_held = max_held
        self.held = 0
        """Polls held now."""

    @contextmanager
    def holding(self) -> Iterator[bool]:
        """Count a held poll while inside; ``False`` (not counted) when too many are held."""
        if self.held >= self.max_held:
            yield False
            return
        self.held += 1
        try:
            yield True
        finally:
            self.held -= 1


def weak_tag(state: object) -> str:
    """A weak ETag of ``state`` (JSON-able; dates and other values by their ``str``).

    Example:
        ```python
        tag = weak_tag({"state": "running", "files": 3})
        assert tag.startswith('W/"') and tag != weak_tag({"state": "running", "files": 4})
        ```
    """
    digest = hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode())
    return f'W/"{digest.hexdigest()[:32]}"'


def not_modified(headers: Mapping[str, str], current: str) -> bool:
    """Whether ``If-None-Match`` names the current tag (weak comparison; ``*`` any).

    Example:
        ```python
        tag = 'W/"abc"'
        assert not_modified({"if-none-match": '"x", W/"abc"'}, tag)
        assert not not_modified({"if-none-match": 'W/"old"'}, tag) and not not_modified({}, tag)
        ```
    """
    tags = {t.strip().removeprefix("W/") for t in headers.get("if-none-match", "").split(",")}
    return "*" in tags or current.removeprefix("W/") in tags


def preferred_wait(headers: Mapping[str, str]) -> float | None:
    """The seconds of a ``Prefer: wait=N`` header (RFC 7240), at most :data:`MAX_WAIT`.

    Example:
        ```python
        assert preferred_wait({"prefer": "wait=2.5"}) == 2.5
        assert preferred_wait({"prefer": "respond-async, wait=99"}) == MAX_WAIT
        assert preferred_wait({"prefer": "wait=-1"}) is None and preferred_wait({}) is None
        ```
    """
    match = _WAIT.search(headers.get("prefer", ""))
    return None if match is None else min(float(match.group(1)), MAX_WAIT)
