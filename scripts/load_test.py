"""Bounded load run: concurrent clients mixing searches and ingests against `qiao serve`.

Starts `qiao serve` on a free loopback port over a fresh data directory (or `--data-dir`),
ingests the XQuAD dev split through the API (one document per article and language, as
`qiao eval xquad` builds its bench), then runs `--clients` client threads, each on its own
keep-alive connection, for `--warmup` seconds unmeasured and `--duration` seconds measured.
Each request is a search (`POST /v1/search`, k=10, an XQuAD question in either language) or,
with probability `--write-share`, an ingest (`POST /v1/documents`: an XQuAD paragraph written
to one of a few load-test doc_ids, so the index neither grows nor stays unchanged). Ingests
are ingest jobs (`wait=false`: answered 202 once journaled, committed in the background) unless
`--sync-ingest` makes them wait for their commit (200). After the measured window the script
waits for every job to end, and reports the commit lag (acceptance to commit) of the jobs.

Reports throughput, p50/p95/p99 latency overall and per operation, errors (any other answer,
a transport failure, or a job that failed or did not end within `--job-timeout` seconds) and
the server's RSS after the warm-up and at the end, as a table and as JSON (`--json`, default
reports/load_test.json). Exit status 1 when a target fails: zero errors, p99 ≤ 10 × p50 over
all requests and for each operation, RSS at the end within 10% of RSS after warm-up. Loopback
only, fixed duration: it stops by itself (and stops the server it started).

    .venv/bin/python scripts/load_test.py [--xquad-dir ../shared/xquad] [--duration 60]
        [--clients 16] [--write-share 0.05] [--warmup 10] [--articles N] [--data-dir DIR]
        [--sync-ingest] [--job-timeout 300]
        [--url http://127.0.0.1:8000 --token T --pid PID] [--json reports/load_test.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil  # type: ignore[import-untyped]  # no stubs in the venv

from index import Lang, load_xquad
from service.settings import is_loopback

START_TIMEOUT = 300.0  # loading torch and the model on a busy 2-core machine
REQUEST_TIMEOUT = 120.0
K = 10
INGEST_SLOTS = 8  # load-test doc_ids per language that ingests add or replace
BUILD_BATCH = 4
P99_OVER_P50_MAX = 10.0
RSS_DRIFT_MAX = 0.10
SEARCH, INGEST = "search", "ingest"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    token: str


@dataclass(frozen=True)
class Workload:
    questions: list[str]
    paragraphs: list[tuple[Lang, str]]
    write_share: float
    sync_ingest: bool = False


@dataclass
class Tally:
    """What the clients saw in one phase: latencies (ms) per op, and errors."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {SEARCH: [], INGEST: []})
    errors: dict[str, int] = field(default_factory=lambda: {SEARCH: 0, INGEST: 0})
    error_samples: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)  # ids of the ingest jobs accepted
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, ms: float, error: str | None, job: str | None = None) -> None:
        with self.lock:
            if job is not None:
                self.jobs.append(job)
            if error is None:
                self.latencies[op].append(ms)
            else:
                self.note_error(op, error)

    def note_error(self, op: str, error: str) -> None:
        self.errors[op] += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{op}: {error}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary(values: list[float], errors: int, seconds: float) -> dict[str, Any]:
    return {
        "requests": len(values) + errors, "errors": errors,
        "per_second": round((len(values) + errors) / seconds, 2),
        "p99_over_p50": round(percentile(values, 0.99) / percentile(values, 0.50), 2)
        if values else None,
        "p50_ms": round(percentile(values, 0.50), 1),
        "p95_ms": round(percentile(values, 0.95), 1),
        "p99_ms": round(percentile(values, 0.99), 1),
        "mean_ms": round(sum(values) / len(values), 1) if values else float("nan"),
    }


# -- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def qiao_command() -> list[str]:
    script = Path(sys.executable).parent / "qiao"
    return [str(script)] if script.exists() else [sys.executable, "-c",
                                                   "from qiao.cli import main; main()"]


