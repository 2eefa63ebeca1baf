"""Grounded answers from search hits: numbered sources, the extractive answer, the LLM prompt,
and the filter that keeps only `[n]` citations that refer to a given source.

Pure functions over `Hit` records; no I/O. Every span here is a document offset pair:
`document.text[start:end] == text`, for sources, their answer sentences and citations alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from index.ingest.sentences import sentence_spans
from index.ingest.textview import clean_view
from index.records import Hit, Lang, Span

# An extractive answer quotes at most this many sentences, and a sentence after the first only
# when its passage scored at least this share of the best one: weaker passages add noise.
MAX_ANSWER_SENTENCES = 3
MIN_RELATIVE_SCORE = 0.6

LANGUAGE_NAMES: dict[Lang, str] = {"en": "English", "zh": "Chinese (简体中文)"}

# `[1]`, `[1, 2]`, `[1][3]`; full-width brackets too, which Chinese output often uses.
_CITATION = re.compile(r"[ \t]*[\[［](\s*\d+(?:\s*[,，、]\s*\d+)*\s*)[\]］]")
_NUMBER = re.compile(r"\d+")
# The longest text that may still become a citation marker (kept back while streaming).
_MAX_MARKER_CHARS = 32


@dataclass(frozen=True, slots=True)
class Source:
    """Passage number `n` given to the answer, in the answer's language.

    `start`/`end` index the text of document `doc_id`; `answer` is the sentence of this passage
    that best answers the question (document offsets too), or None when none is known.
    """

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
    answer: Span | None
    via_counterpart: bool  # True when the hit was in the other language and this is its translation
    page: int | None = None  # 1-based page where the passage starts (None: no pages)


@dataclass(frozen=True, slots=True)
class Citation:
    """What `[n]` in an answer points at: a span of document `doc_id` (document offsets)."""

    n: int
    doc_id: str
    title: str
    url: str | None
    start: int
    end: int
    text: str
    page: int | None = None  # the page of the cited passage (None: no pages)


@dataclass(frozen=True, slots=True)
class ComposedAnswer:
    """An answer text with `[n]` markers, the citations it uses (each n once, in order of first
    use) and all the sources it was given."""

    text: str
    lang: Lang
    citations: tuple[Citation, ...]
    sources: tuple[Source, ...]


# -- sources -------------------------------------------------------------------------------------


def sources_for(hits: Sequence[Hit], lang: Lang) -> list[Source]:
    """Number the hits' passages 1, 2, … in `lang`, best first.

    A hit in `lang` is used as is; a hit in the other language is replaced by its aligned
    counterpart (skipped when it has none in `lang`). Passages that overlap one already taken in
    the same document are skipped, so two hits that pivot onto one translation count once.
    """
    sources: list[Source] = []
    taken: dict[str, list[tuple[int, int]]] = {}
    for hit in hits:
        source = _source_in(hit, lang, len(sources) + 1)
        if source is None:
            continue
        spans = taken.setdefault(source.doc_id, [])
        if any(source.start < end and start < source.end for start, end in spans):
            continue
        spans.append((source.start, source.end))
        sources.append(source)
    return sources


def _source_in(hit: Hit, lang: Lang, n: int) -> Source | None:
    if hit.lang == lang:
        return Source(n, hit.doc_id, hit.release_id, hit.lang, hit.title, hit.date, hit.url,
                      hit.start, hit.end, hit.text, hit.score, hit.answer, via_counterpart=False,
                      page=hit.page)
    cp = hit.counterpart
    if cp is None or cp.lang != lang:
        return None
    # The aligned translation of the answer sentence when the alignment is sure of it.
    answer = (cp.answer or _matching_sentence(cp.text, cp.start, hit)) if hit.answer else None
    return Source(n, cp.doc_id, hit.release_id, cp.lang, cp.title or hit.title, hit.date,
                  cp.url, cp.start, cp.end, cp.text, hit.score, answer, via_counterpart=True,
                  page=cp.page)


def _matching_sentence(text: str, offset: int, hit: Hit) -> Span | None:
    """The sentence of a translation at the same relative position as the hit's answer.

    Aligned passages are translations in the same order, so the sentence whose middle sits at
    the same fraction of the passage is the best guess without a sentence alignment.
    """
    assert hit.answer is not None
    spans = sentence_spans(text)
    if not spans:
        return None
    middle = (hit.answer.start + hit.answer.end) / 2 - hit.start
    fraction = middle / max(1, hit.end - hit.start)
    target = fraction * len(text)
    start, end = min(spans, key=lambda s: abs((s[0] + s[1]) / 2 - target))
    return Span(offset + start, offset + end, text[start:end])


# -- extractive answer ---------------------------------------------------------------------------


def display_text(text: str) -> str:
    """`text` on one line as a reader should see it in an answer or a quote: hard wraps joined
    (no space between two CJK characters), whitespace runs as one space, and Markdown markup
    (heading and list markers, emphasis, backticks, link targets) removed. Citations keep the
    exact source span; only what is shown is cleaned."""
    return clean_view(text).text


def extractive_answer(given: Sequence[Source], lang: Lang) -> ComposedAnswer:
    """The best answer sentences of the sources, each followed by its source number `[n]`.

    Takes the answer sentence of the best source, then of the next sources while they score at
    least MIN_RELATIVE_SCORE of the best, up to MAX_ANSWER_SENTENCES distinct sentences. Each
    citation is the quoted sentence's exact span. No sources → an empty answer text.
    """
    sources = tuple(given)
    chosen: list[tuple[Source, Span]] = []
    seen: set[str] = set()
    best = max((s.score for s in sources), default=0.0)
    for source in sources:
        if len(chosen) == MAX_ANSWER_SENTENCES:
            break
        if chosen and source.score < MIN_RELATIVE_SCORE * best:
            break
        span = source.answer or _first_sentence(source)
        key = display_text(span.text)
        if not key or key in seen:
            continue
        seen.add(key)
        chosen.append((source, span))
    # Cited sources are numbered 1, 2, 3 in the order the answer cites them (a skipped
    # duplicate must not leave a gap such as [1][4]); the others follow in their order.
    order = [s for s, _ in chosen] + [s for s in sources if all(s is not c for c, _ in chosen)]
    renumbered = {id(s): replace(s, n=i) for i, s in enumerate(order, start=1)}
    chosen = [(renumbered[id(s)], span) for s, span in chosen]
    sources = tuple(renumbered[id(s)] for s in order)
    # English puts a space before the marker and between sentences; Chinese uses neither.
    gap = " " if lang == "en" else ""
    text = gap.join(f"{display_text(span.text)}{gap}[{s.n}]" for s, span in chosen)
    citations = tuple(
        Citation(s.n, s.doc_id, s.title, s.url, span.start, span.end, span.text, s.page)
        for s, span in chosen
    )
    return ComposedAnswer(text, lang, citations, sources)


def _first_sentence(source: Source) -> Span:
    spans = sentence_spans(source.text)
    if not spans:
        return Span(source.start, source.end, source.text)
    start, end = spans[0]
    return Span(source.start + start, source.start + end, source.text[start:end])


# -- generated answer ----------------------------------------------------------------------------


def prompt_messages(question: str, sources: Sequence[Source], lang: Lang) -> list[dict[str, str]]:
    """Chat messages (system, user) asking for an answer in `lang` from the numbered sources,
    with a `[n]` citation after every statement."""
    language = LANGUAGE_NAMES[lang]
    numbers = ", ".join(f"[{s.n}]" for s in sources) or "none"
    system = (
        "You answer questions about government press releases using only the numbered passages "
        f"the user gives you. Answer in {language}. After every sentence of your answer, cite "
        f"the passages that support it by their numbers in square brackets, e.g. [1] or [1][2]; "
        f"the only valid numbers are {numbers}. Do not use any other knowledge. If the passages "
        "do not contain the answer, say so briefly."
    )
    blocks = [
        f"[{s.n}] {s.title}" + (f" ({s.date})" if s.date else "") + f"\n{s.text.strip()}"
        for s in sources
    ]
    user = "Passages:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question.strip()}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def strip_unknown_citations(text: str, valid: set[int]) -> str:
    """`text` with every `[n]` whose n is not in `valid` removed (with the space before it).

    In a group such as `[1, 9]` only the unknown numbers go; a group left empty goes entirely.
    """

    def keep(match: re.Match[str]) -> str:
        numbers = [int(x) for x in _NUMBER.findall(match.group(1))]
        kept = [n for n in numbers if n in valid]
        if not kept:
            return ""
        lead = match.group(0)[: len(match.group(0)) - len(match.group(0).lstrip(" \t"))]
        return lead + "".join(f"[{n}]" for n in kept)

    return _CITATION.sub(keep, text)


def cited_numbers(text: str) -> list[int]:
    """The citation numbers in `text`, each once, in order of first appearance."""
    seen: dict[int, None] = {}
    for match in _CITATION.finditer(text):
        for x in _NUMBER.findall(match.group(1)):
            seen.setdefault(int(x), None)
    return list(seen)


def generated_answer(text: str, sources: Sequence[Source], lang: Lang) -> ComposedAnswer:
    """An LLM's `text` with unknown citations removed; each remaining `[n]` cites passage n."""
    by_n = {s.n: s for s in sources}
    clean = strip_unknown_citations(text, set(by_n)).strip()
    citations = tuple(
        Citation(n, by_n[n].doc_id, by_n[n].title, by_n[n].url, by_n[n].start, by_n[n].end,
                 by_n[n].text, by_n[n].page)
        for n in cited_numbers(clean)
    )
    return ComposedAnswer(clean, lang, citations, tuple(sources))


