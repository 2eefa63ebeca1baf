"""Request and response bodies of the HTTP API, with their limits.

Offsets (`start`, `end`) are Python str (code point) offsets into the `text` of the document
named by `doc_id`, as returned by `GET /v1/documents/{doc_id}`: `text[start:end]` is the span.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from index import (
    Counterpart,
    Document,
    Hit,
    IndexSummary,
    IndexView,
    Lang,
    Mode,
    Passage,
    Span,
    markup_ranges,
)
from service.settings import K_MAX, LOOKUP_MAX_CHARS, QUERY_MAX_CHARS


class _Strict(BaseModel):
    # Unknown fields are typos the client wants to hear about, not silently drop.
    model_config = ConfigDict(extra="forbid")


# -- errors ------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_request"])
    message: str = Field(examples=["body.k: Input should be less than or equal to 100"])


class ErrorBody(BaseModel):
    """Every error response, whatever its status."""

    error: ErrorDetail


# -- search ------------------------------------------------------------------------------------


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date_only(value: Any) -> Any:
    # Pydantic would read "0" or 1700000000 as a Unix time; the API documents YYYY-MM-DD only.
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("a date must be written YYYY-MM-DD, like 2023-09-05")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_only)]


def _number_not_text(value: Any) -> Any:
    # JSON Schema's integer is a number (5 or 5.0), never "5" or true, which pydantic would take.
    if isinstance(value, str | bool):
        raise ValueError("must be a number, not a string or true/false")
    return value


JsonInt = Annotated[int, BeforeValidator(_number_not_text)]


class SearchRequest(_Strict):
    query: str = Field(
        min_length=1, max_length=QUERY_MAX_CHARS, examples=["Who chairs the district committee?"]
    )
    k: JsonInt = Field(default=10, ge=1, le=K_MAX, description="Number of results.")
    lang: Lang | None = Field(default=None, description="Only this language; null = either.")
    mode: Mode = "hybrid"
    release_id: str | None = None
    date_from: IsoDate | None = Field(default=None, description="Inclusive.")
    date_to: IsoDate | None = Field(default=None, description="Inclusive.")
    counterpart: bool = Field(
        default=True, strict=True,  # JSON true/false only, not 0 or "no"
        description="Attach the aligned passage of the other language version.",
    )

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the query is blank: type some words to search for")
        if any((ch < " " and ch not in "\t\n\r") or ch == "\x7f" for ch in value):
            raise ValueError("the query contains control characters (such as NUL): remove them")
        return value

    @model_validator(mode="after")
    def _dates_in_order(self) -> Self:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        return self


Markup = list[tuple[int, int]]
MARKUP_DESCRIPTION = (
    "Document-offset ranges [start, end) of Markdown markup inside the text (heading, quote "
    "and list markers, emphasis, backticks, link targets): a reader hides them; `text` and "
    "every offset stay exact.")


def markup_in(text: str, offset: int) -> Markup:
    """The markup ranges of `text`, which starts at document offset `offset`."""
    return [(offset + a, offset + b) for a, b in markup_ranges(text)]


class AnswerSentenceOut(BaseModel):
    start: int
    end: int
    text: str

    @classmethod
    def of(cls, span: Span | None) -> AnswerSentenceOut | None:
        return None if span is None else cls(start=span.start, end=span.end, text=span.text)


class CounterpartOut(BaseModel):
    doc_id: str
    lang: Lang
    title: str = Field(description="The title of the counterpart's own document.")
    url: str | None
    start: int
    end: int
    text: str = Field(description="The translation of the passage's sentences in the other "
                      "version: document.text[start:end].")
    score: float = Field(description="The alignment's cosine (similar topics score high too: "
                         "use `confidence` to judge).")
    confidence: float | None = Field(
        default=None, description="How much of the passage the span is the translation of "
        "(0–1, each sentence weighted by its length and its link's calibrated confidence); "
        "low when the versions are not parallel there. null for indexes aligned by passage "
        "only.")
    answer: AnswerSentenceOut | None = Field(
        default=None, description="The translation of the hit's answer sentence, when it is "
        "confidently aligned.")
    page: int | None = Field(
        default=None, description="The 1-based page of a paginated source (PDF) where the "
        "span starts; null for other documents.")
    markup: Markup = Field(default_factory=list, description=MARKUP_DESCRIPTION)

    @classmethod
    def of(cls, cp: Counterpart | None) -> CounterpartOut | None:
        if cp is None:
            return None
        return cls(doc_id=cp.doc_id, lang=cp.lang, title=cp.title, url=cp.url, start=cp.start,
                   end=cp.end, text=cp.text, score=cp.score, confidence=cp.confidence,
                   answer=AnswerSentenceOut.of(cp.answer), page=cp.page,
                   markup=markup_in(cp.text, cp.start))


class SearchResult(BaseModel):
    rank: int
    score: float
    passage_id: str
    doc_id: str
    release_id: str
    lang: Lang
    title: str
    date: str | None
    url: str | None
    start: int
    end: int
    text: str = Field(description="The passage: document.text[start:end].")
    answer: AnswerSentenceOut | None = Field(
        description="The sentence that best answers the query."
    )
    counterpart: CounterpartOut | None
    page: int | None = Field(
        default=None, description="The 1-based page of a paginated source (PDF) where the "
        "passage starts; null for other documents.")
    markup: Markup = Field(default_factory=list, description=MARKUP_DESCRIPTION)

    @classmethod
    def of(cls, rank: int, hit: Hit) -> SearchResult:
        return cls(
            rank=rank, score=hit.score, passage_id=hit.passage_id, doc_id=hit.doc_id,
            release_id=hit.release_id, lang=hit.lang, title=hit.title, date=hit.date,
            url=hit.url, start=hit.start, end=hit.end, text=hit.text,
            answer=AnswerSentenceOut.of(hit.answer), counterpart=CounterpartOut.of(hit.counterpart),
            page=hit.page, markup=markup_in(hit.text, hit.start),
        )


class SearchResponse(BaseModel):
    query: str
    query_lang: Lang
    took_ms: float
    answerable: bool | None = Field(
        default=None, description="Whether the top result answers the query (calibrated on "
        "answerable and unanswerable questions); results are then weak matches. null in "
        "lexical mode, which does not judge.")
    confidence: float | None = Field(
        default=None, description="The probability behind `answerable` (0–1).")
    results: list[SearchResult]


# -- translation lookup ------------------------------------------------------------------------


class LookupRequest(_Strict):
    text: str = Field(
        min_length=1, max_length=LOOKUP_MAX_CHARS,
        examples=["Xu Jian, Secretary of the CPC Qingpu District Committee, introduced the "
                  "details of Qingpu District’s efforts."],
        description="A sentence or a passage, in either language.")
    lang: Lang | None = Field(
        default=None, description="The language of the translation wanted; null = the other "
        "language than the text's.")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the text is blank: give a sentence or a passage to look up")
        return value


class SpanOut(BaseModel):
    doc_id: str
    title: str
    url: str | None
    start: int
    end: int
    text: str = Field(description="document.text[start:end].")

    @classmethod
    def of(cls, view: IndexView, doc_id: str | None, span: Span | None) -> SpanOut | None:
        doc = view.document(doc_id) if doc_id is not None else None
        if doc is None or span is None:
            return None
        return cls(doc_id=doc.doc_id, title=doc.title, url=doc.url, start=span.start,
                   end=span.end, text=span.text)


class LookupResponse(BaseModel):
    text: str
    text_lang: Lang
    lang: Lang = Field(description="The language of the translation.")
    found: bool = Field(description="Whether a translation was found (false: the archive "
                        "holds nothing in `lang`).")
    method: Literal["alignment", "search"] | None = Field(
        default=None, description="alignment: the text was found in its own language and its "
        "aligned sentences are its published translation; search: the text is not in the "
        "archive (or has no aligned partner), and `translation` is the closest sentence of a "
        "cross-lingual search.")
    confidence: float | None = Field(
        default=None, description="How likely `translation` is the published translation "
        "(0–1, calibrated on parallel news).")
    source: SpanOut | None = Field(
        default=None, description="Where the text was found in its own language (method "
        "alignment).")
    translation: SpanOut | None = None
    took_ms: float

    @classmethod
    def of(cls, view: IndexView, text: str, lang: Lang | None) -> LookupResponse:
        """Look `text` up in `view` (see `IndexView.lookup`)."""
        t0 = time.perf_counter()
        found = view.lookup(text, lang)
        text_lang = view.language_of(text)
        took_ms = round((time.perf_counter() - t0) * 1000, 2)
        if found is None:
            target: Lang = lang or ("zh" if text_lang == "en" else "en")
            return cls(text=text, text_lang=text_lang, lang=target, found=False, took_ms=took_ms)
        return cls(
            text=text, text_lang=text_lang, lang=found.lang, found=True, method=found.method,
            confidence=found.confidence,
            source=SpanOut.of(view, found.source_doc, found.source),
            translation=SpanOut.of(view, found.doc_id, found.translation), took_ms=took_ms,
        )


# -- documents ---------------------------------------------------------------------------------


class DocumentIn(_Strict):
    """One document, with the fields of a `qiao ingest` JSONL line. Values are checked like
    JSONL lines are (ids, `lang` "en"/"zh" or detected, ISO `date`, http(s) `url`)."""

    doc_id: str | None = Field(default=None, description='Default: "{release_id}.{lang}".')
    release_id: str
    lang: str | None = Field(default=None, description='"en" or "zh"; detected when absent.')
    title: str
    text: str = Field(description="Canonical text: every offset refers to it, exactly as given.")
    date: str | None = Field(default=None, examples=["2023-09-05"])
    url: str | None = None


class DocumentBatchIn(_Strict):
    documents: list[DocumentIn] = Field(min_length=1)


def _shape_of(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "documents" in value else "one"


DocumentsBody = Annotated[
    Annotated[DocumentIn, Tag("one")] | Annotated[DocumentBatchIn, Tag("batch")],
    Discriminator(_shape_of),
]


class Rejection(BaseModel):
    """A file, line or document that was not ingested, and why."""

    source: str = Field(examples=["documents[2]", "notes.en.txt", "batch.jsonl:7"])
    message: str


class WriteReport(BaseModel):
    added: list[str]
    replaced: list[str]
    unchanged: list[str]
    rejected: list[Rejection]
    passages: int = Field(description="Passages embedded by this request.")
    notes: list[Rejection] = Field(
        default_factory=list, description="Files read, with something worth knowing: a file "
        "decoded from GB18030/GBK, Big5 or UTF-16 (offsets index the decoded text).")


class JobOut(BaseModel):
    """An ingest job (`wait=false`): accepted once journaled, committed in the background."""

    job_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    status: Literal["queued", "done", "failed"] = Field(
        description="queued: accepted, not yet searchable; done: committed; failed: see error."
    )
    status_url: str = Field(description="Where to ask for the job's status.")
    accepted_at: dt.datetime
    finished_at: dt.datetime | None
    documents: list[str] = Field(description="doc_ids accepted for ingest.")
    rejected: list[Rejection] = Field(description="What the request held that was refused.")
    result: WriteReport | None = Field(description="What the commit did, once done.")
    error: str | None = Field(description="Why the job failed, if it did.")


class DeleteReport(BaseModel):
    deleted: list[str]


class DocumentSummary(BaseModel):
    doc_id: str
    release_id: str
    lang: Lang
    title: str
    date: str | None
    url: str | None
    chars: int = Field(description="Length of the document's text in code points.")

    @classmethod
    def of(cls, doc: Document) -> DocumentSummary:
        return cls(doc_id=doc.doc_id, release_id=doc.release_id, lang=doc.lang, title=doc.title,
                   date=doc.date, url=doc.url, chars=len(doc.text))


class PassageSpan(BaseModel):
    passage_id: str
    start: int
    end: int

    @classmethod
    def of(cls, passage: Passage) -> PassageSpan:
        return cls(passage_id=passage.passage_id, start=passage.start, end=passage.end)


class DocumentDetail(DocumentSummary):
    text: str
    passages: list[PassageSpan]
    pages: list[int] | None = Field(
        default=None, description="A paginated source (PDF): where each page after the first "
        "starts in `text` (page n + 2 starts at pages[n]); null for other documents.")
    markup: Markup = Field(default_factory=list, description=MARKUP_DESCRIPTION)


class DocumentPage(BaseModel):
    total: int = Field(description="Documents matching the filters.")
    offset: int
    limit: int
    documents: list[DocumentSummary]


class IndexSummaryOut(BaseModel):
    documents: int
    passages: int
    releases: int
    languages: dict[str, int] = Field(description="Documents per language.")
    date_from: str | None = Field(description="The earliest document date (YYYY-MM-DD).")
    date_to: str | None = Field(description="The latest document date.")
    newest: list[DocumentSummary] = Field(
        description="The newest documents (by date), for example searches; `chars` is 0.")

    @classmethod
    def of(cls, summary: IndexSummary) -> IndexSummaryOut:
        return cls(documents=summary.documents, passages=summary.passages,
                   releases=summary.releases, languages=summary.languages,
                   date_from=summary.date_from, date_to=summary.date_to,
                   newest=[DocumentSummary.of(d) for d in summary.newest])


class ReleaseOut(BaseModel):
    release_id: str
    documents: list[DocumentSummary] = Field(description="Its language versions.")


# -- health ------------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    model: str
    dim: int
    documents: int
    passages: int
    releases: int
    generation: str | None
