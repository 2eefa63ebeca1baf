"""POST /v1/answer: extractive answers, generated answers against a fake LLM, streaming,
fallbacks on LLM failures, validation and auth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from index.embed import Embedder
from index.retriever import Retriever
from service.app import create_app
from tests.fake_llm import FakeLlm
from tests.service.conftest import (
    AUTH,
    TOKEN,
    ClientFactory,
    error_of,
    quote_id,
    service_settings,
)

QUESTION = "How often do metro trains run?"
NO_LLM = {"llm_base_url": None, "llm_model": None}  # whatever the developer's environment says


def events_of(body: str) -> list[tuple[str, Any]]:
    """Server-sent events → [(event, data as JSON)]."""
    events: list[tuple[str, Any]] = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def assert_spans_exact(client: TestClient, body: dict[str, Any]) -> None:
    texts: dict[str, str] = {}
    for item in [*body["citations"], *body["passages"]]:
        if item["doc_id"] not in texts:
            texts[item["doc_id"]] = client.get(f"/v1/documents/{quote_id(item['doc_id'])}").json()[
                "text"]
        assert texts[item["doc_id"]][item["start"] : item["end"]] == item["text"]
    numbers = {p["n"] for p in body["passages"]}
    assert {c["n"] for c in body["citations"]} <= numbers


def llm_client(make_client: ClientFactory, fake: FakeLlm, **overrides: Any) -> TestClient:
    return make_client(llm_base_url=fake.base_url, llm_model="fake-model",
                       llm_api_key="sk-test", **overrides)


# -- extractive ----------------------------------------------------------------------------------


def test_extractive_answer_quotes_the_answer_sentence_with_its_citation(
    make_client: ClientFactory,
) -> None:
    client = make_client(**NO_LLM)
    response = client.post("/v1/answer", json={"question": QUESTION, "k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["mode"], body["lang"]) == ("extractive", "en")
    assert body["answer"].startswith("Trains run every four minutes during peak hours. [1]")
    assert body["citations"][0]["doc_id"] == "metro-line.en"
    assert len(body["passages"]) <= 3
    assert_spans_exact(client, body)


def test_answer_language_follows_lang_or_the_question(make_client: ClientFactory) -> None:
    client = make_client(**NO_LLM)
    forced = client.post("/v1/answer", json={"question": QUESTION, "lang": "zh"}).json()
    assert forced["lang"] == "zh" and {p["lang"] for p in forced["passages"]} == {"zh"}
    assert "[1]" in forced["answer"] and " " not in forced["answer"]
    assert_spans_exact(client, forced)
    chinese = client.post("/v1/answer", json={"question": "地铁列车多久一班？"}).json()
    assert chinese["lang"] == "zh"
    assert_spans_exact(client, chinese)


def test_extractive_stream_sends_sources_the_answer_and_done(make_client: ClientFactory) -> None:
    client = make_client(**NO_LLM)
    response = client.post("/v1/answer", json={"question": QUESTION, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = events_of(response.text)
    assert [name for name, _ in events] == ["sources", "delta", "done"]
    assert events[1][1]["text"] == events[2][1]["answer"]
    assert events[0][1]["passages"] == events[2][1]["passages"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"question": ""}, "body.question"),
        ({"question": "   "}, "question is blank"),
        ({"question": "x", "k": 0}, "body.k"),
        ({"question": "x", "k": 21}, "body.k"),
        ({"question": "x", "k": "5"}, "body.k"),
        ({"question": "x", "lang": "fr"}, "body.lang"),
        ({"question": "x", "stream": "yes"}, "body.stream"),
        ({"question": "x", "top_k": 3}, "body.top_k"),
        ({"question": "x", "mode": "generated"}, "has no LLM"),
        ({"question": "x" * 2001}, "body.question"),
    ],
)
def test_bad_requests_are_422_in_the_error_shape(
    make_client: ClientFactory, body: dict[str, Any], where: str
) -> None:
    response = make_client(**NO_LLM).post("/v1/answer", json=body)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "invalid_request" and where in error["message"]


def test_a_server_limit_below_the_api_ceiling_applies(make_client: ClientFactory) -> None:
    client = make_client(max_query_chars=10, max_k=2, **NO_LLM)
    assert error_of(client.post("/v1/answer", json={"question": "x" * 11}))["code"] == (
        "invalid_request")
    assert "at most 2" in error_of(client.post("/v1/answer", json={"question": "x", "k": 3}))[
        "message"]


def test_answers_need_the_token_when_reads_do(make_client: ClientFactory) -> None:
    client = make_client(api_token=TOKEN, require_token_for_reads=True, **NO_LLM)
    assert client.post("/v1/answer", json={"question": QUESTION}).status_code == 401
    assert client.post("/v1/answer", json={"question": QUESTION}, headers=AUTH).status_code == 200


# -- generated (fake LLM) ------------------------------------------------------------------------


def test_generated_answer_gets_numbered_passages_and_loses_the_bogus_citation(
    make_client: ClientFactory,
) -> None:
    with FakeLlm() as fake:
        client = llm_client(make_client, fake)
        response = client.post("/v1/answer", json={"question": QUESTION, "k": 3})
        assert response.status_code == 200, response.text
        body = response.json()
        [request] = fake.requests
        assert fake.headers[0]["Authorization"] == "Bearer sk-test"
    assert (body["mode"], body["model"]) == ("generated", "fake-model")
    assert request["model"] == "fake-model" and request["stream"] is False
    prompt = "\n".join(m["content"] for m in request["messages"])
    for passage in body["passages"]:
        assert f"[{passage['n']}] {passage['title']}" in prompt
        assert passage["text"].strip() in prompt
    assert QUESTION in prompt and "English" in prompt
    assert "[1]" in body["answer"] and "[9]" not in body["answer"]
    assert body["answer"].endswith("runs the moon base.")
    assert [c["n"] for c in body["citations"]] == [1]
    assert body["citations"][0]["text"] == body["passages"][0]["text"]
    assert_spans_exact(client, body)


def test_generated_answer_streams_without_the_bogus_citation(make_client: ClientFactory) -> None:
    with FakeLlm() as fake:
        client = llm_client(make_client, fake)
        response = client.post("/v1/answer", json={"question": QUESTION, "stream": True})
        assert fake.requests[0]["stream"] is True
    assert response.status_code == 200
    events = events_of(response.text)
    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "done" and names.count("delta") > 3
    streamed = "".join(data["text"] for name, data in events if name == "delta")
    done = events[-1][1]
    assert streamed.strip() == done["answer"]
    assert "[9]" not in streamed and "[1]" in streamed
    assert [c["n"] for c in done["citations"]] == [1] and done["mode"] == "generated"


def _extractive(client: TestClient) -> dict[str, Any]:
    body: dict[str, Any] = client.post(
        "/v1/answer", json={"question": QUESTION, "mode": "extractive"}).json()
    return body


@pytest.mark.parametrize("stream", [False, True])
def test_an_llm_timeout_is_504_with_the_extractive_answer(
    make_client: ClientFactory, stream: bool
) -> None:
    with FakeLlm(behaviour="stall") as fake:
        client = llm_client(make_client, fake, llm_timeout_seconds=0.5)
        response = client.post("/v1/answer", json={"question": QUESTION, "stream": stream})
        assert response.status_code == 504, response.text
        body = response.json()
        assert body["error"]["code"] == "llm_timeout"
        assert "did not answer within 0.5 s" in body["error"]["message"]
        assert body["fallback"] == _extractive(client)
        assert body["fallback"]["answer"].startswith("Trains run every four minutes")


@pytest.mark.parametrize("stream", [False, True])
def test_an_llm_error_is_502_with_the_extractive_answer(
    make_client: ClientFactory, stream: bool
) -> None:
    with FakeLlm(behaviour="error") as fake:
        client = llm_client(make_client, fake)
        response = client.post("/v1/answer", json={"question": QUESTION, "stream": stream})
        assert response.status_code == 502, response.text
        body = response.json()
        assert body["error"]["code"] == "llm_error"
        assert "HTTP 500" in body["error"]["message"] and "sk-test" not in response.text
        assert body["fallback"] == _extractive(client)


def test_an_llm_that_stalls_mid_stream_ends_with_an_error_event_and_the_fallback(
    make_client: ClientFactory,
) -> None:
    with FakeLlm(behaviour="stall_mid_stream") as fake:
        client = llm_client(make_client, fake, llm_timeout_seconds=0.5)
        response = client.post("/v1/answer", json={"question": QUESTION, "stream": True})
        extractive = _extractive(client)
    events = events_of(response.text)
    assert [name for name, _ in events][-1] == "error"
    error = events[-1][1]
    assert error["error"]["code"] == "llm_timeout" and error["fallback"] == extractive


def test_an_unreachable_llm_is_502(make_client: ClientFactory) -> None:
    with FakeLlm() as fake:
        url = fake.base_url  # closed when the block ends: nothing listens there any more
    client = make_client(llm_base_url=url, llm_model="m", llm_timeout_seconds=2)
    response = client.post("/v1/answer", json={"question": QUESTION})
    assert response.status_code == 502
    assert response.json()["error"]["message"].startswith("cannot reach the LLM")


# -- the demo corpus with the real model ---------------------------------------------------------


@pytest.fixture(scope="module")
def demo_client(demo_data_dir: Path, real_embedder: Embedder) -> Any:
    data_dir = demo_data_dir
    settings = service_settings(Path(data_dir), **NO_LLM)
    retriever = Retriever.open(settings=settings.index_settings(), embedder=real_embedder)
    with TestClient(create_app(settings, retriever=retriever)) as client:
        yield client


@pytest.mark.model
@pytest.mark.parametrize(
    ("question", "lang", "fact"),
    [
        ("Who is the Secretary of the CPC Qingpu District Committee?", "en", "Xu\nJian"),
        ("谁是中共青浦区委书记？", "zh", "徐建"),
    ],
)
def test_demo_questions_get_answers_in_their_language_citing_the_fact(
    demo_client: TestClient, question: str, lang: str, fact: str
) -> None:
    body = demo_client.post("/v1/answer", json={"question": question}).json()
    assert body["lang"] == lang and body["mode"] == "extractive"
    assert body["answer"].count("[1]") == 1
    assert fact in body["citations"][0]["text"]
    assert all(p["lang"] == lang for p in body["passages"])
    assert_spans_exact(demo_client, body)


# -- no answer -----------------------------------------------------------------------------------


def _calibrated_for_the_fake(monkeypatch: pytest.MonkeyPatch, threshold: float) -> None:
    """An answerable model calibrated for the tests' fake embedder (the shipped one is for the
    real model, so with the fake nothing is judged): probability 0.5 for any evidence."""
    from index.search.answerable import AnswerableModel

    model = AnswerableModel((0.0,) * 6, threshold, threshold, "fake-hash-64")
    monkeypatch.setattr("index.search.hits.default_answerable_model", lambda: model)


def test_unanswerable_question_gets_no_answer_and_no_llm_call(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _calibrated_for_the_fake(monkeypatch, threshold=0.9)  # 0.5 < 0.9: nothing answers
    with FakeLlm() as fake:
        client = llm_client(make_client, fake)
        body = client.post("/v1/answer", json={"question": QUESTION, "k": 3}).json()
        streamed = events_of(client.post("/v1/answer", json={
            "question": QUESTION, "k": 3, "stream": True}).text)
        assert fake.requests == []  # no LLM call when nothing answers
    assert body["answer"] is None and body["answerable"] is False
    assert body["reason"] == "No passage in the index answers this question."
    assert body["confidence"] == 0.5 and body["citations"] == []
    assert body["passages"]  # the weak matches are still there to look at
    assert [e for e, _ in streamed] == ["sources", "done"]  # no answer text
    search = client.post("/v1/search", json={"query": QUESTION}).json()
    assert (search["answerable"], search["confidence"]) == (False, 0.5)
    assert search["results"]
    chinese = client.post("/v1/answer", json={"question": QUESTION, "lang": "zh"}).json()
    assert chinese["reason"] == "索引中没有能回答这个问题的段落。"


def test_answerable_question_is_answered_and_says_so(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _calibrated_for_the_fake(monkeypatch, threshold=0.4)  # 0.5 ≥ 0.4: answered
    client = make_client(**NO_LLM)
    body = client.post("/v1/answer", json={"question": QUESTION, "k": 3}).json()
    assert body["answerable"] is True and body["reason"] is None
    assert body["answer"].startswith("Trains run every four minutes")


def test_an_embedding_model_without_calibration_is_not_judged(make_client: ClientFactory) -> None:
    client = make_client(**NO_LLM)  # the fake embedder: the shipped calibration does not apply
    search = client.post("/v1/search", json={"query": QUESTION}).json()
    assert (search["answerable"], search["confidence"]) == (None, None)
    body = client.post("/v1/answer", json={"question": QUESTION}).json()
    assert body["answerable"] is True and body["answer"]
    lexical = client.post("/v1/search", json={"query": QUESTION, "mode": "lexical"}).json()
    assert lexical["answerable"] is None
