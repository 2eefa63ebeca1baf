"""POST /v1/lookup over the tiny corpus: the translation found, exact spans, errors."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.service.conftest import assert_lookup_exact, error_of

SENTENCE = "Trains run every four minutes during peak hours."


def test_a_sentence_of_the_archive_returns_its_aligned_translation(reader: TestClient) -> None:
    response = reader.post("/v1/lookup", json={"text": SENTENCE})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["found"] and body["method"] == "alignment"
    assert body["text_lang"] == "en" and body["lang"] == "zh"
    source, translation = body["source"], body["translation"]
    assert source["doc_id"] == "metro-line.en" and source["text"] == SENTENCE
    assert translation["doc_id"] == "metro-line.zh" and translation["title"] == "虹桥地铁新线开通"
    assert_lookup_exact(reader, body)
    assert 0 <= body["confidence"] <= 1 and body["took_ms"] >= 0
    # The library's answer, passed through.
    retriever = reader.app.state.service.retriever  # type: ignore[attr-defined]
    found = retriever.view().lookup(SENTENCE)
    assert (translation["start"], translation["end"]) == (found.translation.start,
                                                          found.translation.end)


def test_text_not_in_the_archive_is_marked_as_a_search_result(reader: TestClient) -> None:
    body = reader.post("/v1/lookup", json={"text": "A budget for new bicycles was approved.",
                                           "lang": "zh"}).json()
    assert body["found"] and body["method"] == "search" and body["source"] is None
    assert body["translation"]["doc_id"].endswith(".zh")
    assert_lookup_exact(reader, body)


def test_bad_lookups_are_one_line_errors(reader: TestClient) -> None:
    cases = {
        (("text", "  "),): (422, "blank"),
        (("text", SENTENCE), ("lang", "en")): (400, "already in en"),
        (("text", SENTENCE), ("lang", "fr")): (422, "lang"),
        (("text", "x" * 2001),): (422, "at most 2000"),
        (("text", SENTENCE), ("k", 3)): (422, "k"),
    }
    for body, (status, message) in cases.items():
        response = reader.post("/v1/lookup", json=dict(body))
        assert response.status_code == status, (body, response.text)
        assert message in error_of(response)["message"], (body, response.text)
