"""Queries → what search needs: their analysed terms, their vectors and their language.

`QueryEncoder` does all three for a batch; its vectors come through `QueryVectorCache`, so the
same query text is embedded once while it stays recent.

Users repeat queries: the search page asks `/v1/answer` and `/v1/search` for each query, a
reload or the back button asks again, and popular questions come back. Embedding a query is
most of a search's time (about 12 of 14 ms here), so a small LRU of vectors keyed by the exact
text saves it. The vectors are the embedder's own, so results are unchanged.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from index.embed import Embedder, Matrix
from index.indexes.analyze import Analyzer
from index.ingest.langdetect import detect_lang
from index.records import Lang


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


class QueryEncoder:
    """Terms, vectors and language of queries, with one analyser and one (lazily loaded) embedder.

    `embedder` is called only when vectors are needed, so lexical searches never load a model.
    Thread-safe.
    """

    def __init__(
        self, analyzer: Analyzer, embedder: Callable[[], Embedder], cache_size: int
    ) -> None:
        self.analyzer = analyzer
        self._embedder = embedder
        self._vectors = QueryVectorCache(cache_size)

    def terms(self, queries: Sequence[str]) -> list[list[str]]:
        return self.analyzer.terms_batch(list(queries))

    def vectors(self, queries: Sequence[str]) -> Matrix:
        return self._vectors.embed(self._embedder(), queries)

    @staticmethod
    def langs(queries: Sequence[str]) -> list[Lang]:
        return [detect_lang(q) for q in queries]
