"""What the SDK's waits share about held polls (see :mod:`provena_like.server.held_polls`).

A wait sends each poll with the tag of the last answer (``If-None-Match``) and
``Prefer: wait=<seconds>``; a server that holds polls answers when the resource changes
(``Preference-Applied`` says it held the poll). A poll answered at once with a change (it
moved since the poll before) is followed by the next one after :data:`REPOLL` seconds, which
the server then holds; an unchanged answer that was not held (a server that holds no polls,
or too many held) is followed by the wait's own back-off.
"""

from __future__ import annotations

__all__ = ["REPOLL"]

REPOLL = 0.2
"""Seconds before the next poll when the last one answered at once with a change: polls of
a resource that changes faster than that never come closer together."""
