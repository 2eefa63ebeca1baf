"""Passage alignment between two language versions of a release.

A monotonic dynamic programme over the passage similarity matrix, with "beads" that join up to
three consecutive passages on either side (paragraph granularity differs between languages) and
skips for passages with no counterpart. A bead earns its similarity above the release's median
similarity, less a penalty per merged passage (summing vectors averages noise away, so merging
must earn its place); a skip costs a little. Order matters as much as similarity: translations keep
the order of paragraphs, so position breaks ties that similarity alone gets wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from index.embed import Matrix

# Beads: (passages taken from side a, passages taken from side b).
_BEADS: tuple[tuple[int, int], ...] = (
    (1, 1),
    (1, 2),
    (2, 1),
    (1, 3),
    (3, 1),
    (2, 2),
    (1, 0),
    (0, 1),
)
_MERGE_PENALTY = 0.01  # per extra passage in a bead: merging averages out noise, so it must earn it
_MIN_BAND = 30
_BAND_SHARE = 0.05
_SKIP_COST = 0.01  # leaving a passage unaligned costs a little, so a true split is joined


@dataclass(frozen=True, slots=True)
class Bead:
    """Passages a[a_start:a_end] are a translation of b[b_start:b_end] (both non-empty)."""

    a_start: int
    a_end: int
    b_start: int
    b_end: int
    score: float


def _normalised(v: npt.NDArray[Any], dtype: type[np.floating[Any]] = np.float32
                ) -> npt.NDArray[Any]:
    """Rows of `v` scaled to unit length, as `dtype`."""
    v = np.asarray(v, dtype)
    out: npt.NDArray[Any] = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    return out


def align_passages(a: Matrix, b: Matrix, min_margin: float = 0.0) -> list[Bead]:
    """Align passage vectors `a` (n, d) and `b` (m, d); returns the aligned beads in order.

    A bead's score is the cosine between the normalised sums of its passages' vectors. The
    baseline is the median similarity of the release (so unrelated pairs score below zero); a bead
    is kept only if it beats the baseline by more than `min_margin`.
    """
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return []
    if n == m == 1:
        # Two one-passage versions of a release translate each other; there is no baseline to
        # judge the similarity against.
        return [Bead(0, 1, 0, 1, float(_normalised(a)[0] @ _normalised(b)[0]))]
    cum_a = np.vstack([np.zeros((1, a.shape[1]), np.float32), np.cumsum(a, axis=0)])
    cum_b = np.vstack([np.zeros((1, b.shape[1]), np.float32), np.cumsum(b, axis=0)])
    baseline = float(np.median(a @ b.T)) if n * m > 1 else 0.0

    best = np.full((n + 1, m + 1), -np.inf)
    back = np.zeros((n + 1, m + 1, 2), dtype=np.int64)
    best[0, 0] = 0.0
    # Bead scores for all cells at once per bead shape: vectorised over the grid.
    gains: dict[tuple[int, int], np.ndarray] = {}
    for da, db in _BEADS:
        if da == 0 or db == 0:
            continue
        va = _normalised(cum_a[da:] - cum_a[:-da])  # (n - da + 1, d): sums of da passages
        vb = _normalised(cum_b[db:] - cum_b[:-db])
        gains[(da, db)] = va @ vb.T - baseline - _MERGE_PENALTY * (da + db - 2)
    # Translations keep paragraph order, so only cells near the diagonal are searched; the band
    # keeps long documents (thousands of passages) from a quadratic blow-up.
    band = max(_MIN_BAND, int(_BAND_SHARE * max(n, m)))
    for i in range(n + 1):
        centre = i * m // n
        for j in range(max(0, centre - band), min(m, centre + band) + 1):
            if i == 0 and j == 0:
                continue
            for da, db in _BEADS:
                pi, pj = i - da, j - db
                if pi < 0 or pj < 0 or best[pi, pj] == -np.inf:
                    continue
                step = -_SKIP_COST if da == 0 or db == 0 else float(gains[(da, db)][pi, pj])
                if best[pi, pj] + step > best[i, j]:
                    best[i, j] = best[pi, pj] + step
                    back[i, j] = (da, db)
    beads: list[Bead] = []
    i, j = n, m
    while i > 0 or j > 0:
        da, db = (int(x) for x in back[i, j])
        if da and db:
            va = _normalised(cum_a[i] - cum_a[i - da])
            vb = _normalised(cum_b[j] - cum_b[j - db])
            score = float(va @ vb)
            if score - baseline > min_margin:
                beads.append(Bead(i - da, i, j - db, j, score))
        i, j = i - da, j - db
    beads.reverse()
    return beads


def counterpart_ranges(beads: list[Bead], n_a: int, n_b: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-passage counterparts for both sides as float64 arrays (n, 3): [first, end, score].

    Passage i of side a aligns with passages [first, end) of side b (and vice versa for the
    second array); rows with no counterpart hold -1 in all three columns.
    """
    ranges_a = np.full((n_a, 3), -1.0)
    ranges_b = np.full((n_b, 3), -1.0)
    for bead in beads:
        ranges_a[bead.a_start : bead.a_end] = (bead.b_start, bead.b_end, bead.score)
        ranges_b[bead.b_start : bead.b_end] = (bead.a_start, bead.a_end, bead.score)
    return ranges_a, ranges_b


