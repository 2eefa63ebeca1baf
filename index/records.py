"""The records every stage passes around. All offsets are Python str (code point) offsets."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

Lang = Literal["en", "zh"]
LANGS: tuple[Lang, ...] = ("en", "zh")


@dataclass(frozen=True, slots=True)
class Document:
    """One language version of a release. `text` is canonical: every offset refers to it."""

    doc_id: str
    release_id: str
    lang: Lang
    title: str
    text: str
    date: str | None = None
    url: str | None = None

    @property
    def content_hash(self) -> str:
        """Hash of all that affects passages and display; an unchanged hash skips re-embedding."""
        h = hashlib.sha256()
        for part in (
            self.release_id,
            self.lang,
            self.title,
            self.date or "",
            self.url or "",
            self.text,
        ):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open [start, end) range of a document's text, with the text it covers."""

    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Passage:
    """A chunk of a document: `document.text[start:end] == text`, always."""

    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str

    @property
    def passage_id(self) -> str:
        return f"{self.doc_id}#{self.ordinal}"


@dataclass(frozen=True, slots=True)
class Counterpart:
    """The aligned span of the release in the other language (offsets into its own document)."""

    doc_id: str
    lang: Lang
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result. `start`/`end` index `text` into the document `doc_id`."""

    passage_id: str
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
    counterpart: Counterpart | None
