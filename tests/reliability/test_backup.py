"""`snapshot_data_dir` and `qiao snapshot`: a consistent, verified copy, even during writes."""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import index.store.backup
from index.errors import DataDirError
from index.indexes.analyze import Analyzer
from index.records import Document
from index.retriever import Retriever
from index.store.backup import snapshot_data_dir
from index.store.datadir import CURRENT
from index.store.verify import verify_data_dir
from qiao import cli
from tests.conftest import open_retriever
from tests.fakes import FakeEmbedder
from tests.reliability.conftest import segment_folder


def doc_set(retriever: Retriever) -> dict[str, str]:
    return {d.doc_id: d.text for d in retriever.documents()}


def test_snapshot_opens_as_an_identical_index(
    committed: Retriever, tmp_path: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer
) -> None:
    report = snapshot_data_dir(committed.data_dir, tmp_path / "backup")
    assert report.generation == committed.generation
    assert report.documents == len(committed.documents()) and report.files >= 20
    assert verify_data_dir(tmp_path / "backup").violations == []
    copy = open_retriever(tmp_path / "backup", fake_embedder, analyzer)
    assert doc_set(copy) == doc_set(committed)
    query = "plastic waste Dianshan Lake"
    assert copy.search(query, k=3) == committed.search(query, k=3)


def test_snapshot_refuses_a_used_destination_and_an_empty_source(
    committed: Retriever, tmp_path: Path
) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("x")
    with pytest.raises(DataDirError, match="not empty"):
        snapshot_data_dir(committed.data_dir, tmp_path / "used")
    with pytest.raises(DataDirError, match="inside"):
        snapshot_data_dir(committed.data_dir, committed.data_dir / "backup")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataDirError, match="nothing to snapshot"):
        snapshot_data_dir(tmp_path / "nothing", tmp_path / "backup")


def test_snapshot_during_commits_is_one_committed_state(
    committed: Retriever, tmp_path: Path, tiny_docs: list[Document]
) -> None:
    """A writer commits in a loop while snapshots are taken: each copy verifies and holds
    exactly the documents of one commit."""
    committed_states: list[dict[str, str]] = [doc_set(committed)]
    done = threading.Event()

    def write() -> None:
        n = 0
        while not done.is_set():
            n += 1
            committed.upsert([replace(tiny_docs[n % len(tiny_docs)], text=f"Revision {n}.")])
            committed_states.append(doc_set(committed))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        copies = []
        for i in range(6):
            snapshot_data_dir(committed.data_dir, tmp_path / f"backup-{i}")
            copies.append(tmp_path / f"backup-{i}")
    finally:
        done.set()
        writer.join()
    assert len(committed_states) > 2, "the writer never ran during the snapshots"
    for copy in copies:
        assert verify_data_dir(copy).violations == []
        opened = open_retriever(copy, FakeEmbedder(), Analyzer())
        assert doc_set(opened) in committed_states


def test_an_interrupted_snapshot_leaves_nothing_that_looks_like_a_backup(
    committed: Retriever, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(folder: Path) -> None:  # the files are copied, flushing them fails
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(index.store.backup, "fsync_tree", disk_full)
    with pytest.raises(DataDirError, match="No space left on device"):
        snapshot_data_dir(committed.data_dir, tmp_path / "backup")
    assert not (tmp_path / "backup" / CURRENT).exists()
    assert list((tmp_path / "backup").iterdir()) == []
    assert verify_data_dir(tmp_path / "backup").violations  # "no committed index"


def test_a_damaged_source_is_not_copied(committed: Retriever, tmp_path: Path) -> None:
    faiss_file = segment_folder(committed) / "dense.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    with pytest.raises(DataDirError, match="fails verification"):
        snapshot_data_dir(committed.data_dir, tmp_path / "backup")
    assert not (tmp_path / "backup" / CURRENT).exists()


def test_cli_snapshot_then_verify(committed: Retriever, tmp_path: Path) -> None:
    runner = CliRunner()
    dest = tmp_path / "backup"
    result = runner.invoke(cli.app, ["snapshot", str(dest), "--data-dir", str(committed.data_dir)])
    assert result.exit_code == 0, result.output
    assert f"copied to {dest} and verified" in result.output
    assert runner.invoke(cli.app, ["verify", str(dest)]).exit_code == 0
    result = runner.invoke(cli.app, ["snapshot", str(dest), "--data-dir", str(committed.data_dir)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: {dest} is not empty: give a new or empty directory for the snapshot"
    )
