"""Upsert, delete, persistence and search behaviour of the Retriever over the tiny corpus."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from index.errors import EmptyInput, IndexMismatch, QiaoError
from index.indexes.analyze import Analyzer
from index.records import Document, Hit
from index.retriever import Retriever
from index.search.rank import Filters
from index.store.datadir import current_name
from tests.conftest import open_retriever
from tests.fakes import FakeEmbedder


def assert_spans_exact(retriever: Retriever, hits: list[Hit]) -> None:
    for hit in hits:
        doc = retriever.document(hit.doc_id)
        assert doc is not None
        assert doc.text[hit.start : hit.end] == hit.text
        if hit.answer:
            assert hit.start <= hit.answer.start < hit.answer.end <= hit.end
            assert doc.text[hit.answer.start : hit.answer.end] == hit.answer.text
        if hit.counterpart:
            other = retriever.document(hit.counterpart.doc_id)
            assert other is not None and other.lang != doc.lang
            assert other.release_id == doc.release_id
            assert other.text[hit.counterpart.start : hit.counterpart.end] == hit.counterpart.text


def test_search_finds_passage_with_exact_spans_and_counterpart(tiny_retriever: Retriever) -> None:
    hits = tiny_retriever.search("plastic waste Dianshan Lake volunteers", k=3)
    assert hits[0].doc_id == "river-cleanup.en"
    assert "Dianshan Lake" in hits[0].text
    assert hits[0].answer is not None and "Dianshan Lake" in hits[0].answer.text
    assert hits[0].counterpart is not None and "淀山湖" in hits[0].counterpart.text
    assert_spans_exact(tiny_retriever, hits)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
@pytest.mark.parametrize("query", ["metro trains every four minutes", "地铁 每四分钟", "淀山湖"])
def test_every_mode_returns_exact_spans(tiny_retriever: Retriever, mode: str, query: str) -> None:
    hits = tiny_retriever.search(query, k=10, mode=mode)  # type: ignore[arg-type]
    assert hits
    assert_spans_exact(tiny_retriever, hits)


def test_chinese_query_finds_chinese_passage(tiny_retriever: Retriever) -> None:
    hits = tiny_retriever.search("淀山湖 塑料垃圾", k=1, lang="zh")
    assert hits[0].doc_id == "river-cleanup.zh" and "淀山湖" in hits[0].text


def test_lang_filter_restricts_results(tiny_retriever: Retriever) -> None:
    for lang in ("en", "zh"):
        hits = tiny_retriever.search("metro line stations 地铁", k=10, lang=lang)
        assert hits and {h.lang for h in hits} == {lang}


def test_release_and_date_filters(tiny_retriever: Retriever) -> None:
    hits = tiny_retriever.search("the", k=10, filters=Filters(release_id="metro-line"))
    assert hits and {h.release_id for h in hits} == {"metro-line"}
    hits = tiny_retriever.search(
        "district",
        k=10,
        filters=Filters(date_from=dt.date(2024, 4, 1), date_to=dt.date(2024, 12, 31)),
    )
    assert hits and {h.release_id for h in hits} == {"river-cleanup"}


def test_counterpart_is_none_without_other_version(tiny_retriever: Retriever) -> None:
    hits = tiny_retriever.search("library opening hours", k=1)
    assert hits[0].doc_id == "library.en" and hits[0].counterpart is None


def test_reingest_replaces_passages_without_stale_vectors(
    tiny_retriever: Retriever,
    tiny_docs: list[Document],
    tmp_path: Path,
    fake_embedder: FakeEmbedder,
    analyzer: Analyzer,
) -> None:
    old = next(d for d in tiny_docs if d.doc_id == "library.en")
    new = replace(old, text="The aquarium in Pudong adds a shark tunnel.\n\nTickets cost 80 yuan.")
    report = tiny_retriever.upsert([new])
    assert report.replaced == ["library.en"] and report.added == []
    stale = tiny_retriever.search("readers survey residents", k=10, mode="lexical")
    assert all(h.doc_id != "library.en" for h in stale)
    total = sum(len(tiny_retriever.passages(d.doc_id)) for d in tiny_retriever.documents())
    snapshot = tiny_retriever._current()
    assert total == snapshot.n_live == int(snapshot.live.sum())
    assert sum(s.dense.size for s in snapshot.segments) == snapshot.n_rows
    passages = tiny_retriever.passages("library.en")
    assert passages and all(new.text[p.start : p.end] == p.text for p in passages)
    assert "shark" in passages[0].text and "Tickets" in passages[-1].text
    reopened = open_retriever(tiny_retriever.data_dir, fake_embedder, analyzer)
    assert reopened.document("library.en") == new
    assert reopened._current().n_live == total


def test_lexical_search_never_returns_replaced_text(
    tiny_retriever: Retriever, tiny_docs: list[Document]
) -> None:
    old = next(d for d in tiny_docs if d.doc_id == "library.en")
    tiny_retriever.upsert([replace(old, text="Completely different words about bicycles.")])
    assert list(tiny_retriever.search("survey residents", k=10, mode="lexical")) == []
    assert tiny_retriever.search("bicycles", k=10, mode="lexical")[0].doc_id == "library.en"


def test_unchanged_document_is_skipped(
    tiny_retriever: Retriever, tiny_docs: list[Document]
) -> None:
    generation = tiny_retriever.generation
    report = tiny_retriever.upsert(tiny_docs)
    assert sorted(report.unchanged) == sorted(d.doc_id for d in tiny_docs)
    assert report.added == report.replaced == []
    assert tiny_retriever.generation == generation


def test_delete_removes_document_and_its_counterpart_links(tiny_retriever: Retriever) -> None:
    assert tiny_retriever.delete(["river-cleanup.zh", "no-such-doc"]) == ["river-cleanup.zh"]
    assert tiny_retriever.document("river-cleanup.zh") is None
    for mode in ("hybrid", "dense", "lexical"):
        hits = tiny_retriever.search("淀山湖 塑料垃圾 Dianshan", k=10, mode=mode)  # type: ignore[arg-type]
        assert all(h.doc_id != "river-cleanup.zh" for h in hits)
        assert all(h.counterpart is None for h in hits if h.doc_id == "river-cleanup.en")


def test_reopen_with_other_model_is_refused(tiny_retriever: Retriever, analyzer: Analyzer) -> None:
    with pytest.raises(IndexMismatch, match="rebuild"):
        open_retriever(tiny_retriever.data_dir, FakeEmbedder(dim=32), analyzer)


def test_failed_commit_leaves_previous_state(
    tiny_retriever: Retriever, tiny_docs: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    import index.store.commit

    generation = current_name(tiny_retriever.data_dir)
    before = sorted(p.relative_to(tiny_retriever.data_dir) for p in
                    tiny_retriever.data_dir.rglob("*"))

    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(index.store.commit, "write_segment", disk_full)
    doc = replace(tiny_docs[0], text="changed text")
    with pytest.raises(OSError):
        tiny_retriever.upsert([doc])
    assert current_name(tiny_retriever.data_dir) == generation
    after = sorted(p.relative_to(tiny_retriever.data_dir) for p in
                   tiny_retriever.data_dir.rglob("*"))
    assert after == before  # nothing of the attempt is left
    monkeypatch.undo()
    assert tiny_retriever.document(tiny_docs[0].doc_id) == tiny_docs[0]


def test_bad_search_arguments_raise_clear_errors(tiny_retriever: Retriever) -> None:
    with pytest.raises(EmptyInput):
        tiny_retriever.search("   ")
    with pytest.raises(QiaoError, match="k must be"):
        tiny_retriever.search("x", k=0)
    with pytest.raises(QiaoError, match="lang"):
        tiny_retriever.search("x", lang="fr")


def test_empty_index_returns_no_hits(retriever: Retriever) -> None:
    assert list(retriever.search("anything")) == []


def test_pooled_sentence_vectors_give_exact_answers(
    tmp_path: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer, tiny_docs: list[Document]
) -> None:
    retriever = open_retriever(
        tmp_path / "pooled", fake_embedder, analyzer, embed_units="passages"
    )
    retriever.upsert(tiny_docs)
    [segment] = retriever._current().segments
    assert len(segment.sentence_vectors) == len(segment.sentences) > 0
    hits = retriever.search("plastic waste Dianshan Lake", k=5)
    assert hits[0].answer is not None and "Dianshan" in hits[0].answer.text
    assert_spans_exact(retriever, hits)


def test_summary_counts_languages_dates_and_lists_the_newest_first(
    tiny_retriever: Retriever, tiny_docs: list[Document],
) -> None:
    summary = tiny_retriever.view().summary()
    assert summary.documents == len(tiny_docs)
    assert summary.languages == {lang: sum(d.lang == lang for d in tiny_docs)
                                 for lang in {d.lang for d in tiny_docs}}
    dates = sorted(d.date for d in tiny_docs if d.date)
    assert (summary.date_from, summary.date_to) == (dates[0], dates[-1])
    newest = [d.date or "" for d in summary.newest]
    assert newest == sorted(newest, reverse=True) and newest[0] == dates[-1]
    assert tiny_retriever.view().summary() is summary  # once per committed state
    tiny_retriever.delete([summary.newest[0].doc_id])
    assert tiny_retriever.view().summary().documents == len(tiny_docs) - 1
