"""BM25 keyword search over segments: per-segment postings, statistics of the whole index.

Each segment keeps its own inverted index (`Postings`: for every term the rows holding it and
how often, plus each row's length), written once and memory-mapped. A search combines the
segments' statistics (live rows, their total length, each query term's live document
frequency) before scoring, so a row's score is exactly what one index over all live rows would
give: BM25 in Lucene's variant (as bm25s computes it, `idf = ln(1 + (N - df + 0.5)/(df + 0.5))`,
`tfc = tf / (tf + k1·(1 - b + b·len/avglen))`). Deleted rows drop out of N, of the average
length and of every df the moment their deletion is committed, with no rewrite.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain, count
from pathlib import Path

import numpy as np
import numpy.typing as npt

from index.files import load_array

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Scores = npt.NDArray[np.float32]

K1 = 1.5
B = 0.75
VOCAB_FILE = "vocab.json"
FILES = ("indptr.npy", "post_rows.npy", "post_tfs.npy", "lengths.npy")


@dataclass(frozen=True, eq=False)
class Postings:
    """One segment's inverted index. Term `vocab[t]` occurs in rows `rows[indptr[t]:indptr[t+1]]`
    (ascending) with frequencies `tfs[…]`; `lengths[r]` is row r's number of terms."""

    vocab: Sequence[str]
    indptr: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int32]
    tfs: npt.NDArray[np.uint16]
    lengths: npt.NDArray[np.int32]
    _ids: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Built once, before any search can ask: lookups are then read-only across threads.
        self._ids.update((term, i) for i, term in enumerate(self.vocab))

    @classmethod
    def build(cls, term_lists: Sequence[Sequence[str]], extra_terms: Sequence[str] = ()
              ) -> Postings:
        """Postings of rows with these terms (repeats count); `extra_terms` join the vocabulary
        without postings (terms that only sentences hold)."""
        lengths = np.fromiter(map(len, term_lists), np.int64, count=len(term_lists))
        ids: defaultdict[str, int] = defaultdict(count().__next__)
        # One hashing pass: ids follow first occurrence, so a build is deterministic.
        term_ids = np.fromiter(map(ids.__getitem__, chain.from_iterable(term_lists)), np.int64,
                               count=int(lengths.sum()))
        for term in extra_terms:
            ids[term]
        row_of = np.repeat(np.arange(len(term_lists), dtype=np.int64), lengths)
        return cls._from_pairs(list(ids), term_ids, row_of, np.ones(len(term_ids), np.int64),
                               lengths)

    @classmethod
    def _from_pairs(cls, vocab: list[str], term_ids: IntArray, rows: IntArray, tfs: IntArray,
                    lengths: npt.NDArray[np.int64]) -> Postings:
        """From (term, row, tf) triples, repeated pairs summed: sort by (term, row)."""
        key = (term_ids << 32) | rows
        pairs, inverse = np.unique(key, return_inverse=True)
        sums = np.bincount(inverse, weights=tfs, minlength=len(pairs)).astype(np.int64)
        pair_terms = pairs >> 32
        indptr = np.zeros(len(vocab) + 1, np.int64)
        np.cumsum(np.bincount(pair_terms, minlength=len(vocab)), out=indptr[1:])
        return cls(
            vocab=vocab, indptr=indptr, rows=(pairs & 0xFFFFFFFF).astype(np.int32),
            tfs=np.minimum(sums, np.iinfo(np.uint16).max).astype(np.uint16),
            lengths=lengths.astype(np.int32),
        )

    @property
    def n_rows(self) -> int:
        return len(self.lengths)

    def term_id(self, term: str) -> int | None:
        return self._ids.get(term)

    def document_frequency(self, term: str) -> int:
        """Rows holding `term` (deleted rows included)."""
        term_id = self._ids.get(term)
        return 0 if term_id is None else int(self.indptr[term_id + 1] - self.indptr[term_id])

    def postings(self, term_id: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint16]]:
        lo, hi = int(self.indptr[term_id]), int(self.indptr[term_id + 1])
        return self.rows[lo:hi], self.tfs[lo:hi]

    def save(self, folder: Path) -> list[str]:
        """Write the postings into `folder`; returns the file names."""
        (folder / VOCAB_FILE).write_text(json.dumps(list(self.vocab), ensure_ascii=False),
                                         encoding="utf-8")
        arrays: list[npt.NDArray[np.generic]] = [self.indptr, self.rows, self.tfs, self.lengths]
        for name, array in zip(FILES, arrays, strict=True):
            np.save(folder / name, array, allow_pickle=False)
        return [VOCAB_FILE, *FILES]

    @classmethod
    def load(cls, folder: Path) -> Postings:
        """Open saved postings, the arrays memory-mapped."""
        vocab = json.loads((folder / VOCAB_FILE).read_text(encoding="utf-8"))
        # Plain ndarray views of the maps: numpy's memmap subclass costs a call per slice.
        indptr, rows, tfs, lengths = (load_array(folder / name, mmap=True).view(np.ndarray)
                                      for name in FILES)
        postings = cls(vocab, indptr, rows, tfs, lengths)
        if len(postings.indptr) != len(vocab) + 1 or postings.indptr[-1] != len(postings.rows):
            raise ValueError(f"postings in {folder} are inconsistent")
        return postings

    @classmethod
    def merge(cls, parts: Sequence[tuple[Postings, IntArray]]) -> Postings:
        """One index over the kept rows of several: `parts` pairs postings with the new row of
        each of its rows (-1: dropped). Rows are renumbered, frequencies kept."""
        vocab: dict[str, int] = {}
        term_ids, rows, tfs = [], [], []
        total = sum(int((new >= 0).sum()) for _, new in parts)
        lengths = np.zeros(total, np.int64)
        for postings, new_row in parts:
            local_to_merged = np.fromiter(
                (vocab.setdefault(t, len(vocab)) for t in postings.vocab), np.int64,
                count=len(postings.vocab),
            )
            per_term = np.diff(np.asarray(postings.indptr, np.int64)).astype(np.int64)
            term_of = np.repeat(local_to_merged, per_term)
            moved = new_row[np.asarray(postings.rows, np.int64)]
            keep = moved >= 0
            term_ids.append(term_of[keep])
            rows.append(moved[keep])
            tfs.append(np.asarray(postings.tfs, np.int64)[keep])
            kept_rows = np.flatnonzero(new_row >= 0)
            lengths[new_row[kept_rows]] = np.asarray(postings.lengths)[kept_rows]
        return cls._from_pairs(
            list(vocab), np.concatenate(term_ids) if term_ids else np.zeros(0, np.int64),
            np.concatenate(rows) if rows else np.zeros(0, np.int64),
            np.concatenate(tfs) if tfs else np.zeros(0, np.int64), lengths,
        )


