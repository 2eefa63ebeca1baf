"""How the service serves the page and its files (no browser needed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from index.indexes.analyze import Analyzer
from index.retriever import Retriever
from service.app import create_app
from service.routes.page import STATIC_DIR
from tests.fakes import FakeEmbedder
from tests.service.conftest import error_of, service_settings


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, fake_embedder: FakeEmbedder, analyzer: Analyzer
) -> Iterator[TestClient]:
    settings = service_settings(tmp_path_factory.mktemp("page") / "data")
    retriever = Retriever.open(settings=settings.index_settings(), embedder=fake_embedder,
                               analyzer=analyzer)
    with TestClient(create_app(settings, retriever=retriever)) as client:
        yield client


@pytest.mark.parametrize("url", ["/", "/?q=%E9%9D%92%E6%B5%A6&lang=zh", "/?doc=a.en&start=0&end=5"])
def test_every_view_url_serves_the_page_with_a_strict_content_policy(
    client: TestClient, url: str
) -> None:
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/main.js"' in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy


SCRIPTS = sorted(p.relative_to(STATIC_DIR).as_posix() for p in (STATIC_DIR / "js").glob("*.js"))


@pytest.mark.parametrize(
    ("name", "kind"), [*((name, "javascript") for name in SCRIPTS), ("style.css", "text/css")]
)
def test_script_and_stylesheet_are_served(client: TestClient, name: str, kind: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert kind in response.headers["content-type"]
    assert response.text == (STATIC_DIR / name).read_text(encoding="utf-8")
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path", ["/static/missing.js", "/static/../app.py", "/static/%2e%2e/routes/page.py"]
)
def test_unknown_or_escaping_static_paths_are_a_json_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_page_is_not_part_of_the_api_description(client: TestClient) -> None:
    assert "/" not in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_scripts_never_parse_strings_as_html(name: str) -> None:
    # Document text reaches the page as data; only textContent/createElement may place it.
    source = (STATIC_DIR / name).read_text(encoding="utf-8")
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(", source)
    assert not re.search(r"new Function|setTimeout\(\s*['\"`]", source)


def test_the_page_is_split_into_small_modules_that_import_only_each_other() -> None:
    assert len(SCRIPTS) >= 5
    for name in SCRIPTS:
        source = (STATIC_DIR / name).read_text(encoding="utf-8")
        assert source.count("\n") <= 400, name
        for target in re.findall(r'^import .* from "([^"]+)";$', source, re.M):
            assert (STATIC_DIR / "js" / target).resolve().is_file(), (name, target)


def test_static_files_need_no_network() -> None:
    # No CDN: every URL the page loads is on this server.
    for path in [p for p in STATIC_DIR.rglob("*") if p.is_file()]:
        text = Path(path).read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", text), path.name
        assert "@import url(http" not in text, path.name


def test_the_icon_is_served_where_browsers_ask_for_it(client: TestClient) -> None:
    for path in ("/favicon.ico", "/static/favicon.svg"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert response.text.startswith("<svg")
