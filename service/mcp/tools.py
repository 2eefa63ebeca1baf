"""Qiao as a Model Context Protocol server: tools a chat assistant calls to search releases,
answer a question, read documents and list releases, with exact offsets it can cite.

`create_mcp_server(host)` builds the server (the official `mcp` SDK's `MCPServer`) over a
`ToolHost`, which hands out the Retriever and runs blocking library calls off the event loop.
The tools are thin: each takes one view of the index (`Retriever.view()`) and asks the library.
`qiao mcp` serves them over stdio (`serve_stdio`), without the web stack; the HTTP app mounts
them at exactly `/mcp` (`service.mcp.http`), behind the same read rule as the API.

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
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from index import (
    LANGS,
    Answer,
    DocumentWindow,
    IndexView,
    Lang,
    LanguageModel,
    QiaoError,
    Release,
    Retriever,
    answer_question,
    display_text,
)
from service.answer_schemas import AnswerResponse
from service.schemas import LookupResponse, SearchResult

T = TypeVar("T")

MCP_PATH = "/mcp"
SEARCH_K_MAX = 20  # a model reads every result: more would crowd its context
RELEASES_MAX = 100

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

INSTRUCTIONS = """\
Qiao searches government press releases that are published in English and in Chinese. Use \
search_releases to find passages answering a question, answer_question for a short answer \
quoting the releases, get_document to read more around a passage, lookup_translation for the \
published translation of a sentence, and list_releases to see which releases exist. Cite \
what you use with the doc_id and the start/end offsets the tools return: they are exact \
positions in the document's text."""


class ToolHost(Protocol):
    """Where the tools get their Retriever and how they run blocking library calls."""

    def retriever(self) -> Retriever:
        """The Retriever, or raise QiaoError saying why there is none yet."""
        ...

    def language_model(self) -> LanguageModel | None:
        """The LLM that writes answers, or None for extractive answers."""
        ...

    def run(self, work: Callable[[], T]) -> Awaitable[T]:
        """Run `work` in a worker thread."""
        ...


class LocalHost:
    """A ToolHost over an opened Retriever (the stdio server)."""

    def __init__(self, retriever: Retriever, llm: LanguageModel | None = None) -> None:
        self._retriever = retriever
        self._llm = llm

    def retriever(self) -> Retriever:
        return self._retriever

    def language_model(self) -> LanguageModel | None:
        return self._llm

    def run(self, work: Callable[[], T]) -> Awaitable[T]:
        return anyio.to_thread.run_sync(work)


# -- structured results ------------------------------------------------------------------------


class SearchOutput(BaseModel):
    query: str
    query_lang: Lang
    answerable: bool | None = Field(
        default=None, description="Whether the top result answers the query; when false the "
        "results are only weak matches: say the releases do not answer it.")
    results: list[SearchResult] = Field(
        description="Best first. start/end index the text of document doc_id; `answer` is the "
        "sentence that best answers the query; `counterpart` the same content in the other "
        "language version."
    )


class WindowOutput(BaseModel):
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

    @classmethod
    def of(cls, window: DocumentWindow) -> WindowOutput:
        doc = window.document
        return cls(doc_id=doc.doc_id, release_id=doc.release_id, lang=doc.lang, title=doc.title,
                   date=doc.date, url=doc.url, length=len(doc.text), start=window.start,
                   end=window.end, text=window.text, complete=window.complete)


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

    @classmethod
    def of(cls, release: Release) -> ReleaseItem:
        return cls(
            release_id=release.release_id, date=release.date,
            versions=[ReleaseVersion(doc_id=d.doc_id, lang=d.lang, title=d.title, url=d.url,
                                     length=len(d.text)) for d in release.documents],
        )


class ReleaseList(BaseModel):
    total: int = Field(description="Releases matching; at most 100 are listed.")
    releases: list[ReleaseItem]


# -- tool logic (plain functions of a view) -----------------------------------------------------


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


