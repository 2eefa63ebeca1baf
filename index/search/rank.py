"""Search over one Snapshot: dense, lexical, hybrid fusion, and the cross-lingual pivot.

Pure functions of (snapshot, query vectors, query terms); the view supplies those. Rows are the
snapshot's global passage rows. Each segment is searched for its own top candidates and the
lists are merged; the best-sentence evidence is scored over the candidates' own sentences only
(no index over all sentences), so a search costs a few candidates' worth of sentence vectors
whatever the size of the archive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from index.embed import Matrix
from index.indexes.lexical import SegmentTerms, bm25_top_k
from index.search.fuse import RankedList, fuse_min_max, fuse_rrf, top_rows
from index.store.snapshot import Mask, Snapshot

Mode = Literal["hybrid", "dense", "lexical"]
# Passages whose sentences are scored, in multiples of the dense candidates.
SENTENCE_POOL = 2
MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")
Fusion = Literal["minmax", "rrf"]


@dataclass(frozen=True, slots=True)
class Filters:
    """Restrict results; all given conditions must hold. Dates are inclusive."""

    release_id: str | None = None
    doc_id: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None


@dataclass(frozen=True, slots=True)
class SearchParams:
    """Tuning knobs; defaults chosen on the XQuAD dev split (see `qiao eval xquad`)."""

    candidates: int = 50
    lexical_weight: float = 0.3
    # Lexical weight when the query is not in the language searched: only names and numbers
    # can match across languages, so BM25 is mostly noise there.
    cross_lexical_weight: float = 0.1
    # Share of the dense score that comes from the passage's best-matching sentence.
    sentence_weight: float = 0.5
    fusion: Fusion = "minmax"
    pivot: bool = True
    pivot_weight: float = 0.85
    rrf_k: int = 60


def _mask_for(snapshot: Snapshot, lang: str | None, filters: Filters) -> Mask | None:
    """Rows allowed by `lang` and `filters`; None when nothing is filtered (all live rows)."""
    if lang is None and filters == Filters():
        return None
    return snapshot.allowed_rows(
        lang=lang,
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
) -> list[dict[int, float]]:
    """Per query, the k best rows by passage vector: each segment's top k, merged. `exact`
    searches approximate segments exhaustively (to measure their recall)."""
    n = len(vectors)
    merged: list[dict[int, float]] = [{} for _ in range(n)]
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
) -> list[dict[int, float]]:
    """Per query, the k best rows by BM25 over the whole index's statistics."""
    pieces = _per_segment(snapshot, mask)
    parts = [
        SegmentTerms(segment.postings, snapshot.segment_live(i), allowed)
        for i, (segment, allowed) in enumerate(zip(snapshot.segments, pieces, strict=True))
    ]
    out: list[dict[int, float]] = []
    for query in terms:
        line: dict[int, float] = {}
        found = bm25_top_k(parts, query, k, snapshot.n_live, snapshot.live_length)
        for i, (rows, scores) in enumerate(found):
            base = int(snapshot.base[i])
            line.update(zip((base + rows).tolist(), scores.tolist(), strict=True))
        out.append(dict(top_rows(line, k)))
    return out


def best_sentence_scores(
    snapshot: Snapshot, rows: Sequence[int], vector: Matrix
) -> dict[int, float]:
    """{row: similarity of the query to the row's best-matching sentence}, for `rows` only."""
    if not rows:
        return {}
    wanted = np.asarray(sorted(rows), np.int64)
    segs, locals_ = snapshot.locate(wanted)
    out: dict[int, float] = {}
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


def ranked_lists(
    snapshot: Snapshot,
    vectors: Matrix,
    terms: Sequence[Sequence[str]],
    mask: Mask | None,
    mode: Mode,
    params: SearchParams,
    cross_lingual: Sequence[bool] | None = None,
) -> list[dict[int, float]]:
    """Per query, the fused {row: score} among `mask` rows (None: all live rows), scores
    comparable within a query.

    Dense evidence is the passage vector and, with `sentence_weight`, the passage's best
    sentence; lexical evidence is BM25, weighted down for `cross_lingual` queries. Sentences are
    scored for a wider pool (twice the dense candidates, and the lexical ones), of which the
    `candidates` passages with the best sentences count: on XQuAD this matched, within 0.3
    points of hit@1 in every setting, an exact search over every sentence of the index.
    """
    n = len(terms)
    if snapshot.n_live == 0 or (mask is not None and not mask.any()):
        return [{} for _ in range(n)]
    c = params.candidates
    empty: list[dict[int, float]] = [{} for _ in range(n)]
    dense, lexical, pool = empty, empty, empty
    if mode != "lexical":
        pool = dense_lists(snapshot, vectors, mask, SENTENCE_POOL * c)
        dense = [dict(top_rows(line, c)) for line in pool]
    if mode != "dense":
        lexical = lexical_lists(snapshot, terms, mask, c)
    if mode == "lexical":
        return lexical
    s = params.sentence_weight
    out: list[dict[int, float]] = []
    for i in range(n):
        if mode == "dense":
            w = 0.0
        elif cross_lingual is not None and cross_lingual[i]:
            w = params.cross_lexical_weight
        else:
            w = params.lexical_weight
        sentences: dict[int, float] = {}
        if s > 0:
            scored = best_sentence_scores(snapshot, [*pool[i], *lexical[i]], vectors[i])
            sentences = dict(top_rows(scored, c))
        lists: list[RankedList] = [dense[i], sentences, lexical[i]]
        out.append(_fuse(lists, [(1.0 - w) * (1.0 - s), (1.0 - w) * s, w], params))
    return out


