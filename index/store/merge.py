"""Merging segments: which to merge (a tiered policy, as Lucene's), and the merge itself.

Every commit adds a segment, so without merges a search would visit ever more of them. The
policy groups segments into tiers by live size (each tier `TIER_FACTOR` times the one below,
starting at `FLOOR_ROWS`); when a tier holds `SEGMENTS_PER_TIER` segments, they are merged into
one of the next tier. A segment with many deleted documents is merged to drop them. No merge
makes a segment larger than `MAX_ROWS`, so no merge rewrites the bulk of a large archive.

A merge writes one new segment of the merged segments' live documents (their newest links
folded in), and commits it in place of them: readers keep the segments they opened.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from index.indexes.dense import FaissDense
from index.indexes.lexical import Postings
from index.store.manifest import SegmentEntry
from index.store.segment import DocLinks, Segment, Texts, sized_sentence_links

FLOOR_ROWS = 2_000
TIER_FACTOR = 8
SEGMENTS_PER_TIER = 8
MAX_ROWS = 250_000
DELETED_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class MergePolicy:
    floor_rows: int = FLOOR_ROWS
    tier_factor: int = TIER_FACTOR
    segments_per_tier: int = SEGMENTS_PER_TIER
    max_rows: int = MAX_ROWS
    deleted_share: float = DELETED_SHARE

    def tier(self, rows: int) -> int:
        if rows <= self.floor_rows:
            return 0
        return 1 + int(math.log(rows / self.floor_rows, self.tier_factor))

    def plan(self, segments: Sequence[SegmentEntry]) -> list[str] | None:
        """The names of segments to merge next (smallest first), or None."""
        for entry in segments:
            # Small segments lose their deleted rows in the next tier merge anyway.
            if entry.passages >= self.floor_rows and (
                entry.deleted_passages > self.deleted_share * entry.passages
            ):
                return [entry.name]
        tiers: dict[int, list[SegmentEntry]] = {}
        for entry in segments:
            if entry.live_passages < self.max_rows // 2:
                tiers.setdefault(self.tier(entry.live_passages), []).append(entry)
        for tier in sorted(tiers):
            members = sorted(tiers[tier], key=lambda e: (e.live_passages, e.name))
            if len(members) < self.segments_per_tier:
                continue
            chosen: list[str] = []
            total = 0
            for entry in members:
                if total + entry.live_passages > self.max_rows:
                    break
                chosen.append(entry.name)
                total += entry.live_passages
            if len(chosen) >= 2:
                return chosen
        return None


def _ranges(starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The concatenation of arange(start, end) for each pair, vectorised."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    out: npt.NDArray[np.int64] = np.arange(total, dtype=np.int64) + offsets
    return out


def merge_segments(
    parts: Sequence[tuple[Segment, npt.NDArray[np.bool_] | None]],
    links: Mapping[tuple[str, int], DocLinks],
    ann_min_rows: int,
) -> Segment:
    """One segment of the live documents of `parts` (segment, deleted documents), in order,
    each with its newest links (`links` overrides a segment's own)."""
    pick: list[tuple[Segment, int]] = []
    rows_of, sentences_of, row_maps = [], [], []
    next_row = 0
    for segment, deleted in parts:
        docs = np.flatnonzero(~deleted) if deleted is not None else np.arange(segment.n_docs)
        pick.extend((segment, int(d)) for d in docs)
        doc_rows = np.asarray(segment.doc_rows, np.int64)[docs]
        rows = _ranges(doc_rows[:, 0], doc_rows[:, 0] + doc_rows[:, 1])
        spans = np.asarray(segment.passage_sentences, np.int64)[rows]
        rows_of.append(rows)
        sentences_of.append(_ranges(spans[:, 0], spans[:, 1]))
        row_map = np.full(segment.n_rows, -1, np.int64)
        row_map[rows] = np.arange(next_row, next_row + len(rows))
        next_row += len(rows)
        row_maps.append(row_map)
    postings = Postings.merge([(segment.postings, row_map)
                               for (segment, _), row_map in zip(parts, row_maps, strict=True)])
    segments = [segment for segment, _ in parts]
    dim = segments[0].dim

    def gather(name: str, index: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.generic]:
        return np.concatenate([np.asarray(getattr(s, name))[i] for s, i in
                               zip(segments, index, strict=True)])

    counts = np.concatenate([np.diff(np.asarray(s.passage_sentences, np.int64)[r], axis=1)[:, 0]
                             for s, r in zip(segments, rows_of, strict=True)])
    ends = np.cumsum(counts)
    ptr, ids = _sentence_terms(segments, sentences_of, postings)
    texts = [segment.texts.text(doc).encode("utf-8") for segment, doc in pick]
    offsets = np.zeros(len(pick) + 1, np.int64)
    np.cumsum([len(t) for t in texts], out=offsets[1:])
    per_doc = np.array([len(segment.rows_of(doc)) for segment, doc in pick], np.int64)
    doc_links = [links.get((segment.name, doc)) or segment.links_of(doc) for segment, doc in pick]
    return Segment(
        name="seg-merge",
        doc_ids=[s.doc_ids[d] for s, d in pick],
        release_ids=[s.release_ids[d] for s, d in pick],
        langs=np.array([s.langs[d] for s, d in pick], np.int8),
        dates=[s.dates[d] for s, d in pick],
        titles=[s.titles[d] for s, d in pick],
        urls=[s.urls[d] for s, d in pick],
        counterpart_docs=[link.counterpart_doc for link in doc_links],
        pages=[s.pages[d] for s, d in pick],
        hashes=np.array([bytes(s.hashes[d]) for s, d in pick], dtype="S64"),
        texts=Texts(b"".join(texts), offsets),
        text_offsets=offsets,
        doc_rows=np.column_stack([np.cumsum(per_doc) - per_doc, per_doc]).astype(np.int32),
        passages=gather("passages", rows_of).astype(np.int32),
        passage_sentences=np.column_stack([ends - counts, ends]).astype(np.int32),
        sentences=gather("sentences", sentences_of).astype(np.int32),
        sentence_vectors=gather("sentence_vectors", sentences_of).astype(np.int8),
        sentence_scales=gather("sentence_scales", sentences_of).astype(np.float32),
        sentence_term_ptr=ptr,
        sentence_term_ids=ids,
        links=np.concatenate([link.ranges for link in doc_links]).astype(np.float32)
        if doc_links else np.zeros((0, 3), np.float32),
        sentence_links=np.concatenate([
            sized_sentence_links(link, len(segment.sentences_of(doc)))
            for link, (segment, doc) in zip(doc_links, pick, strict=True)
        ]).astype(np.float32) if doc_links else np.zeros((0, 3), np.float32),
        dense=FaissDense.build(
            np.concatenate([s.dense.vectors(r) for s, r in zip(segments, rows_of, strict=True)])
            if next_row else np.zeros((0, dim), np.float32),
            ann_min_rows,
        ),
        postings=postings,
    )


def _sentence_terms(
    segments: Sequence[Segment], sentences_of: Sequence[npt.NDArray[np.int64]],
    postings: Postings,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """The kept sentences' term ids, mapped from each segment's vocabulary into the merged one
    (CSR: pointers and ids)."""
    lengths, ids = [], []
    for segment, sentences in zip(segments, sentences_of, strict=True):
        to_merged = np.fromiter((postings.term_id(t) for t in segment.postings.vocab), np.int64,
                                count=len(segment.postings.vocab))
        ptr = np.asarray(segment.sentence_term_ptr, np.int64)
        starts, ends = ptr[sentences], ptr[sentences + 1]
        lengths.append(ends - starts)
        ids.append(to_merged[np.asarray(segment.sentence_term_ids, np.int64)[_ranges(starts,
                                                                                   ends)]])
    all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    pointers = np.concatenate([[0], np.cumsum(all_lengths)]).astype(np.int64)
    merged = np.concatenate(ids).astype(np.int32) if ids else np.zeros(0, np.int32)
    return pointers, merged
