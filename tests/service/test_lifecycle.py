"""Start-up and running state: background loading and readiness, load failures, picking up
commits of other processes, CORS, request logging, the OpenAPI document."""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from index.embed import Matrix
from index.errors import IndexMismatch, ModelError, QiaoError
from index.indexes.analyze import Analyzer
from index.records import Document
from service.app import create_app
from tests.conftest import open_retriever
from tests.fakes import FakeEmbedder
from tests.service.conftest import ClientFactory, error_of, service_settings, wait_until


class GatedEmbedder(FakeEmbedder):
    """Blocks its first use until `gate` opens: a model that takes a while to load."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def embed_queries(self, texts: list[str]) -> Matrix:
        assert self.gate.wait(timeout=30), "the test never opened the gate"
        return super().embed_queries(texts)


class BrokenEmbedder(FakeEmbedder):
    def embed_queries(self, texts: list[str]) -> Matrix:
        raise ModelError("the model files are damaged: run `qiao model prepare`")


def test_healthz_answers_while_loading_and_readyz_turns_200_when_loaded(
    tmp_path: Path, tiny_data_dir: Path
) -> None:
    embedder = GatedEmbedder()
    settings = service_settings(tiny_data_dir)  # read only: the app never writes here
    with TestClient(create_app(settings, embedder=embedder)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        loading = client.get("/readyz")
        assert loading.status_code == 503 and error_of(loading)["code"] == "not_ready"
        search = client.post("/v1/search", json={"query": "metro"})
        assert search.status_code == 503 and error_of(search)["code"] == "not_ready"
        assert client.get("/v1/documents").status_code == 503
        embedder.gate.set()
        wait_until(lambda: client.get("/readyz").status_code == 200)
        ready = client.get("/readyz").json()
        assert ready == {"status": "ready", "model": "fake-hash-64", "dim": 64, "documents": 5,
                         "passages": ready["passages"], "releases": 3,
                         "generation": "manifest-000001"}
        results = client.post("/v1/search", json={"query": "metro"}).json()["results"]
        assert results[0]["doc_id"].startswith("metro-line")


def test_load_failure_is_reported_by_readyz_and_the_hook(tmp_path: Path) -> None:
    failures: list[QiaoError] = []
    app = create_app(service_settings(tmp_path / "data"), embedder=BrokenEmbedder(),
                     on_load_error=failures.append)
    with TestClient(app) as client:
        wait_until(lambda: bool(failures))
        response = client.get("/readyz")
        assert response.status_code == 503
        error = error_of(response)
        assert error["code"] == "load_failed" and "qiao model prepare" in error["message"]
        assert client.post("/v1/search", json={"query": "x"}).status_code == 503
        assert client.get("/healthz").status_code == 200
    assert isinstance(failures[0], ModelError)


def test_index_of_another_model_fails_loading_with_a_clear_message(
    tmp_path: Path, tiny_data_dir: Path
) -> None:
    failures: list[QiaoError] = []
    app = create_app(service_settings(tiny_data_dir), embedder=FakeEmbedder(dim=32),
                     on_load_error=failures.append)
    with TestClient(app) as client:
        wait_until(lambda: bool(failures))
        assert error_of(client.get("/readyz"))["code"] == "load_failed"
    assert isinstance(failures[0], IndexMismatch)


def test_commit_by_another_process_is_picked_up(
    make_client: ClientFactory, fake_embedder: FakeEmbedder, analyzer: Analyzer
) -> None:
    client = make_client(reload_seconds=0.02)
    data_dir: Path = client.app.state.settings.data_dir  # type: ignore[attr-defined]
    # A second Retriever on the same directory stands for `qiao ingest` in another process.
    outside = open_retriever(data_dir, fake_embedder, analyzer)
    outside.upsert([Document("outside.en", "outside", "en", "Outside", "Added by the CLI.")])
    wait_until(lambda: client.get("/v1/documents/outside.en").status_code == 200)
    assert client.get("/readyz").json()["documents"] == 6


def test_cors_allows_configured_origins_only(make_client: ClientFactory) -> None:
    client = make_client(cors_origins=["https://search.intranet"], api_token="t")
    preflight = client.options("/v1/search", headers={
        "Origin": "https://search.intranet", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://search.intranet"
    denied = client.post("/v1/documents", json={}, headers={"Origin": "https://search.intranet"})
    assert denied.status_code == 401  # errors carry CORS headers too, so the page can read them
    assert denied.headers["access-control-allow-origin"] == "https://search.intranet"
    other = client.get("/v1/documents", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_without_cors_origins_no_cors_headers(client: TestClient) -> None:
    response = client.get("/healthz", headers={"Origin": "https://search.intranet"})
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("log_queries", [False, True])
def test_request_log_line_has_method_path_status_and_hides_query_text(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture, log_queries: bool
) -> None:
    client = make_client(log_queries=log_queries)
    with caplog.at_level(logging.INFO, logger="service"):
        client.get("/v1/search", params={"q": "confidential merger"})
        client.post("/v1/search", json={"query": "secret plan"})
    lines = [r for r in caplog.records if r.name == "service.requests"]
    assert [(r.method, r.route, r.status) for r in lines] == [  # type: ignore[attr-defined]
        ("GET", "/v1/search", 200), ("POST", "/v1/search", 200)]
    assert all(r.ms >= 0 for r in lines)  # type: ignore[attr-defined]
    assert lines[1].getMessage().startswith("POST /v1/search 200 ")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert ("confidential" in text) is log_queries
    assert ("secret plan" in text) is log_queries


def test_openapi_documents_every_endpoint_and_the_error_shape(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/healthz", "/readyz", "/metrics", "/v1/search", "/v1/documents",
        "/v1/documents/{doc_id}", "/v1/documents:upload", "/v1/releases/{release_id}",
        "/v1/answer", "/v1/lookup", "/v1/jobs/{job_id}", "/v1/summary"}
    search = spec["paths"]["/v1/search"]["post"]
    assert search["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorBody")
    assert client.get("/docs").status_code == 200


def test_api_docs_load_every_file_from_the_server_itself(client: TestClient) -> None:
    html = client.get("/docs").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
    assert any(a.endswith(".js") for a in assets), html
    for asset in assets:
        assert not asset.startswith(("http://", "https://", "//")), asset  # no CDN
        assert client.get(asset).status_code == 200, asset
