"""Search latency and ingest throughput on the XQuAD dev split, measured in one run.

Ingest throughput is compared with the embedder's own throughput on the same passage texts,
measured in the same process right before, so machine noise affects both alike. Ingest is timed
with each way of embedding (`QIAO_EMBED_UNITS`: the configured one, then the others).

    .venv/bin/python scripts/bench_search.py [--xquad-dir ../shared/xquad] [--json out.json]
        [--compare-backends]

The embedder is the configured one (`QIAO_EMBED_BACKEND`). `--compare-backends` also opens the
same index with the torch and the ONNX Runtime embedder and times hybrid searches with the two,
taking turns query by query.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from index import (
    Analyzer,
    ChunkPlan,
    Document,
    Embedder,
    IndexSettings,
    Retriever,
    embedding_text,
    load_embedder,
    load_xquad,
    passages_for,
)

EMBED_UNITS = ("sentences", "passages+sentences", "passages")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ingest_timed(
    data_dir: Path,
    settings: IndexSettings,
    embedder: Embedder,
    analyzer: Analyzer,
    documents: list[Document],
) -> tuple[Retriever, float]:
    """A new index in `data_dir` with `documents` ingested, and the seconds the ingest took."""
    retriever = Retriever.open(data_dir, settings=settings, embedder=embedder, analyzer=analyzer)
    t0 = time.perf_counter()
    retriever.upsert(documents)
    return retriever, time.perf_counter() - t0


def compare_backends(
    data_dir: Path, settings: IndexSettings, analyzer: Analyzer, questions: list[str]
) -> dict[str, list[float]]:
    """Hybrid search milliseconds per question with each embedding backend, on one index."""
    retrievers = {
        backend: Retriever.open(
            data_dir,
            settings=settings,
            embedder=load_embedder(settings.model_copy(update={"embed_backend": backend})),
            analyzer=analyzer,
        )
        for backend in ("torch", "onnx")
    }
    for q in questions[:20]:
        for retriever in retrievers.values():
            retriever.search(q, k=10)  # warm-up
    latencies: dict[str, list[float]] = {f"hybrid, {b} backend": [] for b in retrievers}
    for q in questions:  # take turns, so bursts of load from elsewhere hit both alike
        for backend, retriever in retrievers.items():
            t0 = time.perf_counter()
            retriever.search(q, k=10)
            latencies[f"hybrid, {backend} backend"].append((time.perf_counter() - t0) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--xquad-dir", type=Path, default=Path("../shared/xquad"))
    parser.add_argument("--queries", type=int, default=300, help="questions per language")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds of embed and ingest")
    parser.add_argument(
        "--compare-backends", action="store_true", help="also time search with each backend"
    )
    args = parser.parse_args()

    # No query cache: the same questions are searched in every mode, each with its embedding.
    settings = IndexSettings(query_cache_size=0)
    embedder = load_embedder(settings)
    analyzer = Analyzer(settings.user_dict)
    data = load_xquad(args.xquad_dir)
    plan = ChunkPlan.from_settings(settings)

    # The embedder alone, on exactly the passage inputs ingest will embed.
    texts = [embedding_text(d, p) for d in data.documents for p in passages_for(d, embedder, plan)]
    tokens = sum(embedder.count_tokens(texts))
    embedder.embed_passages(texts[:16])  # warm-up
    analyzer.terms_batch(["warm-up 预热"])  # jieba loads its dictionary once, before any timing

    # Rounds alternate the embedder alone with an ingest in each way of embedding
    # (IndexSettings.embed_units, the configured one first), so that load from elsewhere hits
    # both sides of a ratio alike; each side's best round counts.
    units_order = [settings.embed_units, *(u for u in EMBED_UNITS if u != settings.embed_units)]
    embed_runs: list[float] = []
    ingest_runs: dict[str, list[float]] = {units: [] for units in units_order}
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        embedder.embed_passages(texts)
        embed_runs.append(time.perf_counter() - t0)
        for units in units_order:
            other = settings.model_copy(update={"embed_units": units})
            with tempfile.TemporaryDirectory() as tmp:
                _, seconds = ingest_timed(Path(tmp), other, embedder, analyzer, data.documents)
            ingest_runs[units].append(seconds)
    embed_s = min(embed_runs)
    ingest_s_by_units = {units: min(runs) for units, runs in ingest_runs.items()}
    ingest_s = ingest_s_by_units[settings.embed_units]

    with tempfile.TemporaryDirectory() as tmp:
        retriever, _ = ingest_timed(Path(tmp), settings, embedder, analyzer, data.documents)

        questions = [q.text for lang in ("en", "zh") for q in data.questions[lang][: args.queries]]
        for q in questions[:20]:
            retriever.search(q, k=10)  # warm-up
        latencies: dict[str, list[float]] = {"hybrid": [], "dense": [], "lexical": []}
        for mode, lat in latencies.items():
            for q in questions:
                t0 = time.perf_counter()
                retriever.search(q, k=10, mode=mode)  # type: ignore[arg-type]
                lat.append((time.perf_counter() - t0) * 1000)
        cross: list[float] = []
        for q in questions:
            t0 = time.perf_counter()
            retriever.search(q, k=10, lang="zh" if q.isascii() else "en")
            cross.append((time.perf_counter() - t0) * 1000)
        latencies["hybrid, cross-lingual pivot"] = cross
        query_embed: list[float] = []
        for q in questions:
            t0 = time.perf_counter()
            embedder.embed_queries([q])
            query_embed.append((time.perf_counter() - t0) * 1000)
        latencies["(query embedding only)"] = query_embed
        if args.compare_backends:
            latencies.update(compare_backends(Path(tmp), settings, analyzer, questions))
        stats = retriever.stats()

    latency_table: dict[str, dict[str, float]] = {
        mode: {
            "median": round(statistics.median(v), 2),
            "p95": round(percentile(v, 0.95), 2),
            "p99": round(percentile(v, 0.99), 2),
            "n": len(v),
        }
        for mode, v in latencies.items()
    }
    by_units = {
        units: {
            "tokens_per_s": round(tokens / seconds, 1),
            "ratio": round(embed_s / seconds, 3),
            "seconds": round(seconds, 2),
            "ratio_by_round": [
                round(e / i, 3) for e, i in zip(embed_runs, ingest_runs[units], strict=True)
            ],
        }
        for units, seconds in ingest_s_by_units.items()
    }
    figures = {
        "documents": stats["documents"],
        "passages": stats["passages"],
        "passage_tokens": tokens,
        "embedder_tokens_per_s": round(tokens / embed_s, 1),
        "ingest_tokens_per_s": round(tokens / ingest_s, 1),
        "ingest_to_embedder_ratio": round(embed_s / ingest_s, 3),
        "ingest_seconds": round(ingest_s, 2),
        "embed_units": settings.embed_units,
        "ingest_by_embed_units": by_units,
        "embed_backend": settings.embed_backend,
        "latency_ms": latency_table,
    }
    print(f"index: {stats['documents']} documents, {stats['passages']} passages, {tokens} tokens")
    print(f"embedder alone : {figures['embedder_tokens_per_s']:>9} tokens/s")
    for units, row in by_units.items():
        mark = " (configured)" if units == settings.embed_units else ""
        print(
            f"ingest, {units + mark:<31}: {row['tokens_per_s']:>9} tokens/s "
            f"(ratio {row['ratio']}, {row['seconds']} s; by round {row['ratio_by_round']})"
        )
    print(f"{'search (k=10)':<30}{'median ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
    for mode, row in latency_table.items():
        print(f"{mode:<30}{row['median']:>10}{row['p95']:>10}{row['p99']:>10}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
