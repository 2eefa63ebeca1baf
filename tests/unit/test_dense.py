"""FAISS search agrees with a NumPy brute-force reference, with and without a row mask."""

from __future__ import annotations

import numpy as np

from index.indexes.dense import FaissIndex


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_flat_index_matches_numpy_brute_force() -> None:
    rng = np.random.default_rng(7)
    base, queries = _unit(rng, 500, 32), _unit(rng, 20, 32)
    index = FaissIndex.from_vectors(base)
    rows, scores = index.search(queries, 10)
    reference = queries @ base.T
    expected = np.argsort(-reference, axis=1)[:, :10]
    assert (rows == expected).all()
    assert np.allclose(scores, np.take_along_axis(reference, expected, axis=1), atol=1e-5)


def test_mask_restricts_rows_like_numpy() -> None:
    rng = np.random.default_rng(11)
    base, queries = _unit(rng, 300, 16), _unit(rng, 5, 16)
    allowed = rng.random(300) < 0.2
    rows, _ = FaissIndex.from_vectors(base).search(queries, 8, allowed)
    reference = np.where(allowed, queries @ base.T, -np.inf)
    expected = np.argsort(-reference, axis=1)[:, :8]
    assert (rows == expected).all()
    assert allowed[rows[rows >= 0]].all()


def test_mask_with_fewer_rows_than_k_pads_with_minus_one() -> None:
    rng = np.random.default_rng(3)
    base = _unit(rng, 50, 8)
    allowed = np.zeros(50, bool)
    allowed[[4, 9]] = True
    rows, scores = FaissIndex.from_vectors(base).search(base[:1], 5, allowed)
    assert sorted(rows[0, :2].tolist()) == [4, 9]
    assert (rows[0, 2:] == -1).all() and np.isneginf(scores[0, 2:]).all()


def test_save_and_load_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    base = _unit(rng, 40, 8)
    index = FaissIndex.from_vectors(base)
    index.save(tmp_path / "d.faiss")
    loaded = FaissIndex.load(tmp_path / "d.faiss", "Flat")
    assert (loaded.search(base[:3], 4)[0] == index.search(base[:3], 4)[0]).all()
