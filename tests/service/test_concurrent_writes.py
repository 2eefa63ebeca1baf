"""Searches and reads from many threads — real HTTP clients against a uvicorn server on
loopback, and library calls on the same Retriever — while documents are ingested, replaced and
deleted over HTTP.

Every write is logged with the time its request was sent and answered, so each version of a
document has a window in which a reader may legitimately see it: from when its ingest was sent
until the next write of that document was answered. A hit must match a version whose window
overlaps the search, exactly at its [start:end] (answer and counterpart too); a document
deleted before a search began and not re-sent must not appear; no request may fail.
"""

from __future__ import annotations

import random
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn

from index.indexes.analyze import Analyzer
from index.records import Document, Hit, Lang
from index.retriever import Retriever
from index.search.rank import Mode
from service.app import create_app
from tests.fakes import FakeEmbedder
from tests.service.conftest import AUTH, TOKEN, service_settings, wait_until

RELEASES = 3  # churned releases, each with an English and a Chinese version
WRITES_PER_RELEASE = 10
HTTP_READERS = 4
LIBRARY_READERS = 2
QUERIES: list[tuple[str, Lang | None, Mode]] = [
    ("reservoir gauge bulletin engineers", None, "hybrid"),
    ("水库 水位 公报", None, "hybrid"),
    ("reservoir level dam", "en", "lexical"),
    ("reservoir level at gauge", "zh", "dense"),
    ("水库 工程师 大坝", "zh", "hybrid"),
    ("metro line stations", None, "hybrid"),
]
FOREVER = float("inf")


def english(release: int, version: int) -> str:
    """1–4 paragraphs; every sentence names release and version, so no two versions share a
    passage text and the passage count (and with it every row after it) changes."""
    paragraphs = [
        " ".join(f"In bulletin {release}-{version} the reservoir level at gauge {p}.{s} was "
                 "read by the engineers at the dam." for s in range(6))
        for p in range(1 + (release + version) % 4)
    ]
    return f"Reservoir Bulletin {release}\n\n" + "\n\n".join(paragraphs)


def chinese(release: int, version: int) -> str:
    paragraphs = [
        "".join(f"第{release}-{version}号公报：{p}.{s}号水位站的水库水位由大坝工程师读取。"
                for s in range(6))
        for p in range(1 + (release + 2 * version) % 3)
    ]
    return f"水库公报{release}\n\n" + "\n\n".join(paragraphs)


@dataclass
class Version:
    """One text of a document: visible to readers from `sent` until `superseded`."""

    text: str | None  # None: the document was deleted
    sent: float
    answered: float = FOREVER
    superseded: float = FOREVER


@dataclass
class WriteLog:
    """Every write of every churned document, in order (one writer thread per release)."""

    versions: dict[str, list[Version]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, doc_id: str, text: str | None) -> Version:
        version = Version(text, time.monotonic())
        with self.lock:
            self.versions.setdefault(doc_id, []).append(version)
        return version

    def end(self, doc_id: str, version: Version) -> None:
        now = time.monotonic()
        with self.lock:
            version.answered = now
            history = self.versions[doc_id]
            for earlier in history[: history.index(version)]:
                earlier.superseded = min(earlier.superseded, now)

    def texts_visible(self, doc_id: str, began: float, ended: float) -> list[str]:
        """Texts of `doc_id` a request running from `began` to `ended` may have seen."""
        with self.lock:
            history = list(self.versions.get(doc_id, []))
        return [v.text for v in history
                if v.text is not None and v.sent < ended and v.superseded > began]

    def surely_present(self, doc_id: str, began: float, ended: float) -> bool:
        """True if `doc_id` existed during the whole of a request from `began` to `ended`."""
        with self.lock:
            history = list(self.versions.get(doc_id, []))
        done = [v for v in history if v.answered <= began]
        if not done or done[-1].text is None:
            return False
        later = history[history.index(done[-1]) + 1 :]
        return not any(v.text is None and v.sent < ended for v in later)


@dataclass
class Observations:
    failures: list[str] = field(default_factory=list)
    searches: int = 0
    churned_hits: int = 0
    seen_texts: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message[:500])


def hit_as_dict(hit: Hit) -> dict[str, Any]:
    answer = hit.answer
    cp = hit.counterpart
    return {
        "doc_id": hit.doc_id, "passage_id": hit.passage_id, "start": hit.start, "end": hit.end,
        "text": hit.text,
        "answer": None if answer is None else
        {"start": answer.start, "end": answer.end, "text": answer.text},
        "counterpart": None if cp is None else
        {"doc_id": cp.doc_id, "start": cp.start, "end": cp.end, "text": cp.text},
    }


