"""The MCP server, driven by the SDK's own client: stdio (`qiao mcp` as a subprocess), streamable
HTTP (`/mcp` on a uvicorn server in a thread) and in-process (fast error cases).

Spans the tools return are checked against the documents: `document.text[start:end] == text`.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CallToolResult

from index.backend import QdrantRetriever, init_qdrant
from index.config import IndexSettings
from index.embed import Embedder
from index.errors import QiaoError
from index.indexes.analyze import Analyzer
from index.records import Document
from index.retriever import Retriever
from service.app import create_app
from service.mcp.tools import LocalHost, create_mcp_server
from tests.fakes import FakeEmbedder
from tests.service.conftest import TOKEN, service_settings, wait_until

REPO = Path(__file__).resolve().parents[2]
QIAO = Path(sys.executable).parent / "qiao"
EN, ZH = "qingpu-briefing-2023-09-05.en", "qingpu-briefing-2023-09-05.zh"
TOOLS = {"search_releases", "answer_question", "get_document", "list_releases",
         "lookup_translation"}


# -- shared helpers (also used by test_answer.py) ------------------------------------------------


@functools.cache
@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port in a thread; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), timeout=30)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    [content] = result.content
    text: str = content.text  # type: ignore[union-attr]
    assert "\n" not in text and "Traceback" not in text
    return text


async def exercise_tools(client: Client, documents: dict[str, str]) -> dict[str, Any]:
    """List the tools and call each one; check every returned span against `documents`."""
    listed = await client.list_tools()
    assert {t.name for t in listed.tools} == TOOLS
    for tool in listed.tools:
        assert tool.description and len(tool.description) > 100  # written for a model
        assert tool.output_schema is not None

    found = structured(await client.call_tool(
        "search_releases", {"query": "Who is the Secretary of the CPC Qingpu District Committee?",
                            "k": 3}))
    assert 1 <= len(found["results"]) <= 3
    for item in found["results"]:
        assert documents[item["doc_id"]][item["start"] : item["end"]] == item["text"]
        answer, cp = item["answer"], item["counterpart"]
        assert documents[item["doc_id"]][answer["start"] : answer["end"]] == answer["text"]
        assert documents[cp["doc_id"]][cp["start"] : cp["end"]] == cp["text"]
        assert {"title", "date", "lang", "url"} <= set(item)

    top = found["results"][0]
    window = structured(await client.call_tool(
        "get_document", {"doc_id": top["doc_id"], "start": top["answer"]["start"],
                         "end": top["answer"]["end"]}))
    assert documents[top["doc_id"]][window["start"] : window["end"]] == window["text"]
    assert window["start"] <= top["answer"]["start"] < top["answer"]["end"] <= window["end"]
    whole = structured(await client.call_tool("get_document", {"doc_id": ZH}))
    assert whole["text"] == documents[ZH] and whole["complete"]

    listing = structured(await client.call_tool(
        "list_releases", {"date_from": "2023-09-01", "date_to": "2023-09-30"}))
    assert [r["release_id"] for r in listing["releases"]] == ["qingpu-briefing-2023-09-05"]
    assert {v["doc_id"] for v in listing["releases"][0]["versions"]} == {EN, ZH}
    none = structured(await client.call_tool("list_releases", {"date_from": "2024-01-01"}))
    assert none == {"total": 0, "releases": []}

    # A sentence of the English release: its published translation, by the alignment.
    sentence = top["answer"]["text"]
    looked = structured(await client.call_tool("lookup_translation", {"text": sentence}))
    assert looked["method"] == "alignment" and looked["lang"] == "zh"
    source, translation = looked["source"], looked["translation"]
    assert documents[source["doc_id"]][source["start"]:source["end"]] == source["text"]
    assert documents[translation["doc_id"]][translation["start"]:translation["end"]] == (
        translation["text"])
    assert translation["doc_id"] == ZH and looked["confidence"] > 0.5

    answered = await client.call_tool(
        "answer_question", {"question": "谁是中共青浦区委书记？", "k": 3})
    answer = structured(answered)
    assert answer["lang"] == "zh" and answer["mode"] == "extractive"
    assert answer["citations"] and "[1]" in answer["answer"]
    for citation in answer["citations"]:
        assert documents[citation["doc_id"]][citation["start"] : citation["end"]] == citation[
            "text"]
        assert f"doc_id={citation['doc_id']} start={citation['start']}" in answered.content[
            0].text  # type: ignore[union-attr]
    return found


def demo_documents(data_dir: Path) -> dict[str, str]:
    retriever = Retriever.open(settings=IndexSettings(data_dir=data_dir))
    return {doc.doc_id: doc.text for doc in retriever.documents()}


# -- the demo corpus with the real model ---------------------------------------------------------


@pytest.fixture(scope="module")
def demo_dir(demo_data_dir: Path) -> Path:
    return demo_data_dir


@pytest.mark.model
def test_stdio_server_from_the_cli_answers_every_tool_with_exact_spans(demo_dir: Path) -> None:
    params = StdioServerParameters(
        command=str(QIAO), args=["mcp"], cwd=str(REPO),
        env={"QIAO_DATA_DIR": str(demo_dir), "PATH": os.environ.get("PATH", "")},
    )

    async def run() -> dict[str, Any]:
        async with Client(params, read_timeout_seconds=120) as client:
            return await exercise_tools(client, demo_documents(demo_dir))

    found = anyio.run(run)
    top = found["results"][0]
    assert top["doc_id"] == EN and "Xu\nJian" in top["answer"]["text"]


@pytest.mark.model
def test_streamable_http_at_mcp_answers_every_tool_with_exact_spans(
    demo_dir: Path, real_embedder: Embedder
) -> None:
    settings = service_settings(demo_dir)
    retriever = Retriever.open(settings=settings.index_settings(), embedder=real_embedder)
    with serving(create_app(settings, retriever=retriever)) as base:

        async def run() -> dict[str, Any]:
            async with Client(f"{base}/mcp") as client:
                return await exercise_tools(client, demo_documents(demo_dir))

        found = anyio.run(run)
    assert "Xu\nJian" in found["results"][0]["answer"]["text"]


# -- errors and auth (fake embedder) -------------------------------------------------------------


@pytest.fixture(params=["embedded", "qdrant"])
def tiny_index(request: pytest.FixtureRequest, tmp_path: Path, fake_embedder: FakeEmbedder,
               analyzer: Analyzer, tiny_docs: list[Document]) -> Iterator[Retriever]:
    """The tiny corpus in the embedded index, and in Qdrant (local mode): the tools behave the
    same on both."""
    if request.param == "embedded":
        retriever = Retriever.open(settings=IndexSettings(data_dir=tmp_path / "data"),
                                   embedder=fake_embedder, analyzer=analyzer)
    else:
        settings = IndexSettings(data_dir=tmp_path / "data", backend="qdrant")
        store, _ = init_qdrant(settings, fake_embedder.dim)
        store.close()
        retriever = QdrantRetriever.open_qdrant(settings, fake_embedder, analyzer)
    retriever.upsert(tiny_docs)
    yield retriever
    retriever.close()


@pytest.fixture
def tiny_server(tiny_index: Retriever) -> Any:
    return create_mcp_server(LocalHost(tiny_index))


def test_bad_arguments_are_one_line_tool_errors(tiny_server: Any) -> None:
    calls = {
        ("get_document", (("doc_id", "no-such.en"),)): "no document 'no-such.en'",
        ("get_document", (("doc_id", "metro-line.en"), ("start", 9), ("end", 3))): "start/end",
        ("get_document", (("doc_id", "metro-line.en"), ("start", 99999))): "0 <= start",
        ("search_releases", (("query", "metro"), ("k", 0))): "k must be between 1 and 20",
        ("search_releases", (("query", "metro"), ("k", 21))): "k must be between 1 and 20",
        ("search_releases", (("query", "metro"), ("lang", "fr"))): "lang must be",
        ("search_releases", (("query", "  "),)): "query is empty",
        ("list_releases", (("date_from", "2024-13-01"),)): "date_from must be a date",
        ("list_releases", (("date_to", "yesterday"),)): "date_to must be a date",
        ("list_releases", (("date_from", "2024-05-01"), ("date_to", "2024-01-01"))): "after",
        ("lookup_translation", (("text", " "),)): "text is empty",
        ("lookup_translation", (("text", "metro trains"), ("lang", "en"))): "already in en",
        ("lookup_translation", (("text", "metro trains"), ("lang", "fr"))): "lang must be",
    }

    async def run() -> None:
        async with Client(tiny_server) as client:
            for (name, args), expected in calls.items():
                message = error_text(await client.call_tool(name, dict(args)))
                assert expected in message, (name, args, message)

    anyio.run(run)


def test_tools_over_the_tiny_index_return_exact_spans(
    tiny_server: Any, tiny_index: Retriever
) -> None:
    texts = {d.doc_id: d.text for d in tiny_index.documents()}

    async def run() -> None:
        async with Client(tiny_server) as client:
            found = structured(await client.call_tool(
                "search_releases", {"query": "metro trains", "k": 2, "lang": "zh"}))
            assert found["results"] and all(r["lang"] == "zh" for r in found["results"])
            for r in found["results"]:
                assert texts[r["doc_id"]][r["start"] : r["end"]] == r["text"]
            text = (await client.call_tool("search_releases", {"query": "metro"})).content[0]
            assert "doc_id=metro-line.en" in text.text  # type: ignore[union-attr]
            listing = structured(await client.call_tool("list_releases", {}))
            # Newest first; the release without a date last.
            assert [r["release_id"] for r in listing["releases"]] == [
                "river-cleanup", "metro-line", "library"]
            start = 120
            window = structured(await client.call_tool(
                "get_document", {"doc_id": "metro-line.en", "start": start}))
            assert window["start"] == 0
            assert texts["metro-line.en"][: window["end"]] == window["text"]

    anyio.run(run)


def test_a_server_still_loading_answers_tool_calls_with_a_one_line_error() -> None:
    class Loading:
        def retriever(self) -> Retriever:
            raise QiaoError("the model and index are still loading: retry shortly")

        def language_model(self) -> None:
            return None

        async def run(self, work: Any) -> Any:
            raise AssertionError("not reached")

    async def run() -> None:
        async with Client(create_mcp_server(Loading())) as client:
            message = error_text(await client.call_tool("search_releases", {"query": "metro"}))
            assert "still loading" in message

    anyio.run(run)


def _http_client_with(headers: dict[str, str]) -> Any:
    return create_mcp_http_client(headers=headers)


def test_mcp_over_http_needs_the_token_when_reads_require_it(
    tiny_data_dir: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer
) -> None:
    settings = service_settings(tiny_data_dir, api_token=TOKEN, require_token_for_reads=True)
    retriever = Retriever.open(settings=settings.index_settings(), embedder=fake_embedder,
                               analyzer=analyzer)
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    with serving(create_app(settings, retriever=retriever)) as base:
        missing = httpx.post(f"{base}/mcp", json=initialize, headers=accept)
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "unauthorized"
        wrong = httpx.post(f"{base}/mcp", json=initialize,
                           headers={**accept, "Authorization": "Bearer nope"})
        assert wrong.status_code == 403

        async def run() -> list[str]:
            http = _http_client_with({"Authorization": f"Bearer {TOKEN}"})
            async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http)) as c:
                return [t.name for t in (await c.list_tools()).tools]

        assert set(anyio.run(run)) == TOOLS


def test_mcp_over_http_is_open_for_reads_by_default_and_exactly_at_mcp(
    tiny_data_dir: Path, fake_embedder: FakeEmbedder, analyzer: Analyzer
) -> None:
    settings = service_settings(tiny_data_dir, api_token=TOKEN)  # a token for writes only
    retriever = Retriever.open(settings=settings.index_settings(), embedder=fake_embedder,
                               analyzer=analyzer)
    with serving(create_app(settings, retriever=retriever)) as base:

        async def run() -> dict[str, Any]:
            async with Client(f"{base}/mcp") as client:
                return structured(await client.call_tool(
                    "get_document", {"doc_id": "library.en", "start": 0, "end": 10}))

        window = anyio.run(run)
        assert window["doc_id"] == "library.en" and window["start"] == 0
        assert httpx.get(f"{base}/mcp/sse").status_code == 404  # no other MCP paths
        # A page on another site must not reach a loopback server (DNS rebinding).
        foreign = httpx.post(f"{base}/mcp", json={}, headers={"Host": "evil.example"})
        assert foreign.status_code in (400, 403, 421)
