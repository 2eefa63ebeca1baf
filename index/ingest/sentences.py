"""Paragraph and sentence boundaries for English, Chinese and mixed text, as exact source spans.

Every function here returns half-open `(start, end)` offsets into the text it was given, trimmed
of surrounding whitespace, in order and non-overlapping; together they cover every
non-whitespace character of the requested range. Nothing is rewritten.
"""

from __future__ import annotations

import re

Spans = list[tuple[int, int]]

# A paragraph break is a blank line: a newline, then lines holding only whitespace, then a newline.
_PARAGRAPH_BREAK = re.compile(r"\n(?:[^\S\n]*\n)+|\u2029")

# Closing quotes/brackets that belong to the sentence they follow.
_CLOSERS = "”’」』）》】〉〕〗»)\\]\"'"
# A run of sentence-ending marks (ASCII and full-width) and the closers right after it.
_TERMINATOR = re.compile(rf"(?P<run>[.!?。！？；｡…]+)[{_CLOSERS}]*")
_CJK_STOPS = frozenset("。！？；｡")
# Han ideographs (BMP and supplementary planes) and kana: text that needs no spaces between words.
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]")
# What an English sentence may start with after ". ": opening quotes/brackets (ASCII and CJK).
_OPENERS = frozenset("“‘\"'([{「『《【（〈〔")
_WHITESPACE = re.compile(r"\s+")
_LINE_BREAK = re.compile(r"\n")
_LINE_ENDS_SENTENCE = re.compile(rf"[.!?。！？；…][{_CLOSERS}]*\s*$")
# Chinese text with one sentence per line often ends a line with a closing quote and no stop
# (“……押韵”). A line break right after a quote, with Chinese on either side, ends a sentence;
# a hard wrap inside a sentence rarely falls just after a quote.
_QUOTED_LINE_END = re.compile(
    "(?<=[\u3400-\u4dbf\u4e00-\u9fff，。！？；：…][”’」』\"“])(?=[^\\S\n]*\n)"
    "|(?<=[”’」』\"“])(?=[^\\S\n]*\n[^\\S\n]*[\u3400-\u4dbf\u4e00-\u9fff“「『（])"
)

# Abbreviations whose period does not end a sentence (compared lower-case, without the period).
_ABBREVIATIONS = frozenset(
    " ".join(
        (
            "mr mrs ms mx dr prof sr jr st mt ft rev hon gen col lt sgt capt cmdr adm gov sen rep",
            "pres co corp inc ltd llc plc bros dept univ assn est approx",
            "jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri",
            "sat vs etc al cf ca viz fig figs pp vol vols ch chap sec art para eq ed eds no nos op",
        )
    ).split()
)
# "No. 5" is a number sign, "no." before a capital is the word "no".
_ABBREVIATIONS_BEFORE_DIGITS = frozenset({"no", "nos", "art", "sec", "fig", "figs", "vol", "pp"})
# Dotted initialisms such as U.S, e.g, i.e, a.m, Ph.D (the final period is the candidate).
_INITIALISM = re.compile(r"(?:[A-Za-z]{1,2}\.)+[A-Za-z]{1,2}")
# A list enumerator at the start of a line: "1.", "iv.", "B.".
_ENUMERATOR = re.compile(r"\d{1,3}|[ivxlcIVXLC]{1,5}|[A-Za-z]")
_TOKEN_OPENERS = "([{“‘\"'「『《【（"


def is_cjk(char: str) -> bool:
    """True for a Han ideograph or kana: a character of text written without spaces."""
    return _CJK.match(char) is not None