@dataclass(frozen=True, slots=True)
class SegmentTerms:
    """A segment's postings with the rows a search may return: `live` (not deleted) and, within
    them, `allowed` by the query's filters (None: all live rows)."""

    postings: Postings
    live: BoolArray | None  # None: no row deleted
    allowed: BoolArray | None


# Postings shorter than 1/_SPARSE_RATIO of a segment's rows are summed sparsely (sort + bincount).
_SPARSE_RATIO = 16


def bm25_top_k(
    segments: Sequence[SegmentTerms], query_terms: Sequence[str], k: int,
    n_live: int, live_length: int, *, k1: float = K1, b: float = B,
) -> list[tuple[IntArray, Scores]]:
    """Per segment, its top-k (rows, scores) for the query, best first (ties: lower row), only
    rows with a positive score. Statistics are the whole index's: `n_live` live rows of
    `live_length` terms in all, each term's df counted over live rows of every segment. A
    repeated query term counts once per repetition; unknown terms are ignored."""
    empty = [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in segments]
    if not query_terms or n_live == 0:
        return empty
    wanted = Counter(query_terms)
    found: list[dict[str, tuple[npt.NDArray[np.int32], npt.NDArray[np.uint16]]]] = []
    df: Counter[str] = Counter()
    for seg in segments:
        lists = {}
        for term in wanted:
            term_id = seg.postings.term_id(term)
            if term_id is None:
                continue
            rows, tfs = seg.postings.postings(term_id)
            if len(rows):
                lists[term] = (rows, tfs)
                df[term] += int(seg.live[rows].sum()) if seg.live is not None else len(rows)
        found.append(lists)
    avg_length = live_length / n_live
    idf = {t: np.log(1.0 + (n_live - d + 0.5) / (d + 0.5)) for t, d in df.items() if d}
    out = []
    for seg, lists in zip(segments, found, strict=True):
        if not lists:
            out.append((np.zeros(0, np.int64), np.zeros(0, np.float32)))
            continue
        lengths = seg.postings.lengths
        term_rows, term_scores = [], []
        for term, (rows, tfs) in lists.items():
            if term not in idf:
                continue
            tf = tfs.astype(np.float64)
            norm = k1 * ((1.0 - b) + b * lengths[rows] / avg_length)
            term_rows.append(rows)
            term_scores.append(wanted[term] * idf[term] * tf / (tf + norm))
        if not term_rows:
            out.append((np.zeros(0, np.int64), np.zeros(0, np.float32)))
            continue
        # Sum per row (bincount adds in array order: term by term). Rare terms touch few rows
        # of a large segment: then sum over the matched rows only, not over every row.
        all_rows = np.concatenate(term_rows).astype(np.int64)
        all_scores = np.concatenate(term_scores)
        matched: IntArray
        slot: IntArray
        if len(all_rows) * _SPARSE_RATIO < seg.postings.n_rows:
            matched, slot = np.unique(all_rows, return_inverse=True)
        else:
            matched, slot = np.arange(seg.postings.n_rows, dtype=np.int64), all_rows
        sums = np.bincount(slot, weights=all_scores, minlength=len(matched))
        keep = seg.allowed if seg.allowed is not None else seg.live
        if keep is not None:
            sums = np.where(keep[matched], sums, 0.0)
        top, scores = _top_positive(sums.astype(np.float32), k)
        out.append((matched[top].astype(np.int64), scores))
    return out


def _top_positive(scores: Scores, k: int) -> tuple[IntArray, Scores]:
    """The k best positive scores' indices (best first, ties by lower index) and scores."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > k:
        part = np.argpartition(-scores[positive], k - 1)[:k]
        threshold = scores[positive[part]].min()
        positive = positive[scores[positive] >= threshold]
    order = np.lexsort((positive, -scores[positive]))[:k]
    rows = positive[order].astype(np.int64)
    return rows, scores[rows]