@contextmanager
def started_server(data_dir: Path, log: Path) -> Iterator[tuple[Endpoint, int]]:
    """`qiao serve` on a free loopback port with a fresh token; stopped on exit."""
    port = free_port()
    token = secrets.token_urlsafe(16)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("QIAO_") or k in ("QIAO_MODEL", "QIAO_MODEL_DIR")}
    # No query cache: questions repeat during a run, and each search should cost its embedding.
    env |= {"QIAO_DATA_DIR": str(data_dir), "QIAO_API_TOKEN": token,
            "QIAO_RELOAD_SECONDS": "0", "QIAO_QUERY_CACHE_SIZE": "0"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*qiao_command(), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(Endpoint("127.0.0.1", port, token), process, log)
        yield Endpoint("127.0.0.1", port, token), process.pid
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def request(conn: http.client.HTTPConnection, method: str, path: str,
            body: Any = None, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, None if body is None else json.dumps(body), headers)
    response = conn.getresponse()
    return response.status, response.read()


def wait_ready(endpoint: Endpoint, process: subprocess.Popen[bytes] | None, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"qiao serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=5)
            status, _ = request(conn, "GET", "/readyz")
            conn.close()
            if status == 200:
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.2)
    raise SystemExit(f"the server was not ready after {START_TIMEOUT:.0f} s")


def server_rss(pid: int | None) -> int | None:
    """Resident memory of the server process and its children, in bytes."""
    if pid is None:
        return None
    process = psutil.Process(pid)
    processes = [process, *process.children(recursive=True)]
    return int(sum(p.memory_info().rss for p in processes))


def ingest_index(endpoint: Endpoint, documents: list[dict[str, str]]) -> dict[str, Any]:
    """Send the bench documents in small batches (unchanged ones are skipped by the server)."""
    conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=3600)
    for start in range(0, len(documents), BUILD_BATCH):
        batch = documents[start : start + BUILD_BATCH]
        status, body = request(conn, "POST", "/v1/documents", {"documents": batch},
                               endpoint.token)
        if status != 200:
            raise SystemExit(f"building the index failed: HTTP {status}: {body[:300]!r}")
        print(f"  indexed {min(start + BUILD_BATCH, len(documents))}/{len(documents)} "
              "documents", flush=True)
    status, body = request(conn, "GET", "/readyz")
    conn.close()
    ready: dict[str, Any] = json.loads(body)
    return ready


# -- the clients -----------------------------------------------------------------------------


def client_loop(endpoint: Endpoint, workload: Workload, rng: random.Random, deadline: float,
                tally: Tally) -> None:
    conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=REQUEST_TIMEOUT)
    while time.monotonic() < deadline:
        if rng.random() < workload.write_share:
            op = INGEST
            lang, text = rng.choice(workload.paragraphs)
            slot = rng.randrange(INGEST_SLOTS)
            body: dict[str, Any] = {
                "doc_id": f"load-{slot}.{lang}", "release_id": f"load-{slot}", "lang": lang,
                "title": f"Load test {slot}", "text": text}
            path = "/v1/documents" + ("" if workload.sync_ingest else "?wait=false")
            token, expected = endpoint.token, 200 if workload.sync_ingest else 202
        else:
            op = SEARCH
            body = {"query": rng.choice(workload.questions), "k": K}
            path, token, expected = "/v1/search", None, 200
        t0 = time.perf_counter()
        error: str | None = None
        job: str | None = None
        try:
            status, answer = request(conn, "POST", path, body, token)
            if status != expected:
                error = f"HTTP {status}: {answer[:200]!r}"
            elif status == 202:
                job = json.loads(answer)["job_id"]
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
            conn.close()  # reconnect on the next request
            conn = http.client.HTTPConnection(endpoint.host, endpoint.port,
                                              timeout=REQUEST_TIMEOUT)
        tally.record(op, (time.perf_counter() - t0) * 1000, error, job)
    conn.close()


def await_jobs(endpoint: Endpoint, tally: Tally, timeout: float) -> list[float]:
    """Wait for the phase's ingest jobs to end; their commit lags (s). A job that failed or
    is still queued after `timeout` seconds counts as an ingest error."""
    conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=REQUEST_TIMEOUT)
    deadline = time.monotonic() + timeout
    lags: list[float] = []
    for job_id in tally.jobs:
        while True:
            status, answer = request(conn, "GET", f"/v1/jobs/{job_id}", None, endpoint.token)
            job = json.loads(answer) if status == 200 else {"status": f"HTTP {status}"}
            if job["status"] != "queued" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if job["status"] == "done":
            lags.append((datetime.fromisoformat(job["finished_at"])
                         - datetime.fromisoformat(job["accepted_at"])).total_seconds())
        else:
            tally.note_error(INGEST, f"job {job_id}: {job['status']} {job.get('error') or ''}")
    conn.close()
    return lags


def run_phase(endpoint: Endpoint, workload: Workload, clients: int, seconds: float,
              seed: int) -> Tally:
    """`clients` threads issuing requests back to back for `seconds`."""
    tally = Tally()
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=client_loop, daemon=True,
                         args=(endpoint, workload, random.Random(seed * 1000 + n), deadline,
                               tally))
        for n in range(clients)
    ]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + REQUEST_TIMEOUT + 30)
    tally.seconds = time.monotonic() - began
    return tally


