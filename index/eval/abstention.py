"""Answerable and unanswerable questions from XQuAD, to calibrate abstention.

Half the articles are indexed (both languages); the questions about them are answerable, the
questions about the other half are not (their articles are not in the index, though the
topics of all 24 articles overlap in vocabulary). Both ways round, so every question is asked
once answerable and once not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from index.embed import Embedder
from index.eval.retrieval import SETTINGS, K, PreparedBench
from index.indexes.analyze import Analyzer
from index.ingest.langdetect import detect_lang
from index.search.answerable import Evidence
from index.search.hits import choose_answer, question_info
from index.search.rank import Filters, SearchParams, search_rows
from index.store.realign import without_counterparts
from index.store.snapshot import Snapshot

HALVES: tuple[range, range] = (range(0, 12), range(12, 24))


@dataclass(frozen=True, slots=True)
class AbstentionExample:
    setting: str
    question: str
    indexed_half: int  # which half of the articles was indexed
    answerable: bool  # the question's article is indexed
    evidence: Evidence | None  # None: no hit with sentences


def _article(doc_id: str) -> int:
    return int(doc_id.split("-")[1].split(".")[0])


def half_snapshot(bench: PreparedBench, articles: range, index: str) -> Snapshot:
    """The given articles in `index` ("both" language versions, or only "en" or "zh"), as one
    in-memory segment."""
    docs = [p for doc_id, p in bench.prepared.items()
            if _article(doc_id) in articles and index in ("both", p.document.lang)]
    if index != "both":
        docs = [without_counterparts(p) for p in docs]
    return Snapshot.from_prepared(docs, bench.snapshots["both"].info, ann_min_rows=1 << 30)


def abstention_examples(
    bench: PreparedBench, settings: Sequence[str], params: SearchParams | None = None
) -> list[AbstentionExample]:
    params = params or SearchParams()
    out: list[AbstentionExample] = []
    for half, articles in enumerate(HALVES):
        snaps = {index: half_snapshot(bench, articles, index) for index in ("both", "en", "zh")}
        for setting in SETTINGS:
            if setting.name not in settings:
                continue
            snap = snaps[setting.index]
            ql = setting.query_lang
            vectors, terms, langs = bench.qvecs[ql], bench.qterms[ql], bench.qlangs[ql]
            ranked = search_rows(snap, vectors, terms, langs, K, setting.lang, "hybrid",
                                 Filters(), params)
            for i, (question, hits) in enumerate(zip(bench.questions[ql], ranked, strict=True)):
                evidence = None
                if hits:
                    info = question_info(snap, question.text, langs[i], terms[i])
                    choice = choose_answer(snap, hits[0][0], vectors[i], info)
                    evidence = None if choice is None else choice.evidence
                out.append(AbstentionExample(
                    setting.name, question.text, half,
                    _article(question.doc_id) in articles, evidence))
    return out


def evidence_of_queries(
    snap: Snapshot, embedder: Embedder, analyzer: Analyzer, texts: Sequence[str],
    params: SearchParams | None = None,
) -> list[Evidence | None]:
    """The top hit's evidence for each query text (any result language)."""
    vectors = embedder.embed_queries(list(texts))
    terms = analyzer.terms_batch(list(texts))
    langs = [detect_lang(t) for t in texts]
    ranked = search_rows(snap, vectors, terms, langs, K, None, "hybrid", Filters(),
                         params or SearchParams())
    out: list[Evidence | None] = []
    for i, hits in enumerate(ranked):
        choice = None
        if hits:
            info = question_info(snap, texts[i], langs[i], terms[i])
            choice = choose_answer(snap, hits[0][0], vectors[i], info)
        out.append(None if choice is None else choice.evidence)
    return out