class Checker:
    """Checks every hit against the texts that may have been visible during its search."""

    def __init__(self, fixed: dict[str, str], log: WriteLog, seen: Observations) -> None:
        self.fixed = fixed  # documents nobody writes: the tiny corpus
        self.log = log
        self.seen = seen

    def candidates(self, doc_id: str, began: float, ended: float) -> list[str]:
        if doc_id in self.fixed:
            return [self.fixed[doc_id]]
        return self.log.texts_visible(doc_id, began, ended)

    def check(self, where: str, hits: list[dict[str, Any]], began: float, ended: float) -> None:
        ids = [h["passage_id"] for h in hits]
        if len(ids) != len(set(ids)):
            self.seen.fail(f"{where}: a passage twice in one answer: {ids}")
        churned = 0
        for hit in hits:
            texts = self.candidates(hit["doc_id"], began, ended)
            if not texts:
                self.seen.fail(f"{where}: {hit['doc_id']} was not present during the search")
                continue
            answer = hit["answer"]
            matching = [
                t for t in texts
                if t[hit["start"] : hit["end"]] == hit["text"] and (
                    answer is None or (hit["start"] <= answer["start"] < answer["end"] <= hit["end"]
                                       and t[answer["start"] : answer["end"]] == answer["text"]))
            ]
            if not matching:
                self.seen.fail(f"{where}: {hit['passage_id']} [{hit['start']}:{hit['end']}] "
                               f"matches no version of {hit['doc_id']}: {hit['text'][:80]!r}")
                continue
            cp = hit["counterpart"]
            if cp is not None and not any(
                t[cp["start"] : cp["end"]] == cp["text"]
                for t in self.candidates(cp["doc_id"], began, ended)
            ):
                self.seen.fail(f"{where}: counterpart {cp['doc_id']} [{cp['start']}:{cp['end']}] "
                               f"of {hit['passage_id']} matches no version")
            if hit["doc_id"] not in self.fixed:
                churned += 1
                with self.seen.lock:
                    self.seen.seen_texts.update(matching)
        with self.seen.lock:
            self.seen.searches += 1
            self.seen.churned_hits += churned


@pytest.fixture
def live_server(
    tmp_path: Path, tiny_data_dir: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer
) -> Iterator[tuple[str, Retriever]]:
    """uvicorn serving an app over a copy of the tiny index on a free loopback port, with a
    token; yields its base URL and the Retriever it serves. Stopped at teardown."""
    data_dir = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data_dir)
    settings = service_settings(data_dir, api_token=TOKEN, search_threads=4)
    retriever = Retriever.open(settings=settings.index_settings(), embedder=fake_embedder,
                               analyzer=analyzer)
    app = create_app(settings, retriever=retriever)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, timeout=30)
        yield base, retriever
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def churn(base: str, release: int, log: WriteLog, seen: Observations) -> None:
    """Ingest, replace and delete the two versions of one release, over HTTP."""
    rng = random.Random(release)
    ids = {"en": f"churn-{release}.en", "zh": f"churn-{release}.zh"}
    present: set[str] = set()
    with httpx.Client(base_url=base, headers=AUTH, timeout=60) as client:
        for step in range(WRITES_PER_RELEASE):
            langs = ["en", "zh"] if step == 0 else [rng.choice(["en", "zh"])]
            deleting = step > 0 and ids[langs[0]] in present and rng.random() < 0.3
            if deleting:
                doc_id = ids[langs[0]]
                version = log.begin(doc_id, None)
                response = client.delete(f"/v1/documents/{quote(doc_id, safe='')}")
                log.end(doc_id, version)
                present.discard(doc_id)
                if response.status_code != 200:
                    seen.fail(f"DELETE {doc_id}: {response.status_code} {response.text}")
                continue
            documents = []
            started: list[tuple[str, Version]] = []
            for lang in langs:
                text = (english if lang == "en" else chinese)(release, step)
                documents.append({"doc_id": ids[lang], "release_id": f"churn-{release}",
                                  "lang": lang, "title": f"Bulletin {release}", "text": text})
                started.append((ids[lang], log.begin(ids[lang], text)))
            response = client.post("/v1/documents", json={"documents": documents})
            for doc_id, version in started:
                log.end(doc_id, version)
                present.add(doc_id)
            if response.status_code != 200:
                seen.fail(f"POST {langs}: {response.status_code} {response.text}")


