"""Fixtures for the reliability tests: a committed tiny index and tamper helpers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.files import sha256_of
from index.indexes.analyze import Analyzer
from index.records import Document
from index.retriever import Retriever
from index.store.manifest import MANIFESTS, SEGMENTS
from index.store.segment import SEGMENT_FILE
from tests.conftest import open_retriever
from tests.fakes import FakeEmbedder


@pytest.fixture
def committed(
    tmp_path: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer, tiny_docs: list[Document]
) -> Retriever:
    """A data directory holding the tiny corpus in one committed segment."""
    retriever = open_retriever(tmp_path / "data", fake_embedder, analyzer)
    retriever.upsert(tiny_docs)
    return retriever


def segment_folder(retriever: Retriever, index: int = 0) -> Path:
    assert retriever.manifest is not None
    return retriever.data_dir / SEGMENTS / retriever.manifest.segments[index].name


def manifest_file(retriever: Retriever) -> Path:
    assert retriever.generation is not None
    return retriever.data_dir / MANIFESTS / f"{retriever.generation}.json"


def rehash(folder: Path) -> None:
    """Rewrite a segment's checksums (and the manifest's checksum of its segment.json) after
    tampering, so only the structural checks can notice what was changed."""
    record = json.loads((folder / SEGMENT_FILE).read_text(encoding="utf-8"))
    record["files"] = {name: sha256_of(folder / name) for name in record["files"]}
    (folder / SEGMENT_FILE).write_text(json.dumps(record), encoding="utf-8")
    data_dir = folder.parents[1]
    current = (data_dir / "CURRENT").read_text(encoding="utf-8").strip()
    path = data_dir / MANIFESTS / f"{current}.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for entry in manifest["segments"]:
        if entry["name"] == folder.name:
            entry["record_sha256"] = sha256_of(folder / SEGMENT_FILE)
    path.write_text(json.dumps(manifest), encoding="utf-8")
