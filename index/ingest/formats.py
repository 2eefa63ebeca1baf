"""Per-format reading: a file's bytes → its canonical text and the metadata it carries.

Each reader returns `Extracted`: the text every offset will refer to, metadata the file states
(`given`: Markdown front matter, which wins over a sidecar) or that extraction found (`guessed`:
an HTML <title>, which a sidecar overrides), and a language hint. JSONL holds many documents and
is read as records (see `read.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import trafilatura
import yaml
from trafilatura.settings import Document as TrafilaturaDocument

from index.ingest.decode import decode_file
from index.ingest.metadata import (
    FRONT_MATTER_KEYS,
    ISO_DATE,
    MAX_TITLE_CHARS,
    is_web_url,
    string_fields,
)
from index.ingest.problems import Rejected
from index.records import LANGS, Lang

Kind = Literal["text", "markdown", "html", "pdf", "docx", "jsonl"]
SUPPORTED_SUFFIXES: dict[str, Kind] = {
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".jsonl": "jsonl",
}

_FRONT_MATTER = re.compile(r"---[ \t]*\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S | re.M)


@dataclass(frozen=True, slots=True)
class Extracted:
    """A file's canonical text and what it says about itself."""

    text: str
    given: dict[str, str] = field(default_factory=dict)
    guessed: dict[str, str] = field(default_factory=dict)
    lang_hint: Lang | None = None
    encoding: str = "utf-8"
    pages: tuple[int, ...] | None = None  # a paginated source: where pages 2, 3, … start


def extract_text(data: bytes) -> Extracted:
    """Plain text: the decoded file, exactly."""
    decoded = decode_file(data)
    return Extracted(decoded.text, encoding=decoded.encoding)


def extract_markdown(data: bytes) -> Extracted:
    """Markdown: the body after the optional YAML front matter, as given; the front matter's
    fields as given metadata."""
    decoded = decode_file(data)
    body, given = split_front_matter(decoded.text)
    if not body or body.isspace():
        raise Rejected("no text after the front matter: add the document's text")
    return Extracted(body, given=given, encoding=decoded.encoding)


def extract_html_file(data: bytes) -> Extracted:
    decoded = decode_file(data)
    return replace(extract_html(decoded.text), encoding=decoded.encoding)


def extract_pdf(data: bytes) -> Extracted:
    from index.ingest.pdf import extract_pdf_text

    found = extract_pdf_text(data)
    guessed = {"title": found.title[:MAX_TITLE_CHARS]} if found.title else {}
    return Extracted(found.text, guessed=guessed, pages=found.pages)


def extract_docx(data: bytes) -> Extracted:
    from index.ingest.docx import extract_docx_text

    found = extract_docx_text(data)
    guessed = {"title": found.title[:MAX_TITLE_CHARS]} if found.title else {}
    return Extracted(found.text, guessed=guessed)


# The reader of each single-document kind.
EXTRACTORS: dict[Kind, Callable[[bytes], Extracted]] = {
    "text": extract_text,
    "markdown": extract_markdown,
    "html": extract_html_file,
    "pdf": extract_pdf,
    "docx": extract_docx,
}


def split_front_matter(text: str) -> tuple[str, dict[str, str]]:
    """Markdown → (body exactly as in the file after the front matter, front-matter fields)."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return text, {}
    try:
        raw = yaml.safe_load(match.group(1))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 2 if mark is not None else None  # +1 for the '---' line, +1 for 1-based
        detail = getattr(err, "problem", None) or type(err).__name__
        raise Rejected(
            f"bad YAML front matter ({detail}): fix the lines between '---'", line
        ) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise Rejected("front matter must be 'key: value' lines between '---' lines: fix it")
    fields = string_fields(raw, FRONT_MATTER_KEYS, strict=False)
    return text[match.end() :], fields


def lang_of_tag(value: object) -> Lang | None:
    primary = str(value or "").split("-")[0].split("_")[0].strip().lower()
    return next((lang for lang in LANGS if lang == primary), None)


# trafilatura's output elements that are blocks of their own (its XML: head = a heading).
_BLOCKS = frozenset({"p", "head", "list", "table", "quote", "code", "div", "item", "row"})


def _paragraphs(body: Any) -> str:
    """The main text with its paragraph breaks: blocks (paragraphs, headings, lists, tables,
    quotes) separated by a blank line, list items and table rows on lines of their own, a
    line break inside a paragraph kept. trafilatura's own `text` joins blocks with single
    newlines, which makes a whole article one paragraph."""
    blocks = [_block_text(child) for child in body]
    return "\n\n".join(b for b in blocks if b)


def _block_text(element: Any) -> str:
    tag = element.tag
    if tag in ("list", "table"):
        lines = [_inline_text(row) for row in element]
        return "\n".join(line for line in lines if line)
    if tag == "quote" and any(child.tag in _BLOCKS for child in element):
        return "\n\n".join(b for b in (_block_text(c) for c in element) if b)
    return _inline_text(element)


def _inline_text(element: Any) -> str:
    """An element's text, a line break for <lb/>, cells of a table row separated by " | "."""
    if element.tag == "row":
        return " | ".join(c for c in (_inline_text(cell) for cell in element) if c)
    parts: list[str] = [element.text or ""]
    for child in element:
        parts.append("\n" if child.tag == "lb" else _inline_text(child))
        parts.append(child.tail or "")
    return "".join(parts).strip()


def extract_html(source: str) -> Extracted:
    """HTML → its main text, the metadata trafilatura found, and the language of <html lang>."""
    tree = trafilatura.utils.load_html(source)
    if tree is None:
        raise Rejected("could not parse the HTML: check that the file is a web page")
    lang = lang_of_tag(tree.getroottree().getroot().get("lang"))
    result = trafilatura.bare_extraction(
        tree,
        with_metadata=True,
        include_comments=False,
        # Only dates written in the markup: the "extensive" search guesses from any number.
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    if not isinstance(result, TrafilaturaDocument) or not result.text or result.text.isspace():
        raise Rejected("no main text found in the HTML: save the article text as .txt or .md")
    text: str = _paragraphs(result.body) if result.body is not None else ""
    if not text.strip():
        text = result.text
    # What trafilatura found is a guess: keep the values that are valid, drop the rest.
    guessed: dict[str, str] = {}
    title = str(result.title or "").strip()
    if title:
        guessed["title"] = title[:MAX_TITLE_CHARS]
    date = str(result.date or "")
    if ISO_DATE.fullmatch(date):
        guessed["date"] = date
    url = str(result.url or "")
    if is_web_url(url):
        guessed["url"] = url
    return Extracted(text, guessed=guessed, lang_hint=lang)
