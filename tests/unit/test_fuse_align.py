"""Fusion arithmetic and the monotonic passage alignment on constructed cases."""

from __future__ import annotations

import numpy as np
import pytest

from index.align import align_passages, counterpart_ranges
from index.fuse import fuse_min_max, fuse_rrf, min_max, top_rows


def test_min_max_scales_to_unit_range() -> None:
    assert min_max({1: 2.0, 2: 4.0, 3: 3.0}) == {1: 0.0, 2: 1.0, 3: 0.5}
    assert min_max({5: 7.0}) == {5: 1.0}
    assert min_max({}) == {}


def test_linear_fusion_weights_lists() -> None:
    dense = {1: 0.9, 2: 0.5}
    lexical = {2: 10.0, 3: 2.0}
    fused = fuse_min_max([dense, lexical], [0.7, 0.3])
    assert fused == pytest.approx({1: 0.7, 2: 0.3, 3: 0.0})


def test_rrf_uses_ranks_not_scores() -> None:
    fused = fuse_rrf([{1: 100.0, 2: 1.0}, {2: 0.3, 1: 0.2}], [1.0, 1.0], k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[2] == pytest.approx(1 / 62 + 1 / 61)


def test_top_rows_breaks_ties_by_row() -> None:
    assert top_rows({3: 1.0, 1: 1.0, 2: 0.5}, 2) == [(1, 1.0), (3, 1.0)]


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_alignment_recovers_one_to_one_order() -> None:
    rng = np.random.default_rng(0)
    a = _unit(rng.standard_normal((6, 64)))
    b = _unit(a + 0.05 * rng.standard_normal((6, 64)))
    beads = align_passages(a, b)
    assert [(x.a_start, x.a_end, x.b_start, x.b_end) for x in beads] == [
        (i, i + 1, i, i + 1) for i in range(6)
    ]


def test_alignment_joins_a_passage_split_in_two() -> None:
    rng = np.random.default_rng(1)
    topics = _unit(rng.standard_normal((4, 64)))
    a = topics
    # Side b splits topic 1 into two halves that together point at it.
    half = _unit(rng.standard_normal((1, 64)))
    b = _unit(
        np.vstack([topics[0], topics[1] + half[0], topics[1] - half[0], topics[2], topics[3]])
    )
    beads = align_passages(a, b)
    spans = [(x.a_start, x.a_end, x.b_start, x.b_end) for x in beads]
    assert spans == [(0, 1, 0, 1), (1, 2, 1, 3), (2, 3, 3, 4), (3, 4, 4, 5)]
    ranges_a, ranges_b = counterpart_ranges(beads, 4, 5)
    assert ranges_a[1, :2].tolist() == [1, 3]
    assert ranges_b[1, :2].tolist() == ranges_b[2, :2].tolist() == [1, 2]


def test_alignment_leaves_unrelated_passage_unaligned() -> None:
    rng = np.random.default_rng(2)
    a = _unit(rng.standard_normal((5, 64)))
    extra = _unit(rng.standard_normal((1, 64)))
    b = np.vstack([a[:2], extra, a[2:]])
    beads = align_passages(a, b)
    assert all(not (x.b_start <= 2 < x.b_end) for x in beads)
    assert [(x.a_start, x.b_start) for x in beads] == [(0, 0), (1, 1), (2, 3), (3, 4), (4, 5)]


def test_alignment_of_empty_side_is_empty() -> None:
    assert align_passages(np.zeros((0, 4), np.float32), np.ones((2, 4), np.float32)) == []
