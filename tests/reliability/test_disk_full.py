"""A full disk at any write step leaves the old state current, readable and uncluttered, and
gives one clear line at the CLI."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import index.model.load
from index.indexes.analyze import Analyzer
from index.records import Document
from index.retriever import Retriever
from index.store.commit import WRITE_STEPS, CommitFailed, set_write_step_hook
from index.store.datadir import current_name
from index.store.verify import verify_data_dir
from qiao import cli
from tests.conftest import open_retriever
from tests.fakes import FakeEmbedder

BEFORE_SWITCH = WRITE_STEPS[: WRITE_STEPS.index("switch") + 1]


def disk_full_at(step: str) -> object:
    def hook(name: str) -> None:
        if name == step:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return hook


def files(data_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*"))


def assert_old_state_intact(retriever: Retriever, generation: str, docs: list[Document],
                            before: list[str]) -> None:
    data_dir = retriever.data_dir
    assert current_name(data_dir) == generation
    assert files(data_dir) == before  # nothing of the attempt is left
    assert verify_data_dir(data_dir).violations == []
    reopened = open_retriever(data_dir, FakeEmbedder(), Analyzer())
    assert {d.doc_id: d for d in reopened.documents()} == {d.doc_id: d for d in docs}


@pytest.mark.parametrize("step", BEFORE_SWITCH)
def test_disk_full_at_each_write_step_keeps_the_old_state(
    committed: Retriever, tiny_docs: list[Document], monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    generation = committed.generation
    assert generation is not None
    before = files(committed.data_dir)
    set_write_step_hook(disk_full_at(step))
    try:
        with pytest.raises(CommitFailed, match="No space left on device; nothing was changed"):
            committed.upsert([replace(tiny_docs[0], text="A new text that never lands.")])
    finally:
        set_write_step_hook(None)
    assert_old_state_intact(committed, generation, tiny_docs, before)
    assert committed.document(tiny_docs[0].doc_id) == tiny_docs[0]
    committed.upsert([replace(tiny_docs[0], text="Space is back.")])  # the next commit works
    assert verify_data_dir(committed.data_dir).violations == []


def test_disk_full_gives_one_line_at_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index.model.load, "load_embedder", lambda settings=None: FakeEmbedder())
    note = tmp_path / "note.en.txt"
    note.write_text("Bridges connect the two banks of the river.\n")
    data = tmp_path / "data"
    runner = CliRunner()
    assert runner.invoke(cli.app, ["ingest", str(note), "--data-dir", str(data)]).exit_code == 0
    note.write_text("Ferries cross the river every ten minutes.\n")
    set_write_step_hook(disk_full_at("segment"))
    try:
        result = runner.invoke(cli.app, ["ingest", str(note), "--data-dir", str(data)])
    finally:
        set_write_step_hook(None)
    assert result.exit_code == 1
    # (the transient progress bar leaves an empty line behind)
    assert result.output.strip().startswith("error: cannot write to ")
    assert "No space left on device; nothing was changed" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root and mount permission; skipped otherwise)."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_really_full_tmpfs_keeps_the_old_state(
    tiny_tmpfs: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer, tiny_docs: list[Document]
) -> None:
    retriever = open_retriever(tiny_tmpfs / "data", fake_embedder, analyzer)
    retriever.upsert(tiny_docs)
    generation = retriever.generation
    assert generation is not None
    before = files(retriever.data_dir)
    big = [
        Document(f"big-{i}.en", f"big-{i}", "en", f"Big {i}", f"Line {i} of a long report. " * 900)
        for i in range(12)
    ]
    with pytest.raises(CommitFailed, match="No space left on device"):
        retriever.upsert(big)
    assert_old_state_intact(retriever, generation, tiny_docs, before)
