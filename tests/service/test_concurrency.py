"""Searches running in parallel with re-ingests of the same document see one whole version of
it: every passage they return exists in that version, with its exact text, never a mix."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from index.indexes.analyze import Analyzer
from index.records import Document
from index.retriever import Retriever
from service.state import ServiceState
from tests.conftest import open_retriever
from tests.fakes import FakeEmbedder
from tests.service.conftest import ClientFactory, quote_id, service_settings

DOC_ID = "reservoir.en"
VERSIONS = 12
SEARCHERS = 3
QUERY = "reservoir level gauge engineers dam bulletin"

PassageTable = dict[str, tuple[int, int, str]]  # passage_id -> (start, end, text)


def version_text(i: int) -> str:
    """Version i: 1–4 paragraphs of about a passage each, every sentence naming the version,
    so passages of different versions never coincide."""
    paragraphs = [
        " ".join(f"In bulletin {i} the reservoir level at gauge {j}.{s} was read by the "
                 f"engineers at the dam." for s in range(8))
        for j in range(1 + i % 4)
    ]
    return "Reservoir Bulletin\n\n" + "\n\n".join(paragraphs)


def version_doc(i: int) -> Document:
    return Document(DOC_ID, "reservoir", "en", "Reservoir Bulletin", version_text(i))


def passage_tables(scratch: Path, embedder: FakeEmbedder, analyzer: Analyzer) -> list[PassageTable]:
    """The passages of each version, as the library chunks them (built in a scratch index)."""
    retriever = open_retriever(scratch, embedder, analyzer)
    tables: list[PassageTable] = []
    for i in range(VERSIONS):
        retriever.upsert([version_doc(i)])
        tables.append({p.passage_id: (p.start, p.end, p.text) for p in retriever.passages(DOC_ID)})
    return tables


def versions_matching(hits: list[dict[str, Any]], tables: list[PassageTable]) -> set[int]:
    """Versions that contain every one of `hits` exactly (same id, offsets and text)."""
    return {
        i for i, table in enumerate(tables)
        if all(table.get(h["passage_id"]) == (h["start"], h["end"], h["text"]) for h in hits)
    }


def test_searches_during_reingest_see_whole_versions_only(
    make_client: ClientFactory, tmp_path: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer
) -> None:
    tables = passage_tables(tmp_path / "scratch", fake_embedder, analyzer)
    assert len({frozenset(t.items()) for t in tables}) == VERSIONS
    client = make_client()
    texts = [version_text(i) for i in range(VERSIONS)]
    stop = threading.Event()
    seen: list[list[dict[str, Any]]] = []
    failures: list[str] = []

    def search_until_stopped(client: TestClient) -> None:
        while not stop.is_set():
            response = client.post("/v1/search", json={"query": QUERY, "k": 20})
            if response.status_code != 200:
                failures.append(response.text)
                return
            seen.append([h for h in response.json()["results"] if h["doc_id"] == DOC_ID])

    searchers = [threading.Thread(target=search_until_stopped, args=(client,))
                 for _ in range(SEARCHERS)]
    for thread in searchers:
        thread.start()
    try:
        for i in range(VERSIONS):
            doc = version_doc(i)
            response = client.post("/v1/documents", json={
                "doc_id": doc.doc_id, "release_id": doc.release_id, "lang": doc.lang,
                "title": doc.title, "text": doc.text})
            assert response.status_code == 200, response.text
            assert response.json()["added" if i == 0 else "replaced"] == [DOC_ID]
    finally:
        stop.set()
        for thread in searchers:
            thread.join(timeout=60)
    assert failures == []
    observed: set[frozenset[int]] = set()
    for hits in seen:
        ids = [h["passage_id"] for h in hits]
        assert len(ids) == len(set(ids)), f"duplicated passage in one answer: {ids}"
        if not hits:
            continue  # searched before the first version was committed
        matching = versions_matching(hits, tables)
        assert matching, f"passages from no single version: {hits}"
        for h in hits:  # and each span is exact in the version's text
            assert any(texts[i][h["start"] : h["end"]] == h["text"] for i in matching)
        observed.add(frozenset(matching))
    # The test only means something if searches really overlapped several commits.
    assert len(seen) > VERSIONS and len(observed) >= 2

    final = client.get(f"/v1/documents/{quote_id(DOC_ID)}").json()
    assert final["text"] == texts[-1]
    assert {p["passage_id"]: (p["start"], p["end"], texts[-1][p["start"] : p["end"]])
            for p in final["passages"]} == tables[-1]


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="thread priorities are POSIX-only")
@pytest.mark.parametrize("increment", [10, 3, 0])
def test_writes_run_on_a_thread_that_yields_the_cpu_to_searches(
    tmp_path: Path, tiny_retriever: Retriever, increment: int
) -> None:
    settings = service_settings(tmp_path / "data", write_niceness=increment)
    state = ServiceState(settings, retriever=tiny_retriever)

    def niceness() -> tuple[int, str]:
        thread = threading.current_thread()
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), thread.name

    async def main() -> tuple[tuple[int, str], tuple[int, str]]:
        state.start()
        try:
            return await state.write(niceness), await state.read(niceness)
        finally:
            state.stop()

    (write_nice, write_thread), (read_nice, _) = anyio.run(main)
    assert write_thread.startswith("qiao-write")
    assert write_nice == min(read_nice + increment, 19)