def paragraph_spans(text: str, start: int = 0, end: int | None = None) -> Spans:
    """Paragraphs of `text[start:end]`: runs separated by blank lines, as trimmed absolute spans."""
    end = len(text) if end is None else end
    spans: Spans = []
    cursor = start
    for brk in _PARAGRAPH_BREAK.finditer(text, start, end):
        _append_trimmed(text, cursor, brk.start(), spans)
        cursor = brk.end()
    _append_trimmed(text, cursor, end, spans)
    return spans


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> Spans:
    """Sentences of `text[start:end]` as trimmed absolute spans; a paragraph break always ends one.

    Chinese sentences end at 。！？； (and … or !? next to Chinese text) plus any closing quotes or
    brackets, with no whitespace needed. English sentences end at . ! ? plus closers when
    whitespace and an upper-case letter, digit, opening quote or Chinese character follow;
    abbreviations, initials, decimals, list numbers and ellipses do not end a sentence. A single
    newline (a hard wrap) is ordinary whitespace, except right after a quote in Chinese text
    and in paragraphs written one sentence per line (see `_one_sentence_per_line`).
    """
    spans: Spans = []
    for para_start, para_end in paragraph_spans(text, start, end):
        breaks = [mark.end() for mark in _TERMINATOR.finditer(text, para_start, para_end)
                  if _ends_sentence(text, mark, para_start, para_end)]
        breaks += [line.start() for line in _QUOTED_LINE_END.finditer(text, para_start, para_end)]
        if _one_sentence_per_line(text, para_start, para_end):
            breaks += [m.start() for m in _LINE_BREAK.finditer(text, para_start, para_end)]
        cursor = para_start
        for brk in sorted(set(breaks)):
            if brk > cursor:
                _append_trimmed(text, cursor, brk, spans)
                cursor = brk
        _append_trimmed(text, cursor, para_end, spans)
    return spans


def _one_sentence_per_line(text: str, start: int, end: int) -> bool:
    """Whether the paragraph's lines are sentences (subtitles, one sentence per line, lists of
    headlines and sentences) rather than a hard-wrapped sentence flow: at least three lines,
    and at least half of them end like a sentence. Hard-wrapped prose ends few lines so (an
    eighth in the demo release), line-per-sentence text nearly all."""
    lines = [line for line in text[start:end].split("\n") if line.strip()]
    if len(lines) < 3:
        return False
    ended = sum(1 for line in lines if _LINE_ENDS_SENTENCE.search(line))
    return 2 * ended >= len(lines)


def _append_trimmed(text: str, start: int, end: int, spans: Spans) -> None:
    """Append `[start, end)` without its leading/trailing whitespace, unless nothing is left."""
    piece = text[start:end]
    stripped = piece.lstrip()
    if not stripped:
        return
    new_start = start + len(piece) - len(stripped)
    spans.append((new_start, new_start + len(stripped.rstrip())))


def _ends_sentence(text: str, mark: re.Match[str], para_start: int, para_end: int) -> bool:
    run = mark.group("run")
    after = mark.end()
    before_char = text[mark.start() - 1] if mark.start() > para_start else ""
    next_char = text[after] if after < para_end else ""
    if after >= para_end:
        return True  # the paragraph ends here anyway
    if any(c in _CJK_STOPS for c in run):
        return True
    cjk_context = is_cjk(before_char) or is_cjk(next_char)
    if "…" in run or (len(run) > 1 and set(run) == {"."}):
        # An ellipsis ends a sentence in Chinese; in English it marks a pause or an omission.
        return cjk_context
    if ("!" in run or "?" in run) and cjk_context:
        return True  # Chinese text written with ASCII marks: no whitespace follows
    if is_cjk(next_char):
        return not (run == "." and _is_abbreviation(text, mark.start(), para_start, next_char))
    if not next_char.isspace():
        return False  # 3.5, example.com, "Hi!"she said
    gap = _WHITESPACE.match(text, after, para_end)
    assert gap is not None  # next_char is whitespace
    if gap.end() >= para_end:
        return True
    first = text[gap.end()]
    if not (first.isupper() or first.isdigit() or first in _OPENERS or is_cjk(first)):
        return False
    return not (run == "." and _is_abbreviation(text, mark.start(), para_start, first))


def _is_abbreviation(text: str, period: int, para_start: int, next_char: str) -> bool:
    """Whether the word before the period at `period` makes it a non-final period."""
    # Words are short; looking back a bounded window keeps this O(1) per candidate.
    window_start = max(para_start, period - 40)
    window = text[window_start:period]
    token_match = re.search(r"\S+$", window)
    if token_match is None:
        return False
    token = token_match.group().lstrip(_TOKEN_OPENERS)
    if not token:
        return False
    lowered = token.lower()
    if lowered in _ABBREVIATIONS:
        return lowered not in _ABBREVIATIONS_BEFORE_DIGITS or next_char.isdigit()
    if _INITIALISM.fullmatch(token):
        return True
    if len(token) == 1 and token.isupper():
        return True  # an initial, as in "J. Smith"
    if _ENUMERATOR.fullmatch(token) is None:
        return False
    # A list number only counts as such at the start of a line (or of the paragraph).
    prefix = window[: token_match.start()]
    line_prefix = prefix[prefix.rfind("\n") + 1 :]
    return not line_prefix.strip() and ("\n" in prefix or window_start == para_start)
