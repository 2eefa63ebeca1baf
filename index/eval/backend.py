"""The XQuAD evaluation through another backend (Qdrant): the same prepared passages written
to it, the same questions, Qiao's own system only, beside the embedded figures of one run."""

from __future__ import annotations

import time
from collections.abc import Callable

from index.backends.qdrant import QdrantStore, QdrantTarget
from index.backends.qdrant_index import QdrantIndex
from index.embed import Embedder
from index.eval.retrieval import (
    SETTINGS,
    EvalReport,
    K,
    Metrics,
    PreparedBench,
    _golds,
    _is_hit,
    _metrics,
    _only,
)
from index.search.queries import QueryEncoder
from index.search.rank import Filters, SearchParams

BATCH = 64  # questions per search call


def _stores(bench: PreparedBench, target: Callable[[str], QdrantTarget], dim: int
            ) -> dict[str, QdrantStore]:
    """The three indexes of the evaluation (both languages, English only, Chinese only) as
    fresh collections, written from the bench's prepared (aligned) documents."""
    contents = {"both": list(bench.prepared.values()),
                "en": _only(bench.prepared, "en"), "zh": _only(bench.prepared, "zh")}
    stores = {}
    for name, docs in contents.items():
        store = QdrantStore.connect(target(name), dim)
        if store.exists():
            store.client.delete_collection(store.collection)
            store.client.delete_collection(store.documents)
        store.init()
        store.write(docs)
        stores[name] = store
    return stores


def run_qdrant(
    bench: PreparedBench, params: SearchParams, target: Callable[[str], QdrantTarget],
    log: Callable[[str], None] = lambda _: None,
) -> EvalReport:
    """Qiao's hybrid search on every setting through Qdrant (`target(index)` names the
    collection of each of the three indexes); report as `run_bench`'s, system "qiao"."""
    info = bench.snapshots["both"].info
    report = EvalReport(passage_chars=dict(bench.report.passage_chars),
                        passages=dict(bench.report.passages), params={"backend": "qdrant"})
    t0 = time.perf_counter()
    log("writing the passages to Qdrant")
    stores = _stores(bench, target, info.dim)
    report.timings["write"] = round(time.perf_counter() - t0, 2)
    unused = QueryEncoder(bench.analyzer, _no_embedder, 0)
    t0 = time.perf_counter()
    try:
        for setting in SETTINGS:
            log(f"{setting.name} through Qdrant")
            index = QdrantIndex(stores[setting.index], unused, params, info)
            questions = bench.questions[setting.query_lang]
            ql = setting.query_lang
            ranks: list[int | None] = []
            answers: list[bool] = []
            for start in range(0, len(questions), BATCH):
                part = slice(start, start + BATCH)
                found = index.search_encoded(
                    [q.text for q in questions[part]], bench.qlangs[ql][part],  # type: ignore[arg-type]
                    bench.qterms[ql][part], bench.qvecs[ql][part], K, setting.lang, "hybrid",
                    Filters())
                for q, results in zip(questions[part], found, strict=True):
                    golds = _golds(q, setting, bench.gold)
                    rank = next((r for r, h in enumerate(results, start=1)
                                 if _is_hit(h.doc_id, h.start, h.end, golds)), None)
                    ranks.append(rank)
                    top = results[0] if len(results) else None
                    answers.append(top is not None and top.answer is not None and _is_hit(
                        top.doc_id, top.answer.start, top.answer.end, golds))
            report.results[setting.name] = {"qiao": _metrics(ranks, answers)}
    finally:
        for store in stores.values():
            store.close()
    report.timings["search_all_settings"] = round(time.perf_counter() - t0, 2)
    return report


def _no_embedder() -> Embedder:
    raise AssertionError("the evaluation gives every question's vector")


def hit_gaps(embedded: EvalReport, other: EvalReport) -> dict[str, float]:
    """Per setting, the other backend's hit@1 minus the embedded one's."""
    out = {}
    for name, row in other.results.items():
        mine: Metrics = row["qiao"]
        out[name] = round(mine.hit1 - embedded.results[name]["qiao"].hit1, 4)
    return out
