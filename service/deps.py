"""Request dependencies: settings, the loaded Retriever, and the two access rules.

Writes need `Authorization: Bearer <QIAO_API_TOKEN>`; with no token configured they are
allowed only while the server listens on loopback, where nobody else can reach it. Reads are
open unless `QIAO_REQUIRE_TOKEN_FOR_READS` is set. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from pydantic import SecretStr

from index import Retriever
from service.errors import ApiError
from service.metrics import Metrics
from service.settings import ServiceSettings
from service.state import ServiceState


def get_settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_retriever(state: Annotated[ServiceState, Depends(get_state)]) -> Retriever:
    return state.ready_retriever()


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
StateDep = Annotated[ServiceState, Depends(get_state)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RetrieverDep = Annotated[Retriever, Depends(get_retriever)]


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _check_token(request: Request, expected: SecretStr) -> None:
    given = _bearer_token(request)
    if given is None:
        raise ApiError(
            401, "unauthorized",
            "this endpoint needs a token: send the header 'Authorization: Bearer <QIAO_API_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(given.encode("utf-8"), expected.get_secret_value().encode("utf-8")):
        raise ApiError(403, "forbidden", "the token is not valid for this server")


def require_writer(request: Request, settings: SettingsDep) -> None:
    """Allow a write (ingest, delete) or raise 401/403."""
    if settings.api_token is not None:
        _check_token(request, settings.api_token)
    elif not settings.loopback_only:
        raise ApiError(
            403, "writes_disabled",
            f"writes are disabled: the server listens on {settings.host} (not only loopback) "
            "and has no token; set QIAO_API_TOKEN and send 'Authorization: Bearer <token>'",
        )


def require_reader(request: Request, settings: SettingsDep) -> None:
    """Allow a read, or raise 401/403 when reads need the token too."""
    if settings.require_token_for_reads and settings.api_token is not None:
        _check_token(request, settings.api_token)
