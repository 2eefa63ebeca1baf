"""Qiao as a Model Context Protocol server: tools a chat assistant calls to search releases,
read documents and list releases, with exact offsets it can cite.

`create_mcp_server(host)` builds the server (the official `mcp` SDK's `MCPServer`) over a
`ToolHost`, which hands out the Retriever and runs blocking library calls off the event loop.
`qiao mcp` serves it over stdio (`serve_stdio`); the HTTP app mounts it at exactly `/mcp` over
streamable HTTP (`mount_mcp`), behind the same read rule as the API.

Every offset a tool returns is a code-point offset into the document's text:
`get_document(doc_id).text[start:end]` is the span's `text`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Protocol, TypeVar

import anyio.to_thread
from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from index.compose import display_text
from index.errors import QiaoError
from index.ingest.read import detect_lang
from index.records import LANGS, Document, Lang
from index.retriever import MAX_K, Retriever
from index.search.rank import Filters
from service.deps import require_reader
from service.errors import ApiError, error_response
from service.schemas import SearchResult
from service.settings import ServiceSettings
from service.state import ServiceState

T = TypeVar("T")

MCP_PATH = "/mcp"
SEARCH_K_MAX = 20  # a model reads every result: more would crowd its context
WINDOW_CONTEXT_CHARS = 1500  # text shown before and after a requested span
DOCUMENT_MAX_CHARS = 20_000  # a whole document longer than this comes in windows
RELEASES_MAX = 100

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

INSTRUCTIONS = """\
Qiao searches government press releases that are published in English and in Chinese. Use \
search_releases to find passages answering a question, get_document to read more around a \
passage, and list_releases to see which releases exist. Cite what you use with the doc_id and \
the start/end offsets the tools return: they are exact positions in the document's text."""


class ToolHost(Protocol):
    """Where the tools get their Retriever and how they run blocking library calls."""

    def retriever(self) -> Retriever:
        """The Retriever, or raise QiaoError/ApiError saying why there is none yet."""
        ...

    def run(self, work: Callable[[], T]) -> Awaitable[T]:
        """Run `work` in a worker thread."""
        ...


class LocalHost:
    """A ToolHost over an opened Retriever (the stdio server)."""

    def __init__(self, retriever: Retriever) -> None:
        self._retriever = retriever

    def retriever(self) -> Retriever:
        return self._retriever

    def run(self, work: Callable[[], T]) -> Awaitable[T]:
        return anyio.to_thread.run_sync(work)


class StateHost:
    """A ToolHost over the HTTP app's state: the background-loaded Retriever, its thread pool."""

    def __init__(self, state: ServiceState) -> None:
        self._state = state

    def retriever(self) -> Retriever:
        return self._state.ready_retriever()

    def run(self, work: Callable[[], T]) -> Awaitable[T]:
        return self._state.read(work)


# -- structured results ------------------------------------------------------------------------


class SearchOutput(BaseModel):
    query: str
    query_lang: Lang
    results: list[SearchResult] = Field(
        description="Best first. start/end index the text of document doc_id; `answer` is the "
        "sentence that best answers the query; `counterpart` the same content in the other "
        "language version."
    )


class DocumentWindow(BaseModel):
    doc_id: str
    release_id: str
    lang: Lang
    title: str
    date: str | None
    url: str | None
    length: int = Field(description="Length of the whole document text in characters.")
    start: int = Field(description="Where `text` starts in the document.")
    end: int = Field(description="Where `text` ends in the document.")
    text: str = Field(description="document.text[start:end]")
    complete: bool = Field(description="True when `text` is the whole document.")


class ReleaseVersion(BaseModel):
    doc_id: str
    lang: Lang
    title: str
    url: str | None
    length: int


class ReleaseItem(BaseModel):
    release_id: str
    date: str | None
    versions: list[ReleaseVersion]


class ReleaseList(BaseModel):
    total: int = Field(description="Releases matching; at most 100 are listed.")
    releases: list[ReleaseItem]


# -- tool logic (plain functions of a Retriever) -----------------------------------------------


def _lang_arg(lang: str | None) -> Lang | None:
    if lang is None or lang == "":
        return None
    for known in LANGS:
        if lang == known:
            return known
    raise ToolError(f"lang must be 'en', 'zh' or null, got {lang!r}")


