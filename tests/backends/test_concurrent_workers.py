"""Two ingest worker processes feeding one Qdrant (local mode) folder at once, with disjoint
and overlapping releases: nothing is lost, duplicated or left stale, and every release whose
two versions came from different workers is aligned."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index.backend import connect
from index.backends.qdrant_index import verify_qdrant
from index.config import IndexSettings
from tests.conftest import REPO


def test_two_workers_leave_every_passage_once_and_every_release_aligned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "qdrant"
    settings = IndexSettings(backend="qdrant", qdrant_path=folder, data_dir=tmp_path / "data")
    store = connect(settings, 64)
    store.init()
    store.close()
    jobs = [
        # Worker A: releases 0-11 in both languages; worker B: 6-17 in English only, so 6-11
        # overlap (the same English documents written twice, their Chinese from A alone).
        ["0", "12", "en,zh"],
        ["6", "18", "en"],
    ]
    workers = [subprocess.Popen([sys.executable, "-m", "tests.backends.ingest_worker",
                                 str(folder), *job], cwd=REPO, stderr=subprocess.PIPE,
                                text=True) for job in jobs]
    for worker in workers:
        _, stderr = worker.communicate(timeout=300)
        assert worker.returncode == 0, stderr
    store = connect(settings, 64)
    try:
        report = verify_qdrant(store)
        assert report.violations == []
        assert report.documents == 12 * 2 + 6
        links = {p["doc_id"]: p["counterpart_doc"]
                 for p in store.document_list(["doc_id", "counterpart_doc"])}
    finally:
        store.close()
    for n in range(12):
        assert links[f"r{n}.en"] == f"r{n}.zh" and links[f"r{n}.zh"] == f"r{n}.en"
    # The same check through the command an operator runs.
    import index.backend
    from qiao import cli

    monkeypatch.setattr(index.backend, "_model_dim", lambda settings: 64)
    monkeypatch.setenv("QIAO_QDRANT_PATH", str(folder))
    result = CliRunner().invoke(cli.app, ["verify", str(tmp_path / "data"), "--backend",
                                          "qdrant"])
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output and "30 documents" in result.output
    for n in range(12, 18):
        assert links[f"r{n}.en"] is None


def test_verify_finds_missing_and_stale_passages(tmp_path: Path) -> None:
    from index.backend import QdrantOpener
    from index.backends.qdrant_points import passage_point_id
    from tests.backends.ingest_worker import release
    from tests.fakes import FakeEmbedder

    settings = IndexSettings(backend="qdrant", qdrant_path=tmp_path / "q",
                             data_dir=tmp_path / "data")
    opener = QdrantOpener(settings, embedder=FakeEmbedder())
    store = connect(settings, 64)
    store.init()
    store.close()
    list(opener.ingest([release(1, "en"), release(2, "en")]))
    store = connect(settings, 64)
    try:
        assert verify_qdrant(store).ok
        store.client.delete(store.collection, [passage_point_id("r1.en", 0)], wait=True)
        store.client.set_payload(store.collection, {"content_hash": "old"},
                                 [passage_point_id("r2.en", 0)], wait=True)
        problems = sorted(str(v) for v in verify_qdrant(store).violations)
    finally:
        store.close()
    assert len(problems) == 2
    assert any("missing: 1 of" in p and "r1.en" in p for p in problems)
    assert any("stale" in p and "r2.en#0" in p for p in problems)
