"""Document → passages: exact spans of about a paragraph, split at sentences, within a token budget.

A passage is a paragraph when it fits `max_chars`; short paragraphs (a one-liner, a heading)
merge with the following ones up to `target_chars`; longer paragraphs are split at sentence
boundaries into balanced pieces, falling back to clause punctuation, whitespace and finally a
character boundary. Every passage satisfies `doc.text[p.start:p.end] == p.text`, is trimmed of
whitespace, and its embedding input (title + cleaned text) fits the embedder's token window.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Sequence

from index.errors import DocumentError
from index.ingest.sentences import Spans, paragraph_spans, sentence_spans
from index.ingest.textview import clean_view
from index.records import Document, Passage

log = logging.getLogger(__name__)

CountTokens = Callable[[list[str]], list[int]]

# A clause ends after full-width clause punctuation, or ASCII punctuation followed by whitespace
# (so "1,000" and "10:30" stay whole).
_CLAUSE_END = re.compile(r"[，；：、]+|[,;:](?=\s)")
_WHITESPACE = re.compile(r"\s+")
# A paragraph ending in one of these (optionally followed by closers) reads as a sentence; one
# ending otherwise (a title, "1. Goals", "Contact:") reads as a heading.
_SENTENCE_FINAL = re.compile(r"[.!?。！？；｡…][”’」』）》】〉〕〗»)\]\"']*\Z")
# Characters that must not start a piece: they attach to the character before them.
_JOINERS = frozenset("\u200d\u200c\ufe0e\ufe0f")
# Each round of token-budget splitting aims this far below the proportional length.
_TOKEN_SAFETY = 0.9


def embedding_text(doc: Document, passage: Passage) -> str:
    """What the embedder sees for `passage` (without its prompt): the document title as context,
    a newline, then the cleaned view of the passage. The passage span itself excludes the title."""
    return _embedding_text(title_context(doc.title), doc.text, passage.start, passage.end)


def chunk_document(
    doc: Document,
    *,
    count_tokens: CountTokens,
    max_tokens: int,
    target_chars: int,
    max_chars: int,
) -> list[Passage]:
    """Split `doc.text` into passages with ordinals 0..n-1 (offsets index `doc.text`).

    `count_tokens` costs a batch of embedding texts (prompt and special tokens included); every
    passage's `embedding_text` costs at most `max_tokens`. A text without non-whitespace
    characters gives []. Raises DocumentError when even one character plus the title does not
    fit the token window.
    """
    if not 1 <= target_chars <= max_chars:
        raise ValueError(f"need 1 <= target_chars <= max_chars, got {target_chars}, {max_chars}")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    text = doc.text
    spans: Spans = []
    for group_start, group_end, glue_end in _paragraph_groups(text, target_chars, max_chars):
        if group_end - group_start <= max_chars:
            spans.append((group_start, group_end))
        else:
            spans.extend(_split_region(text, group_start, group_end, max_chars, glue_end))
    spans = _fit_token_budget(doc, spans, count_tokens, max_tokens)
    return [Passage(doc.doc_id, n, s, e, text[s:e]) for n, (s, e) in enumerate(spans)]


def title_context(title: str) -> str:
    """The title as embedded in front of a passage: whitespace runs collapsed to one space."""
    return " ".join(title.split())


def _embedding_text(title: str, text: str, start: int, end: int) -> str:
    body = clean_view(text, start, end).text
    return f"{title}\n{body}" if title else body


def _paragraph_groups(
    text: str, target_chars: int, max_chars: int
) -> list[tuple[int, int, int]]:
    """Paragraphs, with short ones merged forward: `(start, end, glue_end)` per group.

    `glue_end` > start marks a heading merged into a paragraph that is too long to stay whole:
    the split must not cut between the heading (ending at `glue_end`) and what follows it.
    """
    paragraphs = paragraph_spans(text)
    short = target_chars / 3
    groups: list[tuple[int, int, int]] = []
    i = 0
    while i < len(paragraphs):
        start, end = paragraphs[i]
        i += 1
        # Merge forward only while the group is still short: never more than needed.
        while i < len(paragraphs) and end - start < short:
            if paragraphs[i][1] - start > target_chars:
                break
            end = paragraphs[i][1]
            i += 1
        glue_end = start
        if i < len(paragraphs) and end - start < short and _reads_as_heading(text, start, end):
            # A heading alone is a useless passage; it joins the paragraph it introduces when
            # the two fit together, or when that paragraph has to be split anyway.
            next_start, next_end = paragraphs[i]
            if next_end - start <= max_chars or next_end - next_start > max_chars:
                glue_end = end
                end = next_end
                i += 1
        groups.append((start, end, glue_end))
    return groups


def _reads_as_heading(text: str, start: int, end: int) -> bool:
    return _SENTENCE_FINAL.search(text, start, end) is None


def _split_region(text: str, start: int, end: int, max_chars: int, glue_end: int = -1) -> Spans:
    """Balanced pieces of `[start, end)`, each at most `max_chars`, cut between sentences where
    possible; no cut falls inside `[start, glue_end]` (a heading stays with what follows)."""
    units: Spans = []
    for s, e in sentence_spans(text, start, end):
        if e - s <= max_chars:
            units.append((s, e))
        else:
            units.extend(_split_sentence(text, s, e, max_chars))
    if glue_end > start:
        units = _glue_heading(units, glue_end, max_chars)
    return _balanced_pieces(units, max_chars)


def _glue_heading(units: Spans, glue_end: int, max_chars: int) -> Spans:
    """Merge the units of a heading (ending by `glue_end`) with the unit after it, if that fits."""
    n = bisect_right([e for _, e in units], glue_end)
    if n == 0 or n >= len(units) or units[n][1] - units[0][0] > max_chars:
        return units
    return [(units[0][0], units[n][1]), *units[n + 1 :]]


def _split_sentence(text: str, start: int, end: int, max_chars: int) -> Spans:
    """Units of a sentence longer than `max_chars`: clauses, then words, then character runs."""
    units: Spans = []
    for s, e in _cut_after(text, start, end, _CLAUSE_END):
        if e - s <= max_chars:
            units.append((s, e))
            continue
        for ws, we in _cut_after(text, s, e, _WHITESPACE):
            if we - ws <= max_chars:
                units.append((ws, we))
            else:
                units.extend(_hard_cuts(text, ws, we, max_chars))
    return units


def _cut_after(text: str, start: int, end: int, pattern: re.Pattern[str]) -> Spans:
    """`[start, end)` cut after every match of `pattern`, pieces trimmed, empty ones dropped."""
    pieces: Spans = []
    cursor = start
    for m in pattern.finditer(text, start, end):
        _append_trimmed(text, cursor, m.end(), pieces)
        cursor = m.end()
    _append_trimmed(text, cursor, end, pieces)
    return pieces


def _append_trimmed(text: str, start: int, end: int, spans: Spans) -> None:
    piece = text[start:end]
    stripped = piece.lstrip()
    if stripped:
        new_start = start + len(piece) - len(stripped)
        spans.append((new_start, new_start + len(stripped.rstrip())))


def _hard_cuts(text: str, start: int, end: int, max_chars: int) -> Spans:
    """Cut a run without whitespace every `max_chars`, moving a cut back rather than separating a
    combining mark or joiner from the character it modifies."""
    pieces: Spans = []
    cursor = start
    while end - cursor > max_chars:
        cut = cursor + max_chars
        # Bounded back-off: a pathological run of marks is cut anyway.
        for candidate in range(cut, max(cursor, cut - 8), -1):
            if not _attaches_to_previous(text, candidate):
                cut = candidate
                break
        pieces.append((cursor, cut))
        cursor = cut
    pieces.append((cursor, end))
    return pieces


def _attaches_to_previous(text: str, i: int) -> bool:
    char = text[i]
    return (
        unicodedata.combining(char) != 0
        or unicodedata.category(char) in ("Mn", "Mc", "Me")
        or char in _JOINERS
        or text[i - 1] in _JOINERS
    )


def _balanced_pieces(units: Spans, max_chars: int) -> Spans:
    """Group consecutive units into the fewest pieces of at most `max_chars`, then make the
    longest piece as short as possible (so pieces come out balanced)."""
    if not units:
        return []
    ends = [e for _, e in units]
    count = len(_greedy_pieces(units, ends, max_chars))
    lo = max(max(e - s for s, e in units), 1)
    hi = max_chars
    if lo >= hi:
        return _greedy_pieces(units, ends, max(hi, lo))
    # The fewest pieces within a cap shrinks as the cap grows, so bisect on the cap.
    while lo < hi:
        mid = (lo + hi) // 2
        if len(_greedy_pieces(units, ends, mid)) <= count:
            hi = mid
        else:
            lo = mid + 1
    return _greedy_pieces(units, ends, lo)


def _greedy_pieces(units: Spans, ends: Sequence[int], cap: int) -> Spans:
    """Fill each piece with as many units as fit in `cap` (a unit longer than cap stands alone)."""
    pieces: Spans = []
    a = 0
    while a < len(units):
        start = units[a][0]
        b = max(bisect_right(ends, start + cap, lo=a) - 1, a)
        pieces.append((start, units[b][1]))
        a = b + 1
    return pieces


def _fit_token_budget(
    doc: Document, spans: Spans, count_tokens: CountTokens, max_tokens: int
) -> Spans:
    """Split passages whose embedding text costs more than `max_tokens`, one batched count per
    round, until every passage fits."""
    title = title_context(doc.title)
    text = doc.text
    fitting: Spans = []
    todo = spans
    rounds = 0
    while todo:
        rounds += 1
        counts = count_tokens([_embedding_text(title, text, s, e) for s, e in todo])
        if len(counts) != len(todo):
            raise ValueError(f"count_tokens returned {len(counts)} counts for {len(todo)} texts")
        over: Spans = []
        for (s, e), tokens in zip(todo, counts, strict=True):
            if tokens <= max_tokens:
                fitting.append((s, e))
                continue
            if e - s <= 1:
                raise DocumentError(
                    f"{doc.doc_id}: the title and one character already take {tokens} tokens, "
                    f"more than the embedder's {max_tokens}; shorten the title"
                )
            limit = min(e - s - 1, max(1, int((e - s) * max_tokens / tokens * _TOKEN_SAFETY)))
            over.extend(_split_region(text, s, e, limit))
        todo = over
    if rounds > 1:
        log.debug("token budget split passages", extra={"doc_id": doc.doc_id, "rounds": rounds})
    fitting.sort()
    return fitting
