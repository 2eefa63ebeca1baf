"""Ingest jobs (`wait=false`) and group commit: journaled before the 202, committed in the
background, recovered after a restart; ingests waiting together share one commit, in order."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from index.errors import QiaoError
from index.indexes.analyze import Analyzer
from index.records import Document
from index.retriever import Retriever, UpsertReport
from service.jobs import QUEUE_DIR, IngestJobs, QueueUnavailable
from service.state import ServiceState
from service.write_queue import WriteQueue
from tests.conftest import open_retriever
from tests.fakes import FakeEmbedder
from tests.service.conftest import ClientFactory, error_of, quote_id, wait_until


def doc(doc_id: str, text: str = "Harbour cranes were inspected on Monday.") -> dict[str, Any]:
    return {"doc_id": doc_id, "release_id": doc_id, "lang": "en", "title": "Cranes", "text": text}


def state_of(client: TestClient) -> ServiceState:
    state: ServiceState = client.app.state.service  # type: ignore[attr-defined]
    return state


@contextmanager
def writer_blocked(writes: WriteQueue) -> Iterator[threading.Event]:
    """Hold the write thread in a queued call until the block ends (or `release` is set)."""
    release, entered = threading.Event(), threading.Event()

    def block() -> None:
        entered.set()
        release.wait(30)

    writes.call(block)
    assert entered.wait(10)
    try:
        yield release
    finally:
        release.set()


def pending_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / QUEUE_DIR / "pending").glob("*.jsonl"))


def finished_job(client: TestClient, job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def ended() -> bool:
        found.update(client.get(f"/v1/jobs/{job_id}").json())
        return found["status"] != "queued"

    wait_until(ended)
    return found


def test_wait_false_answers_once_journaled_and_the_job_commits_in_the_background(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    data_dir = state_of(client).ready_retriever().data_dir
    with writer_blocked(state_of(client).writes):
        response = client.post("/v1/documents?wait=false", json=doc("cranes.en"))
        assert response.status_code == 202, response.text
        job = response.json()
        assert response.headers["location"] == job["status_url"] == f"/v1/jobs/{job['job_id']}"
        assert (job["status"], job["documents"], job["result"]) == ("queued", ["cranes.en"], None)
        # On disk before the answer, and not yet searchable.
        (journal,) = pending_files(data_dir)
        assert json.loads(journal.read_text().splitlines()[1])["doc_id"] == "cranes.en"
        assert client.get("/v1/documents/cranes.en").status_code == 404
        assert client.get(job["status_url"]).json()["status"] == "queued"
    ended = finished_job(client, job["job_id"])
    assert ended["status"] == "done" and ended["error"] is None
    assert ended["result"]["added"] == ["cranes.en"] and ended["result"]["passages"] >= 1
    assert ended["finished_at"] >= ended["accepted_at"]
    assert client.get("/v1/documents/cranes.en").status_code == 200
    assert pending_files(data_dir) == []


def test_jobs_accepted_before_a_stop_are_committed_at_the_next_start(
    tmp_path: Path, tiny_data_dir: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer,
    make_client: ClientFactory,
) -> None:
    data_dir = tmp_path / "data"
    retriever = open_retriever(data_dir, fake_embedder, analyzer)
    writes = WriteQueue(max_group_docs=256)
    jobs = IngestJobs.open(writes, retriever)
    document = Document(doc_id="late.en", release_id="late", lang="en", title="Late",
                        text="Accepted, then the server stopped before the commit.")
    with writer_blocked(writes) as release:
        job = jobs.accept([document], [("documents[1]", "the text is empty")])
        stopper = threading.Thread(target=writes.stop)
        stopper.start()  # cancels the journaled job, then waits for the blocking call
        wait_until(lambda: writes.queued_documents == 0)
        release.set()
        stopper.join(10)
    jobs.close()
    assert retriever.document("late.en") is None
    assert len(pending_files(data_dir)) == 1

    client = make_client(retriever=open_retriever(data_dir, fake_embedder, analyzer))
    ended = finished_job(client, job.job_id)
    assert ended["status"] == "done" and ended["result"]["added"] == ["late.en"]
    assert ended["rejected"] == [{"source": "documents[1]", "message": "the text is empty"}]
    assert client.get("/v1/documents/late.en").json()["text"] == document.text
    assert pending_files(data_dir) == []


def test_waiting_ingests_share_one_commit_and_each_gets_its_own_report(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    state = state_of(client)
    retriever = state.ready_retriever()
    before = retriever.generation
    ids = [f"group-{i}.en" for i in range(4)]
    with ThreadPoolExecutor(4) as pool, writer_blocked(state.writes):
        answers = [pool.submit(client.post, "/v1/documents", json=doc(i, f"Item {i} text."))
                   for i in ids]
        wait_until(lambda: state.writes.queued_documents == len(ids))
    reports = [a.result().json() for a in answers]
    assert [r["added"] for r in reports] == [[i] for i in ids]
    assert all(r["passages"] >= 1 and r["replaced"] == r["unchanged"] == [] for r in reports)
    assert generation_number(retriever.generation) == generation_number(before) + 1


def generation_number(name: str | None) -> int:
    assert name is not None
    return int(name.removeprefix("manifest-"))


def test_a_group_keeps_submission_order_across_versions_and_deletes(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    state = state_of(client)
    retriever = state.ready_retriever()
    with writer_blocked(state.writes):
        first = state.writes.upsert(retriever, [Document(**doc("x.en", "Version one."))])
        second = state.writes.upsert(retriever, [Document(**doc("x.en", "Version two."))])
        gone = state.writes.call(lambda: retriever.delete(["x.en"]))
        third = state.writes.upsert(retriever, [Document(**doc("x.en", "Version three."))])
        other = state.writes.upsert(retriever, [Document(**doc("y.en", "Another one."))])
    assert first.result(10).added == ["x.en"]
    assert second.result(10).replaced == ["x.en"]
    assert gone.result(10) == ["x.en"]
    assert third.result(10).added == ["x.en"] and other.result(10).added == ["y.en"]
    assert retriever.document("x.en").text == "Version three."  # type: ignore[union-attr]


def test_one_failing_request_does_not_fail_the_others_in_its_group(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_client()
    state = state_of(client)
    retriever = state.ready_retriever()
    real_upsert: Callable[..., UpsertReport] = retriever.upsert

    def upsert(documents: list[Document], progress: Any = None) -> UpsertReport:
        if any(d.doc_id == "bad.en" for d in documents):
            raise QiaoError("cannot commit: disk full")
        return real_upsert(documents, progress)

    monkeypatch.setattr(retriever, "upsert", upsert)
    with writer_blocked(state.writes):
        good = client.post("/v1/documents?wait=false", json=doc("good.en")).json()
        bad = client.post("/v1/documents?wait=false", json=doc("bad.en")).json()
        also_good = client.post("/v1/documents?wait=false", json=doc("also-good.en")).json()
    assert finished_job(client, good["job_id"])["status"] == "done"
    assert finished_job(client, also_good["job_id"])["status"] == "done"
    failed = finished_job(client, bad["job_id"])
    assert (failed["status"], failed["error"], failed["result"]) == (
        "failed", "cannot commit: disk full", None)
    assert client.get("/v1/documents/bad.en").status_code == 404


def test_a_full_queue_refuses_new_jobs_with_retry_after(make_client: ClientFactory) -> None:
    client = make_client(max_queued_docs=2)
    with writer_blocked(state_of(client).writes):
        assert client.post("/v1/documents?wait=false", json=doc("a.en")).status_code == 202
        response = client.post(
            "/v1/documents?wait=false", json={"documents": [doc("b.en"), doc("c.en")]}
        )
        assert response.status_code == 503 and response.headers["retry-after"] == "10"
        assert error_of(response)["code"] == "queue_full"


def test_unknown_and_malformed_job_ids(client: TestClient) -> None:
    assert error_of(client.get(f"/v1/jobs/{'0' * 32}"))["code"] == "not_found"
    assert client.get(f"/v1/jobs/{'z' * 32}").status_code == 422
    assert client.get(f"/v1/jobs/{quote_id('../' * 10 + 'etc')}").status_code in (404, 422)


def test_a_second_server_on_the_data_dir_refuses_jobs_but_ingests_synchronously(
    tmp_path: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer, make_client: ClientFactory,
) -> None:
    data_dir = tmp_path / "shared-data"
    first = make_client(retriever=open_retriever(data_dir, fake_embedder, analyzer))
    second = make_client(retriever=open_retriever(data_dir, fake_embedder, analyzer))
    assert first.post("/v1/documents?wait=false", json=doc("one.en")).status_code == 202
    refused = second.post("/v1/documents?wait=false", json=doc("two.en"))
    assert refused.status_code == 503 and error_of(refused)["code"] == "queue_unavailable"
    assert "another server" in error_of(refused)["message"]
    assert second.post("/v1/documents", json=doc("two.en")).json()["added"] == ["two.en"]
    with pytest.raises(QueueUnavailable):
        IngestJobs.open(WriteQueue(1), Retriever.open(data_dir, embedder=fake_embedder))


def test_uploads_take_wait_false_too(client: TestClient) -> None:
    files = [("files", ("notice.en.txt", b"Ferry timetables change in May.", "text/plain"))]
    response = client.post("/v1/documents:upload?wait=false", files=files)
    assert response.status_code == 202, response.text
    ended = finished_job(client, response.json()["job_id"])
    assert ended["result"]["added"] == ["notice.en"]