def project_sentence_beads(
    beads: list[Bead],
    passage_of_a: np.ndarray,
    passage_of_b: np.ndarray,
    weight_a: np.ndarray,
    weight_b: np.ndarray,
    n_a: int,
    n_b: int,
    min_share: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """Passage counterparts (as in `counterpart_ranges`) from beads aligned between *sentences*.

    `passage_of_a[i]` is the passage ordinal of sentence i of side a, `weight_a[i]` its length.
    Aligning sentences and projecting to passages keeps a passage from landing one passage off
    when the two versions break paragraphs differently: passage p's counterpart is the range of
    the other side's passages that hold its aligned sentences, trimmed at either end of passages
    holding less than `min_share` of the aligned weight (a sentence spilling over a boundary).
    """
    ranges_a = np.full((n_a, 3), -1.0)
    ranges_b = np.full((n_b, 3), -1.0)
    _project(beads, passage_of_a, passage_of_b, weight_b, ranges_a, min_share, a_side=True)
    _project(beads, passage_of_b, passage_of_a, weight_a, ranges_b, min_share, a_side=False)
    return ranges_a, ranges_b


def _project(
    beads: list[Bead],
    passage_of_own: np.ndarray,
    passage_of_other: np.ndarray,
    weight_other: np.ndarray,
    out: np.ndarray,
    min_share: float,
    *,
    a_side: bool,
) -> None:
    # own passage -> {other passage: aligned weight}, and the bead scores that fed it
    weights: dict[int, dict[int, float]] = {}
    scores: dict[int, list[float]] = {}
    for bead in beads:
        own = range(bead.a_start, bead.a_end) if a_side else range(bead.b_start, bead.b_end)
        other = range(bead.b_start, bead.b_end) if a_side else range(bead.a_start, bead.a_end)
        for p in {int(passage_of_own[i]) for i in own}:
            held = weights.setdefault(p, {})
            for j in other:
                q = int(passage_of_other[j])
                held[q] = held.get(q, 0.0) + float(weight_other[j])
            scores.setdefault(p, []).append(bead.score)
    for p, held in weights.items():
        total = sum(held.values())
        kept = sorted(q for q, w in held.items() if w >= min_share * total)
        if not kept:  # every share is small: take the heaviest
            kept = [max(held, key=lambda q: held[q])]
        out[p] = (kept[0], kept[-1] + 1, float(np.mean(scores[p])))


LINK_FEATURES = ("margin", "first", "shared", "gain")


@dataclass(frozen=True, slots=True)
class LinkModel:
    """P(an aligned sentence is linked to its published translation): a logistic model over
    the features of the link (`LINK_FEATURES`, see `link_features`). Fitted by
    scripts/calibrate_alignment.py on parallel news as published, with sentences dropped and
    with sentences joined."""

    margin: float
    first: float
    shared: float
    gain: float
    bias: float

    def confidence(self, features: npt.ArrayLike) -> npt.NDArray[np.float64]:
        f = np.asarray(features, np.float64).reshape(-1, len(LINK_FEATURES))
        z = f @ np.array([self.margin, self.first, self.shared, self.gain]) + self.bias
        out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))
        return out


# A link at or above this confidence is taken as the translation.
LINK_CONFIDENT = 0.5
LINK_MODEL = LinkModel(margin=29.03, first=2.6, shared=-1.96, gain=1.26, bias=2.54)
MARGIN_NEIGHBOURS = 4
_MAX_SHARED = 3


def link_features(own: Matrix, other: Matrix, links: npt.NDArray[np.float64]
                  ) -> npt.NDArray[np.float64]:
    """Features of each sentence link of one side (`links` as from `counterpart_ranges`, over
    sentence vectors `own` and `other`): a row per sentence in `LINK_FEATURES` order, zeros
    where a sentence has no link.

    A cosine alone does not tell a translation from a sentence on the same topic (both are
    high); these do: margin = the sentence's best cosine within its linked range less the mean
    of its `MARGIN_NEIGHBOURS` best cosines outside it; first = 1 when no other sentence of its
    side matches the linked range better; shared = how many other sentences of its side link
    to the same range (a sentence without a translation is merged into a neighbour's bead);
    gain = how much the sentence adds to the cosine between the range and the sentences
    sharing it (a translator's join adds, an intruder does not; 0 when not shared).
    """
    n = len(own)
    out = np.zeros((n, len(LINK_FEATURES)))
    if n == 0 or len(other) == 0:
        return out
    own64, other64 = own.astype(np.float64), other.astype(np.float64)
    sims = _normalised(own64, np.float64) @ _normalised(other64, np.float64).T
    firsts = links[:, 0].astype(np.int64)
    for i in np.flatnonzero(firsts >= 0):
        lo, hi = int(links[i, 0]), int(links[i, 1])
        best = float(sims[i, lo:hi].max())
        outside = np.concatenate([sims[i, :lo], sims[i, hi:]])
        near = np.sort(outside)[-MARGIN_NEIGHBOURS:] if len(outside) else np.zeros(1)
        column = sims[:, lo:hi].max(axis=1)
        group = np.flatnonzero(firsts == lo)
        gain = 0.0
        if len(group) > 1:
            target = _normalised(other64[lo:hi].sum(axis=0), np.float64)
            others = group[group != i]
            gain = float(_normalised(own64[group].sum(axis=0), np.float64) @ target
                         - _normalised(own64[others].sum(axis=0), np.float64) @ target)
        out[i] = (best - float(near.mean()), float(column[i] >= column.max()),
                  min(len(group) - 1, _MAX_SHARED), gain)
    return out


def link_confidences(own: Matrix, other: Matrix, links: npt.NDArray[np.float64]
                     ) -> npt.NDArray[np.float64]:
    """`links` with their third column replaced by each link's confidence (`LINK_MODEL`)."""
    out = np.array(links, np.float64, copy=True)
    linked = out[:, 0] >= 0 if len(out) else np.zeros(0, bool)
    if linked.any():
        out[linked, 2] = LINK_MODEL.confidence(link_features(own, other, links)[linked])
    return out