def _date_arg(name: str, value: str | None) -> dt.date | None:
    if value is None or value == "":
        return None
    try:
        if _ISO_DATE.fullmatch(value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise ToolError(f"{name} must be a date written YYYY-MM-DD, like 2023-09-05; got {value!r}")


def search_output(retriever: Retriever, query: str, k: int, lang: Lang | None) -> SearchOutput:
    hits = retriever.search(query, k, lang)
    return SearchOutput(
        query=query, query_lang=detect_lang(query),
        results=[SearchResult.of(rank, hit) for rank, hit in enumerate(hits, start=1)],
    )


def search_text(output: SearchOutput) -> str:
    """The results as text a model can read and quote, one block per passage."""
    if not output.results:
        return f"No passages found for {output.query!r}."
    blocks: list[str] = []
    for r in output.results:
        lines = [
            f"[{r.rank}] {r.title} — {r.date or 'no date'}, {r.lang}" + (f", {r.url}" if r.url
                                                                         else ""),
            f"doc_id={r.doc_id} start={r.start} end={r.end}",
        ]
        if r.answer is not None:
            lines.append(f"Answer sentence (start={r.answer.start} end={r.answer.end}): "
                         f"{display_text(r.answer.text)}")
        lines.append(f"Passage: {display_text(r.text)}")
        cp = r.counterpart
        if cp is not None:
            lines.append(f"Counterpart ({cp.lang}, doc_id={cp.doc_id} start={cp.start} "
                         f"end={cp.end}): {display_text(cp.text)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def document_window(
    retriever: Retriever, doc_id: str, start: int | None, end: int | None
) -> DocumentWindow:
    """The document, or a window of WINDOW_CONTEXT_CHARS around [start, end) (document offsets).

    A window never passes DOCUMENT_MAX_CHARS: a longer document (or span) gives its beginning,
    with `complete` false, and the caller reads on by asking for a span further in.
    """
    doc = retriever.document(doc_id)
    if doc is None:
        raise ToolError(f"no document {doc_id!r}: take doc_id from search_releases or "
                        "list_releases")
    length = len(doc.text)
    if start is None and end is None:
        lo, hi = 0, min(length, DOCUMENT_MAX_CHARS)
    else:
        first = start if start is not None else end
        last = end if end is not None else start
        assert first is not None and last is not None
        if not 0 <= first <= last <= length:
            raise ToolError(f"start/end must satisfy 0 <= start <= end <= {length} (the length "
                            f"of {doc_id}); got start={start}, end={end}")
        lo = max(0, first - WINDOW_CONTEXT_CHARS)
        hi = min(length, last + WINDOW_CONTEXT_CHARS, lo + DOCUMENT_MAX_CHARS)
    return _window(doc, lo, hi)


def _window(doc: Document, lo: int, hi: int) -> DocumentWindow:
    return DocumentWindow(
        doc_id=doc.doc_id, release_id=doc.release_id, lang=doc.lang, title=doc.title,
        date=doc.date, url=doc.url, length=len(doc.text), start=lo, end=hi,
        text=doc.text[lo:hi], complete=lo == 0 and hi == len(doc.text),
    )


def window_text(window: DocumentWindow) -> str:
    where = ("the whole document" if window.complete
             else f"characters {window.start}–{window.end} of {window.length}")
    return (f"{window.title} ({window.doc_id}, {window.lang}, {window.date or 'no date'}): "
            f"{where}; offsets below start at {window.start}.\n\n{window.text}")


def release_list(
    retriever: Retriever, date_from: dt.date | None, date_to: dt.date | None, query: str | None
) -> ReleaseList:
    """Releases with their language versions, newest first; with `query`, most relevant first."""
    documents = retriever.documents()
    by_release: dict[str, list[Document]] = {}
    for doc in documents:
        by_release.setdefault(doc.release_id, []).append(doc)

    def in_range(date: str | None) -> bool:
        if date_from is None and date_to is None:
            return True
        if date is None or not _ISO_DATE.fullmatch(date):
            return False
        day = dt.date.fromisoformat(date)
        return (date_from is None or day >= date_from) and (date_to is None or day <= date_to)

    def release_date(release_id: str) -> str | None:
        return next((d.date for d in by_release[release_id] if d.date), None)

    if query:
        hits = retriever.search(query, MAX_K, None,
                                filters=Filters(date_from=date_from, date_to=date_to))
        order = list(dict.fromkeys(hit.release_id for hit in hits))
    else:
        order = sorted(by_release, key=lambda r: (release_date(r) or "", r), reverse=True)
    order = [r for r in order if r in by_release and in_range(release_date(r))]
    items = [
        ReleaseItem(
            release_id=release_id, date=release_date(release_id),
            versions=[ReleaseVersion(doc_id=d.doc_id, lang=d.lang, title=d.title, url=d.url,
                                     length=len(d.text))
                      for d in sorted(by_release[release_id], key=lambda d: d.lang)],
        )
        for release_id in order[:RELEASES_MAX]
    ]
    return ReleaseList(total=len(order), releases=items)


def releases_text(listing: ReleaseList) -> str:
    if not listing.releases:
        return "No releases match."
    lines = [f"{listing.total} releases" + (f" (first {len(listing.releases)} shown)"
                                            if listing.total > len(listing.releases) else "")]
    for item in listing.releases:
        versions = "; ".join(f"{v.lang}: {v.title} (doc_id={v.doc_id})" for v in item.versions)
        lines.append(f"- {item.release_id} ({item.date or 'no date'}): {versions}")
    return "\n".join(lines)


# -- the server ---------------------------------------------------------------------------------


def _result(text: str, structured: BaseModel) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=structured.model_dump(mode="json"))


