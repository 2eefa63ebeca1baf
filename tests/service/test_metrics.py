"""/metrics: request counts and latency by route template and status, search latency, index
size, ingest counters — per app."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.service.conftest import ClientFactory, wait_until


def samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def test_requests_are_counted_by_route_template_and_status(client: TestClient) -> None:
    client.post("/v1/search", json={"query": "metro"})
    client.post("/v1/search", json={"query": "地铁"})
    client.post("/v1/search", json={"query": ""})
    client.get("/v1/documents/metro-line.en")
    client.get("/v1/documents/river-cleanup.zh")
    client.get("/no/such/path")
    found = samples(client)
    total = "qiao_http_requests_total"
    assert value(found, total, method="POST", route="/v1/search", status="200") == 2
    assert value(found, total, method="POST", route="/v1/search", status="422") == 1
    doc_route = "/v1/documents/{doc_id:path}"
    assert value(found, total, method="GET", route=doc_route, status="200") == 2
    assert value(found, total, method="GET", route="unmatched", status="404") == 1
    # Raw ids never become label values.
    assert not any("metro-line.en" in dict(labels).get("route", "") for _, labels in found)


def test_request_latency_is_a_histogram(client: TestClient) -> None:
    client.post("/v1/search", json={"query": "metro"})
    found = samples(client)
    name = "qiao_http_request_duration_seconds"
    labels = {"method": "POST", "route": "/v1/search", "status": "200"}
    assert value(found, f"{name}_count", **labels) == 1
    assert value(found, f"{name}_bucket", **labels, le="+Inf") == 1
    assert value(found, f"{name}_bucket", **labels, le="0.001") in (0.0, 1.0)
    assert (value(found, f"{name}_sum", **labels) or 0) > 0
    assert value(found, "qiao_search_duration_seconds_count", mode="hybrid") == 1


def test_index_size_and_ingest_counters_follow_writes(client: TestClient) -> None:
    before = samples(client)
    assert value(before, "qiao_ready") == 1
    assert value(before, "qiao_index_documents") == 5
    assert value(before, "qiao_index_releases") == 3
    passages_before = value(before, "qiao_index_passages")
    assert passages_before is not None and passages_before >= 5
    client.post("/v1/documents", json={"documents": [
        {"release_id": "m", "lang": "en", "title": "M", "text": "Metrics text."},
        {"release_id": "m/bad", "title": "M", "text": "x"},
    ]})
    client.delete("/v1/documents/library.en")
    after = samples(client)
    assert value(after, "qiao_index_documents") == 5
    assert value(after, "qiao_ingest_documents_total", outcome="added") == 1
    assert value(after, "qiao_ingest_documents_total", outcome="rejected") == 1
    assert value(after, "qiao_ingest_passages_total") == 1
    assert value(after, "qiao_deleted_documents_total") == 1


def test_ingest_jobs_are_counted_when_they_commit(client: TestClient) -> None:
    document = {"release_id": "j", "lang": "en", "title": "J", "text": "Job text."}
    job = client.post("/v1/documents?wait=false", json=document).json()
    wait_until(lambda: client.get(job["status_url"]).json()["status"] == "done")
    after = samples(client)
    assert value(after, "qiao_ingest_documents_total", outcome="added") == 1
    assert value(after, "qiao_ingest_queued_documents") == 0


def test_two_apps_in_one_process_keep_separate_metrics(make_client: ClientFactory) -> None:
    first, second = make_client(), make_client()
    first.post("/v1/search", json={"query": "metro"})
    labels = {"method": "POST", "route": "/v1/search", "status": "200"}
    assert value(samples(first), "qiao_http_requests_total", **labels) == 1
    assert value(samples(second), "qiao_http_requests_total", **labels) is None
