"""Which dense and lexical index implementations a data directory uses, by the names its manifest
records: the one place that maps a name to a class, so the store and `verify` never name FAISS
or bm25s. FAISS (any `index_factory` string) and bm25s are the embedded defaults."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from index.errors import IndexMismatch
from index.indexes.dense import DenseIndex, FaissIndex
from index.indexes.lexical import Bm25Index, LexicalIndex

DEFAULT_DENSE = "faiss"
DEFAULT_LEXICAL = "bm25s"
DENSE_FILE = {"faiss": "dense.faiss"}  # the file a dense index is saved in, by backend


def _unknown(kind: str, name: str) -> IndexMismatch:
    return IndexMismatch(
        f"this index uses the {kind} backend {name!r}, which this Qiao does not have: "
        "upgrade Qiao or rebuild with `qiao ingest --rebuild PATH...`"
    )


def new_dense_index(dim: int, factory: str, backend: str = DEFAULT_DENSE) -> DenseIndex:
    """An empty dense index of `dim` dimensions (`factory`: the backend's index description)."""
    if backend != "faiss":
        raise _unknown("dense", backend)
    return FaissIndex.create(dim, factory)


def open_dense_index(folder: Path, factory: str, backend: str = DEFAULT_DENSE) -> DenseIndex:
    """The dense index saved in `folder` (under its backend's file name)."""
    if backend not in DENSE_FILE:
        raise _unknown("dense", backend)
    return FaissIndex.load(folder / DENSE_FILE[backend], factory)


def build_lexical_index(
    term_lists: Sequence[Sequence[str]], backend: str = DEFAULT_LEXICAL
) -> LexicalIndex:
    """A keyword index over one term list per row (all rows live)."""
    if backend != "bm25s":
        raise _unknown("lexical", backend)
    return Bm25Index.build(term_lists, np.ones(len(term_lists), dtype=bool))


def open_lexical_index(
    directory: Path, backend: str = DEFAULT_LEXICAL, *, mmap: bool = True
) -> LexicalIndex:
    """The keyword index saved in `directory`."""
    if backend != "bm25s":
        raise _unknown("lexical", backend)
    return Bm25Index.load(directory, mmap=mmap)