# -- report ----------------------------------------------------------------------------------


def report_of(args: argparse.Namespace, warm: Tally, measured: Tally, measured_lags: list[float],
              rss_warm: int | None, rss_end: int | None, index: dict[str, Any]) -> dict[str, Any]:
    everything = measured.latencies[SEARCH] + measured.latencies[INGEST]
    errors = sum(measured.errors.values()) + sum(warm.errors.values())
    lags = sorted(measured_lags)
    # Rates over the measured window: requests still running at its end count, but the
    # time spent finishing them (an ingest takes seconds) does not dilute the rate.
    window = args.duration
    overall = summary(everything, sum(measured.errors.values()), window)
    per_op = {op: summary(measured.latencies[op], measured.errors[op], window)
              for op in (SEARCH, INGEST)}
    drift = None if rss_warm is None or rss_end is None else (rss_end - rss_warm) / rss_warm
    # Synchronous ingests embed a whole paragraph and its sentences (~25 searches' work)
    # before answering, so with them the mixed p99 measures the write share, not the tail;
    # the per-operation ratios are shown beside it.
    ratios = [row["p99_over_p50"] for row in per_op.values() if row["p99_over_p50"] is not None]
    targets = {
        "zero_errors": errors == 0,
        "p99_within_10x_p50": overall["p99_over_p50"] is not None
        and overall["p99_over_p50"] <= P99_OVER_P50_MAX,
        "p99_within_10x_p50_per_op": bool(ratios) and max(ratios) <= P99_OVER_P50_MAX,
        "rss_within_10_percent": None if drift is None else abs(drift) <= RSS_DRIFT_MAX,
    }
    return {
        "clients": args.clients, "duration_s": args.duration, "warmup_s": args.warmup,
        "write_share": args.write_share, "k": K,
        "ingest": "synchronous (wait=true)" if args.sync_ingest else "jobs (wait=false)",
        "commit_lag_s": None if not lags else {
            "jobs": len(lags), "p50": round(percentile(lags, 0.5), 2),
            "p95": round(percentile(lags, 0.95), 2), "max": round(lags[-1], 2)},
        "index": {key: index.get(key) for key in ("documents", "passages", "model")},
        "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
        "measured_seconds": round(measured.seconds, 2),
        "overall": overall,
        "per_op": per_op,
        "warmup_errors": sum(warm.errors.values()),
        "error_samples": warm.error_samples + measured.error_samples,
        "rss_mb": {"after_warmup": None if rss_warm is None else round(rss_warm / 2**20, 1),
                   "end": None if rss_end is None else round(rss_end / 2**20, 1),
                   "drift": None if drift is None else round(drift, 4)},
        "targets": targets,
        "targets_met": all(v is not False for v in targets.values()),
    }


def print_table(report: dict[str, Any]) -> None:
    index = report["index"]
    print(f"\n{report['clients']} clients, {report['duration_s']:g} s measured (last answer "
          f"after {report['measured_seconds']} s) after "
          f"{report['warmup_s']} s warm-up, write share {report['write_share']}, ingests as "
          f"{report['ingest']}; index "
          f"{index['documents']} documents / {index['passages']} passages; "
          f"{report['cpus']} CPUs, load average {report['load_average']}")
    print(f"{'op':<8}{'requests':>9}{'req/s':>8}{'errors':>7}{'p50 ms':>9}{'p95 ms':>9}"
          f"{'p99 ms':>9}{'mean ms':>9}{'p99/p50':>9}")
    for name, row in [("all", report["overall"]), *report["per_op"].items()]:
        print(f"{name:<8}{row['requests']:>9}{row['per_second']:>8}{row['errors']:>7}"
              f"{row['p50_ms']:>9}{row['p95_ms']:>9}{row['p99_ms']:>9}{row['mean_ms']:>9}"
              f"{row['p99_over_p50']!s:>9}")
    lag = report["commit_lag_s"]
    if lag:
        print(f"ingest jobs: {lag['jobs']} committed; acceptance to commit p50 {lag['p50']} s, "
              f"p95 {lag['p95']} s, max {lag['max']} s")
    rss = report["rss_mb"]
    print(f"server RSS: {rss['after_warmup']} MB after warm-up, {rss['end']} MB at the end "
          f"(drift {rss['drift']})")
    for sample in report["error_samples"]:
        print(f"error: {sample}")
    for target, met in report["targets"].items():
        shown = "not measured" if met is None else ("met" if met else "FAILED")
        print(f"target {target}: {shown}")


# -- main ------------------------------------------------------------------------------------


