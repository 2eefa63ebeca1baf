"""Dense vector search. `DenseIndex` is the protocol; `FaissIndex` the embedded default."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np
import numpy.typing as npt

from index.embed import Matrix

Rows = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]


class DenseIndex(Protocol):
    """Inner-product search over row-numbered vectors (row = passage row)."""

    @property
    def size(self) -> int: ...

    @property
    def dim(self) -> int: ...

    def add(self, vectors: Matrix) -> None:
        """Append vectors; their rows continue from `size`."""
        ...

    def search(self, queries: Matrix, k: int, allowed: Mask | None = None) -> tuple[Rows, Scores]:
        """Top-k rows per query among `allowed` rows; padding is row -1, score -inf."""
        ...

    def save(self, path: Path) -> None: ...

    def stored_vectors(self) -> Matrix | None:
        """The vectors exactly as added, in row order, when the index keeps them (exact
        indexes); None for approximate ones."""
        ...


class FaissIndex:
    """FAISS index built with `index_factory` (default "Flat": exact inner product)."""

    def __init__(self, index: faiss.Index, factory: str) -> None:
        self._index = index
        self.factory = factory

    @classmethod
    def create(cls, dim: int, factory: str = "Flat") -> FaissIndex:
        return cls(faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT), factory)

    @classmethod
    def from_vectors(cls, vectors: Matrix, factory: str = "Flat") -> FaissIndex:
        index = cls.create(vectors.shape[1], factory)
        index.add(vectors)
        return index

    @classmethod
    def load(cls, path: Path, factory: str) -> FaissIndex:
        return cls(faiss.read_index(str(path)), factory)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def add(self, vectors: Matrix) -> None:
        if len(vectors):
            if not self._index.is_trained:
                self._index.train(vectors)
            self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(self, queries: Matrix, k: int, allowed: Mask | None = None) -> tuple[Rows, Scores]:
        n = len(queries)
        k = max(1, min(k, self.size)) if self.size else 0
        if k == 0 or n == 0:
            return np.full((n, max(k, 1)), -1, np.int64), np.full(
                (n, max(k, 1)), -np.inf, np.float32
            )
        params = None
        if allowed is not None:
            if not allowed.any():
                return np.full((n, k), -1, np.int64), np.full((n, k), -np.inf, np.float32)
            padded = np.zeros(self.size, dtype=bool)
            padded[: len(allowed)] = allowed[: self.size]
            bitmap = np.packbits(padded, bitorder="little")
            # faiss's generated stubs miss the SWIG overloads used here.
            engine: Any = faiss
            params = engine.SearchParameters(sel=engine.IDSelectorBitmap(bitmap))
        scores, rows = self._index.search(
            np.ascontiguousarray(queries, np.float32), k, params=params
        )
        scores = np.where(rows < 0, -np.inf, scores).astype(np.float32)
        return rows.astype(np.int64), scores

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    def stored_vectors(self) -> Matrix | None:
        if not isinstance(self._index, faiss.IndexFlat) or not self.size:
            return None
        vectors: Matrix = self._index.reconstruct_n(0, self.size)
        return vectors
