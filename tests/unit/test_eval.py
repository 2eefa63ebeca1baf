"""The XQuAD evaluation on a tiny SQuAD-format split with the fake embedder: metrics are counted
from gold spans, and the dense baseline embeds whole passages whatever Qiao's `embed_units`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.config import IndexSettings
from index.eval.retrieval import prepare_bench, run_bench
from index.ingest.chunk import embedding_text
from index.search.rank import SearchParams
from tests.fakes import FakeEmbedder

ARTICLES = {
    "en": [
        ("Rivers", ["The Huangpu River flows through Shanghai.", "Barges carry sand upstream."]),
        ("Farms", ["Qingpu grows rice and water bamboo.", "Crab farms line Dianshan Lake."]),
    ],
    "zh": [
        ("河流", ["黄浦江流经上海。", "驳船向上游运沙。"]),
        ("农业", ["青浦种植水稻和茭白。", "淀山湖畔有许多蟹塘。"]),
    ],
}
QUESTIONS = {  # per paragraph: (question, answer) in each language
    "en": [
        ("Which river flows through Shanghai?", "Huangpu"),
        ("What do barges carry?", "sand"),
        ("What does Qingpu grow?", "rice"),
        ("What lines Dianshan Lake?", "Crab farms"),
    ],
    "zh": [
        ("哪条江流经上海？", "黄浦江"),
        ("驳船运什么？", "沙"),
        ("青浦种植什么？", "水稻"),
        ("淀山湖畔有什么？", "蟹塘"),
    ],
}


@pytest.fixture
def xquad_dir(tmp_path: Path) -> Path:
    for lang, articles in ARTICLES.items():
        data, q = [], iter(enumerate(QUESTIONS[lang]))
        for title, paragraphs in articles:
            items = []
            for context in paragraphs:
                n, (question, answer) = next(q)
                qa = {
                    "id": f"q{n}",
                    "question": question,
                    "answers": [{"text": answer, "answer_start": context.index(answer)}],
                }
                items.append({"context": context, "qas": [qa]})
            data.append({"title": title, "paragraphs": items})
        (tmp_path / f"xquad-dev.{lang}.json").write_text(json.dumps({"data": data}))
    return tmp_path


@pytest.mark.parametrize("units", ["sentences", "passages+sentences"])
def test_dense_baseline_embeds_whole_passages(xquad_dir: Path, units: str) -> None:
    embedder = FakeEmbedder()
    bench = prepare_bench(xquad_dir, embedder, IndexSettings(embed_units=units))
    for index in ("both", "en", "zh"):
        snap = bench.dense_snapshots[index]
        for key in snap.doc_index.values():
            doc = snap.prepared(key)
            texts = [embedding_text(doc.document, p) for p in doc.passages()]
            np.testing.assert_allclose(doc.vectors, embedder.embed_passages(texts), atol=2e-3)
    same = bench.dense_snapshots is bench.snapshots
    assert same == (units == "passages+sentences")


def test_report_counts_hits_against_gold_spans(xquad_dir: Path) -> None:
    bench = prepare_bench(xquad_dir, FakeEmbedder())
    report = run_bench(bench, SearchParams())
    assert set(report.results) >= {"en→en", "zh→zh", "en→zh (zh only)"}
    for systems in report.results.values():
        assert set(systems) == {"qiao", "bm25", "dense", "rag"}
        for metrics in systems.values():
            assert metrics.n == 4
            assert 0.0 <= metrics.hit1 <= metrics.hit5 <= 1.0
    # Every question's words appear in its own paragraph only: same-language BM25 finds them all.
    assert report.results["en→en"]["bm25"].hit1 == 1.0
    assert report.results["zh→zh"]["bm25"].hit5 == 1.0
