"""An immutable, searchable state of the index: documents, passages, vectors, terms, alignment.

A `Snapshot` is built from `PreparedDocument`s. Rows (passage ids for FAISS and BM25) are the
concatenation of the documents in order, so a rebuild renumbers rows but never lets them drift
within one snapshot. Searches hold one snapshot for their whole run; writers build a new one and
swap it in, so a search sees the old or the new state of a document, never a half.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from index.align import align_passages, counterpart_ranges, project_sentence_beads
from index.embed import Matrix
from index.indexes.backends import build_lexical_index, new_dense_index
from index.indexes.dense import DenseIndex, Mask
from index.indexes.lexical import LexicalIndex
from index.records import LANGS, PreparedDocument

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _date_ordinal(date: str | None) -> int:
    if not date:
        return -1
    try:
        return dt.date.fromisoformat(date).toordinal()
    except ValueError:
        return -1


def realign_releases(
    segments: Mapping[str, PreparedDocument], release_ids: set[str]
) -> dict[str, PreparedDocument]:
    """Recompute counterpart links for every document of the given releases."""
    out = dict(segments)
    by_release: dict[str, dict[str, list[PreparedDocument]]] = {}
    for seg in segments.values():
        if seg.document.release_id in release_ids:
            langs = by_release.setdefault(seg.document.release_id, {})
            langs.setdefault(seg.document.lang, []).append(seg)
    for langs in by_release.values():
        for segs in langs.values():
            for seg in segs:
                out[seg.doc_id] = seg.without_counterparts()
        if not all(lang in langs for lang in LANGS):
            continue
        # One version per language is the norm; with several, the first by doc_id is aligned.
        en = min(langs["en"], key=lambda s: s.doc_id)
        zh = min(langs["zh"], key=lambda s: s.doc_id)
        cp_en, cp_zh = _counterparts(en, zh)
        out[en.doc_id] = replace(en, counterparts=cp_en, counterpart_doc=zh.doc_id)
        out[zh.doc_id] = replace(zh, counterparts=cp_zh, counterpart_doc=en.doc_id)
    return out


def _counterparts(en: PreparedDocument, zh: PreparedDocument) -> tuple[FloatArray, FloatArray]:
    """Counterpart ranges for both versions: sentences are aligned, then projected onto passages
    (passage-level beads land a passage off where the versions break paragraphs differently)."""
    one_each = len(en.spans) == len(zh.spans) == 1  # nothing to choose between
    if one_each or not len(en.sentence_spans) or not len(zh.sentence_spans):
        beads = align_passages(en.vectors, zh.vectors)
        return counterpart_ranges(beads, len(en.spans), len(zh.spans))
    sent_beads = align_passages(en.sentence_vectors, zh.sentence_vectors)
    en_s, zh_s = en.sentence_spans, zh.sentence_spans
    return project_sentence_beads(
        sent_beads, en_s[:, 0], zh_s[:, 0], en_s[:, 2] - en_s[:, 1], zh_s[:, 2] - zh_s[:, 1],
        len(en.spans), len(zh.spans),
    )


@dataclass(eq=False)
class Snapshot:
    """Concatenated, searchable view of segments. Treat as immutable once built."""

    segments: dict[str, PreparedDocument]
    dim: int
    dense: DenseIndex
    lexical: LexicalIndex
    generation: int = 0
    # Derived row tables (filled in __post_init__).
    doc_order: list[str] = field(init=False)
    row_offset: dict[str, int] = field(init=False)
    row_doc: npt.NDArray[np.int32] = field(init=False)
    row_lang: npt.NDArray[np.int8] = field(init=False)
    row_date: IntArray = field(init=False)
    spans: IntArray = field(init=False)
    sentence_offset: dict[str, int] = field(init=False)
    sentence_spans: IntArray = field(init=False)
    sentence_vectors: Matrix = field(init=False)
    passage_sentences: IntArray = field(init=False)  # (rows, 2): first, end into sentences
    sentence_dense: DenseIndex = field(init=False)  # exact index over sentence_vectors
    sentence_terms: list[frozenset[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.doc_order = list(self.segments)
        counts = [len(self.segments[d].spans) for d in self.doc_order]
        offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
        self.row_offset = {d: int(o) for d, o in zip(self.doc_order, offsets, strict=False)}
        self.row_doc = np.repeat(np.arange(len(self.doc_order), dtype=np.int32), counts)
        doc_lang = np.array(
            [LANGS.index(self.segments[d].document.lang) for d in self.doc_order], dtype=np.int8
        )
        doc_date = np.array(
            [_date_ordinal(self.segments[d].document.date) for d in self.doc_order], dtype=np.int64
        )
        self.row_lang = doc_lang[self.row_doc] if counts else np.zeros(0, np.int8)
        self.row_date = doc_date[self.row_doc] if counts else np.zeros(0, np.int64)
        segs = [self.segments[d] for d in self.doc_order]
        self.spans = np.concatenate([s.spans for s in segs]) if segs else np.zeros((0, 2), np.int64)
        s_counts = [len(s.sentence_spans) for s in segs]
        s_offsets = np.concatenate([[0], np.cumsum(s_counts, dtype=np.int64)]).astype(np.int64)
        self.sentence_offset = {d: int(o) for d, o in zip(self.doc_order, s_offsets, strict=False)}
        if segs and sum(s_counts):
            rows = np.concatenate(
                [s.sentence_spans[:, 0] + self.row_offset[s.doc_id] for s in segs]
            )
            self.sentence_spans = np.column_stack(
                [rows, np.concatenate([s.sentence_spans[:, 1:] for s in segs])]
            ).astype(np.int64)
            self.sentence_vectors = np.concatenate([s.sentence_vectors for s in segs])
            self.sentence_terms = [frozenset(t) for s in segs for t in s.sentence_terms]
        else:
            self.sentence_spans = np.zeros((0, 3), np.int64)
            self.sentence_vectors = np.zeros((0, self.dim), np.float32)
            self.sentence_terms = []
        n_rows = int(offsets[-1])
        sent_rows = self.sentence_spans[:, 0]
        first = np.searchsorted(sent_rows, np.arange(n_rows), side="left")
        end = np.searchsorted(sent_rows, np.arange(n_rows), side="right")
        self.passage_sentences = np.column_stack([first, end]).astype(np.int64)
        # Sentences are few per passage; an exact index over them is rebuilt, not stored.
        self.sentence_dense = new_dense_index(self.dim, "Flat")
        self.sentence_dense.add(self.sentence_vectors)

    def sentence_mask(self, row_mask: Mask | None) -> Mask | None:
        """The sentences whose passages are allowed by `row_mask`."""
        if row_mask is None:
            return None
        return row_mask[self.sentence_spans[:, 0]] if len(self.sentence_spans) else row_mask[:0]

    @classmethod
    def build(
        cls, segments: dict[str, PreparedDocument], dim: int, dense_factory: str, generation: int
    ) -> Snapshot:
        """Build the dense and lexical indexes over `segments` (rows in segment order)."""
        segs = list(segments.values())
        vectors = (
            np.concatenate([s.vectors for s in segs]) if segs else np.zeros((0, dim), np.float32)
        )
        dense = new_dense_index(dim, dense_factory)
        dense.add(vectors)
        lexical = build_lexical_index([t for s in segs for t in s.terms])
        return cls(segments, dim, dense, lexical, generation)

    @classmethod
    def empty(cls, dim: int, dense_factory: str) -> Snapshot:
        return cls.build({}, dim, dense_factory, 0)

    @property
    def n_rows(self) -> int:
        return len(self.spans)

    def segment_at(self, row: int) -> PreparedDocument:
        return self.segments[self.doc_order[int(self.row_doc[row])]]

    def ordinal_of(self, row: int) -> int:
        return row - self.row_offset[self.doc_order[int(self.row_doc[row])]]

    def allowed_rows(
        self,
        lang: str | None = None,
        release_ids: Sequence[str] | None = None,
        doc_ids: Sequence[str] | None = None,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
    ) -> Mask | None:
        """Boolean row mask for the filters; None when nothing is filtered."""
        mask: Mask | None = None

        def both(m: Mask) -> Mask:
            return m if mask is None else mask & m

        if lang is not None:
            mask = both(self.row_lang == LANGS.index(lang))
        if release_ids is not None or doc_ids is not None:
            wanted_releases = set(release_ids or ())
            wanted_docs = set(doc_ids or ())
            docs = np.array(
                [
                    (release_ids is None or self.segments[d].document.release_id in wanted_releases)
                    and (doc_ids is None or d in wanted_docs)
                    for d in self.doc_order
                ],
                dtype=bool,
            )
            mask = both(docs[self.row_doc] if len(self.row_doc) else np.zeros(0, bool))
        if date_from is not None:
            mask = both(self.row_date >= date_from.toordinal())
        if date_to is not None:
            mask = both((self.row_date >= 0) & (self.row_date <= date_to.toordinal()))
        return mask
