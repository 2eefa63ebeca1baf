"""Hostile and broken input: each is refused with a clear 4xx in the one error shape (or
ingested exactly as text), nothing is written outside the data directory, memory stays bounded.

Uploads accept .txt .md .html .jsonl and NAME.meta.json only, and nothing on the server ever
decompresses: archives are refused by type, compressed bytes under a text name as binary, and
a compressed request body (Content-Encoding) with 415.
"""

from __future__ import annotations

import gzip
import io
import tempfile
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.settings import QUERY_MAX_CHARS
from tests.service.conftest import AUTH, TOKEN, ClientFactory, error_of

DOC = {"release_id": "notice", "lang": "en", "title": "Notice",
       "text": "Road works on Huqingping Highway start on Monday."}
JSON = {"Content-Type": "application/json"}
MIB = 2**20


def upload(client: TestClient, *files: tuple[str, bytes], **kwargs: Any) -> Any:
    return client.post("/v1/documents:upload", files=[("files", f) for f in files], **kwargs)


def doc_ids(client: TestClient) -> set[str]:
    page = client.get("/v1/documents", params={"limit": 1000}).json()
    return {d["doc_id"] for d in page["documents"]}


def multipart(filename: bytes, content: bytes) -> tuple[bytes, dict[str, str]]:
    """A multipart body with the file name bytes exactly as given (clients escape some)."""
    boundary = b"qiao-test-boundary"
    body = (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"files\"; filename=\""
            + filename + b"\"\r\nContent-Type: text/plain\r\n\r\n" + content + b"\r\n--"
            + boundary + b"--\r\n")
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}


# -- size limits ---------------------------------------------------------------------------


