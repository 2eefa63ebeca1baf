"""Every error status the API uses, always in the shape {"error": {"code", "message"}}."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from index.errors import (
    DataDirError,
    DocumentError,
    EmptyInput,
    IndexMismatch,
    ModelError,
    QiaoError,
)
from index.indexes.analyze import Analyzer
from index.records import Document, SearchResults
from index.retriever import Retriever
from index.search.rank import Filters, Mode
from index.view import IndexView
from service.app import create_app
from service.errors import api_error_of
from tests.conftest import open_retriever
from tests.fakes import FakeEmbedder
from tests.service.conftest import ClientFactory, error_of, service_settings

DOC = {"release_id": "n", "lang": "en", "title": "T", "text": "Some text."}


def test_body_that_is_not_json_is_400(reader: TestClient) -> None:
    response = reader.post("/v1/search", content=b'{"query": "x"',
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_json" and "not valid JSON" in error["message"]


def test_json_sent_without_json_content_type_is_415_saying_what_to_send(
    reader: TestClient,
) -> None:
    # What `curl -d '{...}'` does: a form content type.
    response = reader.post("/v1/search", content=b'{"query": "x"}',
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert "Content-Type: application/json" in error_of(response)["message"]


def test_unknown_endpoint_is_404_on_one_line(reader: TestClient) -> None:
    for path in ("/v2/search", "/v1/documents/x%0Ay"):
        response = reader.get(path)
        assert response.status_code == 404
        error = error_of(response)
        assert error["code"] == "not_found" and "\n" not in error["message"]


def test_wrong_method_is_405(reader: TestClient) -> None:
    response = reader.put("/v1/search", json={"query": "x"})
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"


def test_declared_oversized_body_is_413_before_reading_it(make_client: ClientFactory) -> None:
    client = make_client(max_body_bytes=2048)
    response = client.post("/v1/documents", json={**DOC, "text": "x" * 4000})
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "payload_too_large" and "2,048" in error["message"]
    assert client.get("/v1/documents/n.en").status_code == 404


@pytest.mark.parametrize("path", ["/v1/search", "/v1/documents", "/v1/documents:upload"])
def test_streamed_oversized_body_without_length_is_413(
    make_client: ClientFactory, path: str
) -> None:
    client = make_client(max_body_bytes=2048)

    def chunks() -> Iterator[bytes]:  # a generator body is sent chunked, with no length
        yield b'{"query": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    kind = "multipart/form-data; boundary=b" if path.endswith("upload") else "application/json"
    response = client.post(path, content=chunks(), headers={"Content-Type": kind})
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


def test_body_under_the_limit_passes(make_client: ClientFactory) -> None:
    client = make_client(max_body_bytes=2048)
    assert client.post("/v1/documents", json=DOC).status_code == 200


def test_index_built_with_another_model_is_409(
    make_client: ClientFactory, analyzer: Analyzer
) -> None:
    client = make_client(empty=True)
    data_dir: Path = client.app.state.settings.data_dir  # type: ignore[attr-defined]
    # Another process fills the directory using a different model (other dimension).
    other = open_retriever(data_dir, FakeEmbedder(dim=32), analyzer)
    other.upsert([Document("o.en", "o", "en", "Other", "Built by another model.")])
    response = client.post("/v1/documents", json=DOC)
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "index_mismatch"


class _BrokenView(IndexView):
    def search(self, query: str, k: int = 10, lang: str | None = None, mode: Mode = "hybrid",
               filters: Filters | None = None, counterpart: bool = True) -> SearchResults:
        raise RuntimeError("secret detail /srv/private")


class _BrokenRetriever(Retriever):
    def view(self) -> IndexView:
        view = super().view()
        broken = _BrokenView.__new__(_BrokenView)
        broken.__dict__.update(view.__dict__)
        return broken


def test_unexpected_error_is_500_without_details(
    tmp_path: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer
) -> None:
    settings = service_settings(tmp_path / "data")
    broken = _BrokenRetriever.open(settings=settings.index_settings(), embedder=fake_embedder,
                                   analyzer=analyzer)
    app = create_app(settings, retriever=broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/search", json={"query": "x"})
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "internal_error" and "secret" not in error["message"]


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (EmptyInput("e"), 400, "empty_input"),
        (DocumentError("d"), 422, "invalid_document"),
        (IndexMismatch("m"), 409, "index_mismatch"),
        (DataDirError("d"), 503, "index_unavailable"),
        (ModelError("m"), 503, "model_unavailable"),
        (QiaoError("q"), 400, "bad_request"),
    ],
)
def test_library_errors_map_to_statuses(exc: QiaoError, status: int, code: str) -> None:
    error = api_error_of(exc)
    assert (error.status, error.code, error.message) == (status, code, str(exc))
