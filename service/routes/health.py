"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.deps import MetricsDep, StateDep, require_reader
from service.schemas import ErrorBody, Health, Ready

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up and answering (the index may still be loading)."""
    return Health()


@router.get(
    "/readyz",
    response_model=Ready,
    responses={503: {"model": ErrorBody, "description": "Still loading, or loading failed."}},
)
async def readyz(state: StateDep) -> Ready:
    """200 once the model and the index are loaded, with the index size; 503 before."""
    retriever = state.ready_retriever()
    stats = retriever.stats()
    embedder = retriever.embedder
    return Ready(
        model=embedder.model_id, dim=embedder.dim, documents=stats["documents"],
        passages=stats["passages"], releases=stats["releases"], generation=retriever.generation,
    )


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(require_reader)],
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
async def metrics(metrics: MetricsDep) -> Response:
    """Request counts and latency histograms by route and status, search latency, index size,
    ingest counters, in the Prometheus text format."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
