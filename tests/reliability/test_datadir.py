"""The data directory over time: leftovers of killed writers, what commits keep and remove,
pinned manifests, readers racing commits, and commits that never touch what they don't change."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path

from index.indexes.analyze import Analyzer
from index.records import Document
from index.retriever import Retriever
from index.store.datadir import current_name, pinned_manifest
from index.store.manifest import DELETIONS, LINKS, MANIFESTS, SEGMENTS
from index.store.reader import open_snapshot
from index.store.verify import verify_data_dir
from tests.conftest import open_retriever
from tests.fakes import FakeEmbedder


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def manifests(data_dir: Path) -> list[str]:
    return names(data_dir / MANIFESTS)


def edit(doc: Document, n: int) -> Document:
    return replace(doc, text=f"{doc.text} Revision {n}.")


def test_leftovers_of_a_killed_writer_are_ignored_then_removed_by_the_next_commit(
    committed: Retriever, fake_embedder: FakeEmbedder, analyzer: Analyzer, tiny_docs: list[Document]
) -> None:
    data_dir = committed.data_dir
    current = current_name(data_dir)
    # What a writer killed mid-commit leaves: a half-written segment, a finished segment and
    # manifest that CURRENT never named, a half-written pointer, an old-format generation.
    (data_dir / SEGMENTS / ".seg-000002.tmp").mkdir()
    (data_dir / SEGMENTS / ".seg-000002.tmp" / "docs.json").write_text('{"half": ')
    (data_dir / SEGMENTS / "seg-000003").mkdir()
    (data_dir / SEGMENTS / "seg-000003" / "passages.npy").write_bytes(b"\x93NUMPY")
    (data_dir / MANIFESTS / "manifest-000007.json").write_text("{}")
    (data_dir / LINKS / "links-000007.json").write_text("{}")
    (data_dir / ".CURRENT.tmp").write_text("manifest-0000")
    (data_dir / "gen-000001").mkdir()
    reopened = open_retriever(data_dir, fake_embedder, analyzer)
    assert reopened.generation == current
    assert len(reopened.documents()) == len(tiny_docs)
    assert verify_data_dir(data_dir).violations == []
    reopened.upsert([edit(tiny_docs[0], 1)])
    # The new commit numbers itself above the leftovers, then removes them.
    assert reopened.generation == "manifest-000008"
    assert manifests(data_dir) == [f"{current}.json", "manifest-000008.json"]
    assert [n for n in names(data_dir / SEGMENTS) if n.startswith(".")] == []
    assert "seg-000003" not in names(data_dir / SEGMENTS)
    assert "links-000007.json" not in names(data_dir / LINKS)
    assert not (data_dir / ".CURRENT.tmp").exists() and not (data_dir / "gen-000001").exists()
    assert verify_data_dir(data_dir).violations == []
    assert open_retriever(data_dir, fake_embedder, analyzer).document(tiny_docs[0].doc_id) == (
        edit(tiny_docs[0], 1)
    )


def test_commits_keep_the_previous_manifest_and_remove_older_files(
    committed: Retriever, tiny_docs: list[Document]
) -> None:
    for n in range(1, 4):
        committed.upsert([edit(tiny_docs[0], n)])
    assert manifests(committed.data_dir) == ["manifest-000003.json", "manifest-000004.json"]
    # Segment 1 (the tiny corpus, one version of a document replaced) and the three one-document
    # segments of the revisions, of which the last two are still named by a kept manifest.
    assert names(committed.data_dir / SEGMENTS) == ["seg-000001", "seg-000003", "seg-000004"]
    # Later revisions deleted whole one-document segments, which left the manifest at once.
    assert names(committed.data_dir / DELETIONS) == ["seg-000001.del-000002.npy"]
    assert verify_data_dir(committed.data_dir).violations == []


def test_a_commit_never_rewrites_a_segment_it_does_not_add(
    committed: Retriever, tiny_docs: list[Document]
) -> None:
    folder = committed.data_dir / SEGMENTS / "seg-000001"
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}
    folder_before = folder.stat().st_mtime_ns
    committed.upsert([edit(tiny_docs[0], 1)])  # replaces a document of seg-000001
    committed.delete([tiny_docs[1].doc_id])
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}
    assert after == before and folder.stat().st_mtime_ns == folder_before
    assert committed.document(tiny_docs[1].doc_id) is None


def test_a_pinned_manifest_survives_commits_until_released(
    committed: Retriever, tiny_docs: list[Document]
) -> None:
    data_dir = committed.data_dir
    with pinned_manifest(data_dir) as pinned:
        assert pinned is not None and pinned.name == "manifest-000001"
        for n in range(1, 4):
            committed.upsert([edit(tiny_docs[0], n)])
        assert "manifest-000001.json" in manifests(data_dir)
        assert (data_dir / SEGMENTS / pinned.segments[0].name).is_dir()
    committed.upsert([edit(tiny_docs[0], 4)])
    assert manifests(data_dir) == ["manifest-000004.json", "manifest-000005.json"]


def test_readers_loading_while_another_writer_commits_never_fail(
    committed: Retriever, tiny_docs: list[Document]
) -> None:
    """The race behind a service's reload: files removed while a reader opens them."""
    data_dir = committed.data_dir
    done = threading.Event()
    failures: list[BaseException] = []
    loads = [0]

    def read() -> None:
        while not done.is_set():
            try:
                loaded = open_snapshot(data_dir)
                assert loaded is not None and len(loaded[0].doc_index) == len(tiny_docs)
                loaded[0].document(next(iter(loaded[0].doc_index.values())))
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
    committed.upsert([edit(tiny_docs[0], 99)])  # with no reader left, nothing pinned remains
    assert len(manifests(data_dir)) == 2
    assert verify_data_dir(data_dir).violations == []


def test_merges_fold_small_segments_and_their_links_into_one(
    tmp_path: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer, tiny_docs: list[Document]
) -> None:
    retriever = open_retriever(tmp_path / "data", fake_embedder, analyzer)
    for doc in tiny_docs:  # one commit each: the Chinese versions relink older English ones
        retriever.upsert([doc])
    assert retriever.manifest is not None and len(retriever.manifest.segments) == len(tiny_docs)
    assert retriever.manifest.overlays
    before = {d.doc_id: (d, retriever.counterparts(d.doc_id)) for d in retriever.documents()}
    hits = [(h.doc_id, h.start, h.end) for h in retriever.search("metro line river", 5)]
    assert retriever.merge([s.name for s in retriever.manifest.segments])
    assert len(retriever.manifest.segments) == 1 and not retriever.manifest.overlays
    after = {d.doc_id: (d, retriever.counterparts(d.doc_id)) for d in retriever.documents()}
    assert after == before
    assert [(h.doc_id, h.start, h.end) for h in retriever.search("metro line river", 5)] == hits
    assert verify_data_dir(retriever.data_dir).violations == []
    retriever.delete(["library.en"])  # the next commit drops what only the old manifest used
    assert os.listdir(retriever.data_dir / LINKS) == []
