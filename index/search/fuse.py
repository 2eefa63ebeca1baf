"""Fusion of ranked lists (row → score) into one ranking. Pure functions over dicts/arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

RankedList = Mapping[int, float]  # row → raw score, any scale


def min_max(scores: RankedList) -> dict[int, float]:
    """Scale scores to [0, 1] within their list; a single or flat list maps to 1.0."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    span = hi - lo
    if span <= 1e-12:
        return dict.fromkeys(scores, 1.0)
    return {row: (score - lo) / span for row, score in scores.items()}


def fuse_min_max(lists: Sequence[RankedList], weights: Sequence[float]) -> dict[int, float]:
    """Weighted sum of min-max normalised scores; a row missing from a list scores 0 there."""
    fused: dict[int, float] = {}
    for scores, weight in zip(lists, weights, strict=True):
        for row, score in min_max(scores).items():
            fused[row] = fused.get(row, 0.0) + weight * score
    return fused


def fuse_rrf(
    lists: Sequence[RankedList], weights: Sequence[float], k: int = 60
) -> dict[int, float]:
    """Weighted reciprocal-rank fusion: sum of weight / (k + rank), rank from 1."""
    fused: dict[int, float] = {}
    for scores, weight in zip(lists, weights, strict=True):
        ranked = sorted(scores.items(), key=lambda item: -item[1])
        for rank, (row, _) in enumerate(ranked, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return fused


def top_rows(scores: Mapping[int, float], k: int) -> list[tuple[int, float]]:
    """The k best (row, score) pairs, ties broken by row for determinism."""
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
