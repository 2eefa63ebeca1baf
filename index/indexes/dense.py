"""Dense vector search over one segment's passage vectors (row = the segment's passage row).

`DenseIndex` is the protocol; `FaissDense` the embedded default: an exact inner-product index
(FAISS `IndexFlatIP`) below `ann_min_rows` vectors, an approximate one from there on (FAISS
IVF with its lists trained on the segment's own vectors, the vectors kept in half precision).
Both keep the vectors themselves, so each vector is stored once, in the index file.

Queries run one thread each: the server runs searches in parallel threads, and FAISS's OpenMP
pool beside them oversubscribed the two cores (10× slower searches under load).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np
import numpy.typing as npt

from index.embed import Matrix

Rows = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]

DENSE_FILE = "dense.faiss"

# One thread per query (see the module docstring); FAISS's OpenMP pool also cost about a
# millisecond of start-up per search call on these two cores.
faiss.omp_set_num_threads(1)
# FAISS's k-means wants at least this many training vectors per list.
_POINTS_PER_LIST = 40
# A filter that leaves at most this many rows of an IVF segment is searched exactly over them:
# the probed lists might hold none of them.
_EXACT_BELOW = 4096


class DenseIndex(Protocol):
    """Inner-product search over row-numbered vectors."""

    @property
    def size(self) -> int: ...

    @property
    def dim(self) -> int: ...

    @property
    def exact(self) -> bool:
        """True when every search is exact (no approximate neighbour search)."""
        ...

    def search(self, queries: Matrix, k: int, allowed: Mask | None = None,
               exact: bool = False) -> tuple[Rows, Scores]:
        """Top-k rows per query among `allowed` rows (a mask over all rows); padding is row -1,
        score -inf. `exact` forces an exhaustive search (to measure an index's recall)."""
        ...

    def vectors(self, rows: Rows) -> Matrix:
        """The stored vectors of `rows`, in that order."""
        ...

    def save(self, path: Path) -> None: ...


def _params(index: Any, allowed: Mask | None, nprobe: int) -> Any:
    # faiss's generated stubs miss the SWIG overloads used here.
    engine: Any = faiss
    sel = None
    if allowed is not None:
        sel = engine.IDSelectorBitmap(np.packbits(allowed, bitorder="little"))
    if isinstance(index, faiss.IndexIVF):
        return engine.SearchParametersIVF(sel=sel, nprobe=nprobe)
    return engine.SearchParameters(sel=sel) if sel is not None else None


def list_count(rows: int) -> int:
    """IVF lists for a segment of `rows` vectors: about 4·√rows, at least 40 vectors each."""
    return max(1, min(int(4 * math.sqrt(rows)), rows // _POINTS_PER_LIST))


def probe_count(lists: int) -> int:
    """Lists searched per query: 1/32 of them, at least 16 (measured recall@10 ≥ 0.99 against
    exact on 250k vectors at 1/64; the bench reports recall at every build)."""
    return min(lists, max(16, math.ceil(lists / 32)))


class FaissDense:
    """A FAISS index over one segment's vectors: exact, or IVF-Flat for large segments."""

    def __init__(self, index: faiss.Index, nprobe: int = 1) -> None:
        self._index = index
        self.nprobe = nprobe

    @classmethod
    def build(cls, vectors: Matrix, ann_min_rows: int, seed: int = 0) -> FaissDense:
        """An index over `vectors` (rows in order): IVF when there are at least `ann_min_rows`
        of them (its lists trained on them with a fixed seed), else exact."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        if n < max(ann_min_rows, _POINTS_PER_LIST * 2):
            flat = faiss.IndexFlatIP(dim)
            flat.add(vectors)
            return cls(flat)
        lists = list_count(n)
        quantizer = faiss.IndexFlatIP(dim)
        # Vectors in half precision: half the bytes, scores move by < 1e-3 (recall measured).
        ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, lists, faiss.ScalarQuantizer.QT_fp16,
                                            faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = seed
        ivf.train(vectors)
        ivf.add(vectors)
        ivf.make_direct_map()  # rows → vectors, for merges and realignment
        return cls(ivf, probe_count(lists))

    @classmethod
    def load(cls, path: Path, exact: bool) -> FaissDense:
        """Open a saved index (`exact` as it was built). Exact indexes are memory-mapped; the
        lists of an IVF index are read into RAM (half-precision vectors: 768 bytes each at 384
        dimensions), because FAISS's memory-mapped lists searched 20× slower (0.93 against
        0.043 ms per search of a 22,000-vector segment, measured here)."""
        flag = faiss.IO_FLAG_MMAP_IFC if exact else 0
        index = faiss.read_index(str(path), flag)
        if isinstance(index, faiss.IndexIVF) == exact:
            kind = "exact" if exact else "IVF"
            raise ValueError(f"{path} does not hold an {kind} index as its segment says")
        return cls(index, 1 if exact else probe_count(int(getattr(index, "nlist", 1))))

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def exact(self) -> bool:
        return not isinstance(self._index, faiss.IndexIVF)

    def search(self, queries: Matrix, k: int, allowed: Mask | None = None,
               exact: bool = False) -> tuple[Rows, Scores]:
        """Top-k rows per query among `allowed` rows; padding is row -1, score -inf. `exact`
        forces an exhaustive search of an approximate index (to measure its recall)."""
        n = len(queries)
        if exact and not self.exact and self.size:
            rows = np.arange(self.size) if allowed is None else np.flatnonzero(allowed)
            return self._search_rows(queries, k, rows)
        k = max(1, min(k, self.size)) if self.size else 0
        if k == 0 or n == 0 or (allowed is not None and not allowed.any()):
            width = max(k, 1)
            return np.full((n, width), -1, np.int64), np.full((n, width), -np.inf, np.float32)
        nprobe = self.nprobe
        if allowed is not None and not self.exact:
            kept = int(allowed.sum())
            if kept <= _EXACT_BELOW:
                return self._search_rows(queries, k, np.flatnonzero(allowed))
            # A filter keeping a share of the rows keeps that share of each list: probe more.
            lists = int(getattr(self._index, "nlist", 1))
            nprobe = min(lists, math.ceil(nprobe * self.size / kept))
        params = _params(self._index, allowed, nprobe)
        scores, rows = self._index.search(
            np.ascontiguousarray(queries, np.float32), k, params=params
        )
        scores = np.where(rows < 0, -np.inf, scores).astype(np.float32)
        return rows.astype(np.int64), scores

    def _search_rows(self, queries: Matrix, k: int, rows: Rows,
                     chunk: int = 50_000) -> tuple[Rows, Scores]:
        """Exact top-k among `rows` only (their vectors read a chunk at a time)."""
        k = min(k, len(rows))
        best_rows = np.zeros((len(queries), 0), np.int64)
        best_scores = np.zeros((len(queries), 0), np.float32)
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            scores = np.asarray(queries, np.float32) @ self.vectors(part).T
            cand_rows = np.concatenate([best_rows, np.broadcast_to(part, scores.shape)], axis=1)
            cand_scores = np.concatenate([best_scores, scores], axis=1)
            top = np.argsort(-cand_scores, axis=1, kind="stable")[:, :k]
            best_rows = np.take_along_axis(cand_rows, top, axis=1)
            best_scores = np.take_along_axis(cand_scores, top, axis=1)
        return best_rows.astype(np.int64), best_scores.astype(np.float32)

    def vectors(self, rows: Rows) -> Matrix:
        if not len(rows):
            return np.zeros((0, self.dim), np.float32)
        found: Matrix = self._index.reconstruct_batch(np.ascontiguousarray(rows, np.int64))
        return found

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))
