"""`bench_scale.py --backend qdrant`: the archive copied into Qdrant's shard engine in-process
(qdrant-edge), then the same hybrid searches through both backends in one run, alternating
query by query so both see the same machine load.

The copy is made once per archive (reused while its passage count matches): every committed
document exported as prepared (no embedding) and written to an edge shard folder beside the
archive. Each search embeds its query (no cache) through the same model, then ranks and
composes hits as the API would: Qdrant's figure includes reading back the hits' documents.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from index import Embedder, IndexSettings, QdrantRetriever, Retriever, connect


def qdrant_settings(data_dir: Path) -> IndexSettings:
    return IndexSettings(data_dir=data_dir, query_cache_size=0, backend="qdrant",
                         qdrant_path=data_dir.parent / "qdrant-edge", qdrant_edge=True,
                         qdrant_collection="archive")


def copy_to_qdrant(retriever: Retriever, settings: IndexSettings, dim: int,
                   batch_docs: int = 100) -> dict[str, float]:
    """Write the archive into the edge shards unless they already hold it."""
    store = connect(settings, dim)
    try:
        if store.exists() and store.count()[1] == retriever.stats()["passages"]:
            return {"qdrant_copy_s": 0.0}
        if store.exists():
            store.client.delete_collection(store.collection)
            store.client.delete_collection(store.documents)
        store.init()
        t0 = time.perf_counter()
        batch = []
        written = 0
        for prepared in retriever.export_prepared():
            batch.append(prepared)
            if len(batch) == batch_docs:
                store.write(batch)
                written += sum(len(p.spans) for p in batch)
                batch = []
                print(f"  copied {written:,} passages", file=sys.stderr, end="\r")
        store.write(batch)
        seconds = time.perf_counter() - t0
        return {"qdrant_copy_s": round(seconds, 1),
                "qdrant_copy_passages_per_s": round(store.count()[1] / seconds, 1)}
    finally:
        store.close()


def _summary(name: str, times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {f"{name}_search_p50_ms": round(times[len(times) // 2], 1),
            f"{name}_search_p99_ms": round(times[int(len(times) * 0.99)], 1)}


def compare_search(data_dir: Path, embedder: Embedder, queries: Sequence[str]
                   ) -> dict[str, float]:
    """Hybrid search p50/p99 (k=10, query embedded) through both backends, same queries,
    alternating; and how often their top hit is the same passage."""
    embedded = Retriever.open(settings=IndexSettings(data_dir=data_dir, query_cache_size=0),
                              embedder=embedder)
    settings = qdrant_settings(data_dir)
    report = copy_to_qdrant(embedded, settings, embedder.dim)
    qdrant = QdrantRetriever.open_qdrant(settings, embedder)
    try:
        for retriever in (embedded, qdrant):
            retriever.search(queries[0], k=10)  # first calls set up kernels and caches
        times: dict[str, list[float]] = {"embedded": [], "qdrant": []}
        same = 0
        for query in queries:
            tops = []
            for name, retriever in (("embedded", embedded), ("qdrant", qdrant)):
                t0 = time.perf_counter()
                hits = retriever.search(query, k=10)
                times[name].append((time.perf_counter() - t0) * 1000)
                tops.append(hits[0].passage_id if len(hits) else None)
            same += tops[0] == tops[1]
        report |= _summary("embedded", times["embedded"]) | _summary("qdrant", times["qdrant"])
        report |= {"qdrant_searches": len(queries),
                   "qdrant_same_top_hit": round(same / len(queries), 4)}
        return report
    finally:
        qdrant.close()