def _fuse(lists: list[RankedList], weights: list[float], params: SearchParams) -> dict[int, float]:
    if params.fusion == "rrf":
        return fuse_rrf(lists, weights, params.rrf_k)
    return fuse_min_max(lists, weights)


def pivot_to(
    snapshot: Snapshot, source: dict[int, float], target_mask: Mask | None
) -> dict[int, float]:
    """Map source-language hits onto their aligned passages in the other language version."""
    out: dict[int, float] = {}
    for row, score in source.items():
        key, ordinal = snapshot.key_of_row(row)
        links = snapshot.links(key)
        first, end, _ = (float(x) for x in links.ranges[ordinal])
        target = snapshot.key_of(links.counterpart_doc or "")
        if first < 0 or target is None:
            continue
        rows = snapshot.rows_of(target)
        for target_row in range(rows.start + int(first), rows.start + int(end)):
            if target_mask is None or target_mask[target_row]:
                out[target_row] = max(out.get(target_row, 0.0), score)
    return out


def _own_language(
    snapshot: Snapshot, vectors: Matrix, terms: Sequence[Sequence[str]], target_mask: Mask,
    k: int, mode: Mode, filters: Filters, params: SearchParams,
) -> list[dict[int, float]]:
    """Results restricted to the queries' own language: the unrestricted results with the other
    language left out, so restricting never reorders them (fusion normalises each list over its
    candidates, and a narrower candidate set would move the scores). Only when fewer than k
    remain are the restricted results appended, after them and in their own order."""
    wide = ranked_lists(snapshot, vectors, terms, _mask_for(snapshot, None, filters), mode,
                        params)
    kept = [{row: score for row, score in line.items() if target_mask[row]} for line in wide]
    short = [i for i, line in enumerate(kept) if len(line) < k]
    if short:
        narrow = ranked_lists(snapshot, vectors[short], [terms[i] for i in short], target_mask,
                              mode, params)
        for i, line in zip(short, narrow, strict=True):
            floor = min(kept[i].values(), default=0.0)
            top = max(line.values(), default=0.0)
            for row, score in line.items():
                if row not in kept[i]:
                    # Below every kept score, in the restricted order.
                    kept[i][row] = floor - 1.0 - (top - score)
    return kept


def search_rows(
    snapshot: Snapshot,
    vectors: Matrix,
    terms: Sequence[Sequence[str]],
    query_langs: Sequence[str],
    k: int,
    lang: str | None,
    mode: Mode,
    filters: Filters,
    params: SearchParams,
) -> list[list[tuple[int, float]]]:
    """Top-k (row, score) per query.

    With a target `lang` equal to a query's language, the results are the unrestricted ones in
    that language (see `_own_language`). With a target `lang` different from a query's
    language, the query also searches passages in its own language and pivots them through the
    alignment onto `lang` passages of the same release; both lists are fused. That is what
    finds the Chinese passage for an English question when the release exists in both
    languages.
    """
    target_mask = _mask_for(snapshot, lang, filters)
    results: list[dict[int, float]] = [{} for _ in query_langs]
    own = [i for i, q in enumerate(query_langs) if lang is not None and q == lang]
    if own:
        assert target_mask is not None  # lang is set
        for i, line in zip(own, _own_language(snapshot, vectors[own], [terms[i] for i in own],
                                              target_mask, k, mode, filters, params),
                           strict=True):
            results[i] = line
    others = [i for i in range(len(query_langs)) if i not in set(own)]
    if not others:
        return [top_rows(r, k) for r in results]
    cross = [lang is not None for _ in others]
    direct = ranked_lists(snapshot, vectors[others], [terms[i] for i in others], target_mask,
                          mode, params, cross)
    for i, line in zip(others, direct, strict=True):
        results[i] = line
    if lang is not None and params.pivot and mode != "lexical":
        for source_lang in {query_langs[i] for i in others}:
            idx = [i for i in others if query_langs[i] == source_lang]
            source_mask = _mask_for(
                snapshot,
                source_lang,
                Filters(
                    release_id=filters.release_id,
                    date_from=filters.date_from,
                    date_to=filters.date_to,
                ),
            )
            source = ranked_lists(
                snapshot, vectors[idx], [terms[i] for i in idx], source_mask, mode, params
            )
            for i, src in zip(idx, source, strict=True):
                pivot = pivot_to(snapshot, src, target_mask)
                if pivot:
                    w = params.pivot_weight
                    results[i] = _fuse([results[i], pivot], [1.0 - w, w], params)
    return [top_rows(r, k) for r in results]
