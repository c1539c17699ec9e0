"""Review and release of datasets: reviewers, the release workflow, its history and queues.

Modules: ``tables`` (the release history), ``reviewers`` (who may review: the system role
``reviewer``), ``service`` (the state machine, on a database session) and ``routes``
(HTTP, mounted at ``/datastore``). Who may do what is decided in
:mod:`provena_like.server.access`; who hears of it, in
:mod:`provena_like.server.notifications`.
"""

from provena_like.server.review.routes import router

__all__ = ["router"]