class CitationStreamFilter:
    """`strip_unknown_citations` over a text that arrives in pieces.

    A piece may end inside a marker ("… [" then "9] …"), so text that could still become a
    marker is held back until it is decided; `feed` returns what is safe to show now and
    `finish` the rest. The concatenated output equals `strip_unknown_citations(whole text)`.
    """

    def __init__(self, valid: set[int]) -> None:
        self._valid = valid
        self._pending = ""

    def feed(self, piece: str) -> str:
        self._pending += piece
        cut = self._undecided_from(self._pending)
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return strip_unknown_citations(ready, self._valid)

    def finish(self) -> str:
        ready, self._pending = self._pending, ""
        return strip_unknown_citations(ready, self._valid)

    @staticmethod
    def _undecided_from(text: str) -> int:
        """Where the possibly unfinished marker at the end of `text` starts (len(text) if none).

        Trailing spaces are held too: they belong to a marker if one follows.
        """
        bracket = max(text.rfind("["), text.rfind("［"))
        if bracket >= 0 and len(text) - bracket <= _MAX_MARKER_CHARS:
            tail = text[bracket + 1 :]
            if "]" not in tail and "］" not in tail and re.fullmatch(r"[\d\s,，、]*", tail):
                start = bracket
                while start > 0 and text[start - 1] in " \t":
                    start -= 1
                return start
        return len(text.rstrip(" \t"))