def http_reader(base: str, slot: int, checker: Checker, stop: threading.Event) -> None:
    rng = random.Random(100 + slot)
    with httpx.Client(base_url=base, timeout=60) as client:
        while not stop.is_set():
            query, lang, mode = rng.choice(QUERIES)
            began = time.monotonic()
            if rng.random() < 0.2:  # a whole document: its text and passage spans
                doc_id = f"churn-{rng.randrange(RELEASES)}.{rng.choice(['en', 'zh'])}"
                response = client.get(f"/v1/documents/{quote(doc_id, safe='')}")
                ended = time.monotonic()
                check_document(response, doc_id, checker, began, ended)
                continue
            if rng.random() < 0.5:
                response = client.post("/v1/search", json={
                    "query": query, "k": 20, "lang": lang, "mode": mode})
            else:
                params: dict[str, str | int] = {"q": query, "k": 20, "mode": mode}
                if lang is not None:
                    params["lang"] = lang
                response = client.get("/v1/search", params=params)
            ended = time.monotonic()
            if response.status_code != 200:
                checker.seen.fail(f"search {query!r}: {response.status_code} {response.text}")
                continue
            checker.check(f"http {query!r}", response.json()["results"], began, ended)


def check_document(
    response: httpx.Response, doc_id: str, checker: Checker, began: float, ended: float
) -> None:
    texts = checker.candidates(doc_id, began, ended)
    if response.status_code == 404:
        if checker.log.surely_present(doc_id, began, ended):
            checker.seen.fail(f"GET {doc_id}: 404 while it existed")
        return
    if response.status_code != 200:
        checker.seen.fail(f"GET {doc_id}: {response.status_code} {response.text}")
        return
    body = response.json()
    if body["text"] not in texts:
        checker.seen.fail(f"GET {doc_id}: a text that was not visible during the request")
        return
    for span in body["passages"]:
        if not 0 <= span["start"] < span["end"] <= len(body["text"]):
            checker.seen.fail(f"GET {doc_id}: passage span out of its text: {span}")


def library_reader(
    retriever: Retriever, slot: int, checker: Checker, stop: threading.Event
) -> None:
    rng = random.Random(200 + slot)
    while not stop.is_set():
        query, lang, mode = rng.choice(QUERIES)
        began = time.monotonic()
        try:
            hits = retriever.search(query, 20, lang, mode)
        except Exception as exc:  # reported as a failure of the test, with its type
            checker.seen.fail(f"library search {query!r}: {type(exc).__name__}: {exc}")
            return
        ended = time.monotonic()
        checker.check(f"library {query!r}", [hit_as_dict(h) for h in hits], began, ended)


def test_searches_during_ingest_replace_and_delete_see_only_whole_live_versions(
    live_server: tuple[str, Retriever], tiny_docs: list[Document],
) -> None:
    base, retriever = live_server
    log = WriteLog()
    seen = Observations()
    checker = Checker({d.doc_id: d.text for d in tiny_docs}, log, seen)
    stop = threading.Event()
    readers = [threading.Thread(target=http_reader, args=(base, n, checker, stop))
               for n in range(HTTP_READERS)]
    readers += [threading.Thread(target=library_reader, args=(retriever, n, checker, stop))
                for n in range(LIBRARY_READERS)]
    writers = [threading.Thread(target=churn, args=(base, release, log, seen))
               for release in range(RELEASES)]
    for thread in readers + writers:
        thread.start()
    try:
        for thread in writers:
            thread.join(timeout=300)
    finally:
        stop.set()
        for thread in readers:
            thread.join(timeout=60)
    assert not any(t.is_alive() for t in readers + writers)
    assert seen.failures == []
    # Meaningful only if reads really overlapped many writes and saw several versions.
    writes = sum(len(v) for v in log.versions.values())
    assert writes == RELEASES * (WRITES_PER_RELEASE + 1)
    assert seen.searches > 3 * writes, (seen.searches, writes)
    assert seen.churned_hits > writes
    assert len(seen.seen_texts) >= RELEASES * 3, len(seen.seen_texts)

    # At rest, the index holds exactly the last version of each churned document.
    with httpx.Client(base_url=base) as client:
        for doc_id, history in log.versions.items():
            response = client.get(f"/v1/documents/{quote(doc_id, safe='')}")
            last = history[-1].text
            if last is None:
                assert response.status_code == 404, doc_id
            else:
                assert response.status_code == 200 and response.json()["text"] == last
