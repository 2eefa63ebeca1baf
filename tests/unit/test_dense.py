"""FAISS search agrees with a NumPy brute-force reference: exactly below the ANN threshold,
with high recall above it, with and without a row mask, after a round trip through the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.indexes.dense import FaissDense


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _clustered(rng: np.random.Generator, n: int, d: int, centres: int = 40) -> np.ndarray:
    # Embeddings cluster by topic; uniformly random vectors would be the worst case for IVF.
    base = _unit(rng, centres, d)
    noise = rng.standard_normal((n, d)).astype(np.float32) * (0.5 / np.sqrt(d))
    v = base[rng.integers(0, centres, n)] + noise
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


EXACT = 1 << 30  # ann_min_rows no segment reaches


def test_exact_index_matches_numpy_brute_force() -> None:
    rng = np.random.default_rng(7)
    base, queries = _unit(rng, 500, 32), _unit(rng, 20, 32)
    index = FaissDense.build(base, EXACT)
    assert index.exact
    rows, scores = index.search(queries, 10)
    reference = queries @ base.T
    expected = np.argsort(-reference, axis=1)[:, :10]
    assert (rows == expected).all()
    assert np.allclose(scores, np.take_along_axis(reference, expected, axis=1), atol=1e-5)


def test_mask_restricts_rows_like_numpy() -> None:
    rng = np.random.default_rng(11)
    base, queries = _unit(rng, 300, 16), _unit(rng, 5, 16)
    allowed = rng.random(300) < 0.2
    rows, _ = FaissDense.build(base, EXACT).search(queries, 8, allowed)
    reference = np.where(allowed, queries @ base.T, -np.inf)
    expected = np.argsort(-reference, axis=1)[:, :8]
    assert (rows == expected).all()
    assert allowed[rows[rows >= 0]].all()


def test_mask_with_fewer_rows_than_k_pads_with_minus_one() -> None:
    rng = np.random.default_rng(3)
    base = _unit(rng, 50, 8)
    allowed = np.zeros(50, bool)
    allowed[[4, 9]] = True
    rows, scores = FaissDense.build(base, EXACT).search(base[:1], 5, allowed)
    assert sorted(rows[0, :2].tolist()) == [4, 9]
    assert (rows[0, 2:] == -1).all() and np.isneginf(scores[0, 2:]).all()


def test_approximate_index_keeps_recall_and_its_vectors() -> None:
    rng = np.random.default_rng(5)
    base = _clustered(rng, 6000, 32)
    queries = _clustered(rng, 50, 32)
    index = FaissDense.build(base, ann_min_rows=1000)
    assert not index.exact
    rows, _ = index.search(queries, 10)
    truth = np.argsort(-(queries @ base.T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, truth, strict=True)])
    assert recall >= 0.9
    picked = np.array([3, 4000, 17])
    # Approximate segments keep their vectors in half precision.
    np.testing.assert_allclose(index.vectors(picked), base[picked], atol=2e-3)


@pytest.mark.parametrize("share", [0.002, 0.5])
def test_approximate_index_honours_narrow_and_wide_masks(share: float) -> None:
    rng = np.random.default_rng(9)
    base = _clustered(rng, 6000, 16)
    allowed = rng.random(6000) < share
    rows, _ = FaissDense.build(base, 1000).search(base[:4], 5, allowed)
    found = rows[rows >= 0]
    assert len(found) and allowed[found].all()
    if share < 0.01:  # a narrow filter is searched exactly: the true best of the allowed rows
        reference = np.where(allowed, base[:4] @ base.T, -np.inf)
        assert (rows[:, 0] == np.argmax(reference, axis=1)).all()


@pytest.mark.parametrize("ann_min_rows", [EXACT, 500])
def test_save_and_load_round_trip(tmp_path: Path, ann_min_rows: int) -> None:
    rng = np.random.default_rng(5)
    base = _clustered(rng, 2000, 8)
    index = FaissDense.build(base, ann_min_rows)
    index.save(tmp_path / "d.faiss")
    loaded = FaissDense.load(tmp_path / "d.faiss", index.exact)
    assert (loaded.search(base[:3], 4)[0] == index.search(base[:3], 4)[0]).all()
    np.testing.assert_allclose(loaded.vectors(np.array([7])), base[[7]],
                               atol=1e-6 if index.exact else 2e-3)
    with pytest.raises(ValueError, match="does not hold"):
        FaissDense.load(tmp_path / "d.faiss", not index.exact)
