"""Shared fixtures: a fake embedder, the tiny bilingual corpus, paths to shared data, and (for
`model` tests) the real embedder and the demo corpus indexed with it, each made once a session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from index.config import IndexSettings
from index.embed import Embedder
from index.indexes.analyze import Analyzer
from index.ingest.read import read_paths
from index.records import Document
from index.retriever import Retriever
from tests.fakes import FakeEmbedder

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny"
SHARED = Path(os.environ.get("QIAO_SHARED_DIR", REPO.parent / "shared"))
XQUAD = Path(os.environ.get("QIAO_XQUAD_DIR", SHARED / "xquad"))
CORPUS = REPO / "corpus"


@pytest.fixture(scope="session")
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="session")
def analyzer() -> Analyzer:
    return Analyzer()


@pytest.fixture(scope="session")
def real_embedder() -> Embedder:
    """The configured model, loaded once for every `model` test."""
    from index.model.load import load_embedder

    return load_embedder(IndexSettings())


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory, real_embedder: Embedder) -> Path:
    """`corpus/` indexed with the real model, built once. Shared: tests only read it (a test
    that writes works on a copy)."""
    docs, problems = read_paths([CORPUS])
    assert problems == []
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    Retriever.open(settings=IndexSettings(data_dir=data_dir), embedder=real_embedder,
                   analyzer=Analyzer()).upsert(docs)
    return data_dir


@pytest.fixture(scope="session")
def tiny_docs() -> list[Document]:
    docs, problems = read_paths([TINY])
    assert problems == []
    return docs


def open_retriever(
    data_dir: Path, embedder: FakeEmbedder, analyzer: Analyzer, **overrides: object
) -> Retriever:
    settings = IndexSettings(data_dir=data_dir, model_dir=data_dir.parent / "models", **overrides)
    return Retriever.open(settings=settings, embedder=embedder, analyzer=analyzer)


@pytest.fixture
def retriever(tmp_path: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer) -> Retriever:
    return open_retriever(tmp_path / "data", fake_embedder, analyzer)


@pytest.fixture
def tiny_retriever(retriever: Retriever, tiny_docs: list[Document]) -> Retriever:
    retriever.upsert(tiny_docs)
    return retriever
