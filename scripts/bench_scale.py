"""The embedded engine at archive scale: a synthetic archive of N passages, then one table.

Build (deterministic, `--seed`): the XQuAD dev articles and the parallel-news articles (English
and Simplified Chinese) are prepared once with the real model (chunked, analysed, embedded;
vectors cached in `<root>/base-vectors.npz`). Each copy of that base set is a new release of
every article: its digits permuted (same length, so every span stays exact; numbers in the
terms follow), its title numbered, its date moved, and its vectors moved by noise (cosine
≈ 0.96 to the original: near-duplicates, as in a real archive). Copies are committed as a bulk
ingest would: `--batch` documents per commit, merges as the merge policy decides.

Then, in this order, on the built archive:
  open     a new process opens the index (and separately loads the model)
  upsert   one document replaced (prepared: embedding excluded), then one deleted, ×`--writes`
  merge    a forced merge of the smallest segments (the policy's next merge, or the 8 smallest)
  search   1,000 hybrid searches in-process with the real model, each query embedded, in a new
           process (open + search only, as a server), and that process's RSS after them
  http     `qiao serve` on loopback, 16 clients for `--http-seconds` closed loop (capacity),
           then `--http-seconds` paced at `--http-rate` requests/s in all (users; latency
           counted from the planned send time)
  disk     bytes of the data directory per live passage
  recall   the dense search's recall@10 against an exact search over the same vectors

    .venv/bin/python scripts/bench_scale.py --passages 100000 [--root .qiao/scale] [--json F]
    .venv/bin/python scripts/bench_scale.py --passages 1000000 --http-seconds 60

An archive already built at the same size and seed is reused (`--rebuild` starts over).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from index import (
    Analyzer,
    ChunkPlan,
    Document,
    Embedder,
    IndexSettings,
    Matrix,
    PreparedDocument,
    Retriever,
    load_embedder,
    load_xquad,
    prepare_segments,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import free_port, hammer, http_worker, start_server, stop, wait_ready

REPO = Path(__file__).resolve().parents[1]
NOISE = 0.3  # norm of the noise added to a copy's vectors (before renormalising)


# -- the base set, prepared once with the real model -------------------------------------------


class CachedEmbedder:
    """The real embedder, remembering every passage text's vector in a file, so the base set is
    embedded once per machine."""

    def __init__(self, embedder: Embedder, path: Path) -> None:
        self._embedder = embedder
        self._path = path
        self._cache: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path, allow_pickle=False) as saved:
                self._cache = dict(zip(saved["texts"].tolist(), saved["vectors"], strict=True))

    def __getattr__(self, name: str) -> object:
        return getattr(self._embedder, name)

    def embed_passages(self, texts: list[str]) -> Matrix:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self._embedder.embed_passages(missing), strict=True))
        return np.stack([self._cache[t] for t in texts]).astype(np.float32)

    def save(self) -> None:
        texts = list(self._cache)
        np.savez(self._path, texts=np.array(texts), vectors=np.stack([self._cache[t]
                                                                          for t in texts]))


def base_documents(shared: Path) -> list[Document]:
    docs = list(load_xquad(shared / "xquad").documents)
    with (shared / "parallel-dev" / "docs.zh-cn.jsonl").open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            release = r["release_id"].replace(":", "-")
            docs.append(Document(f"{release}.{r['lang']}", release, r["lang"], r["title"],
                                 r["text"]))
    return docs


def base_prepared(root: Path, shared: Path, embedder: Embedder) -> list[PreparedDocument]:
    cached = CachedEmbedder(embedder, root / "base-vectors.npz")
    prepared = prepare_segments(base_documents(shared), cached,  # type: ignore[arg-type]
                                Analyzer(), ChunkPlan.from_settings(IndexSettings()))
    cached.save()
    return prepared


# -- copies ---------------------------------------------------------------------------------------


def _noisy(vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(vectors.shape).astype(np.float32)
    noise *= NOISE / np.linalg.norm(noise, axis=1, keepdims=True)
    moved = vectors + noise
    normed: np.ndarray = (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(np.float32)
    return normed


def copy_of(base: PreparedDocument, copy: int, table: dict[int, int],
            rng: np.random.Generator) -> PreparedDocument:
    """Release `copy` of a base document: digits permuted (offsets unchanged), vectors moved."""
    doc = base.document
    release = f"{doc.release_id}~{copy:06d}"
    day = 735_000 + copy * 3  # about three days apart, ten years for 1,500 copies
    date = dt.date.fromordinal(day).isoformat()
    document = Document(f"{release}.{doc.lang}", release, doc.lang, f"{doc.title} ({copy})",
                        doc.text.translate(table), date, doc.url)
    sentence_vectors = _noisy(base.sentence_vectors, rng).astype(np.float16).astype(np.float32)
    return replace(
        base, document=document, content_hash=document.content_hash,
        vectors=_noisy(base.vectors, rng),
        terms=tuple(tuple(t.translate(table) for t in ts) for ts in base.terms),
        sentence_vectors=sentence_vectors,
        sentence_terms=tuple(tuple(t.translate(table) for t in ts) for ts in base.sentence_terms),
    )


def copies(base: Sequence[PreparedDocument], start: int, seed: int
           ) -> Iterator[list[PreparedDocument]]:
    """Copy after copy of the base set, from copy number `start` (deterministic per copy)."""
    copy = start
    while True:
        rng = np.random.default_rng([seed, copy])
        digits = list("0123456789")
        random.Random(seed * 1_000_003 + copy).shuffle(digits)
        table = str.maketrans("0123456789", "".join(digits))
        yield [copy_of(b, copy, table, rng) for b in base]
        copy += 1


class NoModel:
    """Stands in for the model while the archive is built from prepared documents: it names
    the model (so the index opens with the real one) but never embeds."""

    def __init__(self, model_id: str, dim: int, max_tokens: int) -> None:
        self.model_id, self.dim, self.max_tokens = model_id, dim, max_tokens

    def count_tokens(self, texts: list[str], *, query: bool = False) -> list[int]:
        raise AssertionError("the archive is built from prepared documents")

    embed_queries = embed_passages = embed_passages_with_spans = count_tokens


# -- measurements --------------------------------------------------------------------------------


def build(data_dir: Path, base: Sequence[PreparedDocument], target: int, batch: int, seed: int,
          settings: IndexSettings, model: NoModel) -> dict[str, float]:
    retriever = Retriever.open(settings=settings, embedder=model)  # type: ignore[arg-type]
    live = retriever.stats()["passages"]
    copy = len({d.release_id for d in retriever.documents()}) // max(1, len(
        {b.document.release_id for b in base}))
    started = time.perf_counter()
    pending: list[PreparedDocument] = []
    for docs in copies(base, copy, seed):
        if live >= target:
            break
        pending += docs
        live += sum(len(d.spans) for d in docs)
        while len(pending) >= batch or (live >= target and pending):
            retriever.upsert_prepared(pending[:batch])
            pending = pending[batch:]
            print(f"  {retriever.stats()['passages']:,} passages, "
                  f"{len(retriever.manifest.segments) if retriever.manifest else 0} segments, "
                  f"{time.perf_counter() - started:,.0f} s", file=sys.stderr, flush=True)
    return {"build_seconds": round(time.perf_counter() - started, 1)}


def rss_mb(pid: int | None = None) -> float:
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return round(kb / 1024, 1)


def open_seconds(data_dir: Path) -> dict[str, float]:
    """A fresh process opens the index (and, apart, loads the model): its own clock."""
    probe = (
        "import time, sys; t = time.perf_counter(); from index import Retriever, IndexSettings;"
        f"r = Retriever.open(settings=IndexSettings(data_dir={str(data_dir)!r}));"
        "v = r.view(); v.stats(); o = time.perf_counter() - t;"
        "r.embedder.embed_queries(['warm up']); m = time.perf_counter() - t - o;"
        "print(round(o, 2), round(m, 2))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, cwd=REPO)
    opened, model = (float(x) for x in done.stdout.split())
    return {"open_s": opened, "model_load_s": model}


def writes(retriever: Retriever, base: Sequence[PreparedDocument], n: int, seed: int
           ) -> dict[str, float]:
    """One-document upserts (a new version of a document, prepared: embedding excluded) and
    deletes, each its own commit, as an editor's fix or a withdrawal would be."""
    rng = np.random.default_rng(seed)
    documents = [d for d in retriever.documents() if "~" in d.doc_id]
    picked = [documents[int(i)] for i in rng.choice(len(documents), size=2 * n, replace=False)]
    by_base = {b.document.doc_id: b for b in base}
    upserts, deletes = [], []
    for current in picked[:n]:
        template = by_base[f"{current.release_id.split('~')[0]}.{current.lang}"]
        revised = replace(current, title=current.title + " (revised)")
        t0 = time.perf_counter()
        retriever.upsert_prepared([replace(template, document=revised,
                                           content_hash=revised.content_hash)])
        upserts.append(time.perf_counter() - t0)
    for current in picked[n:]:
        t0 = time.perf_counter()
        retriever.delete([current.doc_id])
        deletes.append(time.perf_counter() - t0)
    return {"upsert_p50_s": round(statistics.median(upserts), 3),
            "upsert_max_s": round(max(upserts), 3),
            "delete_p50_s": round(statistics.median(deletes), 3),
            "delete_max_s": round(max(deletes), 3)}


