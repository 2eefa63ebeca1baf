"""The embedded search source: a Snapshot's segments, searched segment by segment (FAISS for
passage vectors, BM25 postings for terms) with the whole index's statistics.

Each segment returns its own top candidates and the lists are merged; the best-sentence
evidence is scored over the candidates' own sentences only (no index over all sentences), so a
search costs a few candidates' worth of sentence vectors whatever the size of the archive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from index.embed import Matrix
from index.indexes.lexical import SegmentTerms, bm25_top_k
from index.search.fuse import top_rows
from index.search.source import Ask, Candidates, Filters, Mode, RankedList, Where
from index.store.snapshot import Mask, Snapshot


def mask_for(snapshot: Snapshot, where: Where) -> Mask | None:
    """Rows allowed by `where`; None when nothing is filtered (all live rows)."""
    if where.everything:
        return None
    filters = where.filters
    return snapshot.allowed_rows(
        lang=where.lang,
        release_ids=None if filters.release_id is None else [filters.release_id],
        doc_ids=None if filters.doc_id is None else [filters.doc_id],
        date_from=filters.date_from,
        date_to=filters.date_to,
    )


def _per_segment(snapshot: Snapshot, mask: Mask | None) -> list[Mask | None]:
    """What each segment may return: the mask's piece, or its live rows (None: all)."""
    if mask is not None:
        return list(snapshot.segment_slices(mask))
    return [snapshot.segment_live(i) for i in range(len(snapshot.segments))]


def dense_lists(
    snapshot: Snapshot, vectors: Matrix, mask: Mask | None, k: int, exact: bool = False
) -> list[RankedList]:
    """Per query, the k best rows by passage vector: each segment's top k, merged. `exact`
    searches approximate segments exhaustively (to measure their recall)."""
    n = len(vectors)
    merged: list[RankedList] = [{} for _ in range(n)]
    for i, (segment, allowed) in enumerate(
        zip(snapshot.segments, _per_segment(snapshot, mask), strict=True)
    ):
        if allowed is not None and not allowed.any():
            continue
        rows, scores = segment.dense.search(vectors, k, allowed, exact)
        base = int(snapshot.base[i])
        for q in range(n):
            line = merged[q]
            for row, score in zip(rows[q].tolist(), scores[q].tolist(), strict=True):
                if row >= 0:
                    line[base + row] = score
    return [dict(top_rows(line, k)) for line in merged]


def lexical_lists(
    snapshot: Snapshot, terms: Sequence[Sequence[str]], mask: Mask | None, k: int
) -> list[RankedList]:
    """Per query, the k best rows by BM25 over the whole index's statistics."""
    pieces = _per_segment(snapshot, mask)
    parts = [
        SegmentTerms(segment.postings, snapshot.segment_live(i), allowed)
        for i, (segment, allowed) in enumerate(zip(snapshot.segments, pieces, strict=True))
    ]
    out: list[RankedList] = []
    for query in terms:
        line: RankedList = {}
        found = bm25_top_k(parts, query, k, snapshot.n_live, snapshot.live_length)
        for i, (rows, scores) in enumerate(found):
            base = int(snapshot.base[i])
            line.update(zip((base + rows).tolist(), scores.tolist(), strict=True))
        out.append(dict(top_rows(line, k)))
    return out


def best_sentence_scores(
    snapshot: Snapshot, rows: Iterable[int], vector: Matrix
) -> RankedList:
    """{row: similarity of the query to the row's best-matching sentence}, for `rows` only."""
    wanted = np.asarray(sorted(set(rows)), np.int64)
    if not len(wanted):
        return {}
    segs, locals_ = snapshot.locate(wanted)
    out: RankedList = {}
    for seg in np.unique(segs).tolist():
        segment = snapshot.segments[seg]
        own = segs == seg
        spans = np.asarray(segment.passage_sentences[locals_[own]], np.int64)
        counts = spans[:, 1] - spans[:, 0]
        has = counts > 0
        if not has.any():
            continue
        index = np.concatenate([np.arange(a, b) for a, b in spans[has]])
        sims = segment.sentence_matrix(index) @ vector
        starts = np.concatenate([[0], np.cumsum(counts[has])[:-1]])
        best = np.maximum.reduceat(sims, starts)
        out.update(zip(wanted[own][has].tolist(), best.tolist(), strict=True))
    return out


class SnapshotSource:
    """A Snapshot as a `SearchSource`: rows are its global passage rows. Masks are computed
    once per `Where` and kept for the life of the source (one search)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._masks: dict[Where, Mask | None] = {}

    def mask(self, where: Where) -> Mask | None:
        if where not in self._masks:
            self._masks[where] = mask_for(self.snapshot, where)
        return self._masks[where]

    def is_empty(self, where: Where) -> bool:
        mask = self.mask(where)
        return self.snapshot.n_live == 0 or (mask is not None and not mask.any())

    def candidates(
        self, asks: Sequence[Ask], mode: Mode, k: int, pool: int, sentences: bool,
    ) -> list[list[Candidates]]:
        return [self._candidates(a.vectors, a.terms, a.where, mode, k, pool, sentences)
                for a in asks]

    def _candidates(
        self, vectors: Matrix, terms: Sequence[Sequence[str]], where: Where, mode: Mode,
        k: int, pool: int, sentences: bool,
    ) -> list[Candidates]:
        mask = self.mask(where)
        n = len(terms)
        empty: list[RankedList] = [{} for _ in range(n)]
        dense = empty if mode == "lexical" else dense_lists(self.snapshot, vectors, mask, pool)
        lexical = empty if mode == "dense" else lexical_lists(self.snapshot, terms, mask, k)
        out = []
        for i in range(n):
            best: RankedList = {}
            if sentences and mode != "lexical":
                scored = best_sentence_scores(self.snapshot, [*dense[i], *lexical[i]],
                                              vectors[i])
                best = dict(top_rows(scored, k))
            out.append(Candidates(dense[i], lexical[i], best))
        return out

    def passing(self, rows: Iterable[int], where: Where) -> set[int]:
        mask = self.mask(where)
        live = self.snapshot.live if mask is None else mask
        return {row for row in rows if live[row]}

    def aligned(self, rows: Iterable[int]) -> dict[int, list[int]]:
        snapshot = self.snapshot
        out: dict[int, list[int]] = {}
        for row in rows:
            key, ordinal = snapshot.key_of_row(row)
            links = snapshot.links(key)
            first, end, _ = (float(x) for x in links.ranges[ordinal])
            target = snapshot.key_of(links.counterpart_doc or "")
            if first < 0 or target is None:
                continue
            start = snapshot.rows_of(target).start
            out[row] = list(range(start + int(first), start + int(end)))
        return out


__all__ = ["Filters", "SnapshotSource", "best_sentence_scores", "dense_lists", "lexical_lists",
           "mask_for"]
