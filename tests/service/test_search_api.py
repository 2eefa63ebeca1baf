"""POST/GET /v1/search over the tiny corpus: results, filters, limits, the span invariant."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest
from fastapi.testclient import TestClient

from index.records import Hit
from service.schemas import markup_in
from tests.service.conftest import ClientFactory, assert_hits_exact, error_of

RESULT_FIELDS = {
    "rank", "score", "passage_id", "doc_id", "release_id", "lang", "title", "date", "url",
    "start", "end", "text", "answer", "counterpart", "page", "markup",
}


def search(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/search", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def as_result(rank: int, hit: Hit) -> dict[str, Any]:
    """What the API should answer for a library Hit: the same fields, nothing reinterpreted."""
    fields = asdict(hit)
    if fields["counterpart"] is not None:
        fields["counterpart"] = {k: fields["counterpart"][k]
                                 for k in ("doc_id", "lang", "title", "url", "start", "end",
                                           "text", "score", "confidence", "answer",
                                           "page")}
        fields["counterpart"]["markup"] = markup_in(hit.counterpart.text, hit.counterpart.start)
    return {"rank": rank, **fields, "markup": markup_in(hit.text, hit.start)}


def test_markup_ranges_are_document_offsets_of_the_markdown_markup() -> None:
    text = "# Fares\n\n**Students** pay `half`."
    ranges = markup_in(text, 100)
    assert ranges == [(100, 101), (109, 111), (119, 121), (126, 127), (131, 132)]
    assert [text[a - 100:b - 100] for a, b in ranges] == ["#", "**", "**", "`", "`"]
    assert markup_in("The fare is 3 yuan - half for students.", 0) == []


def test_english_search_answers_what_the_library_finds(reader: TestClient) -> None:
    query = "plastic waste Dianshan Lake volunteers"
    body = search(reader, query=query, k=3)
    assert body["query"] == query and body["query_lang"] == "en" and body["took_ms"] >= 0
    top = body["results"][0]
    assert set(top) == RESULT_FIELDS
    assert top["doc_id"] == "river-cleanup.en" and "Dianshan Lake" in top["answer"]["text"]
    assert top["release_id"] == "river-cleanup" and top["date"] == "2024-05-06"
    retriever = reader.app.state.service.retriever  # type: ignore[attr-defined]
    expected = [as_result(rank, hit) for rank, hit in enumerate(retriever.search(query, 3), 1)]
    assert body["results"] == expected


def test_counterparts_are_passed_through_when_the_library_aligns(reader: TestClient) -> None:
    body = search(reader, query="metro line stations passengers", k=10, mode="lexical")
    retriever = reader.app.state.service.retriever  # type: ignore[attr-defined]
    hits = retriever.search("metro line stations passengers", 10, mode="lexical")
    assert [r["counterpart"] for r in body["results"]] == [
        as_result(1, h)["counterpart"] for h in hits]
    for result in body["results"]:
        if result["counterpart"] is not None:
            assert result["counterpart"]["lang"] != result["lang"]
            assert result["counterpart"]["doc_id"].startswith(result["release_id"] + ".")


def test_chinese_search_finds_chinese_passage(reader: TestClient) -> None:
    body = search(reader, query="淀山湖 塑料垃圾", k=1, lang="zh")
    assert body["query_lang"] == "zh"
    assert body["results"][0]["doc_id"] == "river-cleanup.zh"
    assert "淀山湖" in body["results"][0]["text"]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
@pytest.mark.parametrize("lang", [None, "en", "zh"])
@pytest.mark.parametrize(
    "query", ["metro trains every four minutes", "地铁 每四分钟", "淀山湖", "library hours 图书馆"]
)
def test_every_offset_indexes_the_document_text(
    reader: TestClient, mode: str, lang: str | None, query: str
) -> None:
    body = search(reader, query=query, k=10, mode=mode, lang=lang)
    if lang is not None:
        assert {r["lang"] for r in body["results"]} <= {lang}
    assert_hits_exact(reader, body["results"])


def test_get_search_answers_like_post(reader: TestClient) -> None:
    posted = search(reader, query="metro line stations", k=4, lang="en", mode="hybrid")
    got = reader.get("/v1/search", params={"q": "metro line stations", "k": 4, "lang": "en"})
    assert got.status_code == 200
    # took_ms differs by design; everything else is the same answer.
    assert {**got.json(), "took_ms": 0} == {**posted, "took_ms": 0}


def test_filters_restrict_release_and_dates(reader: TestClient) -> None:
    body = search(reader, query="the district", k=10, release_id="metro-line")
    assert body["results"] and {r["release_id"] for r in body["results"]} == {"metro-line"}
    body = search(reader, query="district", k=10, date_from="2024-04-01", date_to="2024-12-31")
    assert body["results"] and {r["release_id"] for r in body["results"]} == {"river-cleanup"}


def test_counterpart_can_be_turned_off(reader: TestClient) -> None:
    body = search(reader, query="Dianshan Lake", k=3, counterpart=False)
    assert body["results"] and all(r["counterpart"] is None for r in body["results"])


def test_k_limits_the_number_of_results(reader: TestClient) -> None:
    assert len(search(reader, query="district metro library", k=2)["results"]) == 2


def test_search_on_an_empty_index_returns_no_results(make_client: ClientFactory) -> None:
    client = make_client(empty=True)
    assert search(client, query="anything")["results"] == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"query": ""}, "query"),
        ({"query": "   \n"}, "blank"),
        ({"query": "x" * 2001}, "query"),
        ({"query": "x", "k": 0}, "k"),
        ({"query": "x", "k": 101}, "k"),
        ({"query": "x", "k": "many"}, "k"),
        ({"query": "x", "lang": "fr"}, "lang"),
        ({"query": "x", "mode": "fuzzy"}, "mode"),
        ({"query": "x", "date_from": "2024-13-01"}, "date_from"),
        ({"query": "x", "date_from": "2024-05-01", "date_to": "2024-04-01"}, "date_from"),
        ({"query": "x", "colour": "blue"}, "colour"),
        ({"k": 3}, "query"),
        ({"query": 42}, "query"),
    ],
)
def test_bad_search_bodies_get_422_naming_the_field(
    reader: TestClient, body: dict[str, Any], fragment: str
) -> None:
    response = reader.post("/v1/search", json=body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert fragment in error["message"]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [({}, "q"), ({"q": ""}, "q"), ({"q": " "}, "q"), ({"q": "x", "k": "0"}, "k"),
     ({"q": "x", "lang": "de"}, "lang"), ({"q": "x", "mode": "?"}, "mode")],
)
def test_bad_get_search_parameters_get_422(
    reader: TestClient, params: dict[str, str], fragment: str
) -> None:
    response = reader.get("/v1/search", params=params)
    assert response.status_code == 422
    assert fragment in error_of(response)["message"]


def test_server_may_lower_query_and_k_limits(make_client: ClientFactory) -> None:
    client = make_client(max_query_chars=10, max_k=5)
    assert client.post("/v1/search", json={"query": "0123456789", "k": 5}).status_code == 200
    long_query = client.post("/v1/search", json={"query": "0123456789a"})
    assert long_query.status_code == 422 and "10 characters" in error_of(long_query)["message"]
    big_k = client.post("/v1/search", json={"query": "x", "k": 6})
    assert big_k.status_code == 422 and "at most 5" in error_of(big_k)["message"]
