"""Fixtures for the HTTP service: apps over a copy of the tiny corpus index, fake embedder.

The tiny index is built once per session; each test serves its own copy, so tests that write
stay independent. Apps get a pre-built Retriever (the `create_app(retriever=...)` test seam),
so no model is loaded.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from index.indexes.analyze import Analyzer
from index.records import Document
from index.retriever import Retriever
from service.app import create_app
from service.settings import ServiceSettings
from tests.conftest import open_retriever
from tests.fakes import FakeEmbedder

TOKEN = "test-token-3f9a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

ClientFactory = Callable[..., TestClient]


def service_settings(data_dir: Path, **overrides: Any) -> ServiceSettings:
    """Settings independent of the environment: no .env, and every field that decides
    behaviour given explicitly (a developer's QIAO_API_TOKEN must not change test outcomes)."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "model_dir": data_dir.parent / "models",
        "host": "127.0.0.1",
        "port": 8000,
        "api_token": None,
        "require_token_for_reads": False,
        "cors_origins": [],
        "reload_seconds": 0,
        "log_queries": False,
        "max_body_bytes": 32 * 2**20,
        "max_batch_docs": 1000,
        "search_threads": 4,
        **overrides,
    }
    return ServiceSettings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def tiny_data_dir(
    tmp_path_factory: pytest.TempPathFactory, fake_embedder: FakeEmbedder, analyzer: Analyzer,
    tiny_docs: list[Document],
) -> Path:
    data_dir = tmp_path_factory.mktemp("tiny-index") / "data"
    open_retriever(data_dir, fake_embedder, analyzer).upsert(tiny_docs)
    return data_dir


@pytest.fixture
def make_client(
    tmp_path: Path, tiny_data_dir: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer
) -> Iterator[ClientFactory]:
    """`make_client(empty=False, retriever=None, **settings)` → a started TestClient."""
    with ExitStack() as stack:
        made = 0

        def make(
            *, empty: bool = False, retriever: Retriever | None = None, **overrides: Any
        ) -> TestClient:
            nonlocal made
            made += 1
            data_dir = tmp_path / f"app{made}" / "data"
            if not empty:
                shutil.copytree(tiny_data_dir, data_dir)
            settings = service_settings(data_dir, **overrides)
            if retriever is None:
                retriever = Retriever.open(
                    settings=settings.index_settings(), embedder=fake_embedder, analyzer=analyzer
                )
            client = TestClient(create_app(settings, retriever=retriever))
            return stack.enter_context(client)

        yield make


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    """An app over its own copy of the tiny corpus, no token, bound to loopback."""
    return make_client()


@pytest.fixture(scope="session")
def reader(
    tiny_data_dir: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer
) -> Iterator[TestClient]:
    """One app over the shared tiny index, for tests that only read (search, GET, errors)."""
    settings = service_settings(tiny_data_dir)
    retriever = Retriever.open(settings=settings.index_settings(), embedder=fake_embedder,
                               analyzer=analyzer)
    with TestClient(create_app(settings, retriever=retriever)) as client:
        yield client


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `check` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)


class JsonResponse(Protocol):
    """A response of TestClient or httpx."""

    def json(self) -> Any: ...


def error_of(response: JsonResponse) -> dict[str, str]:
    """The error object, after checking the response has exactly the one error shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"].strip(), body
    assert "Traceback" not in body["error"]["message"]
    error: dict[str, str] = body["error"]
    return error


def assert_hits_exact(client: TestClient, results: list[dict[str, Any]]) -> None:
    """Every offset in `results` indexes the text that GET /v1/documents/{id} returns."""
    texts: dict[str, str] = {}

    def text_of(doc_id: str) -> str:
        if doc_id not in texts:
            response = client.get(f"/v1/documents/{quote_id(doc_id)}")
            assert response.status_code == 200, response.text
            texts[doc_id] = response.json()["text"]
        return texts[doc_id]

    for hit in results:
        assert text_of(hit["doc_id"])[hit["start"] : hit["end"]] == hit["text"]
        if hit["answer"] is not None:
            answer = hit["answer"]
            assert hit["start"] <= answer["start"] < answer["end"] <= hit["end"]
            assert text_of(hit["doc_id"])[answer["start"] : answer["end"]] == answer["text"]
        if hit["counterpart"] is not None:
            cp = hit["counterpart"]
            assert cp["lang"] != hit["lang"]
            assert text_of(cp["doc_id"])[cp["start"] : cp["end"]] == cp["text"]
            if cp["answer"] is not None:
                translated = cp["answer"]
                assert cp["start"] <= translated["start"] < translated["end"] <= cp["end"]
                assert text_of(cp["doc_id"])[translated["start"]:translated["end"]] == (
                    translated["text"])


def assert_lookup_exact(client: TestClient, body: dict[str, Any]) -> None:
    """The source and translation spans of a /v1/lookup answer index their documents."""
    for name in ("source", "translation"):
        span = body[name]
        if span is not None:
            response = client.get(f"/v1/documents/{quote_id(span['doc_id'])}")
            assert response.status_code == 200, response.text
            assert response.json()["text"][span["start"]:span["end"]] == span["text"]


def quote_id(doc_id: str) -> str:
    """`doc_id` as one path segment ('/', '#', '?', ' ' and ':' percent-encoded)."""
    return quote(doc_id, safe="")
