"""Generations on disk: leftovers of killed writers, retention, and readers racing commits."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from index.indexes.analyze import Analyzer
from index.records import Document
from index.retriever import Retriever
from index.store.generation import current_generation, load_snapshot, pinned_generation
from index.store.verify import verify_data_dir
from tests.conftest import open_retriever
from tests.fakes import FakeEmbedder


def gen_dirs(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir() if p.name.startswith("gen-"))


def hidden_dirs(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir() if p.name.startswith((".gen-", ".trash-")))


def edit(doc: Document, n: int) -> Document:
    return replace(doc, text=f"{doc.text} Revision {n}.")


def test_leftovers_of_a_killed_writer_are_ignored_then_removed_by_the_next_commit(
    committed: Retriever, fake_embedder: FakeEmbedder, analyzer: Analyzer, tiny_docs: list[Document]
) -> None:
    data_dir = committed.data_dir
    current = current_generation(data_dir)
    # What a writer killed mid-commit, after its rename, and mid-removal leaves behind:
    (data_dir / ".gen-000002.x1y2").mkdir()
    (data_dir / ".gen-000002.x1y2" / "documents.jsonl").write_text('{"half": ')
    (data_dir / "gen-000002").mkdir()
    (data_dir / "gen-000002" / "passages.npy").write_bytes(b"\x93NUMPY")
    (data_dir / ".trash-gen-000000.ab").mkdir()
    (data_dir / ".CURRENT.tmp").write_text("gen-0000")
    reopened = open_retriever(data_dir, fake_embedder, analyzer)
    assert reopened.generation == current
    assert len(reopened.documents()) == len(tiny_docs)
    assert verify_data_dir(data_dir).violations == []
    reopened.upsert([edit(tiny_docs[0], 1)])
    assert hidden_dirs(data_dir) == []
    assert not (data_dir / ".CURRENT.tmp").exists()
    assert gen_dirs(data_dir) == [current, "gen-000002"]
    assert verify_data_dir(data_dir).violations == []
    assert open_retriever(data_dir, fake_embedder, analyzer).document(tiny_docs[0].doc_id) == (
        edit(tiny_docs[0], 1)
    )


def test_commits_keep_the_previous_generation_and_remove_older_ones(
    committed: Retriever, tiny_docs: list[Document]
) -> None:
    for n in range(1, 4):
        committed.upsert([edit(tiny_docs[0], n)])
    assert gen_dirs(committed.data_dir) == ["gen-000003", "gen-000004"]
    assert hidden_dirs(committed.data_dir) == []


def test_a_pinned_generation_survives_commits_until_released(
    committed: Retriever, tiny_docs: list[Document]
) -> None:
    data_dir = committed.data_dir
    with pinned_generation(data_dir) as pinned:
        assert pinned == "gen-000001"
        for n in range(1, 4):
            committed.upsert([edit(tiny_docs[0], n)])
        assert (data_dir / pinned / "manifest.json").is_file()
        assert gen_dirs(data_dir) == ["gen-000001", "gen-000003", "gen-000004"]
    committed.upsert([edit(tiny_docs[0], 4)])
    assert gen_dirs(data_dir) == ["gen-000004", "gen-000005"]


def test_readers_loading_while_another_writer_commits_never_fail(
    committed: Retriever, tiny_docs: list[Document]
) -> None:
    """The race behind a service's reload: a generation removed while a reader loads it."""
    data_dir = committed.data_dir
    done = threading.Event()
    failures: list[BaseException] = []
    loads = [0]

    def read() -> None:
        while not done.is_set():
            try:
                loaded = load_snapshot(data_dir)
                assert loaded is not None and len(loaded[0].segments) == len(tiny_docs)
                loads[0] += 1
            except BaseException as exc:  # reported below, with the count of loads
                failures.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    try:
        for n in range(1, 25):
            committed.upsert([edit(tiny_docs[n % len(tiny_docs)], n)])
    finally:
        done.set()
        for thread in readers:
            thread.join()
    assert failures == [], f"after {loads[0]} loads: {failures[0]!r}"
    assert loads[0] > 0
    assert len(gen_dirs(data_dir)) == 2
