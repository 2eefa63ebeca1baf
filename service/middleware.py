"""ASGI middleware: the request-body limit, and one log line + metrics per request."""

from __future__ import annotations

import logging
import time

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_response
from service.metrics import Metrics

log = logging.getLogger("service.requests")


class _BodyTooLarge(Exception):
    """Raised from `receive` once the body passes the limit; never leaves the middleware."""


class BodyLimit:
    """Answer 413 when a request body is larger than `max_bytes`.

    A declared Content-Length over the limit is refused before the app runs; otherwise the
    streamed bytes are counted (chunked uploads have no Content-Length) and the app's own
    response, whatever it made of the cut-off body, is replaced by the 413. A compressed body
    (Content-Encoding other than identity) gets 415: nothing here decompresses, and the limit
    counts the bytes as sent, so a small gzip body must not be read as if it were the data.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return (f"the request body is larger than the limit of {self.max_bytes:,} bytes "
                "(QIAO_MAX_BODY_BYTES): send less per request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            refusal = (f"compressed request bodies (Content-Encoding: {encoding}) are not "
                       "accepted: send the body uncompressed")
            await error_response(415, "unsupported_media_type", refusal)(scope, receive, send)
            return
        message = self._message()
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(413, "payload_too_large", message)(scope, receive, send)
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return event

        async def guarded_send(event: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the app's answer to a truncated body; the 413 below replaces it
            if event["type"] == "http.response.start":
                started = True
            await send(event)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await error_response(413, "payload_too_large", message)(scope, receive, send)


class RequestObserver:
    """Log `method path status ms` at INFO and feed the request metrics.

    The query string is left out of the log line unless `log_queries`: it carries search text.
    Metrics use the matched route's template, or "unmatched" for unknown paths.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, log_queries: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.log_queries = log_queries

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500  # if the app raises before answering, ServerErrorMiddleware sends a 500

        async def observed_send(event: Message) -> None:
            nonlocal status
            if event["type"] == "http.response.start":
                status = int(event["status"])
            await send(event)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - t0
            route = scope.get("route")
            template = str(getattr(route, "path", "unmatched"))
            method = str(scope["method"])
            self.metrics.observe_request(method, template, status, seconds)
            path = str(scope["path"])
            query = scope.get("query_string", b"")
            if self.log_queries and query:
                path = f"{path}?{query.decode('latin-1')}"
            log.info(
                "%s %s %d %.1fms", method, path, status, seconds * 1000,
                extra={"method": method, "path": path, "route": template, "status": status,
                       "ms": round(seconds * 1000, 2)},
            )
