"""BM25 keyword search over the passages table (row number = passage id), backed by `bm25s`.

Tombstoned rows are left out of the bm25s corpus entirely, so they neither match nor count in
the collection statistics (N, average length); `_rows` maps bm25s's dense document ids back to
passage rows. Scoring and top-k are vectorised over the postings and over rows.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from itertools import chain, count
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import bm25s
import numpy as np
import numpy.typing as npt
from bm25s import scoring

from index.errors import DataDirError
from index.files import fsync_tree

logger = logging.getLogger(__name__)

BoolArray = npt.NDArray[np.bool_]
RowMatrix = npt.NDArray[np.int64]
ScoreMatrix = npt.NDArray[np.float32]

FORMAT_VERSION = 1
META_FILE = "lexical.json"
ROWS_FILE = "rows.npy"
BM25S_DIR = "bm25s"
METHOD = "lucene"

# Queries are scored in blocks so the dense (block, n_live) score matrix stays small.
_QUERY_BLOCK = 64


@runtime_checkable
class LexicalIndex(Protocol):
    """Keyword index over passage rows. Terms come from `index.analyze.Analyzer`."""

    @property
    def n_rows(self) -> int:
        """Rows in the passages table the index was built over, tombstoned ones included."""
        ...

    @property
    def n_live(self) -> int:
        """Rows that can be returned (not tombstoned)."""
        ...

    def live_rows(self) -> RowMatrix:
        """The rows that can be returned, ascending."""
        ...

    def search(
        self, query_terms: Sequence[Sequence[str]], k: int, allowed: BoolArray | None = None
    ) -> tuple[RowMatrix, ScoreMatrix]:
        """Top-k rows per query: (rows int64 (n_queries, k), scores float32 (n_queries, k)),
        best first, padded with row -1 / score 0. Only live rows with `allowed[row]` True and a
        positive score are returned."""
        ...

    def save(self, directory: Path) -> None:
        """Write the index as plain files (.npy + JSON) into `directory`."""
        ...


class Bm25Index:
    """BM25 (Lucene variant) over per-row term lists. Build with `build`, open with `load`."""

    def __init__(
        self,
        bm25: bm25s.BM25 | None,
        rows: npt.NDArray[np.int64],
        n_rows: int,
        k1: float,
        b: float,
    ) -> None:
        # bm25 is None when no live row has a term: every search returns nothing.
        self._bm25 = bm25
        self._rows = rows
        self._n_rows = n_rows
        self._k1 = k1
        self._b = b
        self._vocab: dict[str, int] = bm25.vocab_dict if bm25 is not None else {}

    @classmethod
    def build(
        cls,
        term_lists: Sequence[Sequence[str]],
        live: BoolArray,
        *,
        k1: float = 1.5,
        b: float = 0.75,
    ) -> Bm25Index:
        """Index row i's terms (`term_lists[i]`, from `Analyzer.terms`); rows where `live[i]` is
        False are tombstones and are left out."""
        live = np.asarray(live)
        if live.dtype != np.bool_ or live.shape != (len(term_lists),):
            raise ValueError(
                f"live must be a bool array of shape ({len(term_lists)},), "
                f"got {live.dtype} {live.shape}"
            )
        started = time.perf_counter()
        rows = np.flatnonzero(live).astype(np.int64)
        bm25, vocab_size = _bm25_from_terms([term_lists[r] for r in rows.tolist()], k1, b)
        logger.info(
            "built lexical index",
            extra={
                "rows": len(term_lists),
                "live": len(rows),
                "vocab": vocab_size,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
        return cls(bm25, rows, len(term_lists), k1, b)

    @property
    def n_rows(self) -> int:
        return self._n_rows

    @property
    def n_live(self) -> int:
        """Rows that can be returned (not tombstoned)."""
        return len(self._rows)

    def live_rows(self) -> RowMatrix:
        return np.asarray(self._rows, dtype=np.int64)

    @property
    def vocabulary_size(self) -> int:
        return len(self._vocab)

    def search(
        self, query_terms: Sequence[Sequence[str]], k: int, allowed: BoolArray | None = None
    ) -> tuple[RowMatrix, ScoreMatrix]:
        """Top-k rows per query, best first; ties broken by lower row for determinism.

        Returns (rows int64 (n_queries, k), scores float32 (n_queries, k)) padded with -1 / 0.
        A row is returned only if it is live, `allowed[row]` (bool mask over all `n_rows`) is
        True, and it shares at least one term with the query. Query terms missing from the
        vocabulary are ignored; a repeated query term counts once per repetition.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        n_queries = len(query_terms)
        out_rows = np.full((n_queries, k), -1, dtype=np.int64)
        out_scores = np.zeros((n_queries, k), dtype=np.float32)
        weight = self._live_weight(allowed)
        if self._bm25 is None or (weight is not None and not weight.any()):
            return out_rows, out_scores
        bm25 = self._bm25
        for block_start in range(0, n_queries, _QUERY_BLOCK):
            block = query_terms[block_start : block_start + _QUERY_BLOCK]
            ids = [[self._vocab[t] for t in terms if t in self._vocab] for terms in block]
            wanted = [i for i, q in enumerate(ids) if q]
            if not wanted:
                continue
            scores = np.stack([bm25.get_scores_from_ids(ids[i]) for i in wanted])
            if weight is not None:
                scores *= weight
            top, top_scores = _top_k_positive(scores, k)
            target = block_start + np.asarray(wanted)
            found = top >= 0
            out_rows[target] = np.where(found, self._rows[np.maximum(top, 0)], -1)
            out_scores[target] = top_scores
        return out_rows, out_scores

    def _live_weight(self, allowed: BoolArray | None) -> npt.NDArray[np.float32] | None:
        """`allowed` restricted to live rows, as the 0/1 weights bm25s multiplies scores by."""
        if allowed is None:
            return None
        allowed = np.asarray(allowed)
        if allowed.dtype != np.bool_ or allowed.shape != (self._n_rows,):
            raise ValueError(
                f"allowed must be a bool array of shape ({self._n_rows},), "
                f"got {allowed.dtype} {allowed.shape}"
            )
        return allowed[self._rows].astype(np.float32)

    def save(self, directory: Path) -> None:
        """Write `lexical.json`, `rows.npy` and bm25s's arrays/JSON (`bm25s/`) into `directory`,
        fsynced. No pickle. The caller makes the directory swap atomic."""
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / ROWS_FILE, self._rows, allow_pickle=False)
        if self._bm25 is not None:
            self._bm25.save(directory / BM25S_DIR, show_progress=False)
        meta = {
            "format": FORMAT_VERSION,
            "method": METHOD,
            "k1": self._k1,
            "b": self._b,
            "n_rows": self._n_rows,
            "n_live": len(self._rows),
            "has_terms": self._bm25 is not None,
            "bm25s_version": bm25s.__version__,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        fsync_tree(directory)

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = True) -> Bm25Index:
        """Open an index written by `save`. With `mmap` the score arrays are memory-mapped."""
        meta = _read_meta(directory)
        try:
            rows = np.load(
                directory / ROWS_FILE, allow_pickle=False, mmap_mode="r" if mmap else None
            )
            bm25 = None
            if meta["has_terms"]:
                bm25 = bm25s.BM25.load(
                    directory / BM25S_DIR,
                    mmap=mmap,
                    allow_pickle=False,
                    load_corpus=False,
                    show_progress=False,
                )
        except (OSError, ValueError) as exc:
            raise DataDirError(
                f"lexical index in {directory} is unreadable ({exc}); rebuild the index"
            ) from exc
        if len(rows) != meta["n_live"] or (
            bm25 is not None and bm25.scores["num_docs"] != len(rows)
        ):
            raise DataDirError(
                f"lexical index in {directory} is inconsistent (row counts differ); "
                "rebuild the index"
            )
        return cls(bm25, rows, int(meta["n_rows"]), float(meta["k1"]), float(meta["b"]))


