"""`create_app(settings)`: the FastAPI application over one data directory.

The app holds no retrieval logic: routes validate input, call the `Retriever` off the event
loop and shape its records into JSON. The model and index load once, in the background, when
the app starts (see `service.state`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from index import Embedder, Retriever
from service.errors import install_error_handlers
from service.mcp.http import mount_mcp
from service.metrics import Metrics
from service.middleware import BodyLimit, RequestObserver
from service.routes import answer, documents, health, lookup, search
from service.routes.page import mount_page
from service.schemas import ErrorBody
from service.settings import ServiceSettings, load_settings
from service.state import LoadErrorHook, ServiceState

log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Bad request (e.g. body is not JSON)."),
        (401, "A token is required."),
        (403, "The token is wrong, or writes are disabled."),
        (404, "Not found."),
        (413, "Body or batch too large."),
        (422, "Invalid request or document."),
        (503, "The model and index are still loading."),
    )
}


def _version() -> str:
    try:
        return version("qiao")
    except PackageNotFoundError:
        return "0+unknown"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServiceState = app.state.service
    state.start()
    # The MCP session manager's task group holds the /mcp sessions for the app's lifetime.
    async with app.state.mcp_sessions.run(), anyio.create_task_group() as tasks:
        tasks.start_soon(state.follow_commits)
        yield
        tasks.cancel_scope.cancel()
    await anyio.to_thread.run_sync(state.stop)


def create_app(
    settings: ServiceSettings | None = None,
    *,
    retriever: Retriever | None = None,
    embedder: Embedder | None = None,
    on_load_error: LoadErrorHook | None = None,
) -> FastAPI:
    """Build the app. `settings` default to the environment (`QIAO_*`, `.env`).

    Test seams: pass `retriever` (opened with an embedder) to serve it as is, ready at once;
    or `embedder` to use it instead of loading the configured model. `on_load_error` is called
    (from the loading thread) when the index or model cannot be loaded, e.g. to stop a server.
    """
    settings = settings or load_settings()
    state = ServiceState(settings, retriever=retriever, embedder=embedder,
                         on_load_error=on_load_error)
    metrics = Metrics(state.counts, lambda: state.writes.queued_documents)
    state.on_job_end = metrics.count_job
    # /docs from files shipped in the package: an intranet has no CDN. No /redoc: ReDoc's
    # bundle still fetches its logo from cdn.redoc.ly.
    app = FastAPIOffline(
        redoc_url=None,
        static_url="/docs-assets",
        title="Qiao",
        summary="Bilingual English/Chinese passage search with exact source spans.",
        version=_version(),
        lifespan=_lifespan,
        responses=_ERRORS,
    )
    app.state.settings = settings
    app.state.service = state
    app.state.metrics = metrics
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(search.router)
    app.include_router(lookup.router)
    app.include_router(documents.reads)
    app.include_router(documents.writes)
    app.include_router(answer.router)
    app.state.mcp_sessions = mount_mcp(app, settings, state)  # MCP over streamable HTTP at /mcp
    mount_page(app)  # the search page at / and its files under /static
    # Added last = outermost: CORS headers go on every answer, even a 413 or a 401.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestObserver, metrics=metrics, log_queries=settings.log_queries)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    if settings.api_token is None and not settings.loopback_only:
        log.warning("no QIAO_API_TOKEN and listening on %s: writes are refused", settings.host)
    return app
