"""HTTP search latency and throughput over loopback, next to in-process latency, in one run.

Builds the XQuAD dev-split index in a temporary data directory, starts `qiao serve` on a free
loopback port, then for 1, 4 and 8 concurrent clients measures, for `--seconds` each:
in-process `Retriever.search` latency (same queries, same number of threads) and HTTP
`POST /v1/search` latency and throughput. Target: HTTP p50 ≤ 1.5 × in-process p50 + 5 ms.
The two are measured in alternating slices of a few seconds, so load from other processes on
a shared machine falls on both alike. Stops the server and removes the data directory when
done (or interrupted).

    .venv/bin/python scripts/bench_http.py [--xquad-dir ../shared/xquad] [--seconds 30]
                                           [--json reports/bench_http.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from load_test import free_port, percentile  # a sibling script: shared measuring helpers

from index import Analyzer, IndexSettings, Retriever, load_embedder, load_xquad
from service.settings import ServiceSettings

CONCURRENCY = (1, 4, 8)
START_TIMEOUT = 300.0
K = 10


@dataclass(frozen=True)
class Run:
    """`clients` threads issuing searches back to back for `seconds` in all."""

    where: str
    clients: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @classmethod
    def of(cls, where: str, clients: int, latencies: list[float], seconds: float) -> Run:
        return cls(where, clients, len(latencies), round(seconds, 2),
                   round(percentile(latencies, 0.5), 2), round(percentile(latencies, 0.99), 2),
                   round(sum(latencies) / len(latencies), 2))


Worker = Callable[[], Callable[[str], None]]
"""Makes one client's search function (called in that client's thread)."""


def hammer(name: str, clients: int, seconds: float, queries: list[str],
           make_worker: Worker, rate: float | None = None) -> tuple[list[float], float]:
    """Run `clients` threads, each calling its worker on the queries in turn until time is up.
    Returns every latency (ms) and the elapsed seconds.

    Closed loop by default (each client sends its next request when the last one returns).
    With `rate` (requests per second, all clients together) each client sends at random
    (Poisson) times instead, as independent users do, and a latency counts from the planned
    send time, so time spent waiting behind a slow request is not hidden."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    deadline = began = 0.0

    def set_clock() -> None:  # runs once every client is connected and waiting
        nonlocal deadline, began
        began = time.perf_counter()
        deadline = began + seconds

    start = threading.Barrier(clients + 1, action=set_clock)

    def loop(slot: int) -> None:
        try:
            work = make_worker()
            pacing = random.Random(slot)
            start.wait()
            i = slot * 7919  # each client walks the questions from a different place
            planned = began
            while (t0 := time.perf_counter()) < deadline:
                if rate is not None:
                    planned += pacing.expovariate(rate / clients)
                    if planned >= deadline:
                        break
                    time.sleep(max(0.0, planned - t0))
                    t0 = planned
                work(queries[i % len(queries)])
                latencies[slot].append((time.perf_counter() - t0) * 1000)
                i += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{name} with {clients} clients failed: {errors[0]!r}")
    return [ms for per_client in latencies for ms in per_client], elapsed


def compare(clients: int, seconds: float, slice_seconds: float, queries: list[str],
            local: Worker, remote: Worker) -> tuple[Run, Run]:
    """In-process and HTTP runs of `seconds` each, in alternating slices (order flipped every
    round so a drift in machine load does not favour either)."""
    found: dict[str, tuple[list[float], float]] = {"in-process": ([], 0.0), "http": ([], 0.0)}
    rounds = max(1, math.ceil(seconds / slice_seconds))
    for n in range(rounds):
        order = [("in-process", local), ("http", remote)]
        for where, worker in order if n % 2 == 0 else order[::-1]:
            latencies, elapsed = hammer(where, clients, seconds / rounds, queries, worker)
            total, spent = found[where]
            found[where] = (total + latencies, spent + elapsed)
    return (Run.of("in-process", clients, *found["in-process"]),
            Run.of("http", clients, *found["http"]))


def start_server(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    qiao = Path(sys.executable).parent / "qiao"
    command = [str(qiao)] if qiao.exists() else [sys.executable, "-c",
                                                  "from qiao.cli import main; main()"]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("QIAO_") or k in ("QIAO_MODEL", "QIAO_MODEL_DIR")}
    # No query cache: every query is measured with its embedding, as in-process below.
    env |= {"QIAO_DATA_DIR": str(data_dir), "QIAO_RELOAD_SECONDS": "0",
            "QIAO_QUERY_CACHE_SIZE": "0"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )


def wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> dict[str, object]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"qiao serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/readyz")
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if response.status == 200:
                ready: dict[str, object] = json.loads(body)
                return ready
        except OSError:
            pass  # not listening yet
        time.sleep(0.1)
    raise RuntimeError(f"qiao serve not ready after {START_TIMEOUT} s")