def forced_merge(retriever: Retriever) -> dict[str, float]:
    manifest = retriever.manifest
    assert manifest is not None
    plan = retriever.merge_policy.plan(manifest.segments)
    if plan is None:
        small = sorted(manifest.segments, key=lambda e: e.live_passages)[:8]
        plan = [e.name for e in small]
    rows = sum(e.live_passages for e in manifest.segments if e.name in plan)
    t0 = time.perf_counter()
    retriever.merge(plan)
    return {"merge_s": round(time.perf_counter() - t0, 2), "merge_segments": len(plan),
            "merge_passages": rows}


def questions(shared: Path, n: int) -> list[str]:
    xquad = load_xquad(shared / "xquad")
    mixed = [q.text for pair in zip(xquad.questions["en"], xquad.questions["zh"], strict=True)
             for q in pair]
    return mixed[:n]


def search(data_dir: Path, queries: Sequence[str]) -> dict[str, float]:
    """Hybrid searches (each query embedded, no cache) in-process, in a new process that only
    opens the index and searches, as a server would: its RSS is the serving footprint."""
    settings = IndexSettings(data_dir=data_dir, query_cache_size=0)
    retriever = Retriever.open(settings=settings)
    retriever.search(queries[0], k=10)  # the model's first call sets up its kernels
    times = []
    for q in queries:
        t0 = time.perf_counter()
        retriever.search(q, k=10)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"search_p50_ms": round(times[len(times) // 2], 1),
            "search_p99_ms": round(times[int(len(times) * 0.99)], 1),
            "searches": len(times), "rss_after_searches_mb": rss_mb()}


def search_in_new_process(data_dir: Path, shared: Path, n: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--measure-search", str(data_dir), "--shared", str(shared),
         "--searches", str(n)], capture_output=True, text=True, check=True, cwd=REPO)
    found: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def http(data_dir: Path, queries: list[str], seconds: float, clients: int,
         rate: float) -> dict[str, float]:
    """Closed loop (each client sends again as soon as answered: the server's capacity), then
    the same clients sending `rate` requests per second in all at random times (users)."""
    port = free_port()
    log = data_dir.parent / "serve.log"
    server = start_server(data_dir, port, log)
    out: dict[str, float] = {"http_clients": clients}
    try:
        wait_ready(server, port, log)
        hammer("warm-up", 2, 5.0, queries, http_worker(port))
        for name, paced in (("http_closed", None), ("http_paced", rate)):
            latencies, elapsed = hammer(name, clients, seconds, queries, http_worker(port),
                                        rate=paced)
            latencies.sort()
            out |= {f"{name}_requests": len(latencies),
                    f"{name}_per_s": round(len(latencies) / elapsed, 1),
                    f"{name}_p50_ms": round(latencies[len(latencies) // 2], 1),
                    f"{name}_p99_ms": round(latencies[int(len(latencies) * 0.99)], 1)}
        # hammer raises on any failed request, so reaching here means none failed.
        return out | {"http_errors": 0, "server_rss_mb": rss_mb(server.pid)}
    finally:
        stop(server)


def disk(data_dir: Path, passages: int) -> dict[str, float]:
    size = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())
    return {"disk_mb": round(size / 2**20, 1), "disk_bytes_per_passage": round(size / passages)}


def recall(retriever: Retriever, embedder: Embedder, queries: Sequence[str]) -> dict[str, float]:
    vectors = embedder.embed_queries(list(queries))
    view = retriever.view()
    approximate = view.nearest(vectors, 10)
    exact = view.nearest(vectors, 10, exact=True)
    hits = [len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(approximate, exact,
                                                                  strict=True)]
    return {"ann_recall_at_10": round(float(np.mean(hits)), 4), "recall_queries": len(hits)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--root", type=Path, default=REPO / ".qiao" / "scale")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--batch", type=int, default=1000, help="documents per commit")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--searches", type=int, default=1000)
    parser.add_argument("--http-seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--http-rate", type=float, default=20.0,
                        help="requests per second of the paced HTTP run (all clients)")
    parser.add_argument("--measure-search", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--backend", choices=["embedded", "qdrant"], default="embedded",
                        help="qdrant: only compare search through a qdrant-edge copy of the "
                        "archive with the embedded index (scripts/scale_qdrant.py)")
    args = parser.parse_args()
    if args.measure_search:
        print(json.dumps(search(args.measure_search, questions(args.shared, args.searches))))
        os._exit(0)

    settings = IndexSettings()
    data_dir = args.root / f"{args.passages}-{args.seed}" / "data"
    if args.rebuild and data_dir.exists():
        import shutil

        shutil.rmtree(data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(update={"data_dir": data_dir, "query_cache_size": 0})
    embedder = load_embedder(settings)
    base = base_prepared(args.root, args.shared, embedder)
    model = NoModel(embedder.model_id, embedder.dim, embedder.max_tokens)
    report: dict[str, object] = {"target_passages": args.passages, "seed": args.seed,
                                 "base_documents": len(base),
                                 "base_passages": sum(len(b.spans) for b in base)}
    print(f"building {args.passages:,} passages in {data_dir}", file=sys.stderr)
    report |= build(data_dir, base, args.passages, args.batch, args.seed, settings, model)
    retriever = Retriever.open(settings=settings, embedder=embedder)
    stats = retriever.stats()
    report |= {"passages": stats["passages"], "documents": stats["documents"],
               "segments": len(retriever.manifest.segments) if retriever.manifest else 0}
    print(f"built: {stats}", file=sys.stderr)
    queries = questions(args.shared, args.searches)
    if args.backend == "qdrant":
        from scale_qdrant import compare_search

        phases: list[Callable[[], dict[str, float]]] = [
            lambda: compare_search(data_dir, embedder, queries)]
    else:
        phases = [
            lambda: open_seconds(data_dir),
            lambda: writes(retriever, base, args.writes, args.seed),
            lambda: forced_merge(retriever),
            lambda: search_in_new_process(data_dir, args.shared, args.searches),
            lambda: disk(data_dir, retriever.stats()["passages"]),
            lambda: recall(retriever, embedder, queries[:500]),
        ]
    if args.http_seconds > 0 and args.backend == "embedded":
        phases.append(lambda: http(data_dir, queries, args.http_seconds, args.clients,
                                   args.http_rate))
    for phase in phases:
        found = phase()
        print(f"  {found}", file=sys.stderr)  # as it comes: a late failure keeps the rest
        report |= found
    width = max(len(k) for k in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value:,}" if isinstance(value, int | float) else
              f"{key:<{width}}  {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    os._exit(0)  # the server is stopped; skip the interpreter's slow teardown of big maps


if __name__ == "__main__":
    main()
