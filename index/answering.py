"""Answering a question: the use case every front end shares (HTTP, MCP, `qiao answer`).

Two steps, so a server can run the search in its search pool and the LLM call elsewhere:
`draft_answer` searches and numbers the sources in the answer language, and composes the
extractive answer and the LLM prompt; `finish_answer` asks the LLM (when there is one and there
is something to ground it in) and falls back to the extractive answer when the LLM fails, keeping
the failure so the front end can say so. `answer_question` is both in one call.

The LLM is anything with `name` and `complete(messages) -> text` (`LanguageModel`); it raises
`LlmError` (one line) when it cannot answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from index.compose import (
    ComposedAnswer,
    Source,
    extractive_answer,
    generated_answer,
    prompt_messages,
    sources_for,
)
from index.errors import LlmError
from index.ingest.langdetect import detect_lang
from index.records import Lang
from index.view import IndexView

AnswerMode = Literal["extractive", "generated"]
NO_ANSWER: dict[Lang, str] = {
    "en": "No passage in the index answers this question.",
    "zh": "索引中没有能回答这个问题的段落。",
}
Message = dict[str, str]


class LanguageModel(Protocol):
    """A chat model that answers from the numbered passages of the prompt."""

    @property
    def name(self) -> str: ...

    def complete(self, messages: Sequence[Message]) -> str:
        """The assistant's reply to `messages`; raises LlmError when there is none."""
        ...


@dataclass(frozen=True, slots=True)
class AnswerDraft:
    """What an answer is made from: the numbered sources in `lang`, the extractive answer, and
    the messages an LLM would get."""

    question: str
    lang: Lang
    sources: tuple[Source, ...]
    extractive: ComposedAnswer  # empty when not answerable
    messages: tuple[Message, ...]
    answerable: bool = True  # the top passage answers the question (calibrated; see search)
    confidence: float | None = None  # the probability behind `answerable`

    @property
    def no_answer(self) -> str | None:
        """Why there is no answer, in the answer language (None when there is one)."""
        return None if self.answerable else NO_ANSWER[self.lang]


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer given: `mode` says how it was made. `failure` is set when an LLM was asked and
    failed: the answer is then the extractive one."""

    question: str
    mode: AnswerMode
    composed: ComposedAnswer
    model: str | None = None
    failure: LlmError | None = None
    answerable: bool = True
    confidence: float | None = None
    no_answer: str | None = None  # why there is no answer (the passages are weak matches)


def draft_answer(view: IndexView, question: str, *, lang: Lang | None = None,
                 k: int = 5) -> AnswerDraft:
    """Search and compose: see `AnswerDraft`. `lang` None answers in the question's language."""
    answer_lang: Lang = lang or detect_lang(question)
    found = view.search(question, k, answer_lang)
    sources = tuple(sources_for(found, answer_lang))
    answerable = bool(sources) and found.answerable is not False
    extractive = (extractive_answer(sources, answer_lang) if answerable
                  else ComposedAnswer("", answer_lang, (), sources))
    return AnswerDraft(
        question, answer_lang, sources, extractive,
        tuple(prompt_messages(question, sources, answer_lang)), answerable, found.confidence,
    )


def finish_answer(draft: AnswerDraft, llm: LanguageModel | None) -> Answer:
    """The generated answer when `llm` is given and the sources answer; else, or when the LLM
    fails (`failure` set), the extractive one (empty when nothing answers)."""
    # Nothing to ground a generated answer in, or nothing that answers: no LLM call.
    if llm is None or not draft.sources or not draft.answerable:
        return _answer(draft, "extractive", draft.extractive)
    try:
        text = llm.complete(draft.messages)
    except LlmError as exc:
        return _answer(draft, "extractive", draft.extractive, failure=exc)
    return _answer(draft, "generated", generated_answer(text, draft.sources, draft.lang),
                   model=llm.name)


def _answer(draft: AnswerDraft, mode: AnswerMode, composed: ComposedAnswer,
            model: str | None = None, failure: LlmError | None = None) -> Answer:
    return Answer(draft.question, mode, composed, model, failure, draft.answerable,
                  draft.confidence, draft.no_answer)


def answer_question(
    view: IndexView, question: str, *, lang: Lang | None = None, k: int = 5,
    llm: LanguageModel | None = None,
) -> Answer:
    """`finish_answer(draft_answer(...), llm)`."""
    return finish_answer(draft_answer(view, question, lang=lang, k=k), llm)
