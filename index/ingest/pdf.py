"""PDF → canonical text with page starts: each page's text lines, paragraphs rebuilt, running
headers, footers and page numbers dropped.

A PDF has no text to keep exact: the canonical text is built here (lines of a paragraph
joined by a newline, or directly in Chinese; paragraphs and pages by a blank line) and every
offset refers to it; `pages[i]` is where page i + 2 starts, so a hit knows its page.
pypdfium2 (Apache-2.0/BSD) is imported only here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from index.ingest.problems import Rejected
from index.ingest.sentences import is_cjk

# Page furniture: a line that is only a page number ("4", "- 4 -", "Page 4 of 9", "第4页").
_PAGE_NUMBER = re.compile(
    r"\s*(?:[-–—]\s*)?(?:page\s*)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?(?:\s*[-–—])?\s*"
    r"|\s*第\s*\d{1,4}\s*页(?:\s*共\s*\d{1,4}\s*页)?\s*",
    re.I,
)
_DIGITS = re.compile(r"\d+")
_ENDS_PARAGRAPH = re.compile(r"[.!?。！？：:;；”」』\"')）]\s*$")
# A line shorter than this share of the page's usual line length that ends a sentence ends
# its paragraph (the short last line of a paragraph).
SHORT_LINE_SHARE = 0.8
# A first or last line repeated on at least this share of the pages is a running header/footer.
RUNNING_SHARE = 0.5
# A gap between lines this many times the page's usual one is a paragraph break.
PARAGRAPH_GAP = 1.6
MIN_PAGES_FOR_RUNNING = 3


@dataclass(frozen=True, slots=True)
class PdfText:
    text: str
    pages: tuple[int, ...]  # where each page after the first starts in `text`
    title: str | None


def extract_pdf_text(data: bytes) -> PdfText:
    """The text of a PDF file, page by page (see the module docstring)."""
    import pypdfium2 as pdfium  # type: ignore[import-untyped]

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as err:
        reason = "it is encrypted: save an unprotected copy" if "password" in str(err).lower() \
            else "check that it is a PDF file"
        raise Rejected(f"could not open the PDF ({str(err).rstrip('.')}): {reason}") from None
    try:
        page_lines = [_page_lines(page.get_textpage()) for page in pdf]
        title = (pdf.get_metadata_dict().get("Title") or "").strip() or None
    finally:
        pdf.close()
    page_lines = _without_furniture(page_lines)
    texts = [_paragraphs(lines) for lines in page_lines]
    if not any(t.strip() for t in texts):
        raise Rejected("the PDF has no text layer (a scan?): run OCR on it or give the text as "
                       ".txt")
    out, starts = "", []
    for text in texts:
        if not text:
            starts.append(len(out))
            continue
        if out:
            out += "\n\n"
        starts.append(len(out))
        out += text
    return PdfText(out, tuple(starts[1:]), title)


@dataclass(frozen=True, slots=True)
class _Line:
    text: str
    top: float
    bottom: float


def _page_lines(textpage: Any) -> list[str]:
    """The page's text lines in reading order, with an empty line where the vertical gap to
    the previous line is clearly wider than the page's usual line gap (a paragraph break)."""
    boxes = []
    for i in range(textpage.count_rects()):
        left, bottom, right, top = textpage.get_rect(i)
        text = textpage.get_text_bounded(left, bottom, right, top).strip()
        if text:
            boxes.append((top, bottom, left, text))
    if not boxes:  # no layout information: the text as pdfium orders it
        raw = textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")
        return [line.rstrip() for line in raw.split("\n")]
    boxes.sort(key=lambda b: (-b[0], b[2]))  # top to bottom (PDF y grows upwards), left to right
    lines: list[_Line] = []
    for top, bottom, _, text in boxes:
        last = lines[-1] if lines else None
        if last is not None and bottom < last.top and top > last.bottom and \
                min(top, last.top) - max(bottom, last.bottom) > 0.5 * (top - bottom):
            lines[-1] = _Line(f"{last.text} {text}", max(top, last.top), min(bottom, last.bottom))
        else:
            lines.append(_Line(text, top, bottom))
    gaps = [a.bottom - b.top for a, b in pairwise(lines)]
    heights = sorted(line.top - line.bottom for line in lines)
    usual_gap = sorted(gaps)[len(gaps) // 2] if gaps else 0.0
    height = heights[len(heights) // 2]
    out = [lines[0].text]
    for gap, line in zip(gaps, lines[1:], strict=True):
        if gap > max(PARAGRAPH_GAP * usual_gap, usual_gap + 0.5 * height):
            out.append("")
        out.append(line.text)
    return out


def _without_furniture(pages: Sequence[list[str]]) -> list[list[str]]:
    """Pages without running headers/footers (a first or last line repeated across pages, page
    numbers aside) and lines that are only a page number."""
    def key(line: str) -> str:
        return _DIGITS.sub("#", line.strip())

    running: set[str] = set()
    if len(pages) >= MIN_PAGES_FOR_RUNNING:
        edges: Counter[str] = Counter()
        for lines in pages:
            kept = [line for line in lines if line.strip()]
            edges.update({key(line) for line in kept[:2] + kept[-2:]})
        running = {k for k, n in edges.items() if n >= RUNNING_SHARE * len(pages)}
    return [[line for line in lines
             if not _PAGE_NUMBER.fullmatch(line) and key(line) not in running]
            for lines in pages]


def _paragraphs(lines: Sequence[str]) -> str:
    """A page's lines with paragraph breaks: a blank line, or a short line that ends a
    sentence, ends a paragraph."""
    filled = sorted(len(line) for line in lines if line.strip())
    if not filled:
        return ""
    usual = filled[int(0.9 * (len(filled) - 1))]
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if not line.strip():
            if paragraphs[-1]:
                paragraphs.append([])
            continue
        paragraphs[-1].append(line.strip())
        if _ENDS_PARAGRAPH.search(line) and len(line.strip()) < SHORT_LINE_SHARE * usual:
            paragraphs.append([])
    return "\n\n".join(_joined(p) for p in paragraphs if p)


def _joined(lines: Sequence[str]) -> str:
    """A paragraph's lines as one text: Chinese lines are joined directly (a line end inside
    Chinese is never a word break, not even between two digits of "26|9家"); other lines keep
    their line breaks, which the text view reads as spaces."""
    text = "".join(lines)
    wide = sum(1 for ch in text if is_cjk(ch))
    return text if 2 * wide > len(text) else "\n".join(lines)