def _bm25_from_terms(
    docs: Sequence[Sequence[str]], k1: float, b: float
) -> tuple[bm25s.BM25 | None, int]:
    """A bm25s index over `docs` (None if no doc has a term) and its vocabulary size.

    bm25s's own `index()` counts terms with Python loops per document (measured ~2x slower:
    9-14 s vs 4-6 s for 100k docs of 80 terms); here the counting is done on flat NumPy
    arrays, with bm25s's own IDF and TF formulas, and the result is the eager score matrix
    (CSC, documents × vocabulary) that bm25s scores, saves and loads. A unit test checks it
    equals what `index()` builds.
    """
    lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
    n_terms = int(lengths.sum())
    if n_terms == 0:
        return None, 0
    # One hashing pass over all terms (the dominant cost): an unseen term gets the next id, so
    # ids follow first occurrence, deterministic unlike bm25s's set-ordered vocabulary.
    new_ids: defaultdict[str, int] = defaultdict(count().__next__)
    term_ids = np.fromiter(
        map(new_ids.__getitem__, chain.from_iterable(docs)), dtype=np.int64, count=n_terms
    )
    vocab = dict(new_ids)
    doc_ids = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
    # One sort by (term, doc) yields the term frequencies already in CSC (column-major) order.
    pairs, tf = np.unique((term_ids << 32) | doc_ids, return_counts=True)
    pair_terms = pairs >> 32
    pair_docs = pairs & 0xFFFFFFFF
    doc_freqs = np.bincount(pair_terms, minlength=len(vocab))
    idf = scoring._build_idf_array(
        doc_frequencies=dict(enumerate(doc_freqs.tolist())),
        n_docs=len(docs),
        compute_idf_fn=scoring._select_idf_scorer(METHOD),
        dtype="float32",
    )
    tfc = scoring._select_tfc_scorer(METHOD)(
        tf_array=tf.astype(np.float64),
        l_d=lengths[pair_docs].astype(np.float64),
        l_avg=float(lengths.mean()),
        k1=k1,
        b=b,
    )
    indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
    np.cumsum(doc_freqs, out=indptr[1:])
    bm25 = bm25s.BM25(k1=k1, b=b, method=METHOD, backend="numpy")
    bm25.scores = {
        "data": (idf[pair_terms] * tfc).astype(np.float32),
        "indices": pair_docs.astype(np.int32),
        "indptr": indptr,
        "num_docs": len(docs),
    }
    bm25.vocab_dict = vocab
    bm25.unique_token_ids_set = set(vocab.values())
    bm25.nonoccurrence_array = None  # only the BM25L/BM25+ variants use it
    return bm25, len(vocab)


