"""Ranking over any `SearchSource`: hybrid fusion, the cross-lingual pivot, and language
restriction that never reorders.

Pure functions of (source, query vectors, query terms); the view supplies those. Rows are the
source's own passage rows. The source gathers each query's candidates (passage vectors, BM25,
best sentence); fusion, the pivot through the alignment and the own-language rule live here
once, whatever stores the passages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from index.embed import Matrix
from index.search.fuse import RankedList, fuse_min_max, fuse_rrf, top_rows
from index.search.lexicon import default_lexicon, glossed_terms
from index.search.snapshot_source import SnapshotSource
from index.search.source import Ask, Filters, Mode, SearchSource, Where
from index.store.snapshot import Snapshot

# Passages whose sentences are scored, in multiples of the dense candidates.
SENTENCE_POOL = 2
MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")
Fusion = Literal["minmax", "rrf"]

__all__ = ["MODES", "Filters", "Mode", "SearchParams", "Where", "pivot_to", "ranked_lists",
           "search_rows"]


@dataclass(frozen=True, slots=True)
class SearchParams:
    """Tuning knobs; defaults chosen on the XQuAD dev split (see `qiao eval xquad`)."""

    candidates: int = 50
    lexical_weight: float = 0.3
    # Lexical weight when the query is not in the language searched: only names and numbers
    # can match across languages, so BM25 is mostly noise there.
    cross_lexical_weight: float = 0.1
    # ...except for a Chinese query over English passages, whose words' dictionary glosses
    # (index.search.lexicon) join its terms: on XQuAD dev zh→en with only English indexed,
    # hit@1 0.790 → 0.854 (articles 0–11 / 12–23: 0.789 / 0.790 → 0.851 / 0.858; 0.1 and 0.3
    # gave less). An English query's reverse glosses were too ambiguous: +0.008 at 0.1, −0.08
    # at 0.4 on en→zh with only Chinese indexed.
    glossed_lexical_weight: float = 0.2
    gloss: bool = True
    # Share of the dense score that comes from the passage's best-matching sentence.
    sentence_weight: float = 0.5
    fusion: Fusion = "minmax"
    pivot: bool = True
    pivot_weight: float = 0.85
    rrf_k: int = 60


def ranked_lists(
    source: SearchSource,
    vectors: Matrix,
    terms: Sequence[Sequence[str]],
    where: Where,
    mode: Mode,
    params: SearchParams,
    lexical_weights: Sequence[float] | None = None,
) -> list[dict[int, float]]:
    """Per query, the fused {row: score} among the rows passing `where`, scores comparable
    within a query (see `ranked_many`)."""
    return ranked_many(source, [(Ask(vectors, terms, where), lexical_weights)], mode, params)[0]


def ranked_many(
    source: SearchSource,
    asks: Sequence[tuple[Ask, Sequence[float] | None]],
    mode: Mode,
    params: SearchParams,
) -> list[list[dict[int, float]]]:
    """For independent asks (each with its queries' lexical weights, None for the same-language
    `lexical_weight`), per query, the fused {row: score} among the rows passing the ask's
    `where`: one candidate call for all.

    Dense evidence is the passage vector and, with `sentence_weight`, the passage's best
    sentence; lexical evidence is BM25, weighted down for cross-lingual queries. Sentences are
    scored for a wider pool (twice the dense candidates, and the lexical ones), of which the
    `candidates` passages with the best sentences count: on XQuAD this matched, within 0.3
    points of hit@1 in every setting, an exact search over every sentence of the index.
    """
    c = params.candidates
    s = params.sentence_weight
    live = [i for i, (ask, _) in enumerate(asks) if not source.is_empty(ask.where)]
    found = source.candidates([asks[i][0] for i in live], mode, c, SENTENCE_POOL * c, s > 0)
    out: list[list[dict[int, float]]] = [[{} for _ in ask.terms] for ask, _ in asks]
    for i, candidates in zip(live, found, strict=True):
        weights = asks[i][1]
        fused: list[dict[int, float]] = []
        for q, f in enumerate(candidates):
            if mode == "lexical":
                fused.append(dict(f.lexical))
                continue
            if mode == "dense":
                w = 0.0
            elif weights is not None:
                w = weights[q]
            else:
                w = params.lexical_weight
            dense = dict(top_rows(f.dense, c))
            lists: list[RankedList] = [dense, f.sentences, f.lexical]
            fused.append(_fuse(lists, [(1.0 - w) * (1.0 - s), (1.0 - w) * s, w], params))
        out[i] = fused
    return out


def _fuse(lists: list[RankedList], weights: list[float], params: SearchParams) -> dict[int, float]:
    if params.fusion == "rrf":
        return fuse_rrf(lists, weights, params.rrf_k)
    return fuse_min_max(lists, weights)


def pivot_to(source: SearchSource, hits: dict[int, float], target: Where) -> dict[int, float]:
    """Map source-language hits onto their aligned passages in the other language version."""
    aligned = source.aligned(hits)
    allowed = source.passing({row for rows in aligned.values() for row in rows}, target)
    out: dict[int, float] = {}
    for row, score in hits.items():
        for target_row in aligned.get(row, ()):
            if target_row in allowed:
                out[target_row] = max(out.get(target_row, 0.0), score)
    return out


def _own_language(
    source: SearchSource, vectors: Matrix, terms: Sequence[Sequence[str]], target: Where,
    k: int, mode: Mode, params: SearchParams,
) -> list[dict[int, float]]:
    """Results restricted to the queries' own language: the unrestricted results with the other
    language left out, so restricting never reorders them (fusion normalises each list over its
    candidates, and a narrower candidate set would move the scores). Only when fewer than k
    remain are the restricted results appended, after them and in their own order."""
    wide = ranked_lists(source, vectors, terms, Where(None, target.filters), mode, params)
    allowed = source.passing({row for line in wide for row in line}, target)
    kept = [{row: score for row, score in line.items() if row in allowed} for line in wide]
    short = [i for i, line in enumerate(kept) if len(line) < k]
    if short:
        narrow = ranked_lists(source, vectors[short], [terms[i] for i in short], target,
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
    source: SearchSource | Snapshot,
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
    if isinstance(source, Snapshot):
        source = SnapshotSource(source)
    target = Where(lang, filters)
    results: list[dict[int, float]] = [{} for _ in query_langs]
    own = [i for i, q in enumerate(query_langs) if lang is not None and q == lang]
    if own:
        for i, line in zip(own, _own_language(source, vectors[own], [terms[i] for i in own],
                                              target, k, mode, params), strict=True):
            results[i] = line
    others = [i for i in range(len(query_langs)) if i not in set(own)]
    if not others:
        return [top_rows(r, k) for r in results]
    direct = [_across(terms[i], query_langs[i], lang, params) for i in others]
    asks: list[tuple[Ask, Sequence[float] | None]] = [
        (Ask(vectors[others], [t for t, _ in direct], target), [w for _, w in direct])]
    pivots: list[list[int]] = []
    if lang is not None and params.pivot and mode != "lexical":
        for source_lang in sorted({query_langs[i] for i in others}):
            idx = [i for i in others if query_langs[i] == source_lang]
            # The same releases and dates, in the query's own language.
            within = Where(source_lang, Filters(release_id=filters.release_id,
                                                date_from=filters.date_from,
                                                date_to=filters.date_to))
            asks.append((Ask(vectors[idx], [terms[i] for i in idx], within), None))
            pivots.append(idx)
    # The direct search and the searches to pivot from are independent: one candidate call.
    direct_lines, *found = ranked_many(source, asks, mode, params)
    for i, line in zip(others, direct_lines, strict=True):
        results[i] = line
    for idx, lines in zip(pivots, found, strict=True):
        for i, src in zip(idx, lines, strict=True):
            pivot = pivot_to(source, src, target)
            if pivot:
                w = params.pivot_weight
                results[i] = _fuse([results[i], pivot], [1.0 - w, w], params)
    return [top_rows(r, k) for r in results]


def _across(terms: Sequence[str], query_lang: str, lang: str | None, params: SearchParams
            ) -> tuple[Sequence[str], float]:
    """The terms and lexical weight of a query searching passages of `lang` (None: any)."""
    if lang is None:
        return terms, params.lexical_weight
    if params.gloss and query_lang == "zh" and lang == "en":
        return glossed_terms(default_lexicon(), terms), params.glossed_lexical_weight
    return terms, params.cross_lexical_weight