def in_process_worker(retriever: Retriever) -> Worker:
    def make() -> Callable[[str], None]:
        def search(query: str) -> None:
            retriever.search(query, k=K)

        return search

    return make


def http_worker(port: int) -> Worker:
    """A keep-alive connection per client thread; stdlib http.client keeps client cost low.
    A connection the server closed while idle (its keep-alive timeout, between paced requests)
    is opened again and the request sent once more, as browsers do."""

    def make() -> Callable[[str], None]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json"}

        def search(query: str) -> None:
            body = json.dumps({"query": query, "k": K})
            try:
                conn.request("POST", "/v1/search", body, headers)
                response = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                conn.request("POST", "/v1/search", body, headers)
                response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")

        return search

    return make


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--xquad-dir", type=Path, default=Path("../shared/xquad"))
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="per client count, for each of in-process and HTTP (default 30)")
    parser.add_argument("--slice", type=float, default=5.0,
                        help="alternate in-process and HTTP every this many seconds")
    parser.add_argument("--json", type=Path, default=Path("reports/bench_http.json"))
    parser.add_argument("--torch-threads", type=int,
                        help="threads per model call (OMP_NUM_THREADS) for both the server and "
                             "the in-process runs; default: $OMP_NUM_THREADS or what `qiao serve` "
                             "uses (QIAO_TORCH_THREADS)")
    args = parser.parse_args()
    threads = args.torch_threads or int(os.environ.get("OMP_NUM_THREADS") or
                                        ServiceSettings().torch_threads)
    # Set before torch is imported (in load_embedder); the server inherits it.
    os.environ["OMP_NUM_THREADS"] = str(threads)

    settings = IndexSettings(query_cache_size=0)
    data = load_xquad(args.xquad_dir)
    queries = [q.text for lang in ("en", "zh") for q in data.questions[lang]]
    with tempfile.TemporaryDirectory(prefix="qiao-bench-http-") as tmp:
        data_dir = Path(tmp, "data")
        print(f"building the dev-split index ({len(data.documents)} documents)…", flush=True)
        embedder = load_embedder(settings)
        retriever = Retriever.open(data_dir, settings=settings, embedder=embedder,
                                   analyzer=Analyzer(settings.user_dict))
        retriever.upsert(data.documents)
        stats = retriever.stats()
        for q in queries[:20]:
            retriever.search(q, k=K)  # warm-up

        port = free_port()
        log = Path(tmp, "server.log")
        process = start_server(data_dir, port, log)
        runs: list[Run] = []
        try:
            ready = wait_ready(process, port, log)
            assert ready["passages"] == stats["passages"], (ready, stats)
            warm = http_worker(port)()
            for q in queries[:20]:
                warm(q)
            for clients in CONCURRENCY:
                print(f"{clients} client(s): {args.seconds:g} s in-process and "
                      f"{args.seconds:g} s HTTP…", flush=True)
                runs.extend(compare(clients, args.seconds, args.slice, queries,
                                    in_process_worker(retriever), http_worker(port)))
        finally:
            stop(process)

    rows = []
    # Other processes' load skews both columns alike; shown so a reader can judge the figures.
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"\nindex: {stats['documents']} documents, {stats['passages']} passages; "
          f"{len(queries)} questions (en+zh), k={K}, hybrid; {os.cpu_count()} CPUs; "
          f"{threads} thread(s) per model call; load average {load}")
    print(f"{'clients':>7} {'where':<11}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'req/s':>8}"
          f"{'target p50':>12}{'met':>5}")
    for clients in CONCURRENCY:
        local = next(r for r in runs if r.where == "in-process" and r.clients == clients)
        remote = next(r for r in runs if r.where == "http" and r.clients == clients)
        target = round(1.5 * local.p50_ms + 5, 2)
        met = remote.p50_ms <= target
        for run in (local, remote):
            shown = (f"{target:>12}{'yes' if met else 'NO':>5}" if run is remote else "")
            print(f"{clients:>7} {run.where:<11}{run.p50_ms:>9}{run.p99_ms:>9}{run.mean_ms:>9}"
                  f"{run.per_second:>8.1f}{shown}")
        rows.append({"clients": clients, "in_process": asdict(local), "http": asdict(remote),
                     "http_requests_per_s": round(remote.per_second, 1),
                     "in_process_searches_per_s": round(local.per_second, 1),
                     "target_http_p50_ms": target, "target_met": met})
    report = {"documents": stats["documents"], "passages": stats["passages"],
              "queries": len(queries), "k": K, "seconds_per_phase": args.seconds,
              "slice_seconds": args.slice,
              "cpus": os.cpu_count(), "torch_threads": threads, "load_average": load,
              "runs": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
