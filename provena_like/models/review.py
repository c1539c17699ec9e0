"""Wire models of dataset review and release (routes under ``/datastore``).

A dataset starts ``NOT_RELEASED``. A dataset admin asks for release naming a reviewer
(``PENDING``); only that reviewer approves (``RELEASED``) or rejects (back to
``NOT_RELEASED``), and the requester may withdraw a pending request. Every step is one
:class:`ReleaseEvent` in the dataset's release history. Reviewers are users with the
system role ``reviewer``, managed by system admins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from provena_like.models.datastore import ReleaseStatus
from provena_like.models.shared import WireModel

__all__ = [
    "MAX_NOTES",
    "RejectRequest",
    "ReleaseAction",
    "ReleaseEvent",
    "ReleaseRequest",
    "ReviewNotes",
    "Reviewer",
    "ReviewerAdd",
]

MAX_NOTES = 5000
"""The longest notes a release step may carry (characters)."""

ReleaseAction = Literal["request", "approve", "reject", "withdraw"]
"""One step of the release workflow."""


class ReleaseRequest(WireModel):
    """Ask for a dataset's release (``POST .../release/request``), naming its reviewer."""

    reviewer: str = Field(min_length=1, max_length=64, description="a user with role reviewer")
    notes: str = Field(default="", max_length=MAX_NOTES, description="for the reviewer")


class ReviewNotes(WireModel):
    """The body of approve and withdraw: optional notes for the history."""

    notes: str = Field(default="", max_length=MAX_NOTES)


class RejectRequest(WireModel):
    """The body of reject: notes are required, so the requester learns what to fix."""

    notes: str = Field(min_length=1, max_length=MAX_NOTES)


class ReleaseEvent(WireModel):
    """One step of a dataset's release history.

    ``status`` is the release status the step left the dataset in; ``reviewer`` is the
    reviewer of the request the step belongs to.
    """

    id: int
    time: datetime
    user: str
    action: ReleaseAction
    notes: str = ""
    reviewer: str | None = None
    status: ReleaseStatus


class ReviewerAdd(WireModel):
    """Make a user a reviewer (``POST /datastore/reviewers``)."""

    username: str = Field(min_length=1, max_length=64)


class Reviewer(WireModel):
    """A user who may be named to review release requests."""

    username: str
    display_name: str | None = None
