"""When the wire models build their validators: at import (the default), or on first use.

A command of the ``provena-like`` console script uses a few of the SDK's hundred-odd wire
models, and building every one's schema at import was a third of its start-up; the console
script calls :func:`defer_model_builds` first, so the models it imports build on first use
(pydantic's ``defer_build``). Everywhere else (programs that import the SDK, the server) the
models build at import, as they always did: a server's request handlers are built around
complete models.
"""

from __future__ import annotations

__all__ = ["defer_model_builds", "model_builds_deferred"]

_deferred = False


def defer_model_builds() -> None:
    """Have the wire models defined from now on build their validators on first use.

    Call it before anything imports :mod:`provena_like.models`. Only with pydantic 2.14+,
    where a build on first use is thread-safe (see :func:`model_builds_deferred`).
    """
    global _deferred
    _deferred = True


def model_builds_deferred() -> bool:
    """Whether a wire model defined now builds on first use (its ``defer_build``).

    Returns:
        ``True`` after :func:`defer_model_builds`, with pydantic 2.14 or later (before it,
        a model first used by two threads at once could validate with its parent's
        validator); ``False`` otherwise.

    Example:
        ```python
        from provena_like._core.model_builds import model_builds_deferred

        assert model_builds_deferred() is False  # not in the console script
        ```
    """
    if not _deferred:
        return False
    from pydantic import VERSION

    return tuple(int(part) for part in VERSION.split(".")[:2]) >= (2, 14)
