"""Retrieval evaluation on XQuAD: Qiao's settings against three baselines, in one run.

Baselines, on the same documents and questions: BM25 alone and passage vectors alone (same
chunks, each passage embedded whole, no pivot, no sentence evidence), and "typical RAG"
(recursive 1000/200-character chunks with exact FAISS search). A hit is a returned passage of
the gold document whose [start, end) contains the gold answer span. Metrics: hit@1, hit@5,
MRR@10 and answer-sentence hit@1 (the top hit's answer sentence contains the gold span).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from index.config import ChunkPlan, IndexSettings
from index.embed import Embedder
from index.eval.baseline import recursive_chunks
from index.eval.xquad import Question, load_xquad
from index.indexes.analyze import Analyzer
from index.indexes.dense import DenseIndex, FaissDense
from index.ingest.chunk import embedding_text
from index.ingest.langdetect import detect_lang
from index.ingest.prepare import prepare_segments
from index.records import Lang, PreparedDocument
from index.search.hits import answer_span, question_info
from index.search.rank import Filters, SearchParams, search_rows
from index.store.manifest import BuildInfo
from index.store.realign import realign_releases, without_counterparts
from index.store.snapshot import Snapshot

K = 10
Gold = dict[tuple[str, str], Question]  # (qid, lang) → gold


@dataclass(frozen=True, slots=True)
class Metrics:
    n: int
    hit1: float
    hit5: float
    mrr10: float
    answer_hit1: float | None = None


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    query_lang: Lang
    index: str  # "both" | "en" | "zh"
    lang: Lang | None  # result language filter


SETTINGS: tuple[Setting, ...] = (
    Setting("en→en", "en", "both", "en"),
    Setting("zh→zh", "zh", "both", "zh"),
    Setting("en→zh", "en", "both", "zh"),
    Setting("zh→en", "zh", "both", "en"),
    Setting("en→zh (zh only)", "en", "zh", "zh"),
    Setting("zh→en (en only)", "zh", "en", "en"),
    Setting("en→any", "en", "both", None),
    Setting("zh→any", "zh", "both", None),
)
SYSTEMS = ("qiao", "bm25", "dense", "rag")


@dataclass
class EvalReport:
    results: dict[str, dict[str, Metrics]] = field(default_factory=dict)  # setting → system → m
    passage_chars: dict[str, float] = field(default_factory=dict)
    passages: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "results": {s: {k: asdict(m) for k, m in r.items()} for s, r in self.results.items()},
            "passage_chars": self.passage_chars,
            "passages": self.passages,
            "timings_s": self.timings,
            "params": self.params,
        }


def _is_hit(doc_id: str, start: int, end: int, golds: Sequence[Question]) -> bool:
    return any(g.doc_id == doc_id and start <= g.start and g.end <= end for g in golds)


def _metrics(ranks: list[int | None], answer_hits: list[bool] | None) -> Metrics:
    n = len(ranks)
    hit1 = sum(1 for r in ranks if r == 1) / n
    hit5 = sum(1 for r in ranks if r is not None and r <= 5) / n
    mrr = sum(1.0 / r for r in ranks if r is not None and r <= K) / n
    ans = sum(answer_hits) / n if answer_hits is not None else None
    return Metrics(
        n, round(hit1, 4), round(hit5, 4), round(mrr, 4), None if ans is None else round(ans, 4)
    )


def _golds(q: Question, setting: Setting, gold: Gold) -> list[Question]:
    if setting.lang is None:
        return [gold[(q.qid, "en")], gold[(q.qid, "zh")]]
    return [gold[(q.qid, setting.lang)]]


@dataclass
class PreparedBench:
    """XQuAD indexed in memory once (passages, sentences, questions embedded), ready to be
    searched with any SearchParams: tuning reuses one embedding pass."""

    questions: dict[Lang, list[Question]]
    gold: Gold
    snapshots: dict[str, Snapshot]
    dense_snapshots: dict[str, Snapshot]  # the dense baseline's: every passage embedded whole
    qvecs: dict[Lang, np.ndarray]
    qterms: dict[Lang, list[list[str]]]
    qlangs: dict[Lang, list[str]]
    analyzer: Analyzer
    rag: _RagBaseline
    report: EvalReport
    prepared: dict[str, PreparedDocument]  # doc_id → prepared, aligned (both languages)


def prepare_bench(
    directory: Path,
    embedder: Embedder,
    settings: IndexSettings | None = None,
    articles: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> PreparedBench:
    """Read XQuAD, chunk and embed it, build the three indexes (both/en-only/zh-only)."""
    settings = settings or IndexSettings()
    analyzer = Analyzer(settings.user_dict)
    data = load_xquad(directory, articles)
    report = EvalReport()
    gold: Gold = {(q.qid, q.lang): q for qs in data.questions.values() for q in qs}

    t0 = time.perf_counter()
    log("embedding passages")
    segments = prepare_segments(
        data.documents, embedder, analyzer, ChunkPlan.from_settings(settings)
    )
    report.timings["prepare"] = round(time.perf_counter() - t0, 2)
    by_id = {s.doc_id: s for s in segments}
    releases = {s.document.release_id for s in segments}
    info = BuildInfo(embedder.model_id, embedder.dim, {}, analyzer.fingerprint)
    prepared = realign_releases(by_id, releases)
    snapshots = _indexed_three_ways(prepared, info)
    dense_snapshots = snapshots
    if settings.embed_units == "sentences":
        log("embedding whole passages for the dense baseline")
        dense_snapshots = _whole_passage_snapshots(segments, embedder, info)
    for lang in ("en", "zh"):
        lens = [int(e - s) for seg in segments if seg.document.lang == lang for s, e in seg.spans]
        report.passage_chars[lang] = round(float(np.mean(lens)), 1)
        report.passages[lang] = len(lens)

    log("embedding questions")
    t0 = time.perf_counter()
    langs: tuple[Lang, Lang] = ("en", "zh")
    qtexts = {lang: [q.text for q in data.questions[lang]] for lang in langs}
    qvecs = {lang: embedder.embed_queries(qtexts[lang]) for lang in langs}
    qterms = {lang: analyzer.terms_batch(qtexts[lang]) for lang in langs}
    qlangs: dict[Lang, list[str]] = {lang: [detect_lang(t) for t in qtexts[lang]] for lang in langs}
    report.timings["embed_questions"] = round(time.perf_counter() - t0, 2)

    log("baseline chunks")
    rag = _RagBaseline.build(data.documents, embedder)
    return PreparedBench(
        data.questions,
        gold,
        snapshots,
        dense_snapshots,
        qvecs,
        qterms,
        qlangs,
        analyzer,
        rag,
        report,
        prepared,
    )


def run_bench(
    bench: PreparedBench,
    params: SearchParams,
    baselines: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> EvalReport:
    """Every setting with `params`; with `baselines`, also BM25-only, dense-only and RAG."""
    report = replace(
        bench.report, results={}, params=asdict(params), timings=dict(bench.report.timings)
    )
    t0 = time.perf_counter()
    for setting in SETTINGS:
        log(setting.name)
        questions = bench.questions[setting.query_lang]
        ql = setting.query_lang
        args = (bench.qvecs[ql], bench.qterms[ql], bench.qlangs[ql])
        systems: list[tuple[str, str, SearchParams]] = [("qiao", "hybrid", params)]
        if baselines:
            systems += [
                ("bm25", "lexical", replace(params, pivot=False, gloss=False)),
                ("dense", "dense", replace(params, pivot=False, sentence_weight=0.0, gloss=False)),
            ]
        row: dict[str, Metrics] = {}
        for system, mode, p in systems:
            snap = bench.snapshots[setting.index]
            if system == "dense":
                snap = bench.dense_snapshots[setting.index]
            ranked = search_rows(snap, *args, K, setting.lang, mode, Filters(), p)  # type: ignore[arg-type]
            ranks: list[int | None] = []
            answers: list[bool] = []
            for i, (q, hits) in enumerate(zip(questions, ranked, strict=True)):
                golds = _golds(q, setting, bench.gold)
                ranks.append(_rank(snap, hits, golds))
                if system != "qiao":
                    continue
                question = question_info(snap, q.text, args[2][i], args[1][i])
                span = answer_span(snap, hits[0][0], args[0][i], question) if hits else None
                doc_id = snap.document(snap.key_of_row(hits[0][0])[0]).doc_id if hits else ""
                answers.append(span is not None and _is_hit(doc_id, span.start, span.end, golds))
            row[system] = _metrics(ranks, answers if system == "qiao" else None)
        if baselines:
            row["rag"] = bench.rag.evaluate(bench.qvecs[ql], questions, setting, bench.gold)
        report.results[setting.name] = row
    report.timings["search_all_settings"] = round(time.perf_counter() - t0, 2)
    return report


def evaluate_xquad(
    directory: Path,
    embedder: Embedder,
    settings: IndexSettings | None = None,
    params: SearchParams | None = None,
    articles: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> EvalReport:
    """Index XQuAD in memory (one embedding pass), run every setting and baseline."""
    bench = prepare_bench(directory, embedder, settings, articles, log)
    return run_bench(bench, params or SearchParams(), log=log)


def _whole_passage_snapshots(
    segments: list[PreparedDocument], embedder: Embedder, info: BuildInfo
) -> dict[str, Snapshot]:
    """Snapshots like prepare_bench's whose passage vectors embed each passage whole (title and
    cleaned view), as a dense-only system would: the baseline stays the same whatever
    `embed_units` Qiao itself uses."""
    texts = [embedding_text(seg.document, p) for seg in segments for p in seg.passages()]
    vectors = embedder.embed_passages(texts)
    whole: dict[str, PreparedDocument] = {}
    row = 0
    for seg in segments:
        n = len(seg.spans)
        whole[seg.doc_id] = replace(seg, vectors=vectors[row : row + n])
        row += n
    return _indexed_three_ways(whole, info)


def _indexed_three_ways(segments: dict[str, PreparedDocument], info: BuildInfo
                        ) -> dict[str, Snapshot]:
    """The evaluation's indexes (in memory, searched exactly): both languages (`segments` as
    given, counterparts included), and each language alone (without counterparts: there is no
    other version to pivot to)."""
    exact = 1 << 62
    return {
        "both": Snapshot.from_prepared(list(segments.values()), info, exact),
        "en": Snapshot.from_prepared(_only(segments, "en"), info, exact),
        "zh": Snapshot.from_prepared(_only(segments, "zh"), info, exact),
    }


def _only(segments: dict[str, PreparedDocument], lang: str) -> list[PreparedDocument]:
    return [without_counterparts(s) for s in segments.values() if s.document.lang == lang]


def _rank(snap: Snapshot, hits: list[tuple[int, float]], golds: Sequence[Question]) -> int | None:
    for rank, (row, _) in enumerate(hits, start=1):
        (seg, doc), _ = snap.key_of_row(row)
        segment = snap.segments[seg]
        s, e = (int(x) for x in segment.passages[row - int(snap.base[seg])])
        if _is_hit(segment.doc_ids[doc], s, e, golds):
            return rank
    return None


@dataclass
class _RagBaseline:
    """Recursive 1000/200-character chunks + exact FAISS dense search, no title, no fusion."""

    doc_ids: list[str]
    langs: np.ndarray
    spans: np.ndarray
    index: DenseIndex

    @classmethod
    def build(cls, documents: Sequence[object], embedder: Embedder) -> _RagBaseline:
        doc_ids: list[str] = []
        langs: list[str] = []
        spans: list[tuple[int, int]] = []
        texts: list[str] = []
        for doc in documents:
            for s, e in recursive_chunks(doc.text):  # type: ignore[attr-defined]
                doc_ids.append(doc.doc_id)  # type: ignore[attr-defined]
                langs.append(doc.lang)  # type: ignore[attr-defined]
                spans.append((s, e))
                texts.append(doc.text[s:e])  # type: ignore[attr-defined]
        index = FaissDense.build(embedder.embed_passages(_truncated(texts, embedder)), 1 << 62)
        return cls(doc_ids, np.array(langs), np.array(spans, dtype=np.int64), index)

    def evaluate(
        self, qvecs: np.ndarray, questions: Sequence[Question], setting: Setting, gold: Gold
    ) -> Metrics:
        if setting.index == "both":
            allowed = None if setting.lang is None else self.langs == setting.lang
        else:
            allowed = self.langs == setting.index
        rows, _ = self.index.search(qvecs, K, allowed)
        ranks: list[int | None] = []
        for q, line in zip(questions, rows.tolist(), strict=True):
            golds = _golds(q, setting, gold)
            rank = None
            for r, row in enumerate(line, start=1):
                start, end = (int(x) for x in self.spans[row])
                if row >= 0 and _is_hit(self.doc_ids[row], start, end, golds):
                    rank = r
                    break
            ranks.append(rank)
        return _metrics(ranks, None)


def _truncated(texts: list[str], embedder: Embedder) -> list[str]:
    """Cut texts to the model window, as typical RAG stacks silently do (the chunk span stays
    whole: that is what such a system returns and cites)."""
    out = list(texts)
    while True:
        counts = embedder.count_tokens(out)
        long = [i for i, c in enumerate(counts) if c > embedder.max_tokens]
        if not long:
            return out
        for i in long:
            out[i] = out[i][: int(len(out[i]) * 0.9)]
