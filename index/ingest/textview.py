"""A cleaned view of source text for embedding and tokenising, with a map back to source offsets.

The source is never rewritten. `clean_view` joins hard-wrapped lines, collapses whitespace and
drops simple Markdown markup; every character of the view is either a copy of one source
character or a single space standing for a run of source whitespace, and `TextView.source_span`
turns a view range back into a source range.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass

# Markup removed from the view. Each pattern's named groups are the characters to drop.
_LINE_MARKERS = re.compile(
    r"(?m)^[^\S\n]*(?P<drop>#{1,6}(?=[^\S\n])|(?:>[^\S\n]?)*>|[-*+•](?=[^\S\n]))"
)
_STRONG = re.compile(
    r"(?P<open>\*\*)(?=\S)[^\n]*?(?<=\S)(?P<close>\*\*)"
    r"|(?<!\w)(?P<open2>__)(?=\S)[^\n]*?(?<=\S)(?P<close2>__)(?!\w)"
)
_BACKTICKS = re.compile(r"`+")
_LINK = re.compile(r"(?P<open>!?\[)[^\[\]\n]*(?P<close>\]\([^()\s]*(?:[^\S\n]+\"[^\"\n]*\")?\))")
# Whitespace the view changes: runs of two or more, or one character that is not a plain space.
# A single space between words is kept inside a copied piece, which keeps the map small.
_WHITESPACE_TO_CLEAN = re.compile(r"\s{2,}|[^\S ]")
# Quotes used in both scripts: a hard wrap next to one of them and a CJK character is dropped.
_SHARED_QUOTES = frozenset("“”‘’…—·")


def _is_wide(char: str) -> bool:
    """CJK ideographs, kana, CJK punctuation and full-width forms: text written without spaces."""
    return unicodedata.east_asian_width(char) in ("W", "F")


def _joins_without_space(left: str, right: str) -> bool:
    """A hard wrap between these two characters is an artefact of wrapping, not a word break."""
    if _is_wide(left):
        return _is_wide(right) or right in _SHARED_QUOTES
    return left in _SHARED_QUOTES and _is_wide(right)


@dataclass(frozen=True, slots=True)
class TextView:
    """Cleaned text plus a piecewise map to the source.

    Piece `k` starts at view offset `view_starts[k]` and covers source `[source_starts[k],
    source_ends[k])`. A copied piece has the same length in view and source (character `i` of
    the piece is source character `source_starts[k] + i`); a space piece is one view character
    standing for a run of source whitespace.
    """

    text: str
    view_starts: tuple[int, ...]
    source_starts: tuple[int, ...]
    source_ends: tuple[int, ...]
    source_start: int
    source_end: int

    def _piece(self, i: int) -> int:
        return bisect_right(self.view_starts, i) - 1

    def source_index(self, i: int) -> int:
        """Source offset of the first source character behind view character `i`."""
        k = self._piece(i)
        return self.source_starts[k] + (i - self.view_starts[k])

    def view_index(self, x: int) -> int:
        """View offset of the first view character whose source is at or after source `x`."""
        k = bisect_right(self.source_starts, x) - 1
        if k < 0:
            return 0
        if x < self.source_ends[k]:
            inside = x - self.source_starts[k] if self._is_copy(k) else 0
            return self.view_starts[k] + inside
        return self.view_starts[k + 1] if k + 1 < len(self.view_starts) else len(self.text)

    def source_span(self, i: int, j: int) -> tuple[int, int]:
        """Source range `[start, end)` behind view range `[i, j)`; an empty range is a point."""
        if not 0 <= i <= j <= len(self.text):
            raise ValueError(f"view range [{i}, {j}) is outside [0, {len(self.text)}]")
        if i == len(self.text):
            return self.source_end, self.source_end
        start = self.source_index(i)
        if i == j:
            return start, start
        k = self._piece(j - 1)
        if self._is_copy(k):
            end = self.source_starts[k] + (j - 1 - self.view_starts[k]) + 1
        else:
            end = self.source_ends[k]
        return start, end

    def _is_copy(self, k: int) -> bool:
        view_end = self.view_starts[k + 1] if k + 1 < len(self.view_starts) else len(self.text)
        return view_end - self.view_starts[k] == self.source_ends[k] - self.source_starts[k]


def markup_ranges(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sorted, merged ranges of Markdown markup (heading, quote and list markers, emphasis,
    backticks, link targets) inside `text[start:end]`, as offsets into `text`: what the
    view drops, and what the page hides while keeping the exact text."""
    end = len(text) if end is None else end
    ranges: list[tuple[int, int]] = []
    for m in _LINE_MARKERS.finditer(text, start, end):
        ranges.append(m.span("drop"))
    for m in _STRONG.finditer(text, start, end):
        for group in ("open", "close", "open2", "close2"):
            if m.start(group) >= 0:
                ranges.append(m.span(group))
    for m in _LINK.finditer(text, start, end):
        ranges.append(m.span("open"))
        ranges.append(m.span("close"))
    ranges.extend(m.span() for m in _BACKTICKS.finditer(text, start, end))
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