def search_output(view: IndexView, query: str, k: int, lang: Lang | None) -> SearchOutput:
    found = view.search(query, k, lang)
    return SearchOutput(
        query=query, query_lang=found.query_lang, answerable=found.answerable,
        results=[SearchResult.of(rank, hit) for rank, hit in enumerate(found, start=1)],
    )


def search_text(output: SearchOutput) -> str:
    """The results as text a model can read and quote, one block per passage."""
    if not output.results:
        return f"No passages found for {output.query!r}."
    blocks: list[str] = []
    if output.answerable is False:
        blocks.append(f"No passage in the index answers {output.query!r}; the closest "
                      "passages follow, but they do not answer it.")
    for r in output.results:
        lines = [
            f"[{r.rank}] {r.title} — {r.date or 'no date'}, {r.lang}" + (f", {r.url}" if r.url
                                                                         else ""),
            f"doc_id={r.doc_id} start={r.start} end={r.end}"
            + (f" page={r.page}" if r.page is not None else ""),
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


def answer_text(answer: Answer) -> str:
    """The answer, then each citation's exact place, as text a model can quote."""
    composed = answer.composed
    if not answer.answerable or not composed.text:
        return f"No passage in the index answers {answer.question!r}."
    lines = [composed.text, ""]
    lines += [f"[{c.n}] {c.title} — doc_id={c.doc_id} start={c.start} end={c.end}"
              + (f" page={c.page}" if c.page is not None else "")
              + f": {display_text(c.text)}" for c in composed.citations]
    if answer.failure is not None:
        lines.append(f"(The LLM failed, so this answer quotes the passages: {answer.failure})")
    return "\n".join(lines)


def lookup_text(output: LookupResponse) -> str:
    """The translation found, where it is, and how sure, as text a model can quote."""
    if not output.found or output.translation is None:
        return f"The index holds nothing in {output.lang} to look {output.text!r} up in."
    t = output.translation
    lines = []
    if output.method == "alignment" and output.source is not None:
        s = output.source
        lines.append(f"Found in {output.text_lang}: {s.title} (doc_id={s.doc_id} "
                     f"start={s.start} end={s.end}): {display_text(s.text)}")
        lines.append(f"Its published translation ({output.lang}, confidence "
                     f"{output.confidence:.2f}): {t.title} (doc_id={t.doc_id} start={t.start} "
                     f"end={t.end}): {display_text(t.text)}")
    else:
        lines.append(f"The text was not found in the {output.text_lang} versions, so there is "
                     "no published translation of it; the closest sentence in "
                     f"{output.lang} (confidence {output.confidence:.2f} that it translates "
                     f"the text): {t.title} (doc_id={t.doc_id} start={t.start} end={t.end}): "
                     f"{display_text(t.text)}")
    return "\n".join(lines)


def document_window(view: IndexView, doc_id: str, start: int | None,
                    end: int | None) -> WindowOutput:
    """The document, or a window around [start, end) (see `IndexView.window`)."""
    try:
        window = view.window(doc_id, start, end)
    except QiaoError as exc:
        raise ToolError(str(exc)) from None
    if window is None:
        raise ToolError(f"no document {doc_id!r}: take doc_id from search_releases or "
                        "list_releases")
    return WindowOutput.of(window)


def window_text(window: WindowOutput) -> str:
    where = ("the whole document" if window.complete
             else f"characters {window.start}–{window.end} of {window.length}")
    return (f"{window.title} ({window.doc_id}, {window.lang}, {window.date or 'no date'}): "
            f"{where}; offsets below start at {window.start}.\n\n{window.text}")


def release_list(
    view: IndexView, date_from: dt.date | None, date_to: dt.date | None, query: str | None
) -> ReleaseList:
    """Releases with their language versions, newest first; with `query`, most relevant first."""
    ids = view.release_ids(date_from, date_to, query)
    shown = [view.release(r) for r in ids[:RELEASES_MAX]]
    return ReleaseList(total=len(ids), releases=[ReleaseItem.of(r) for r in shown if r])


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


async def _call(host: ToolHost, work: Callable[[IndexView], T]) -> T:
    """Run `work` on a view of the index in a worker thread; library errors become one-line
    tool errors."""
    try:
        view = host.retriever().view()
        return await host.run(lambda: work(view))
    except QiaoError as exc:
        raise ToolError(str(exc)) from None


def _qiao_version() -> str:
    try:
        return version("qiao")
    except PackageNotFoundError:
        return "0+unknown"


_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                             open_world_hint=False)


