"""`POST /v1/search` (JSON body) and `GET /v1/search?q=…` (for links and curl): same answer."""

from __future__ import annotations

import logging
import time
from typing import Annotated
from urllib.parse import unquote_to_bytes

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError

from index import Filters, Lang, Mode, SearchResults
from service.deps import MetricsDep, RetrieverDep, SettingsDep, StateDep, require_reader
from service.errors import ApiError, validation_message
from service.schemas import IsoDate, SearchRequest, SearchResponse, SearchResult
from service.settings import K_MAX, QUERY_MAX_CHARS

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["search"], dependencies=[Depends(require_reader)])


async def _search(
    body: SearchRequest, settings: SettingsDep, state: StateDep, retriever: RetrieverDep,
    metrics: MetricsDep,
) -> SearchResponse:
    # The schema holds the API's ceilings; a deployment may set lower ones.
    if len(body.query) > settings.max_query_chars:
        raise ApiError(422, "invalid_request",
                       f"query: at most {settings.max_query_chars} characters on this server")
    if body.k > settings.max_k:
        raise ApiError(422, "invalid_request", f"k: at most {settings.max_k} on this server")
    if settings.log_queries:
        log.info("search %r", body.query, extra={"query": body.query, "mode": body.mode})
    filters = Filters(release_id=body.release_id, date_from=body.date_from, date_to=body.date_to)

    view = retriever.view()

    def run() -> tuple[SearchResults, float]:
        t0 = time.perf_counter()
        found = view.search(body.query, body.k, body.lang, body.mode, filters, body.counterpart)
        return found, time.perf_counter() - t0

    t0 = time.perf_counter()
    found, seconds = await state.read(run)
    took_ms = (time.perf_counter() - t0) * 1000
    metrics.search_seconds.labels(body.mode).observe(seconds)
    return SearchResponse(
        query=body.query,
        query_lang=found.query_lang,
        took_ms=round(took_ms, 2),
        answerable=found.answerable,
        confidence=found.confidence,
        results=[SearchResult.of(rank, hit) for rank, hit in enumerate(found, start=1)],
    )


@router.post("/search", response_model=SearchResponse)
async def search_post(
    body: SearchRequest, settings: SettingsDep, state: StateDep, retriever: RetrieverDep,
    metrics: MetricsDep,
) -> SearchResponse:
    """Passages answering `query`, best first, each with its exact span in its document, the
    answer sentence and the aligned passage of the other language version."""
    return await _search(body, settings, state, retriever, metrics)


def _check_utf8_query(request: Request) -> None:
    # Starlette decodes bad percent-escapes to U+FFFD; searching for those would answer a
    # question the client never asked.
    raw = request.scope.get("query_string", b"")
    try:
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "bad_request",
                       "the query string is not UTF-8 once URL-decoded: URL-encode the query "
                       "as UTF-8 (curl: --data-urlencode 'q=…')") from None


@router.get("/search", response_model=SearchResponse)
async def search_get(
    request: Request,
    settings: SettingsDep,
    state: StateDep,
    retriever: RetrieverDep,
    metrics: MetricsDep,
    q: Annotated[str, Query(min_length=1, max_length=QUERY_MAX_CHARS, description="The query.")],
    k: Annotated[int, Query(ge=1, le=K_MAX)] = 10,
    lang: Lang | None = None,
    mode: Mode = "hybrid",
    release_id: str | None = None,
    date_from: IsoDate | None = None,
    date_to: IsoDate | None = None,
    counterpart: bool = True,
) -> SearchResponse:
    """The same search as `POST /v1/search`, with `q` for the query."""
    _check_utf8_query(request)
    try:
        body = SearchRequest(query=q, k=k, lang=lang, mode=mode, release_id=release_id,
                             date_from=date_from, date_to=date_to, counterpart=counterpart)
    except ValidationError as exc:
        # Name the parameter the client sent: "q", not the body field "query".
        errors = [{**e, "loc": ("query", *("q" if p == "query" else p for p in e["loc"]))}
                  for e in exc.errors()]
        raise ApiError(422, "invalid_request", validation_message(errors)) from None
    return await _search(body, settings, state, retriever, metrics)
