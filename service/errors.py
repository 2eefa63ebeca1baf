"""The one place that turns errors into HTTP responses, all shaped `{"error": {"code", "message"}}`.

Domain errors (`index.errors`), request-validation errors, routing errors (404/405) and the
service's own `ApiError` all end here. Unexpected exceptions become a 500 whose message says to
look at the server log; the traceback goes to the log, never to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from index import (
    BackendUnavailable,
    DataDirError,
    DocumentError,
    EmptyInput,
    IndexMismatch,
    ModelError,
    QiaoError,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the service answers with `status`, a stable `code` and a one-line `message`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


BACKEND_RETRY_AFTER = "5"  # seconds

# Most specific first: the first matching class decides.
_DOMAIN: tuple[tuple[type[QiaoError], int, str], ...] = (
    (EmptyInput, 400, "empty_input"),
    (DocumentError, 422, "invalid_document"),
    (IndexMismatch, 409, "index_mismatch"),
    (DataDirError, 503, "index_unavailable"),
    (BackendUnavailable, 503, "backend_unavailable"),
    (ModelError, 503, "model_unavailable"),
    (QiaoError, 400, "bad_request"),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "not_ready",
}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def api_error_of(exc: QiaoError) -> ApiError:
    """The HTTP form of a library error."""
    for cls, status, code in _DOMAIN:
        if isinstance(exc, cls):
            # A backend that is down or busy may be back soon: say when to retry.
            headers = {"Retry-After": BACKEND_RETRY_AFTER} if cls is BackendUnavailable else None
            return ApiError(status, code, str(exc), headers)
    raise AssertionError("unreachable: QiaoError is the last entry")


def validation_message(errors: Sequence[Any]) -> str:
    """FastAPI/pydantic error list → one line: `body.k: Input should be ≤ 100; query.q: …`."""
    parts: list[str] = []
    for error in errors:
        loc = ".".join(str(part) for part in error.get("loc", ()))
        msg = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        if error.get("type") == "json_invalid":  # loc is ("body", character position)
            detail = (error.get("ctx") or {}).get("error", "")
            loc, msg = "body", f"not valid JSON ({detail} at character {error['loc'][-1]})"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _on_qiao_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QiaoError)
    error = api_error_of(exc)
    if error.status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
    return error_response(error.status, error.code, error.message, error.headers)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "invalid_json", validation_message(errors))
    content_type = request.headers.get("content-type", "")
    if any(tuple(e.get("loc", ())) == ("body",) for e in errors) and not (
        "json" in content_type or content_type.startswith("multipart/")
    ):
        # FastAPI only parses JSON sent as JSON; `curl -d` defaults to a form content type.
        return error_response(
            415, "unsupported_media_type",
            f"the body was sent as {content_type or 'no content type'}: send JSON with the "
            "header 'Content-Type: application/json'",
        )
    return error_response(422, "invalid_request", validation_message(errors))


# FastAPI's detail when a body is not UTF-8 JSON or not a readable form: too vague to act on.
_UNREADABLE_BODY = "There was an error parsing the body"


def _unreadable_body(request: Request) -> JSONResponse:
    content_type = request.headers.get("content-type", "")
    if "json" in content_type:
        return error_response(400, "invalid_json",
                              "the body is not valid JSON in UTF-8: encode the request as UTF-8")
    return error_response(
        400, "bad_request",
        f"the body could not be read as {content_type or 'no content type'}: send JSON with "
        "'Content-Type: application/json', or files as multipart/form-data",
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNREADABLE_BODY:
        return _unreadable_body(request)
    code = _HTTP_CODES.get(exc.status_code, "error")
    # The path as sent (still percent-encoded), so a message stays on one line.
    path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"no such endpoint: {request.method} {path}; see /docs"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {path}; see /docs"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal error: the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error of `app` to the shapes above."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(QiaoError, _on_qiao_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
