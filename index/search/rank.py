"""Search over one Snapshot: dense, lexical, hybrid fusion, and the cross-lingual pivot.

Pure functions of (snapshot, query vectors, query terms); the Retriever supplies those. Rows are
the snapshot's passage rows; every function here is batch-first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from index.embed import Matrix
from index.indexes.dense import Mask
from index.search.fuse import RankedList, fuse_min_max, fuse_rrf, top_rows
from index.store.snapshot import Snapshot

Mode = Literal["hybrid", "dense", "lexical"]
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
    return snapshot.allowed_rows(
        lang=lang,
        release_ids=None if filters.release_id is None else [filters.release_id],
        doc_ids=None if filters.doc_id is None else [filters.doc_id],
        date_from=filters.date_from,
        date_to=filters.date_to,
    )


def _as_lists(rows: np.ndarray, scores: np.ndarray) -> list[dict[int, float]]:
    out: list[dict[int, float]] = []
    for row_line, score_line in zip(rows.tolist(), scores.tolist(), strict=True):
        out.append({r: s for r, s in zip(row_line, score_line, strict=True) if r >= 0})
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
    """Per query, the fused {row: score} among `mask` rows (scores comparable within a query).

    Dense evidence is the passage vector and, with `sentence_weight`, the passage's best
    sentence; lexical evidence is BM25, weighted down for `cross_lingual` queries.
    """
    n = len(terms)
    if snapshot.n_rows == 0 or (mask is not None and not mask.any()):
        return [{} for _ in range(n)]
    c = min(params.candidates, snapshot.n_rows)
    empty: list[dict[int, float]] = [{} for _ in range(n)]
    dense, sentences, lexical = empty, empty, empty
    if mode != "lexical":
        dense = _as_lists(*snapshot.dense.search(vectors, c, mask))
        if params.sentence_weight > 0:
            sentences = _best_sentence_lists(snapshot, vectors, mask, 3 * c)
    if mode != "dense":
        lexical = _as_lists(*snapshot.lexical.search(terms, c, mask))
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
        lists: list[RankedList] = [dense[i], sentences[i], lexical[i]]
        out.append(_fuse(lists, [(1.0 - w) * (1.0 - s), (1.0 - w) * s, w], params))
    return out


def _best_sentence_lists(
    snapshot: Snapshot, vectors: Matrix, mask: Mask | None, k: int
) -> list[dict[int, float]]:
    """Per query, {row: best sentence similarity} over the top-k sentences."""
    n_sentences = len(snapshot.sentence_spans)
    if n_sentences == 0:
        return [{} for _ in range(len(vectors))]
    ids, scores = snapshot.sentence_dense.search(
        vectors, min(k, n_sentences), snapshot.sentence_mask(mask)
    )
    out: list[dict[int, float]] = []
    rows_of = snapshot.sentence_spans[:, 0]
    for id_line, score_line in zip(ids.tolist(), scores.tolist(), strict=True):
        best: dict[int, float] = {}
        for sid, score in zip(id_line, score_line, strict=True):
            if sid >= 0:
                row = int(rows_of[sid])
                if score > best.get(row, -np.inf):
                    best[row] = score
        out.append(best)
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
        seg = snapshot.segment_at(row)
        first, end, _ = seg.counterparts[snapshot.ordinal_of(row)]
        if first < 0 or seg.counterpart_doc not in snapshot.segments:
            continue
        base = snapshot.row_offset[seg.counterpart_doc]
        for target in range(base + int(first), base + int(end)):
            if target_mask is None or target_mask[target]:
                out[target] = max(out.get(target, 0.0), score)
    return out


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

    With a target `lang` different from a query's language, the query also searches passages in
    its own language and pivots them through the alignment onto `lang` passages of the same
    release; both lists are fused. That is what finds the Chinese passage for an English
    question when the release exists in both languages.
    """
    target_mask = _mask_for(snapshot, lang, filters)
    cross = [lang is not None and q != lang for q in query_langs]
    direct = ranked_lists(snapshot, vectors, terms, target_mask, mode, params, cross)
    results: list[dict[int, float]] = list(direct)
    if lang is not None and params.pivot and mode != "lexical":
        for source_lang in {q for q in query_langs if q != lang}:
            idx = [i for i, q in enumerate(query_langs) if q == source_lang]
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
                    results[i] = _fuse([direct[i], pivot], [1.0 - w, w], params)
    return [top_rows(r, k) for r in results]
