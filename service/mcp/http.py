"""MCP over streamable HTTP: the tools of `service.mcp.tools` mounted at exactly `/mcp` on the
app, behind the API's read rule, using the app's loaded Retriever and search threads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import FastAPI
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from index import LanguageModel, QiaoError, Retriever
from service.deps import require_reader
from service.errors import ApiError, error_response
from service.llm import chat_model
from service.mcp.tools import MCP_PATH, create_mcp_server
from service.settings import ServiceSettings
from service.state import ServiceState

T = TypeVar("T")


class StateHost:
    """A ToolHost over the HTTP app's state: the background-loaded Retriever, its thread pool,
    and the configured LLM."""

    def __init__(self, state: ServiceState) -> None:
        self._state = state

    def retriever(self) -> Retriever:
        try:
            return self._state.ready_retriever()
        except ApiError as exc:  # not loaded yet, or failed to load: one line for the tool
            raise QiaoError(exc.message) from None

    def language_model(self) -> LanguageModel | None:
        return chat_model(self._state.settings)

    def run(self, work: Callable[[], T]) -> Awaitable[T]:
        return self._state.read(work)


class _ReadAccess:
    """The API's read rule in front of an ASGI app: a token when reads require one."""

    def __init__(self, app: ASGIApp, settings: ServiceSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            require_reader(Request(scope), self.settings)
        except ApiError as exc:
            await error_response(exc.status, exc.code, exc.message, exc.headers)(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)


def mount_mcp(app: FastAPI, settings: ServiceSettings, state: ServiceState) -> (
    StreamableHTTPSessionManager
):
    """Serve the MCP server at exactly `/mcp` (streamable HTTP) on `app`.

    Returns the session manager, whose `run()` the app's lifespan must enter.
    """
    server = create_mcp_server(StateHost(state))
    if settings.loopback_only:
        # Only local pages may call a loopback server: refuse other Host/Origin headers, which
        # is how a web page would reach it through DNS rebinding.
        security = TransportSecuritySettings(
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
    else:
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    # Builds the session manager; the Starlette app it returns is not used (we route ourselves).
    server.streamable_http_app(streamable_http_path=MCP_PATH, transport_security=security,
                               host=settings.host)
    manager = server.session_manager
    app.router.routes.append(
        Route(MCP_PATH, endpoint=_ReadAccess(manager.handle_request, settings),
              methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )
    return manager
