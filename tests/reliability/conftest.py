"""Fixtures for the reliability tests: a committed tiny index and a tamper helper."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.indexes.analyze import Analyzer
from index.records import Document
from index.retriever import Retriever
from index.store.generation import MANIFEST, sha256_of
from tests.conftest import open_retriever
from tests.fakes import FakeEmbedder


@pytest.fixture
def committed(
    tmp_path: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer, tiny_docs: list[Document]
) -> Retriever:
    """A data directory holding the tiny corpus in one committed generation."""
    retriever = open_retriever(tmp_path / "data", fake_embedder, analyzer)
    retriever.upsert(tiny_docs)
    return retriever


def generation_folder(retriever: Retriever) -> Path:
    assert retriever.generation is not None
    return retriever.data_dir / retriever.generation


def rehash(folder: Path) -> None:
    """Rewrite the manifest's checksums after tampering, so only the structural checks can
    notice what was changed."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    manifest["files"] = {rel: sha256_of(folder / rel) for rel in manifest["files"]}
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
