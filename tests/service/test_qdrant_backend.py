"""The HTTP API on the Qdrant backend: the same answers as on the embedded index, and a Qdrant
that cannot be reached is a 503 with Retry-After on search and a failed job on ingest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from index.backend import QdrantRetriever, init_qdrant
from index.indexes.analyze import Analyzer
from index.records import Document
from index.retriever import Retriever
from service.app import create_app
from tests.fakes import FakeEmbedder
from tests.service.conftest import ClientFactory, error_of, service_settings, wait_until

QUERY = {"query": "How many stations does the metro line have?", "k": 5, "lang": "zh"}


def qdrant_client(tmp_path: Path, embedder: FakeEmbedder, analyzer: Analyzer,
                  **overrides: Any) -> TestClient:
    settings = service_settings(tmp_path / "data", backend="qdrant", **overrides)
    if settings.qdrant_url is None:
        store, _ = init_qdrant(settings.index_settings(), embedder.dim)
        store.close()
    retriever = QdrantRetriever.open_qdrant(settings.index_settings(), embedder, analyzer)
    return TestClient(create_app(settings, retriever=retriever))


@pytest.fixture
def local(tmp_path: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer
          ) -> Iterator[TestClient]:
    with qdrant_client(tmp_path, fake_embedder, analyzer) as client:
        yield client


def test_search_and_documents_answer_as_on_the_embedded_index(
    local: TestClient, make_client: ClientFactory, tiny_docs: list[Document],
) -> None:
    from index.codec import document_record

    body = {"documents": [{k: v for k, v in document_record(d).items()
                           if k != "pages" and v is not None} for d in tiny_docs]}
    written = local.post("/v1/documents", json=body)
    assert written.status_code == 200, written.text
    assert sorted(written.json()["added"]) == sorted(d.doc_id for d in tiny_docs)
    embedded = make_client()  # the same tiny corpus, embedded
    want = embedded.post("/v1/search", json=QUERY).json()
    got = local.post("/v1/search", json=QUERY).json()
    assert got["results"] and got["results"] == want["results"]
    doc_id = want["results"][0]["doc_id"]
    mine, theirs = (c.get(f"/v1/documents/{doc_id}").json() for c in (local, embedded))
    assert mine == theirs
    assert local.get("/v1/documents/nope.en").status_code == 404
    for path in ("/v1/releases/metro-line", "/v1/releases/library"):
        assert local.get(path).json() == embedded.get(path).json()
    mine, theirs = (c.get("/v1/summary").json() for c in (local, embedded))
    newest = ("newest",)
    assert {k: v for k, v in mine.items() if k not in newest} == \
        {k: v for k, v in theirs.items() if k not in newest}
    assert sorted(d["doc_id"] for d in mine["newest"]) == \
        sorted(d["doc_id"] for d in theirs["newest"])
    # Qdrant lists documents by doc_id (it keeps no ingest order): the same documents.
    mine, theirs = (c.get("/v1/documents?lang=zh&limit=100").json() for c in (local, embedded))
    assert mine["total"] == theirs["total"] == len([d for d in tiny_docs if d.lang == "zh"])
    assert sorted(d["doc_id"] for d in mine["documents"]) == \
        sorted(d["doc_id"] for d in theirs["documents"])
    lookup = {"text": tiny_docs[0].text.split(".")[0] + "."}
    mine, theirs = (c.post("/v1/lookup", json=lookup).json() for c in (local, embedded))
    assert mine.pop("took_ms") >= 0 and theirs.pop("took_ms") >= 0
    assert mine == theirs and mine["translation"]


def test_an_unreachable_qdrant_is_a_503_with_retry_after_and_a_failed_job(
    tmp_path: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer,
) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    with qdrant_client(tmp_path, fake_embedder, analyzer,
                       qdrant_url="http://127.0.0.1:9") as client:
        response = client.post("/v1/search", json=QUERY)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        error = error_of(response)
        assert error["code"] == "backend_unavailable" and "127.0.0.1:9" in error["message"]
        assert "\n" not in error["message"]
        document = {"release_id": "cranes", "lang": "en", "title": "Cranes",
                    "text": "Harbour cranes were inspected on Monday."}
        waited = client.post("/v1/documents", json=document)
        assert waited.status_code == 503 and waited.headers["retry-after"] == "5"
        job = client.post("/v1/documents?wait=false", json=document).json()
        found: dict[str, Any] = {}

        def ended() -> bool:
            found.update(client.get(f"/v1/jobs/{job['job_id']}").json())
            return found["status"] != "queued"

        wait_until(ended)
        assert found["status"] == "failed" and "did not answer" in found["error"]
        assert found["result"] is None


def test_the_embedded_retriever_is_the_default(tmp_path: Path) -> None:
    from index.backend import open_index
    from index.config import IndexSettings

    assert type(open_index(IndexSettings(data_dir=tmp_path / "d"))) is Retriever


def test_a_qdrant_that_never_answers_times_out_into_a_503(
    tmp_path: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer,
) -> None:
    import socket
    import time

    # A loopback port that accepts connections and never answers: a hung server.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    try:
        with qdrant_client(tmp_path, fake_embedder, analyzer,
                           qdrant_url=f"http://127.0.0.1:{port}", qdrant_timeout=1) as client:
            started = time.monotonic()
            response = client.post("/v1/search", json=QUERY)
            assert time.monotonic() - started < 15
            assert response.status_code == 503 and response.headers["retry-after"] == "5"
            assert error_of(response)["code"] == "backend_unavailable"
    finally:
        silent.close()
