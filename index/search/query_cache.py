"""Remembered query vectors: the same query text is embedded once while it stays recent.

Users repeat queries: the search page asks `/v1/answer` and `/v1/search` for each query, a
reload or the back button asks again, and popular questions come back. Embedding a query is
most of a search's time (about 12 of 14 ms here), so a small LRU of vectors keyed by the exact
text saves it. The vectors are the embedder's own, so results are unchanged.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from index.embed import Embedder, Matrix


class QueryVectorCache:
    """At most `size` recent query vectors (0: none). Thread-safe; misses embed in one batch."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._vectors: OrderedDict[str, Matrix] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, embedder: Embedder, queries: Sequence[str]) -> Matrix:
        """`embedder.embed_queries(queries)`, taking remembered rows from the cache."""
        if self.size <= 0:
            return embedder.embed_queries(list(queries))
        distinct = list(dict.fromkeys(queries))
        known: dict[str, Matrix] = {}
        with self._lock:
            for query in distinct:
                if query in self._vectors:
                    self._vectors.move_to_end(query)
                    known[query] = self._vectors[query]
        missing = [q for q in distinct if q not in known]
        if missing:
            fresh = embedder.embed_queries(missing)
            with self._lock:
                for query, vector in zip(missing, fresh, strict=True):
                    vector.setflags(write=False)  # shared between callers
                    known[query] = vector
                    self._vectors[query] = vector
                    while len(self._vectors) > self.size:
                        self._vectors.popitem(last=False)
        return np.stack([known[q] for q in queries]).astype(np.float32, copy=False)