def test_body_over_the_limit_is_413_whether_declared_or_streamed(
    make_client: ClientFactory,
) -> None:
    client = make_client(max_body_bytes=4096)
    big = {**DOC, "text": "Road works. " * 500}  # ~6 KB of JSON
    declared = client.post("/v1/documents", json=big)
    assert declared.status_code == 413
    assert error_of(declared)["code"] == "payload_too_large"
    assert "4,096 bytes" in error_of(declared)["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bytes are counted as they come
        body = (b'{"release_id": "streamed", "lang": "en", "title": "T", "text": "'
                + b"Road works. " * 500 + b'"}')
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    streamed = client.post("/v1/documents", content=chunks(), headers=JSON)
    assert streamed.status_code == 413 and error_of(streamed)["code"] == "payload_too_large"
    assert not {"notice.en", "streamed.en"} & doc_ids(client)


def test_a_20_mb_document_is_refused_by_the_per_document_limit(client: TestClient) -> None:
    # Decision: the default per-document limit (QIAO_MAX_FILE_BYTES, 20 MiB) refuses a 20 MB
    # document as a file and as JSON alike, with the size and the limit in the message; the
    # request body limit (32 MiB) is not what stops it. Nothing is embedded.
    text = ("Road works on Huqingping Highway. " * (20 * MIB // 34 + 1))[: 20 * MIB + 1]
    as_file = upload(client, ("huge.en.txt", text.encode()))
    assert as_file.status_code == 422
    message = error_of(as_file)["message"]
    assert "huge.en.txt" in message and "too large" in message and "20.0 MB" in message
    as_json = client.post("/v1/documents", json={**DOC, "text": text})
    assert as_json.status_code == 422
    message = error_of(as_json)["message"]
    assert "documents[0]" in message and "too large" in message and "20.0 MB" in message
    assert "notice.en" not in doc_ids(client) and "huge.en" not in doc_ids(client)


def test_a_document_at_the_limit_is_accepted_and_one_byte_more_is_refused(
    make_client: ClientFactory,
) -> None:
    client = make_client(max_file_bytes=4000)
    text = ("Road works on Huqingping Highway. " * 200)[:4000]
    at_limit = client.post("/v1/documents", json={
        "documents": [{**DOC, "text": text}, {**DOC, "release_id": "over", "text": text + "x"}]})
    assert at_limit.status_code == 200, at_limit.text
    report = at_limit.json()
    assert report["added"] == ["notice.en"]
    assert [r["source"] for r in report["rejected"]] == ["documents[1]"]
    assert "too large" in report["rejected"][0]["message"]
    assert client.get("/v1/documents/notice.en").json()["text"] == text


def test_100_kb_query_is_422_naming_the_limit(reader: TestClient) -> None:
    query = "虹桥 Hongqiao " * (100_000 // 11)
    response = reader.post("/v1/search", json={"query": query})
    assert response.status_code == 422
    assert f"at most {QUERY_MAX_CHARS} characters" in error_of(response)["message"]
    # The same in a URL; 60,000 characters is what the test client lets through.
    response = reader.get("/v1/search", params={"q": "a" * 60_000})
    assert response.status_code == 422
    assert error_of(response)["message"].startswith("query.q:")


def test_huge_k_is_422(reader: TestClient) -> None:
    for response in (reader.post("/v1/search", json={"query": "metro", "k": 10**9}),
                     reader.get("/v1/search", params={"q": "metro", "k": 10**9})):
        assert response.status_code == 422
        assert "less than or equal to 100" in error_of(response)["message"]


@pytest.mark.parametrize("field", [
    {"k": "5"}, {"k": True}, {"counterpart": 0}, {"counterpart": "false"},
    {"date_from": "0"}, {"date_to": 1700000000}, {"date_from": "20230905"},
])
def test_values_of_the_wrong_type_are_refused_not_coerced(
    reader: TestClient, field: dict[str, Any]
) -> None:
    # Found by the fuzzer: pydantic took 0 for false and "0" for 1970-01-01.
    response = reader.post("/v1/search", json={"query": "metro", **field})
    assert response.status_code == 422, response.text
    assert error_of(response)["message"].startswith(f"body.{next(iter(field))}")


def test_unknown_lang_is_422_for_search_and_for_documents(client: TestClient) -> None:
    for response in (client.post("/v1/search", json={"query": "metro", "lang": "fr"}),
                     client.get("/v1/search", params={"q": "metro", "lang": "fr"})):
        assert response.status_code == 422 and "'en' or 'zh'" in error_of(response)["message"]
    response = client.post("/v1/documents", json={**DOC, "lang": "fr"})
    assert response.status_code == 422
    assert "lang 'fr' is not supported" in error_of(response)["message"]


# -- bad bytes -----------------------------------------------------------------------------


def test_invalid_utf8_in_a_json_body_is_400(client: TestClient) -> None:
    for path in ("/v1/search", "/v1/documents"):
        response = client.post(path, headers=JSON,
                               content=b'{"query": "caf\xe9", "release_id": "r", "text": "\xff"}')
        assert response.status_code == 400, path
        error = error_of(response)
        assert error["code"] == "invalid_json" and "UTF-8" in error["message"]


def test_nul_in_a_json_body_is_refused_raw_or_escaped(client: TestClient) -> None:
    raw = client.post("/v1/search", headers=JSON, content=b'{"query": "a\x00b"}')
    assert raw.status_code == 400 and error_of(raw)["code"] == "invalid_json"
    escaped = client.post("/v1/search", json={"query": "metro\u0000line"})
    assert escaped.status_code == 422 and "NUL" in error_of(escaped)["message"]
    document = client.post("/v1/documents", json={**DOC, "text": "Road\u0000works."})
    assert document.status_code == 422
    assert "NUL characters" in error_of(document)["message"]
    assert "notice.en" not in doc_ids(client)


def test_bad_bytes_in_a_url_query_are_refused(reader: TestClient) -> None:
    not_utf8 = reader.get("/v1/search?q=caf%E9")
    assert not_utf8.status_code == 400 and "UTF-8" in error_of(not_utf8)["message"]
    surrogate = reader.get("/v1/search?q=%ED%A0%80")  # UTF-8 of a lone surrogate
    assert surrogate.status_code == 400
    nul = reader.get("/v1/search?q=metro%00line")
    assert nul.status_code == 422 and "NUL" in error_of(nul)["message"]


def test_uploaded_files_with_bad_bytes_are_rejected_by_name(client: TestClient) -> None:
    response = upload(client, ("latin1.en.txt", "Caf\xe9 opens.".encode("latin-1")),
                      ("nul.en.txt", b"Road\x00works on the highway."),
                      ("good.en.txt", b"Road works on the highway."))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["added"] == ["good.en"]
    reasons = {r["source"]: r["message"] for r in report["rejected"]}
    assert set(reasons) == {"latin1.en.txt:1", "nul.en.txt"}
    assert "not UTF-8" in reasons["latin1.en.txt:1"]
    assert "NUL bytes" in reasons["nul.en.txt"]


# -- ids and file names --------------------------------------------------------------------

ENCODED_IDS = [
    "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fdata", "%2e%2e", "%2Fetc%2Fpasswd",
    "a%00b", "a%5Cb", "..%5C..%5Cwindows", "C:%5Cdata", "%252e%252e%252f", "x%0Ay",
]


@pytest.mark.parametrize("raw", ENCODED_IDS)
def test_encoded_path_tricks_in_document_ids_are_refused(client: TestClient, raw: str) -> None:
    before = doc_ids(client)
    for response in (client.get(f"/v1/documents/{raw}"), client.delete(f"/v1/documents/{raw}"),
                     client.get(f"/v1/releases/{raw}")):
        assert response.status_code in (404, 422), response.text
        error = error_of(response)
        assert error["code"] in ("invalid_id", "not_found") and "\n" not in error["message"]
    assert doc_ids(client) == before


@pytest.mark.parametrize("bad_id", ["../evil", "/etc/passwd", "..\\evil", "..", "a\u0000b",
                                    "C:\\evil"])
def test_path_like_ids_in_posted_documents_are_refused(client: TestClient, bad_id: str) -> None:
    for field in ("doc_id", "release_id"):
        response = client.post("/v1/documents", json={**DOC, field: bad_id})
        assert response.status_code == 422
        assert field in error_of(response)["message"]


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory uploads are written to, inside this test's tmp_path."""
    scratch = tmp_path / "scratch" / "tmp"
    scratch.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


def files_outside(root: Path, allowed: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and allowed not in p.parents]


@pytest.mark.parametrize("name", [
    b"../../escaped.en.txt", b"/tmp/escaped.en.txt", b"..\\..\\escaped.en.txt",
    b"sub/escaped.en.txt", b"%2e%2e%2fescaped.en.txt", b"escaped\x00.en.txt", b"..",
])
def test_upload_names_with_paths_are_refused_and_nothing_lands_outside_the_data_dir(
    make_client: ClientFactory, tmp_path: Path, private_tmp: Path, name: bytes,
) -> None:
    client = make_client()
    data_dir = tmp_path / "app1" / "data"
    body, headers = multipart(name, b"Road works on the highway.")
    response = client.post("/v1/documents:upload", content=body, headers=headers)
    if name.startswith(b"%2e"):
        # Percent signs are ordinary characters in a file name: stored under that id, in the
        # index, never decoded into a path.
        assert response.status_code == 200, response.text
        assert response.json()["added"] == ["%2e%2e%2fescaped.en"]
        # (Listed rather than fetched: the test client URL-decodes a path twice.)
        assert "%2e%2e%2fescaped.en" in doc_ids(client)
    else:
        assert response.status_code == 422, response.text
        assert error_of(response)["code"] == "invalid_document"
    assert files_outside(tmp_path, data_dir) == []
    assert list(private_tmp.iterdir()) == []  # the upload's scratch folder is gone too
    assert not Path("/tmp/escaped.en.txt").exists()


# -- compressed input ----------------------------------------------------------------------


def gzip_bomb(expanded_mib: int) -> bytes:
    """Concatenated gzip members of 1 MiB of zeros: ~1 KB each, `expanded_mib` MiB unpacked."""
    member = gzip.compress(bytes(MIB), compresslevel=9)
    return member * expanded_mib


def zip_bomb(expanded_mib: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive, \
            archive.open("bomb.en.txt", "w", force_zip64=True) as member:
        for _ in range(expanded_mib):
            member.write(bytes(MIB))
    return buffer.getvalue()


def peak_traced_bytes(work: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = work()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_zip_and_gzip_bombs_are_refused_without_unpacking(client: TestClient) -> None:
    gz = gzip_bomb(1024)  # 1 GiB unpacked
    zp = zip_bomb(64)
    assert zlib.decompressobj(31).decompress(gz[:2048], 4096) == bytes(4096)  # a real bomb
    files = [("bomb.zip", zp), ("bomb.jsonl.gz", gz), ("bomb.en.txt", gz),
             ("bomb.tar.gz", gz)]
    response, peak = peak_traced_bytes(lambda: upload(client, *files))
    assert response.status_code == 422, response.text
    message = error_of(response)["message"]
    assert "unsupported file type .zip" in message and "unsupported file type .gz" in message
    assert "bomb.en.txt: binary file" in message
    # The request holds the ~1.3 MB sent, never the gigabyte inside.
    assert peak < 64 * MIB, peak


def test_a_compressed_request_body_is_415(client: TestClient) -> None:
    body = gzip.compress(b'{"release_id": "zipped", "lang": "en", "title": "T", "text": "x"}')
    response = client.post("/v1/documents", content=body,
                           headers={**JSON, "Content-Encoding": "gzip"})
    assert response.status_code == 415
    error = error_of(response)
    assert error["code"] == "unsupported_media_type" and "uncompressed" in error["message"]
    bomb, peak = peak_traced_bytes(lambda: client.post(
        "/v1/search", content=gzip_bomb(256), headers={**JSON, "Content-Encoding": "gzip"}))
    assert bomb.status_code == 415 and peak < 64 * MIB
    assert "zipped.en" not in doc_ids(client)


# -- content -------------------------------------------------------------------------------

SCRIPT = '<script>fetch("/v1/documents/x", {method: "DELETE"})</script>'


def test_script_tags_in_text_are_stored_and_returned_as_plain_characters(
    client: TestClient,
) -> None:
    text = f"Bulletin {SCRIPT} on <b>reservoir</b> levels & gauges."
    response = client.post("/v1/documents", json={**DOC, "release_id": "xss", "text": text})
    assert response.status_code == 200, response.text
    stored = client.get("/v1/documents/xss.en")
    assert stored.json()["text"] == text
    assert stored.headers["content-type"] == "application/json"
    hits = client.post("/v1/search", json={"query": "reservoir bulletin gauges", "lang": "en"})
    assert hits.headers["content-type"] == "application/json"
    hit = next(h for h in hits.json()["results"] if h["doc_id"] == "xss.en")
    assert SCRIPT in hit["text"] and hit["text"] == text[hit["start"] : hit["end"]]


def test_html_upload_keeps_the_article_text_and_drops_scripts(client: TestClient) -> None:
    page = (
        "<html lang='en'><head><title>Reservoir bulletin</title>"
        f"{SCRIPT}<script>document.write('injected-marker')</script></head><body>"
        "<article><h1>Reservoir bulletin</h1>"
        "<p>The reservoir level at the northern gauge rose by two metres this week, "
        "engineers at the dam reported on Monday.</p>"
        "<p onclick=\"alert('onclick-marker')\">Water releases continue through the spillway "
        "until the level falls back under the seasonal mark.</p>"
        "<script>alert('body-marker')</script></article></body></html>"
    )
    response = upload(client, ("bulletin.en.html", page.encode()))
    assert response.status_code == 200, response.text
    text = client.get("/v1/documents/bulletin.en").json()["text"]
    assert "reservoir level at the northern gauge" in text
    for marker in ("injected-marker", "onclick-marker", "body-marker", "<script", "fetch("):
        assert marker not in text


def test_jsonl_with_a_broken_line_keeps_the_good_lines_and_names_the_bad_one(
    client: TestClient,
) -> None:
    lines = [
        b'{"release_id": "j1", "lang": "en", "title": "One", "text": "First good line."}',
        b'{"release_id": "j2", "lang": "en", "title": "Two", "text": "unterminated',
        b'{"release_id": "j3", "lang": "en", "title": "Three", "text": "Third good line."}',
        b'["not", "an", "object"]',
        b'{"release_id": "j5", "lang": "en", "text": "no title"}',
    ]
    response = upload(client, ("batch.jsonl", b"\n".join(lines) + b"\n"))
    assert response.status_code == 200, response.text
    report = response.json()
    assert sorted(report["added"]) == ["j1.en", "j3.en"]
    reasons = {r["source"]: r["message"] for r in report["rejected"]}
    assert set(reasons) == {"batch.jsonl:2", "batch.jsonl:4", "batch.jsonl:5"}
    assert "invalid JSON" in reasons["batch.jsonl:2"]
    assert "missing field title" in reasons["batch.jsonl:5"]
    assert client.get("/v1/documents/j3.en").json()["text"] == "Third good line."


# -- who may write -------------------------------------------------------------------------

WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/documents", {"json": DOC}),
    ("POST", "/v1/documents:upload",
     {"files": [("files", ("w.en.txt", b"Road works on the highway."))]}),
    ("DELETE", "/v1/documents/metro-line.en", {}),
]


@pytest.mark.parametrize(("method", "path", "payload"), WRITES)
def test_writes_without_a_token_are_401_and_with_a_wrong_token_403(
    make_client: ClientFactory, method: str, path: str, payload: dict[str, Any],
) -> None:
    client = make_client(api_token=TOKEN)
    before = doc_ids(client)
    missing = client.request(method, path, **payload)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert error_of(missing)["code"] == "unauthorized"
    for wrong in ("Bearer wrong-token", f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer "):
        response = client.request(method, path, headers={"Authorization": wrong}, **payload)
        assert response.status_code in (401, 403), wrong
        assert error_of(response)["code"] in ("unauthorized", "forbidden")
    refused = client.request(method, path, headers={"Authorization": "Bearer wrong"}, **payload)
    assert refused.status_code == 403 and error_of(refused)["code"] == "forbidden"
    assert doc_ids(client) == before
    allowed = client.request(method, path, headers=AUTH, **payload)
    assert allowed.status_code == 200, allowed.text