def create_mcp_server(host: ToolHost) -> MCPServer[Any]:
    """The MCP server with the five read-only tools over `host`."""
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

    async def answer_question_tool(
        question: Annotated[str, Field(description="The question, in English or Chinese.")],
        lang: Annotated[str | None, Field(
            description="'en' or 'zh': the language of the answer; null answers in the "
            "question's language.")] = None,
        k: Annotated[int, Field(description=f"Passages to answer from (1–{SEARCH_K_MAX}).",
                                json_schema_extra={"minimum": 1, "maximum": SEARCH_K_MAX})] = 5,
    ) -> Annotated[CallToolResult, AnswerResponse]:
        """Answer a question from the press releases, quoting them with [n] citations.

        Each citation gives the doc_id and exact start/end offsets of the quoted text. Without
        an LLM configured the answer quotes the sentences that answer the question best.
        """
        if not question.strip():
            raise ToolError("question is empty: pass a question")
        if not 1 <= k <= SEARCH_K_MAX:
            raise ToolError(f"k must be between 1 and {SEARCH_K_MAX}, got {k}")
        wanted = _lang_arg(lang)
        llm = host.language_model()
        answer = await _call(host, lambda v: answer_question(v, question, lang=wanted, k=k,
                                                             llm=llm))
        output = AnswerResponse.of(question, answer.composed, answer.mode, answer.model,
                                   answerable=answer.answerable,
                                   confidence=answer.confidence, reason=answer.no_answer)
        return _result(answer_text(answer), output)

    async def get_document(
        doc_id: Annotated[str, Field(description="A doc_id from search_releases or "
                                     "list_releases, e.g. 'qingpu-briefing-2023-09-05.en'.")],
        start: Annotated[int | None, Field(description="Document offset where the span of "
                                           "interest starts (from search_releases).")] = None,
        end: Annotated[int | None, Field(description="Document offset where the span of "
                                         "interest ends.")] = None,
    ) -> Annotated[CallToolResult, WindowOutput]:
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

    server.add_tool(search_releases, title="Search releases", annotations=_READ_ONLY)
    server.add_tool(answer_question_tool, name="answer_question", title="Answer a question",
                    annotations=_READ_ONLY)
    async def lookup_translation(
        text: Annotated[str, Field(description="A sentence or a passage from a release, in "
                                   "English or Chinese.")],
        lang: Annotated[str | None, Field(
            description="'en' or 'zh': the language of the translation wanted; null = the "
            "other language than the text's.")] = None,
    ) -> Annotated[CallToolResult, LookupResponse]:
        """Find the published translation of a sentence or passage in the other language
        version of its release.

        Returns where the text was found in its own language and the aligned sentences of the
        other version (method 'alignment'), with doc_ids, exact start/end offsets and a
        confidence; when the text is not in the archive, the closest sentence of a
        cross-lingual search (method 'search'), which is not a published translation of it.
        """
        if not text.strip():
            raise ToolError("text is empty: pass a sentence or a passage")
        wanted = _lang_arg(lang)
        output = await _call(host, lambda v: LookupResponse.of(v, text, wanted))
        return _result(lookup_text(output), output)

    server.add_tool(get_document, title="Read a document", annotations=_READ_ONLY)
    server.add_tool(lookup_translation, title="Look up a translation", annotations=_READ_ONLY)
    server.add_tool(list_releases, title="List releases", annotations=_READ_ONLY)
    return server


# -- transports --------------------------------------------------------------------------------


def serve_stdio(retriever: Retriever, llm: LanguageModel | None = None) -> None:
    """Serve the tools over stdin/stdout until the client closes the connection."""
    create_mcp_server(LocalHost(retriever, llm)).run("stdio")