def bench_documents(xquad_dir: Path, articles: int | None) -> tuple[list[dict[str, str]],
                                                                     Workload]:
    data = load_xquad(xquad_dir, articles)
    documents = [{"doc_id": d.doc_id, "release_id": d.release_id, "lang": d.lang,
                  "title": d.title, "text": d.text} for d in data.documents]
    questions = [q.text for lang in ("en", "zh") for q in data.questions[lang]]
    paragraphs = [(d.lang, p) for d in data.documents for p in d.text.split("\n\n")]
    return documents, Workload(questions, paragraphs, 0.0)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--xquad-dir", type=Path, default=Path("../shared/xquad"))
    parser.add_argument("--articles", type=int, help="only the first N articles (a small index)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=10.0, help="unmeasured seconds first")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--write-share", type=float, default=0.05,
                        help="share of requests that ingest (default 0.05)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--sync-ingest", action="store_true",
                        help="ingests wait for their commit (wait=true) instead of being jobs")
    parser.add_argument("--job-timeout", type=float, default=300.0,
                        help="seconds to wait after the run for the ingest jobs to end")
    parser.add_argument("--data-dir", type=Path,
                        help="serve this data directory (kept) instead of a temporary one")
    parser.add_argument("--url", help="use a running server on loopback instead of starting one")
    parser.add_argument("--token", default=os.environ.get("QIAO_API_TOKEN", ""),
                        help="write token for --url (default $QIAO_API_TOKEN)")
    parser.add_argument("--pid", type=int, help="the --url server's process id, for its RSS")
    parser.add_argument("--json", type=Path, default=Path("reports/load_test.json"))
    args = parser.parse_args()
    if args.duration <= 0 or args.warmup < 0 or args.clients < 1:
        parser.error("--duration must be > 0, --warmup ≥ 0 and --clients ≥ 1")
    if not 0 <= args.write_share <= 1:
        parser.error("--write-share must be between 0 and 1")
    return args


def run(args: argparse.Namespace, endpoint: Endpoint, pid: int | None,
        documents: list[dict[str, str]], workload: Workload) -> dict[str, Any]:
    print(f"indexing {len(documents)} documents through the API…", flush=True)
    index = ingest_index(endpoint, documents)
    if args.warmup:
        print(f"warm-up: {args.warmup:g} s…", flush=True)
    warm = run_phase(endpoint, workload, args.clients, args.warmup, args.seed) if args.warmup \
        else Tally(seconds=0.0)
    rss_warm = server_rss(pid)
    print(f"measuring: {args.clients} clients for {args.duration:g} s…", flush=True)
    with rss_sampler(pid) as samples:
        measured = run_phase(endpoint, workload, args.clients, args.duration, args.seed + 1)
    rss_end = server_rss(pid)
    if warm.jobs or measured.jobs:
        print(f"waiting for {len(warm.jobs) + len(measured.jobs)} ingest jobs to end…",
              flush=True)
    await_jobs(endpoint, warm, args.job_timeout)
    lags = await_jobs(endpoint, measured, args.job_timeout)
    report = report_of(args, warm, measured, lags, rss_warm, rss_end, index)
    report["rss_mb"]["every_5s"] = [round(rss / 2**20, 1) for rss in samples]
    return report


@contextmanager
def rss_sampler(pid: int | None, every: float = 5.0) -> Iterator[list[int]]:
    """The server's RSS every `every` seconds while the block runs: a trend, not one point."""
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every):
            rss = server_rss(pid)
            if rss is not None:
                samples.append(rss)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def main() -> int:
    args = parse_args()
    documents, workload = bench_documents(args.xquad_dir, args.articles)
    workload = Workload(workload.questions, workload.paragraphs, args.write_share,
                        args.sync_ingest)
    if args.url:
        parts = urlsplit(args.url)
        if parts.scheme != "http" or not parts.hostname or not is_loopback(parts.hostname):
            raise SystemExit(f"--url {args.url}: only http:// on a loopback address is allowed")
        endpoint = Endpoint(parts.hostname, parts.port or 80, args.token)
        wait_ready(endpoint, None, Path(os.devnull))
        report = run(args, endpoint, args.pid, documents, workload)
    else:
        with tempfile.TemporaryDirectory(prefix="qiao-load-") as tmp:
            data_dir = args.data_dir or Path(tmp, "data")
            log = Path(tmp, "server.log")
            print(f"starting qiao serve on {data_dir}…", flush=True)
            with started_server(data_dir, log) as (endpoint, pid):
                report = run(args, endpoint, pid, documents, workload)
            problems = [line for line in log.read_text(errors="replace").splitlines()
                        if "ERROR" in line or "Traceback" in line]
            report["server_log_errors"] = problems[:20]
    print_table(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"wrote {args.json}")
    return 0 if report["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
