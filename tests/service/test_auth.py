"""Who may write (and, optionally, read): bearer token, and the loopback rule without one."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import AUTH, TOKEN, ClientFactory, error_of

DOC = {"release_id": "auth", "lang": "en", "title": "T", "text": "Some text."}


def writes(client: TestClient, headers: dict[str, str]) -> list[Any]:
    """Status of each write endpoint with `headers`."""
    return [
        client.post("/v1/documents", json=DOC, headers=headers),
        client.post("/v1/documents:upload", files=[("files", ("a.en.txt", b"Text."))],
                    headers=headers),
        client.delete("/v1/documents/library.en", headers=headers),
    ]


def test_without_token_writes_are_allowed_on_loopback(make_client: ClientFactory) -> None:
    client = make_client(host="127.0.0.1")
    assert [r.status_code for r in writes(client, {})] == [200, 200, 200]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "qiao.intranet"])
def test_without_token_writes_are_refused_unless_loopback(
    make_client: ClientFactory, host: str
) -> None:
    client = make_client(host=host)
    for response in writes(client, {}):
        assert response.status_code == 403
        error = error_of(response)
        assert error["code"] == "writes_disabled" and "QIAO_API_TOKEN" in error["message"]
    assert client.get("/v1/documents/library.en").status_code == 200  # reads stay open
    assert client.post("/v1/search", json={"query": "library"}).status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_with_token_writes_need_it_wherever_bound(make_client: ClientFactory, host: str) -> None:
    client = make_client(host=host, api_token=TOKEN)
    for response in writes(client, {}):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert error_of(response)["code"] == "unauthorized"
    for headers in ({"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer"}):
        assert {r.status_code for r in writes(client, headers)} == {401}
    for wrong in ("Bearer nope", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}"):
        responses = writes(client, {"Authorization": wrong})
        assert {r.status_code for r in responses} == {403}
        assert {error_of(r)["code"] for r in responses} == {"forbidden"}
    assert [r.status_code for r in writes(client, AUTH)] == [200, 200, 200]
    assert [r.status_code for r in writes(client, {"Authorization": f"bearer  {TOKEN}"})] == [
        200, 200, 404]  # scheme is case-insensitive; library.en is already gone


def test_reads_are_open_with_a_token_by_default(make_client: ClientFactory) -> None:
    client = make_client(api_token=TOKEN)
    assert client.get("/v1/search", params={"q": "metro"}).status_code == 200
    assert client.get("/v1/documents").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_reads_can_require_the_token(make_client: ClientFactory) -> None:
    client = make_client(api_token=TOKEN, require_token_for_reads=True)
    for path in ("/v1/search?q=metro", "/v1/documents", "/v1/documents/library.en",
                 "/v1/releases/metro-line", "/metrics"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert client.get(path, headers=AUTH).status_code == 200, path
    assert client.post("/v1/search", json={"query": "x"}).status_code == 401
    # Probes stay open so an orchestrator can check the process without the token.
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
