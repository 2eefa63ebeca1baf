"""Request and response bodies of `POST /v1/answer`.

Offsets (`start`, `end`) are Python str (code point) offsets into the `text` of the document
named by `doc_id` (`GET /v1/documents/{doc_id}`): `text[start:end]` is the span's `text`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from index import Citation, ComposedAnswer, Lang, Source
from service.schemas import AnswerSentenceOut, ErrorDetail
from service.settings import QUERY_MAX_CHARS

# Passages put before an LLM: more make prompts long and answers slower, rarely better.
ANSWER_K_MAX = 20

AnswerMode = Literal["extractive", "generated"]


class AnswerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        min_length=1, max_length=QUERY_MAX_CHARS,
        examples=["Who is the Secretary of the CPC Qingpu District Committee?"],
    )
    lang: Lang | None = Field(
        default=None, description="Answer language; null = the question's language."
    )
    # Strict like /v1/search: the schema says integer/boolean, so "5" or 0 must not pass.
    k: int = Field(default=5, ge=1, le=ANSWER_K_MAX, strict=True,
                   description="Passages to answer from.")
    mode: AnswerMode | None = Field(
        default=None,
        description="null = generated when an LLM is configured, else extractive.",
    )
    stream: bool = Field(
        default=False, strict=True,
        description="Answer as server-sent events (text/event-stream): `sources`, then "
        "`delta` events with text, then `done` with the whole response (or `error`).",
    )

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the question is blank: type a question")
        return value


class CitationOut(BaseModel):
    n: int = Field(description="The number used as [n] in the answer.")
    doc_id: str
    title: str
    url: str | None
    start: int
    end: int
    text: str = Field(description="The cited span: the quoted sentence (extractive) or the "
                      "passage (generated).")
    page: int | None = Field(
        default=None, description="The 1-based page of a paginated source (PDF) where the "
        "passage starts; null for other documents.")

    @classmethod
    def of(cls, c: Citation) -> CitationOut:
        return cls(n=c.n, doc_id=c.doc_id, title=c.title, url=c.url, start=c.start, end=c.end,
                   text=c.text, page=c.page)


class PassageOut(BaseModel):
    n: int
    doc_id: str
    release_id: str
    lang: Lang
    title: str
    date: str | None
    url: str | None
    start: int
    end: int
    text: str
    score: float
    answer: AnswerSentenceOut | None = Field(description="The passage's best answer sentence.")
    via_counterpart: bool = Field(
        description="The search found the other language version; this is its translation."
    )
    page: int | None = Field(
        default=None, description="The 1-based page of a paginated source (PDF) where the "
        "passage starts; null for other documents.")

    @classmethod
    def of(cls, s: Source) -> PassageOut:
        return cls(n=s.n, doc_id=s.doc_id, release_id=s.release_id, lang=s.lang, title=s.title,
                   date=s.date, url=s.url, start=s.start, end=s.end, text=s.text, score=s.score,
                   answer=AnswerSentenceOut.of(s.answer), via_counterpart=s.via_counterpart,
                   page=s.page)


class AnswerResponse(BaseModel):
    question: str
    answer: str | None = Field(
        description="The answer; [n] refers to citations/passages number n. null when no "
        "passage answers the question (see `reason`); no LLM is asked then.")
    reason: str | None = Field(
        default=None, description="Why there is no answer, in `lang`; null with an answer.")
    answerable: bool = Field(
        default=True, description="Whether the top passage answers the question.")
    confidence: float | None = Field(
        default=None, description="The probability behind `answerable` (0–1).")
    lang: Lang
    mode: AnswerMode
    citations: list[CitationOut] = Field(description="The passages the answer cites, each once.")
    passages: list[PassageOut] = Field(
        description="All passages the answer was made from (weak matches when there is no "
        "answer).")
    model: str | None = Field(default=None, description="The LLM, in generated mode.")

    @classmethod
    def of(cls, question: str, composed: ComposedAnswer, mode: AnswerMode,
           model: str | None = None, *, answerable: bool = True,
           confidence: float | None = None, reason: str | None = None) -> AnswerResponse:
        return cls(
            question=question, answer=composed.text if answerable else None, reason=reason,
            answerable=answerable, confidence=confidence, lang=composed.lang, mode=mode,
            citations=[CitationOut.of(c) for c in composed.citations],
            passages=[PassageOut.of(s) for s in composed.sources], model=model,
        )


class AnswerErrorBody(BaseModel):
    """A 502/504: the LLM failed. `fallback` is the extractive answer to show instead."""

    error: ErrorDetail
    fallback: AnswerResponse
