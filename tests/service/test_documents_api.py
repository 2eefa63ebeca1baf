"""Document and release endpoints: listing, reading by encoded id, ingest (JSON and upload),
replacement, rejection with reasons, deletion."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service.conftest import ClientFactory, assert_hits_exact, error_of, quote_id
from tests.unit.test_pdf_docx import notice_pdf

River = "river-cleanup"


def post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/documents", json=body)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def get_document(client: TestClient, doc_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/documents/{quote_id(doc_id)}")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


# -- reading -----------------------------------------------------------------------------------


def test_list_pages_through_documents_without_text(reader: TestClient) -> None:
    body = reader.get("/v1/documents").json()
    assert body["total"] == 5 and body["offset"] == 0
    ids = [d["doc_id"] for d in body["documents"]]
    assert sorted(ids) == ["library.en", "metro-line.en", "metro-line.zh", "river-cleanup.en",
                           "river-cleanup.zh"]
    assert all("text" not in d for d in body["documents"])
    first = reader.get("/v1/documents", params={"offset": 0, "limit": 2}).json()
    rest = reader.get("/v1/documents", params={"offset": 2, "limit": 10}).json()
    assert first["total"] == rest["total"] == 5
    assert [d["doc_id"] for d in first["documents"] + rest["documents"]] == ids


def test_list_filters_by_lang_and_release(reader: TestClient) -> None:
    zh = reader.get("/v1/documents", params={"lang": "zh"}).json()
    assert zh["total"] == 2 and {d["lang"] for d in zh["documents"]} == {"zh"}
    river = reader.get("/v1/documents", params={"release_id": River}).json()
    assert {d["doc_id"] for d in river["documents"]} == {f"{River}.en", f"{River}.zh"}


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"lang": "x"}])
def test_list_rejects_bad_paging(reader: TestClient, params: dict[str, Any]) -> None:
    response = reader.get("/v1/documents", params=params)
    assert response.status_code == 422 and error_of(response)["code"] == "invalid_request"


def test_document_has_text_and_exact_passage_spans(reader: TestClient) -> None:
    doc = get_document(reader, f"{River}.zh")
    assert doc["release_id"] == River and doc["lang"] == "zh" and doc["date"] == "2024-05-06"
    assert doc["title"] == "区政府启动河道清洁行动"
    assert doc["chars"] == len(doc["text"]) and "淀山湖" in doc["text"]
    assert doc["passages"]
    for p in doc["passages"]:
        assert 0 <= p["start"] < p["end"] <= len(doc["text"])
        assert p["passage_id"].startswith(f"{River}.zh#")
    ordered = [(p["start"], p["end"]) for p in doc["passages"]]
    assert ordered == sorted(ordered)


def test_release_lists_its_language_versions(reader: TestClient) -> None:
    body = reader.get("/v1/releases/metro-line").json()
    assert body["release_id"] == "metro-line"
    assert [(d["doc_id"], d["lang"]) for d in body["documents"]] == [
        ("metro-line.en", "en"), ("metro-line.zh", "zh")]


@pytest.mark.parametrize("path", ["/v1/documents/nope.en", "/v1/releases/nope"])
def test_unknown_document_or_release_is_404(reader: TestClient, path: str) -> None:
    response = reader.get(path)
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"


@pytest.mark.parametrize("encoded", ["a%2Fb", "%20lead", "%2E%2E", "x%09y"])
def test_invalid_ids_in_the_path_are_422(client: TestClient, encoded: str) -> None:
    for method in ("GET", "DELETE"):
        response = client.request(method, f"/v1/documents/{encoded}")
        assert response.status_code == 422, (method, encoded, response.text)
        assert error_of(response)["code"] == "invalid_id"


@pytest.mark.parametrize("doc_id", ["notes #3: draft v2", "年报 2024#1", "a:b:c", "50% off?"])
def test_ids_with_reserved_characters_round_trip_url_encoded(
    client: TestClient, doc_id: str
) -> None:
    report = post(client, {"doc_id": doc_id, "release_id": "odd", "lang": "en",
                           "title": "Odd", "text": "Some text about odd identifiers."})
    assert report["added"] == [doc_id]
    assert get_document(client, doc_id)["doc_id"] == doc_id
    deleted = client.delete(f"/v1/documents/{quote_id(doc_id)}")
    assert deleted.status_code == 200 and deleted.json() == {"deleted": [doc_id]}


# -- ingest ------------------------------------------------------------------------------------


def test_posted_document_is_added_then_unchanged_then_replaced(client: TestClient) -> None:
    doc = {"release_id": "bridge", "title": "Bridge Reopens",
           "text": "Bridge Reopens\n\nThe Zhaojialou bridge reopened to traffic on Friday.",
           "date": "2024-06-01", "url": "https://example.org/bridge"}
    first = post(client, doc)
    assert first["added"] == ["bridge.en"] and first["passages"] >= 1  # lang detected
    assert post(client, doc)["unchanged"] == ["bridge.en"]
    changed = {**doc, "text": doc["text"] + "\n\nRepairs cost 2 million yuan."}
    again = post(client, changed)
    assert again["replaced"] == ["bridge.en"] and again["added"] == []
    assert get_document(client, "bridge.en")["text"] == changed["text"]
    hits = client.post("/v1/search", json={"query": "Zhaojialou bridge repairs cost"}).json()
    assert hits["results"][0]["doc_id"] == "bridge.en"
    assert_hits_exact(client, hits["results"])


def test_text_is_kept_as_given_except_line_endings(client: TestClient) -> None:
    text = "标题\r\n\r\n第一段，  有两个空格。\r第二行\t制表符。"
    post(client, {"doc_id": "crlf.zh", "release_id": "crlf", "title": "标题", "text": text})
    doc = get_document(client, "crlf.zh")
    assert doc["lang"] == "zh"
    assert doc["text"] == text.replace("\r\n", "\n").replace("\r", "\n")


def test_batch_reports_rejections_and_ingests_the_rest(client: TestClient) -> None:
    body = {"documents": [
        {"release_id": "ok", "lang": "en", "title": "Fine", "text": "A fine document."},
        {"release_id": "../up", "title": "Bad id", "text": "x"},
        {"release_id": "when", "title": "Bad date", "text": "text", "date": "2024-02-30"},
        {"release_id": "link", "title": "Bad url", "text": "text", "url": "javascript:alert(1)"},
        {"release_id": "blank", "title": "Blank", "text": "   "},
        {"release_id": "fr", "title": "Lang", "text": "texte", "lang": "fr"},
    ]}
    report = post(client, body)
    assert report["added"] == ["ok.en"]
    reasons = {r["source"]: r["message"] for r in report["rejected"]}
    assert set(reasons) == {f"documents[{i}]" for i in range(1, 6)}
    assert "release_id" in reasons["documents[1]"]
    assert "date" in reasons["documents[2]"]
    assert "url" in reasons["documents[3]"]
    assert "text" in reasons["documents[4]"]
    assert "lang" in reasons["documents[5]"]


def test_a_document_over_the_passage_limit_is_rejected_and_the_rest_ingested(
    make_client: ClientFactory,
) -> None:
    client = make_client(max_document_passages=4)
    paragraph = "The archive holds the minutes of every meeting held since the harbour opened. "
    body = {"documents": [
        {"release_id": "ok", "lang": "en", "title": "Fine", "text": "A fine document."},
        {"release_id": "dump", "lang": "en", "title": "Dump",
         "text": "\n\n".join([paragraph * 12] * 30)},
    ]}
    report = post(client, body)
    assert report["added"] == ["ok.en"]
    [rejected] = report["rejected"]
    assert rejected["source"] == "dump.en"
    assert "more than the 4 allowed per document" in rejected["message"]
    only = client.post("/v1/documents", json=body["documents"][1])
    assert only.status_code == 422 and "QIAO_MAX_DOCUMENT_PASSAGES" in only.text


def test_batch_with_duplicate_ids_keeps_the_last_and_says_so(client: TestClient) -> None:
    report = post(client, {"documents": [
        {"release_id": "dup", "lang": "en", "title": "One", "text": "First version."},
        {"release_id": "dup", "lang": "en", "title": "Two", "text": "Second version."},
    ]})
    assert report["added"] == ["dup.en"]
    assert [r["source"] for r in report["rejected"]] == ["documents[0]"]
    assert "documents[1]" in report["rejected"][0]["message"]
    assert get_document(client, "dup.en")["text"] == "Second version."


def test_nothing_valid_to_ingest_is_422_with_reasons(client: TestClient) -> None:
    response = client.post("/v1/documents", json={"release_id": "a/b", "title": "T", "text": "x"})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_document" and "documents[0]" in error["message"]


@pytest.mark.parametrize(
    "body",
    [{"release_id": "a", "text": "no title"}, {"documents": []},
     {"documents": [{"release_id": "a", "title": "t"}]}, {"release_id": "a", "title": "t",
     "text": "x", "author": "typo"}, [1, 2]],
)
def test_malformed_document_bodies_are_422(client: TestClient, body: Any) -> None:
    response = client.post("/v1/documents", json=body)
    assert response.status_code == 422 and error_of(response)["code"] == "invalid_request"


def test_oversized_batch_is_413(make_client: ClientFactory) -> None:
    client = make_client(max_batch_docs=2)
    docs = [{"release_id": f"r{i}", "lang": "en", "title": "T", "text": "text"} for i in range(3)]
    response = client.post("/v1/documents", json={"documents": docs})
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "batch_too_large" and "QIAO_MAX_BATCH_DOCS" in error["message"]
    assert client.get("/v1/documents").json()["total"] == 5  # nothing was ingested


# -- upload ------------------------------------------------------------------------------------


def test_upload_pairs_files_by_name_and_reads_sidecar(client: TestClient) -> None:
    files = [
        ("files", ("harbour.en.txt", b"Harbour Expansion\n\nThe harbour gains two berths.")),
        ("files", ("harbour.zh.txt", "港口扩建\n\n港口新增两个泊位。".encode())),
        ("files", ("harbour.meta.json", b'{"release_id": "harbour-2024", "date": "2024-07-01"}')),
    ]
    response = client.post("/v1/documents:upload", files=files)
    assert response.status_code == 200, response.text
    report = response.json()
    assert sorted(report["added"]) == ["harbour-2024.en", "harbour-2024.zh"]
    assert report["rejected"] == []
    assert get_document(client, "harbour-2024.zh")["date"] == "2024-07-01"
    hits = client.post("/v1/search", json={"query": "harbour berths", "lang": "en"}).json()
    top = hits["results"][0]
    assert top["doc_id"] == "harbour-2024.en" and top["counterpart"]["doc_id"] == "harbour-2024.zh"


def test_upload_reports_bad_files_and_lines_by_name(client: TestClient) -> None:
    jsonl = (b'{"release_id": "j1", "lang": "en", "title": "J1", "text": "Good line."}\n'
             b'{"release_id": "j2", "title": "J2"}\n')
    files = [
        ("files", ("batch.jsonl", jsonl)),
        ("files", ("slides.pdf", b"%PDF-1.4")),
        ("files", ("latin1.txt", "café".encode("latin-1"))),
        ("files", (".hidden.txt", b"hidden")),
        ("files", ("batch.jsonl", jsonl)),
    ]
    report = client.post("/v1/documents:upload", files=files).json()
    assert report["added"] == ["j1.en"]
    sources = [r["source"] for r in report["rejected"]]
    assert sorted(sources) == sorted(
        ["batch.jsonl:2", "slides.pdf", "latin1.txt:1", ".hidden.txt", "batch.jsonl"])
    assert all("/tmp" not in r["message"] for r in report["rejected"])


def test_upload_with_no_usable_file_is_422(client: TestClient) -> None:
    response = client.post("/v1/documents:upload", files=[("files", ("x.docx", b"PK"))])
    assert response.status_code == 422
    assert "x.docx" in error_of(response)["message"]


def test_upload_without_files_is_422(client: TestClient) -> None:
    response = client.post("/v1/documents:upload", data={"other": "field"})
    assert response.status_code == 422 and "files" in error_of(response)["message"]


def test_jsonl_upload_over_the_batch_limit_is_413(make_client: ClientFactory) -> None:
    client = make_client(max_batch_docs=2)
    lines = b"".join(
        b'{"release_id": "r%d", "lang": "en", "title": "T", "text": "text"}\n' % i
        for i in range(3)
    )
    response = client.post("/v1/documents:upload", files=[("files", ("many.jsonl", lines))])
    assert response.status_code == 413 and error_of(response)["code"] == "batch_too_large"


# -- delete ------------------------------------------------------------------------------------


def test_delete_removes_document_and_its_counterpart_links(client: TestClient) -> None:
    response = client.delete(f"/v1/documents/{River}.zh")
    assert response.status_code == 200 and response.json() == {"deleted": [f"{River}.zh"]}
    assert client.get(f"/v1/documents/{River}.zh").status_code == 404
    hits = client.post("/v1/search", json={"query": "淀山湖 Dianshan Lake", "k": 10}).json()
    assert all(h["doc_id"] != f"{River}.zh" for h in hits["results"])
    river_en = [h for h in hits["results"] if h["doc_id"] == f"{River}.en"]
    assert river_en and all(h["counterpart"] is None for h in river_en)
    again = client.delete(f"/v1/documents/{River}.zh")
    assert again.status_code == 404 and error_of(again)["code"] == "not_found"


# -- the span invariant over random documents ----------------------------------------------------

_pieces = st.sampled_from([
    "The committee met on Monday.", "Dr. Wang spoke for 3.5 hours.", "Water levels rose",
    "区政府周一宣布启动行动。", "“你好！”他说。", "第二段；", "  ", "\t", "\n", "\r\n", "\n\n",
    "e\u0301", "😀", "# Heading", "- item", "1. first",
])
_ids = itertools.count()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(_pieces, min_size=1, max_size=40))
def test_random_documents_round_trip_with_exact_spans(client: TestClient, parts: list[str]) -> None:
    text = "".join(parts)
    if not text.strip():
        text = "x" + text
    release = f"prop-{next(_ids)}"
    report = post(client, {"release_id": release, "lang": "en", "title": "T", "text": text})
    doc_id = f"{release}.en"
    assert report["added"] == [doc_id]
    doc = get_document(client, doc_id)
    assert doc["text"] == text.replace("\r\n", "\n")
    for p in doc["passages"]:
        assert 0 <= p["start"] < p["end"] <= len(doc["text"])
    body = client.post("/v1/search", json={"query": text[:200].strip() or "x", "k": 20,
                                           "release_id": release}).json()
    assert_hits_exact(client, body["results"])


def test_an_uploaded_pdf_answers_with_the_page_of_its_passage(
    client: TestClient, tmp_path: Path,
) -> None:
    pdf = notice_pdf(tmp_path / "notice.en.pdf")
    report = client.post("/v1/documents:upload",
                         files=[("files", ("notice.en.pdf", pdf.read_bytes()))]).json()
    assert report["added"] == ["notice.en"] and report["rejected"] == []
    question = "When will the new bridge over Dianshan Lake open to traffic?"
    top = client.post("/v1/search", json={"query": question, "k": 1}).json()["results"][0]
    assert top["page"] == 4 and "Dianshan Lake" in top["text"]
    document = get_document(client, "notice.en")
    assert len(document["pages"]) == 4 and document["text"][top["start"]:top["end"]] == top["text"]
    assert document["pages"][2] <= top["start"] < document["pages"][3]  # page 4
    answer = client.post("/v1/answer", json={"question": question, "k": 1}).json()
    assert answer["citations"][0]["page"] == 4


def test_an_upload_in_gbk_or_big5_is_read_and_the_report_names_the_encoding(
    client: TestClient,
) -> None:
    files = [
        ("files", ("ferry.zh.txt", "渡轮每十分钟一班。\n".encode("gbk"))),
        ("files", ("bus.zh.txt", "公車每十分鐘一班。\n".encode("big5"))),
        ("files", ("park.en.txt", b"The park opens in May.\n")),
    ]
    report = client.post("/v1/documents:upload", files=files).json()
    assert sorted(report["added"]) == ["bus.zh", "ferry.zh", "park.en"]
    assert report["rejected"] == []
    notes = {n["source"]: n["message"] for n in report["notes"]}
    assert set(notes) == {"ferry.zh.txt", "bus.zh.txt"}
    assert "GB18030/GBK" in notes["ferry.zh.txt"] and "Big5" in notes["bus.zh.txt"]
    assert get_document(client, "ferry.zh")["text"] == "渡轮每十分钟一班。\n"
