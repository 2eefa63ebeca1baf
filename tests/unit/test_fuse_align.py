"""Fusion arithmetic and the monotonic passage alignment on constructed cases."""

from __future__ import annotations

import numpy as np
import pytest

from index.align import (
    LINK_CONFIDENT,
    Bead,
    align_passages,
    counterpart_ranges,
    link_confidences,
    link_features,
    project_sentence_beads,
)
from index.search.fuse import fuse_min_max, fuse_rrf, min_max, top_rows


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


def test_sentence_beads_project_onto_passages_broken_differently() -> None:
    # Side a: sentences 0-3 in passages [0, 0, 1, 1]; side b broke the paragraphs differently:
    # sentences 0-3 in passages [0, 1, 1, 2]. One-to-one sentence beads.
    beads = [Bead(i, i + 1, i, i + 1, 0.9) for i in range(4)]
    of_a, of_b = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 2])
    weight = np.array([10, 10, 10, 10])
    ranges_a, ranges_b = project_sentence_beads(beads, of_a, of_b, weight, weight, 2, 3)
    assert ranges_a[:, :2].tolist() == [[0, 2], [1, 3]]
    assert ranges_b[:, :2].tolist() == [[0, 1], [0, 2], [1, 2]]
    assert ranges_a[:, 2].tolist() == pytest.approx([0.9, 0.9])


def test_projection_trims_a_sentence_spilling_into_the_next_passage() -> None:
    # Passage 0 of side a aligns with one long sentence in b's passage 0 and a short one that b
    # put at the start of its passage 1: the spill (under a quarter of the weight) is trimmed.
    beads = [Bead(0, 1, 0, 1, 0.8), Bead(1, 2, 1, 2, 0.7), Bead(2, 3, 2, 3, 0.9)]
    of_a, of_b = np.array([0, 0, 1]), np.array([0, 1, 1])
    ranges_a, ranges_b = project_sentence_beads(
        beads, of_a, of_b, np.array([50, 5, 40]), np.array([50, 5, 40]), 2, 2
    )
    assert ranges_a[:, :2].tolist() == [[0, 1], [1, 2]]
    # b's passage 1 holds the spilled short sentence too; the other side trims it the same way.
    assert ranges_b[:, :2].tolist() == [[0, 1], [1, 2]]


def test_projection_leaves_passages_without_beads_unaligned() -> None:
    beads = [Bead(0, 1, 0, 1, 0.9)]
    ranges_a, _ = project_sentence_beads(
        beads, np.array([0, 1]), np.array([0]), np.ones(2), np.ones(1), 2, 1
    )
    assert ranges_a[1].tolist() == [-1.0, -1.0, -1.0]


def test_a_sentence_merged_into_its_neighbours_bead_gets_a_low_confidence() -> None:
    # Side b lacks the translation of a's sentence 2 (on the same topic as sentence 1); the
    # alignment put it into sentence 1's bead, as it does on real news. Only the true link is
    # confident; the ranges are kept.
    rng = np.random.default_rng(3)
    a = _unit(rng.standard_normal((8, 64)))
    a[2] = _unit(a[1:2] + 0.8 * rng.standard_normal((1, 64)))[0]
    b = _unit(np.delete(a, 2, axis=0) + 0.15 * rng.standard_normal((7, 64)))
    links = np.array([[0, 1, .9], [1, 2, .9], [1, 2, .9]] + [[i - 1, i, .9] for i in range(3, 8)])
    confident = link_confidences(a, b, links)
    assert (confident[:, :2] == links[:, :2]).all()
    assert confident[2, 2] < LINK_CONFIDENT
    assert (np.delete(confident[:, 2], 2) > LINK_CONFIDENT).all()
    # Unaligned sentences stay unaligned.
    links[2] = -1
    assert (link_confidences(a, b, links)[2] == -1).all()


def test_link_features_name_the_better_match_and_the_shared_range() -> None:
    rng = np.random.default_rng(4)
    b = _unit(rng.standard_normal((3, 16)))
    a = _unit(np.vstack([b[0], b[1], 0.3 * b[1] + rng.standard_normal((1, 16))[0], b[2]]))
    links = np.array([[0, 1, 0.9], [1, 2, 0.9], [1, 2, 0.9], [2, 3, 0.9]])
    features = link_features(a, b, links)
    margin, first, shared, gain = features.T
    assert first.tolist() == [1.0, 1.0, 0.0, 1.0]  # sentence 1 matches range 1 better than 2
    assert shared.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert margin[1] > margin[2]
    assert gain[1] > gain[2] and gain[0] == gain[3] == 0.0  # the true partner adds more
    unlinked = link_features(a, b, np.array([[-1, -1, -1]] * 4, float))
    assert (unlinked == 0).all()