class _ViewBuilder:
    """Accumulates copied text and pending whitespace into the view and its piece map."""

    def __init__(self, text: str) -> None:
        self.source = text
        self.parts: list[str] = []
        self.length = 0
        self.view_starts: list[int] = []
        self.source_starts: list[int] = []
        self.source_ends: list[int] = []
        self.last_char = ""
        # The first whitespace run since the last copied character, and newlines seen since.
        self.gap: tuple[int, int] | None = None
        self.gap_newlines = 0

    def whitespace(self, start: int, end: int) -> None:
        if self.gap is None:
            self.gap = (start, end)
        self.gap_newlines += self.source.count("\n", start, end)

    def copy(self, start: int, end: int) -> None:
        # A plain space at either end of a kept stretch borders whitespace or dropped markup:
        # it joins the pending gap instead of being copied, so the view never has two spaces.
        if start < end and self.source[start] == " ":
            self.whitespace(start, start + 1)
            start += 1
        trailing_space = start < end and self.source[end - 1] == " "
        if trailing_space:
            end -= 1
        if start < end:
            self._copy_nonblank(start, end)
        if trailing_space:
            self.whitespace(end, end + 1)

    def _copy_nonblank(self, start: int, end: int) -> None:
        if self.gap is not None and self.last_char:
            hard_wrap = self.gap_newlines == 1
            if not (hard_wrap and _joins_without_space(self.last_char, self.source[start])):
                self._add(" ", *self.gap)
        self.gap = None
        self.gap_newlines = 0
        self._add(self.source[start:end], start, end)
        self.last_char = self.source[end - 1]

    def _add(self, piece: str, source_start: int, source_end: int) -> None:
        self.parts.append(piece)
        self.view_starts.append(self.length)
        self.source_starts.append(source_start)
        self.source_ends.append(source_end)
        self.length += len(piece)


def clean_view(text: str, start: int = 0, end: int | None = None) -> TextView:
    """The cleaned view of `text[start:end]`; its map gives absolute offsets into `text`.

    Hard-wrapped lines are joined (a single newline between CJK characters disappears, any other
    whitespace run becomes one space), leading/trailing whitespace is dropped, and Markdown
    heading/quote/bullet markers, ** and __ emphasis, backticks and link targets are removed.
    """
    end = len(text) if end is None else end
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"range [{start}, {end}) is outside the text (length {len(text)})")
    builder = _ViewBuilder(text)
    kept_start = start
    for drop_start, drop_end in [*markup_ranges(text, start, end), (end, end)]:
        cursor = kept_start
        for ws in _WHITESPACE_TO_CLEAN.finditer(text, kept_start, drop_start):
            builder.copy(cursor, ws.start())
            builder.whitespace(ws.start(), ws.end())
            cursor = ws.end()
        builder.copy(cursor, drop_start)
        kept_start = drop_end
    if not builder.parts:
        return TextView("", (), (), (), start, end)
    return TextView(
        text="".join(builder.parts),
        view_starts=tuple(builder.view_starts),
        source_starts=tuple(builder.source_starts),
        source_ends=tuple(builder.source_ends),
        source_start=start,
        source_end=end,
    )