async def _call(host: ToolHost, work: Callable[[Retriever], T]) -> T:
    """Run `work` with the Retriever in a worker thread; library and service errors become one-
    line tool errors."""
    try:
        retriever = host.retriever()
        return await host.run(lambda: work(retriever))
    except (QiaoError, ApiError) as exc:
        raise ToolError(str(exc)) from None


def _qiao_version() -> str:
    try:
        return version("qiao")
    except PackageNotFoundError:
        return "0+unknown"


_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                             open_world_hint=False)


def create_mcp_server(host: ToolHost) -> MCPServer[Any]:
    """The MCP server with the three read-only tools over `host`."""
    server: MCPServer[Any] = MCPServer("qiao", title="Qiao (桥) bilingual release search",
                                       instructions=INSTRUCTIONS, version=_qiao_version(),
                                       log_level="WARNING")

    async def search_releases(
        query: Annotated[str, Field(description="The question or keywords, in English or "
                                    "Chinese. Whole questions work best.")],
        k: Annotated[int, Field(description=f"How many passages to return (1–{SEARCH_K_MAX}).",
                                json_schema_extra={"minimum": 1, "maximum": SEARCH_K_MAX})] = 5,
        lang: Annotated[str | None, Field(
            description="'en' or 'zh' to get passages in that language only, e.g. the user's "
            "language when the question is in the other one; null for the best passages in "
            "any language (usually the question's language).")] = None,
    ) -> Annotated[CallToolResult, SearchOutput]:
        """Search the press releases for passages that answer a question.

        Each result has the release's title, date, language and URL, the passage text with its
        doc_id and start/end offsets, the single sentence that best answers the question, and
        the aligned passage of the other language version (counterpart). Quote passage text
        as given and cite it with doc_id and start/end: they are exact positions in the
        document. Call get_document with doc_id, start and end to read the surrounding text.
        """
        if not query.strip():
            raise ToolError("query is empty: pass a question or keywords")
        if not 1 <= k <= SEARCH_K_MAX:
            raise ToolError(f"k must be between 1 and {SEARCH_K_MAX}, got {k}")
        wanted = _lang_arg(lang)
        output = await _call(host, lambda r: search_output(r, query, k, wanted))
        return _result(search_text(output), output)

    async def get_document(
        doc_id: Annotated[str, Field(description="A doc_id from search_releases or "
                                     "list_releases, e.g. 'qingpu-briefing-2023-09-05.en'.")],
        start: Annotated[int | None, Field(description="Document offset where the span of "
                                           "interest starts (from search_releases).")] = None,
        end: Annotated[int | None, Field(description="Document offset where the span of "
                                         "interest ends.")] = None,
    ) -> Annotated[CallToolResult, DocumentWindow]:
        """Read a document: the whole text, or a window around the span [start, end).

        Use it to read more context around a passage found by search_releases. Without
        start/end you get the whole document (very long ones in parts). The window has its own
        start/end: they are offsets into the document, so text[i] of the window is character
        start + i of the document, and you can cite any part of it precisely.
        """
        window = await _call(host, lambda r: document_window(r, doc_id, start, end))
        return _result(window_text(window), window)

    async def list_releases(
        date_from: Annotated[str | None, Field(description="Only releases on or after this "
                                               "date, YYYY-MM-DD.")] = None,
        date_to: Annotated[str | None, Field(description="Only releases on or before this "
                                             "date, YYYY-MM-DD.")] = None,
        query: Annotated[str | None, Field(description="Optional topic: releases ranked by "
                                           "how well their text matches it.")] = None,
    ) -> Annotated[CallToolResult, ReleaseList]:
        """List the releases in the index with their language versions (doc_ids, titles).

        Newest first; with `query`, the releases whose passages match it best come first. Use
        it to see what is available for a period or topic before searching or reading.
        """
        first = _date_arg("date_from", date_from)
        last = _date_arg("date_to", date_to)
        if first and last and first > last:
            raise ToolError(f"date_from {date_from} is after date_to {date_to}")
        topic = query if query and query.strip() else None
        listing = await _call(host, lambda r: release_list(r, first, last, topic))
        return _result(releases_text(listing), listing)

    for tool, title in ((search_releases, "Search releases"), (get_document, "Read a document"),
                        (list_releases, "List releases")):
        server.add_tool(tool, title=title, annotations=_READ_ONLY)
    return server


# -- transports --------------------------------------------------------------------------------


def serve_stdio(retriever: Retriever) -> None:
    """Serve the tools over stdin/stdout until the client closes the connection."""
    create_mcp_server(LocalHost(retriever)).run("stdio")


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
