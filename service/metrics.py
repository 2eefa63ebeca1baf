"""Prometheus metrics of one app, in its own registry (several apps in one process never clash).

Requests are labelled by route template (`/v1/documents/{doc_id:path}`), never by raw path, so
the number of series stays bounded whatever ids clients send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.jobs import Job

# Seconds; dense search on a small index takes a few ms, an embed-heavy ingest seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0, 30.0)

IndexCounts = Callable[[], dict[str, int] | None]


class _IndexSize(Collector):
    """Reads the index size at scrape time, so the gauges can never be stale."""

    def __init__(self, counts: IndexCounts) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        counts = self._counts()
        ready = GaugeMetricFamily("qiao_ready", "1 once the model and index are loaded")
        ready.add_metric([], 0.0 if counts is None else 1.0)
        yield ready
        for name in ("documents", "passages", "releases"):
            gauge = GaugeMetricFamily(f"qiao_index_{name}", f"{name.capitalize()} in the index")
            if counts is not None:
                gauge.add_metric([], float(counts.get(name, 0)))
            yield gauge


class Metrics:
    """The app's metric objects; `registry` is what `/metrics` exposes."""

    def __init__(self, index_counts: IndexCounts, queued_documents: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Gauge(
            "qiao_ingest_queued_documents", "Documents waiting in the write queue for ingest",
            registry=r,
        ).set_function(queued_documents)
        self.requests = Counter(
            "qiao_http_requests", "HTTP requests answered",
            ["method", "route", "status"], registry=r,
        )
        self.request_seconds = Histogram(
            "qiao_http_request_duration_seconds", "HTTP request latency",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.search_seconds = Histogram(
            "qiao_search_duration_seconds", "Retrieval time of one search, without HTTP",
            ["mode"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.ingested = Counter(
            "qiao_ingest_documents", "Documents received for ingest, by outcome",
            ["outcome"], registry=r,
        )
        self.ingested_passages = Counter(
            "qiao_ingest_passages", "Passages embedded by ingest", registry=r,
        )
        self.deleted = Counter("qiao_deleted_documents", "Documents deleted", registry=r)
        r.register(_IndexSize(index_counts))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.request_seconds.labels(*labels).observe(seconds)

    def count_job(self, job: Job) -> None:
        """Count an ingest job's commit (its rejections were counted when it was accepted)."""
        if job.report is not None:
            report = job.report
            self.count_ingest(len(report.added), len(report.replaced), len(report.unchanged), 0,
                              report.passages)

    def count_ingest(self, added: int, replaced: int, unchanged: int, rejected: int,
                     passages: int) -> None:
        for outcome, n in (("added", added), ("replaced", replaced), ("unchanged", unchanged),
                           ("rejected", rejected)):
            self.ingested.labels(outcome).inc(n)
        self.ingested_passages.inc(passages)
