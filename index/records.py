"""The records every stage passes around. All offsets are Python str (code point) offsets."""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

Lang = Literal["en", "zh"]
Vectors = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
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
    # Where each page after the first starts in `text` (a paginated source: PDF); None else.
    pages: tuple[int, ...] | None = None

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
        if self.pages is not None:  # only then, so documents without pages keep their hash
            h.update(",".join(map(str, self.pages)).encode("ascii"))
        return h.hexdigest()

    def page_at(self, offset: int) -> int | None:
        """The 1-based page that holds `offset`; None for a document without pages."""
        if self.pages is None:
            return None
        return bisect_right(self.pages, offset) + 1


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
    """The aligned span of the release in the other language (offsets into its own document),
    with that document's own title and url (a translation has its own)."""

    doc_id: str
    lang: Lang
    start: int
    end: int
    text: str
    score: float
    title: str = ""
    url: str | None = None
    # The translation of the hit's answer sentence, when that sentence is aligned.
    answer: Span | None = None
    # How likely the span is the translation of the passage (None: not judged; see align).
    confidence: float | None = None
    # The 1-based page where the span starts (None: the document has no pages).
    page: int | None = None


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
    page: int | None = None  # 1-based page where the passage starts (None: no pages)


@dataclass(frozen=True, slots=True)
class SearchResults(Sequence[Hit]):
    """The hits of one query, best first, with the language the query was read as.

    A sequence of `Hit`s: iterate, index and take `len` as with a list.
    """

    hits: tuple[Hit, ...]
    query_lang: Lang
    # Whether the top hit answers the question (None: not judged, as in keyword-only search),
    # and the calibrated probability behind that.
    answerable: bool | None = None
    confidence: float | None = None

    @overload
    def __getitem__(self, index: int) -> Hit: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Hit]: ...

    def __getitem__(self, index: int | slice) -> Hit | Sequence[Hit]:
        return self.hits[index]

    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)


@dataclass(frozen=True, eq=False)
class PreparedDocument:
    """Everything the index holds about one document (what ingest prepares, what the store keeps).
    Arrays are row-aligned with its passages.

    `counterparts[i] = [first, end, score]`: passage i aligns with passages [first, end) of
    document `counterpart_doc` (-1 when nothing aligns), score the alignment's cosine;
    `sentence_counterparts` the same for its sentences, with the link's confidence (0–1) in place
    of the score. Sentence spans are document offsets;
    `sentence_passage` gives the passage ordinal each sentence belongs to.
    """

    document: Document
    content_hash: str
    spans: IntArray  # (p, 2) start, end
    vectors: Vectors  # (p, dim)
    terms: tuple[tuple[str, ...], ...]
    sentence_spans: IntArray  # (s, 3) passage ordinal, start, end
    sentence_vectors: Vectors  # (s, dim)
    sentence_terms: tuple[tuple[str, ...], ...]  # analysed terms per sentence
    counterparts: FloatArray  # (p, 3)
    counterpart_doc: str | None = None
    # (s, 3): sentence i aligns with sentences [first, end) of `counterpart_doc`, with the
    # alignment's score (-1 where nothing aligns); (0, 3) when not aligned at sentence level.
    sentence_counterparts: FloatArray = field(default_factory=lambda: np.zeros((0, 3)))

    @property
    def doc_id(self) -> str:
        return self.document.doc_id

    def passages(self) -> list[Passage]:
        text = self.document.text
        return [
            Passage(self.doc_id, i, int(s), int(e), text[s:e])
            for i, (s, e) in enumerate(self.spans.tolist())
        ]

    def without_counterparts(self) -> PreparedDocument:
        empty = np.full((len(self.spans), 3), -1.0)
        return replace(self, counterparts=empty, counterpart_doc=None,
                       sentence_counterparts=np.zeros((0, 3)))
