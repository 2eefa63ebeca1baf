"""Remembered query vectors: equal to the embedder's, embedded once while recent, LRU-bounded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index.embed import Matrix
from index.indexes.analyze import Analyzer
from index.records import Document
from index.search.queries import QueryVectorCache
from tests.conftest import open_retriever
from tests.fakes import FakeEmbedder


class CountingEmbedder(FakeEmbedder):
    """The fake embedder, recording every batch of queries it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.query_batches: list[list[str]] = []

    def embed_queries(self, texts: list[str]) -> Matrix:
        self.query_batches.append(list(texts))
        return super().embed_queries(texts)


def test_vectors_equal_the_embedders_and_repeats_are_not_embedded_again() -> None:
    embedder, cache = CountingEmbedder(), QueryVectorCache(8)
    first = cache.embed(embedder, ["harbour cranes", "地铁 班次", "harbour cranes"])
    again = cache.embed(embedder, ["地铁 班次", "harbour cranes"])
    # One batch, each distinct text once; the second call embedded nothing.
    assert embedder.query_batches == [["harbour cranes", "地铁 班次"]]
    direct = FakeEmbedder().embed_queries(["harbour cranes", "地铁 班次"])
    np.testing.assert_array_equal(first, direct[[0, 1, 0]])
    np.testing.assert_array_equal(again, direct[[1, 0]])
    assert first.dtype == np.float32 and first.flags.writeable


def test_only_misses_are_embedded_and_the_least_recent_is_evicted() -> None:
    embedder, cache = CountingEmbedder(), QueryVectorCache(2)
    cache.embed(embedder, ["a", "b"])
    cache.embed(embedder, ["a", "c"])  # "a" is a hit and becomes the most recent; "b" leaves
    cache.embed(embedder, ["a", "b"])
    assert embedder.query_batches == [["a", "b"], ["c"], ["b"]]


def test_a_caller_changing_its_result_does_not_change_the_cache() -> None:
    embedder, cache = CountingEmbedder(), QueryVectorCache(4)
    result = cache.embed(embedder, ["ferry"])
    result[:] = 0.0
    np.testing.assert_array_equal(cache.embed(embedder, ["ferry"]),
                                  FakeEmbedder().embed_queries(["ferry"]))


def test_size_zero_remembers_nothing() -> None:
    embedder, cache = CountingEmbedder(), QueryVectorCache(0)
    cache.embed(embedder, ["a"])
    cache.embed(embedder, ["a"])
    assert embedder.query_batches == [["a"], ["a"]]


def test_a_repeated_search_embeds_its_query_once_and_finds_the_same(
    tmp_path: Path, analyzer: Analyzer, tiny_docs: list[Document]
) -> None:
    embedder = CountingEmbedder()
    retriever = open_retriever(tmp_path / "data", embedder, analyzer)
    retriever.upsert(tiny_docs)
    first = retriever.search("library opening hours", k=3)
    second = retriever.search("library opening hours", k=3)
    retriever.search("library opening hours", k=3, lang="en")
    assert embedder.query_batches == [["library opening hours"]]
    assert first and second == first
