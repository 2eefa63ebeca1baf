"""One contract, every backend: the same documents searched through the embedded index and
through Qdrant (qdrant-client's local mode, and Qdrant's own shard engine in-process through
qdrant-edge; a real server too when QIAO_TEST_QDRANT_URL is set) give the same hits, answer
sentences and counterparts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from index.backends.qdrant import QdrantStore, QdrantTarget
from index.backends.qdrant_index import QdrantIndex
from index.config import ChunkPlan, IndexSettings
from index.indexes.analyze import Analyzer
from index.ingest.prepare import prepare_segments
from index.records import Document, PreparedDocument, SearchResults
from index.retriever import Retriever
from index.search.queries import QueryEncoder
from index.search.rank import Filters, SearchParams
from index.store.manifest import BuildInfo
from tests.fakes import FakeEmbedder

QUERIES = [
    "How many stations does the metro line have?",
    "地铁新线有几座车站？",
    "volunteers plastic waste lake",
    "library opening hours",
    "谁组织了清理活动？",
]
SERVER = os.environ.get("QIAO_TEST_QDRANT_URL")
TARGETS = ["local", "edge", pytest.param("server", marks=pytest.mark.skipif(
    SERVER is None, reason="set QIAO_TEST_QDRANT_URL to run the contract against a server"))]


def qdrant_index(target: str, tmp_path: Path, embedder: FakeEmbedder, analyzer: Analyzer,
                 name: str) -> QdrantIndex:
    where = (QdrantTarget(name, url=SERVER) if target == "server"
             else QdrantTarget(name, path=str(tmp_path / "qdrant"), edge=target == "edge"))
    store = QdrantStore.connect(where, embedder.dim)
    if target == "server" and store.exists():
        store.client.delete_collection(store.collection)
        store.client.delete_collection(store.documents)
    store.init()
    info = BuildInfo(embedder.model_id, embedder.dim, {}, analyzer.fingerprint)
    return QdrantIndex(store, QueryEncoder(analyzer, lambda: embedder, 0), SearchParams(), info)


def preparer(embedder: FakeEmbedder, analyzer: Analyzer):  # type: ignore[no-untyped-def]
    plan = ChunkPlan.from_settings(IndexSettings())

    def prepare(docs: list[Document]) -> list[PreparedDocument]:
        return prepare_segments(docs, embedder, analyzer, plan)

    return prepare


@pytest.fixture(params=TARGETS)
def pair(request: pytest.FixtureRequest, tmp_path: Path, fake_embedder: FakeEmbedder,
         analyzer: Analyzer, tiny_docs: list[Document]
         ) -> Iterator[tuple[Retriever, QdrantIndex]]:
    embedded = Retriever.open(settings=IndexSettings(data_dir=tmp_path / "data"),
                              embedder=fake_embedder, analyzer=analyzer)
    embedded.upsert(tiny_docs)
    qdrant = qdrant_index(request.param, tmp_path, fake_embedder, analyzer, "contract")
    qdrant.upsert(tiny_docs, preparer(fake_embedder, analyzer))
    yield embedded, qdrant
    qdrant.store.close()


def shown(results: SearchResults) -> list[dict[str, Any]]:
    out = []
    for hit in results:
        fields = asdict(hit)
        fields["score"] = round(hit.score, 4)
        if fields["counterpart"] is not None:
            fields["counterpart"]["score"] = round(hit.counterpart.score, 4)  # type: ignore[union-attr]
        out.append(fields)
    return out


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
@pytest.mark.parametrize("lang", [None, "en", "zh"])
def test_both_backends_give_the_same_hits(pair: tuple[Retriever, QdrantIndex], mode: str,
                                          lang: str | None) -> None:
    embedded, qdrant = pair
    found = 0
    for query in QUERIES:
        want = embedded.search(query, k=5, lang=lang, mode=mode)  # type: ignore[arg-type]
        got = qdrant.search(query, k=5, lang=lang, mode=mode)  # type: ignore[arg-type]
        assert shown(got) == shown(want), (query, mode, lang)
        assert (got.query_lang, got.answerable) == (want.query_lang, want.answerable)
        found += len(want)
    assert found > 0  # cross-language keyword searches may find nothing, not all of them


def test_filters_restrict_the_same_way(pair: tuple[Retriever, QdrantIndex],
                                       tiny_docs: list[Document]) -> None:
    embedded, qdrant = pair
    release = tiny_docs[0].release_id
    for filters in (Filters(release_id=release), Filters(doc_id=tiny_docs[-1].doc_id)):
        want = embedded.search(QUERIES[0], k=5, filters=filters)
        got = qdrant.search(QUERIES[0], k=5, filters=filters)
        assert shown(got) == shown(want)


def test_replacing_and_deleting_leave_no_stale_passage(
    pair: tuple[Retriever, QdrantIndex], tiny_docs: list[Document],
    fake_embedder: FakeEmbedder, analyzer: Analyzer,
) -> None:
    _, qdrant = pair
    prepare = preparer(fake_embedder, analyzer)
    again = qdrant.upsert(tiny_docs, prepare)
    assert sorted(again.unchanged) == sorted(d.doc_id for d in tiny_docs)
    longest = max(tiny_docs, key=lambda d: len(d.text))
    shorter = Document(longest.doc_id, longest.release_id, longest.lang, longest.title,
                       longest.text[: len(longest.text) // 3].rstrip() or "x")
    report = qdrant.upsert([shorter], prepare)
    assert report.replaced == [longest.doc_id]
    ordinals = sorted(p["ordinal"] for _, p in qdrant.store.passage_payloads(["doc_id", "ordinal"])
                      if p["doc_id"] == longest.doc_id)
    assert ordinals == list(range(report.passage_counts[longest.doc_id]))
    assert qdrant.delete([longest.doc_id]) == [longest.doc_id]
    assert qdrant.document(longest.doc_id) is None
    assert all(p["doc_id"] != longest.doc_id
               for _, p in qdrant.store.passage_payloads(["doc_id"]))


def test_an_embedded_index_exported_into_qdrant_searches_the_same(
    tmp_path: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer, tiny_docs: list[Document],
) -> None:
    embedded = Retriever.open(settings=IndexSettings(data_dir=tmp_path / "data"),
                              embedder=fake_embedder, analyzer=analyzer)
    embedded.upsert(tiny_docs)
    qdrant = qdrant_index("edge", tmp_path, fake_embedder, analyzer, "copy")
    try:
        qdrant.store.write(list(embedded.export_prepared()))  # no embedding
        for query in QUERIES:
            assert shown(qdrant.search(query, k=5)) == shown(embedded.search(query, k=5))
    finally:
        qdrant.store.close()


def test_lookup_finds_the_same_translation(pair: tuple[Retriever, QdrantIndex],
                                           tiny_docs: list[Document]) -> None:
    from index.backends.qdrant_view import QdrantView
    from index.ingest.sentences import sentence_spans

    embedded, qdrant = pair
    view = QdrantView(qdrant, qdrant._queries, SearchParams())
    texts = ["The metro line was delayed by rain and nobody knows why."]
    for doc in tiny_docs:
        (a, b), *_ = sentence_spans(doc.text)[1:] or sentence_spans(doc.text)
        texts.append(doc.text[a:b])
    found = 0
    for text in texts:
        want = embedded.view().lookup(text)
        assert view.lookup(text) == want, text
        found += want is not None and want.method == "alignment"
    assert found >= 2  # most texts are in the archive: found through the alignment


def test_two_writers_of_one_release_at_once_leave_it_aligned(
    tmp_path: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer,
    tiny_docs: list[Document], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Writer A reads the release before writer B's version lands, so A aligns with nothing;
    A's re-check after its write sees B's version and aligns both."""
    qdrant = qdrant_index("local", tmp_path, fake_embedder, analyzer, "race")
    try:
        prepare = preparer(fake_embedder, analyzer)
        en, zh = (next(d for d in tiny_docs if d.release_id == "metro-line" and d.lang == lang)
                  for lang in ("en", "zh"))
        prepared_en = prepare([en])
        qdrant.upsert([zh], prepare)  # B's version, committed
        real = qdrant.store.release_doc_ids
        reads: list[int] = []

        def release_doc_ids(releases: Any) -> list[str]:
            reads.append(1)  # A's first read of the release: before B's write landed
            return [] if len(reads) == 1 else real(releases)

        monkeypatch.setattr(qdrant.store, "release_doc_ids", release_doc_ids)
        qdrant.upsert_prepared(prepared_en, [en])
        links = {p["doc_id"]: p["counterpart_doc"]
                 for p in qdrant.store.document_list(["doc_id", "counterpart_doc"])}
        assert links == {en.doc_id: zh.doc_id, zh.doc_id: en.doc_id}
    finally:
        qdrant.store.close()
