"""The FastAPI app factory of the reference server.

One process hosts every service under its prefix (``/auth``, ``/registry``, ...). The app owns
one database engine and, when ``settings.s3`` is set, one object store connection
(``app.state.object_store``, with ``app.state.data_freeze`` keeping its bucket policy in step
with the frozen datasets, and ``app.state.upload_verification`` saying how registered files
are checked, decided at start and logged), both created in the lifespan and closed at
shutdown, and one notifier of release steps (``app.state.notifier``, see
:mod:`~provena_like.server.notifications`; replace it to plug in your own).

The app's one job runner (``app.state.job_runner``, a
:class:`~provena_like.server.jobs.JobRunner`) is made with the app, so that components can
register their job handlers before start-up; the lifespan runs its workers after the schema
is up to date and stops them first at shutdown (their running jobs go back to the queue).

The registry's post-write hooks (``app.state.item_hooks``, see
:mod:`~provena_like.server.registry.events`) are made with the app, and the search index
subscribes to them then; every session of the app fires them.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request, Response
from starlette.routing import Match
from starlette.types import Scope

from provena_like._version import __version__
from provena_like.server import auth, datastore, registry, review
from provena_like.server.archive.routes import router as archive_router
from provena_like.server.body_limit import BodyLimitMiddleware, body_policy
from provena_like.server.crawl.routes import router as crawl_router
from provena_like.server.crawl.service import CrawlJobs
from provena_like.server.datastore.freeze import DataFreeze
from provena_like.server.datastore.storage import open_object_store
from provena_like.server.datastore.verification import UploadVerification, upload_verification
from provena_like.server.db.base import create_engine, create_sessionmaker, secure_data_dir
from provena_like.server.db.schema import upgrade_schema
from provena_like.server.errors import error_response, install_error_handlers
from provena_like.server.extracted.routes import router as extracted_router
from provena_like.server.held_polls import PollCap
from provena_like.server.jobs import JobRunner
from provena_like.server.middleware import RequestIdMiddleware
from provena_like.server.notifications import notifier_from_settings
from provena_like.server.query import refuse_repeated_scalars
from provena_like.server.registration import index as registration_index
from provena_like.server.registration.routes import router as registration_router
from provena_like.server.registry.events import ItemHooks, session_info
from provena_like.server.search import index as search_index
from provena_like.server.search.routes import router as search_router
from provena_like.server.settings import ServerSettings
from provena_like.server.startup import startup_lock
from provena_like.server.transfer import index as transfer_index
from provena_like.server.transfer.errors import install_type_zero, render_refusal
from provena_like.server.transfer.executor import TaskExecutor
from provena_like.server.transfer.routes import router as transfer_router
from provena_like.server.transfer.task_routes import router as task_router
from provena_like.server.transfer.watch import TaskWatch, watch_info

log = logging.getLogger(__name__)

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """The methods the app routes for the path of ``scope`` (for a 405's ``Allow``).

    Starlette answers a 405 with the methods of the first route whose path matches; a path
    served by several routes (``GET`` and ``POST /items``) needs all of them.
    """
    allowed = []
    for method in _METHODS:
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in app.router.routes):
            allowed.append(method)
    return allowed


async def _method_not_allowed(request: Request, _exc: Exception) -> Response:
    allowed = allowed_methods(request.app, request.scope)
    message = f"{request.method} is not allowed here; use {', '.join(allowed) or 'nothing'}."
    return error_response(405, "method_not_allowed", message, headers={"Allow": ", ".join(allowed)})


PUBLIC_OPERATIONS = frozenset(
    {
        ("get", "/healthz"),
        ("get", "/auth/.well-known/openid-configuration"),
        ("get", "/auth/jwks"),
        ("get", "/auth/issuers"),
        ("post", "/auth/token"),
        ("post", "/auth/revoke"),
        ("post", "/auth/device_authorization"),
        ("get", "/auth/device"),
        ("post", "/auth/device"),
    }
)
"""The operations that take no bearer token; the OpenAPI document marks every other one as
needing one (and tests/security/test_openapi_contract.py checks that each refuses without)."""


def _document_security(app: FastAPI) -> None:
    """Declare the bearer scheme and which operations need it in the OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        built = app.openapi_schema is not None
        schema = build()
        if not built:
            components = schema.setdefault("components", {})
            components["securitySchemes"] = {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "an access token of this server's auth service",
                }
            }
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    if (method, path) not in PUBLIC_OPERATIONS:
                        operation["security"] = [{"bearer": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: ServerSettings) -> FastAPI:
    """Build the reference server app for ``settings``.

    Example:
        ```python
        app = create_app(ServerSettings(data_dir=Path("./data")))
        uvicorn.run(app, host="127.0.0.1", port=8000)
        ```
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        current: ServerSettings = app.state.settings
        await anyio.to_thread.run_sync(
            secure_data_dir, current.data_dir, current.resolved_database_url
        )
        engine = create_engine(current.resolved_database_url)
        app.state.engine = engine
        app.state.sessions = create_sessionmaker(
            engine, info={**session_info(app.state.item_hooks), **watch_info(app.state.task_watch)}
        )
        app.state.object_store = None
        app.state.upload_verification = None
        app.state.data_freeze = None
        try:
            async with AsyncExitStack() as stack:
                if current.s3 is not None:
                    store = await stack.enter_async_context(open_object_store(current.s3))
                    app.state.object_store = store
                    checks = await upload_verification(store, current.s3)
                    app.state.upload_verification = checks
                    log.info("%s", checks.describe())
                async with startup_lock(current.data_dir):  # one worker at a time
                    await upgrade_schema(engine)
                    if current.s3 is not None and current.s3.freeze_writes:
                        freeze = DataFreeze.for_store(
                            app.state.object_store, app.state.sessions, current.data_dir
                        )
                        app.state.data_freeze = freeze
                        await freeze.settle(force=True)  # whatever a crash left: rebuild it
                    await auth.setup(app)
                stack.push_async_callback(app.state.authenticator.aclose)
                runner: JobRunner = app.state.job_runner
                await stack.enter_async_context(runner.running(app.state.sessions))
                if current.gc_freeze:
                    # start-up's objects (models, routes, mappers, schemas) live as long as
                    # the process: out of the collector's sight, a full collection during a
                    # big request walks only what requests built (measured: 0.3-1.0 s each
                    # on a busy machine before, 0.01-0.1 s after)
                    gc.freeze()
                yield
        finally:
            app.state.data_freeze = None
            app.state.upload_verification = None
            app.state.object_store = None
            await engine.dispose()

    app = FastAPI(
        title="provena_like reference server",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        dependencies=[Depends(refuse_repeated_scalars)],  # ?name=a&name=b is a 422
    )
    app.state.settings = settings
    app.state.notifier = notifier_from_settings(settings)
    app.state.job_runner = JobRunner(
        workers=settings.job_workers,
        lease_seconds=settings.job_lease_seconds,
        poll_seconds=settings.job_poll_seconds,
    )
    TaskExecutor(app).register(app.state.job_runner)  # transfer and delete tasks
    app.state.task_watch = TaskWatch()  # wakes held polls of a task when it changes
    app.state.crawl_polls = PollCap()  # counts held polls of crawl jobs
    CrawlJobs(app).register(app.state.job_runner)  # server-side crawls
    item_hooks = ItemHooks()
    search_index.subscribe(item_hooks)  # the index follows every write of an item
    registration_index.subscribe(item_hooks)  # unique names and session numbers too
    transfer_index.subscribe(item_hooks)  # a collection UUID for each dataset and collection
    app.state.item_hooks = item_hooks
    app.add_middleware(
        BodyLimitMiddleware,
        policy=body_policy(settings.max_body_bytes, settings.max_file_list_body_bytes),
        render=render_refusal,  # Type-Zero errors under /v0.10/
    )
    app.add_middleware(RequestIdMiddleware)  # outermost: every answer has a request id
    install_error_handlers(app)
    app.add_exception_handler(405, _method_not_allowed)
    install_type_zero(app)  # under /v0.10/: Globus "Type Zero" errors instead

    @app.get("/healthz", tags=["meta"])
    async def healthz(request: Request) -> dict[str, str]:
        """Liveness: the process answers; ``worker`` is its process id.

        With ``serve --workers N`` the requests are shared among N processes.

        With an object store, ``verify_uploads`` says how registered files are checked
        (``store``, ``sample`` or ``all``, see
        :mod:`~provena_like.server.datastore.verification`).
        """
        answer = {"status": "ok", "version": __version__, "worker": str(os.getpid())}
        checks: UploadVerification | None = getattr(request.app.state, "upload_verification", None)
        if checks is not None:
            answer["verify_uploads"] = checks.mode
        return answer

    app.include_router(auth.router, prefix="/auth")
    app.include_router(registry.router, prefix="/registry")
    app.include_router(registration_router, prefix="/registry")
    app.include_router(archive_router, prefix="/registry")
    app.include_router(datastore.router, prefix="/datastore")
    app.include_router(review.router, prefix="/datastore")
    app.include_router(extracted_router, prefix="/datastore")
    app.include_router(search_router, prefix="/search")
    app.include_router(crawl_router)  # /crawl/jobs, server-side crawl jobs
    app.include_router(transfer_router)  # /v0.10/..., the Globus Transfer API's paths
    app.include_router(task_router)  # /v0.10/transfer, /v0.10/task/{id}, ...
    _document_security(app)
    return app
