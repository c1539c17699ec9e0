"""A process that runs the server's start-up (the app's lifespan) once, for the worker tests.

Spawned several at a time on one fresh data dir: each waits at a barrier so that all start
together, runs the lifespan's start-up and shut-down, and reports the public signing key it
loaded (or its error).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from provena_like.server.app import create_app
from provena_like.server.settings import ServerSettings


def start_once(settings: ServerSettings, barrier: Any, results: Any) -> None:
    """Run the lifespan of a new app for ``settings``; put ``("ok", jwks)`` or an error."""
    app = create_app(settings)

    async def main() -> str:
        async with app.router.lifespan_context(app):
            return json.dumps(app.state.tokens.jwks(), sort_keys=True)

    barrier.wait()
    try:
        results.put(("ok", asyncio.run(main())))
    except Exception as err:  # reported to the test
        results.put(("error", f"{type(err).__name__}: {err}"))