def _top_k_positive(
    scores: npt.NDArray[np.float32], k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Per row of `scores`, the columns of the k best positive scores (best first, ties by
    lower column), padded with -1 / 0."""
    n, width = scores.shape
    top = np.full((n, k), -1, dtype=np.int64)
    top_scores = np.zeros((n, k), dtype=np.float32)
    kk = min(k, width)
    # argpartition narrows each row to kk candidates; the k-th best score is then a threshold,
    # and a stable sort of everything at or above it puts ties in column order.
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    threshold = np.take_along_axis(scores, part, axis=1).min(axis=1)
    for q in range(n):
        candidates = np.flatnonzero((scores[q] >= threshold[q]) & (scores[q] > 0))
        order = np.argsort(-scores[q, candidates], kind="stable")[:kk]
        chosen = candidates[order]
        top[q, : len(chosen)] = chosen
        top_scores[q, : len(chosen)] = scores[q, chosen]
    return top, top_scores


def _read_meta(directory: Path) -> dict[str, Any]:
    path = directory / META_FILE
    try:
        meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataDirError(f"cannot read {path} ({exc}); rebuild the index") from exc
    if meta.get("format") != FORMAT_VERSION or meta.get("method") != METHOD:
        raise DataDirError(
            f"{path} has format {meta.get('format')!r} / method {meta.get('method')!r}, "
            f"this version reads format {FORMAT_VERSION} / {METHOD}; rebuild the index"
        )
    return meta
