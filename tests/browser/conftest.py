"""Browser tests: the search page in Debian's headless Chromium, driven by Playwright (sync API).

Each app runs under uvicorn in a background thread on a free loopback port, over its own
temporary data directory; fixtures poll `/readyz` before handing out the base URL. Three apps:
the demo corpus with the real model (built once per session, for `@pytest.mark.model` tests),
the tiny corpus plus a hostile release with the fake embedder, and an empty index.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, sync_playwright

from index.embed import Embedder
from index.indexes.analyze import Analyzer
from index.records import Document
from index.retriever import Retriever
from service.app import create_app
from tests.fakes import FakeEmbedder
from tests.service.conftest import quote_id, service_settings

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(os.environ.get("QIAO_SCREENSHOT_DIR", "/tmp/qiao-shots"))
START_TIMEOUT = 30.0

# A release whose title and text carry markup that must stay characters, and an astral
# character (two UTF-16 units, one code point) before the answer, so the page's offset
# arithmetic is exercised: a slice in UTF-16 units would highlight the wrong characters.
SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=1">'
HOSTILE_EN = Document(
    doc_id="harbour-notice.en",
    release_id="harbour-notice",
    lang="en",
    title=f"Harbour notice {SCRIPT}{IMG}",
    text=(
        f"Harbour notice {SCRIPT}\n\n"
        f"Ship 🚢 crews read this {IMG} twice.\n"
        "The ferry terminal opens at six in the morning on weekdays. "
        "Tickets are sold at the gate."
    ),
    date="2024-06-01",
    url="https://example.org/harbour",
)
HOSTILE_ZH = Document(
    doc_id="harbour-notice.zh",
    release_id="harbour-notice",
    lang="zh",
    title=f"码头通知{SCRIPT}",
    text=f"码头通知{SCRIPT}\n\n船员𠀀请读两遍{IMG}。\n渡轮码头工作日早上六点开放。船票在门口出售。",
    date="2024-06-01",
    url="https://example.org/harbour-zh",
)


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` on a free loopback port in a thread; yields its base URL once it is ready."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="qiao-browser-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        while httpx.get(f"{base}/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not become ready")
            time.sleep(0.02)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _serve_index(data_dir: Path, retriever: Retriever) -> Any:
    return serve(create_app(service_settings(data_dir), retriever=retriever))


@pytest.fixture(scope="session")
def demo_base(demo_data_dir: Path, real_embedder: Embedder) -> Iterator[str]:
    """The demo corpus indexed with the real model (shared, read-only), served."""
    settings = service_settings(demo_data_dir)
    retriever = Retriever.open(settings=settings.index_settings(), embedder=real_embedder,
                               analyzer=Analyzer())
    with _serve_index(demo_data_dir, retriever) as base:
        yield base


@pytest.fixture(scope="session")
def fake_base(
    tmp_path_factory: pytest.TempPathFactory, fake_embedder: FakeEmbedder, analyzer: Analyzer,
    tiny_docs: list[Document],
) -> Iterator[str]:
    """The tiny corpus and the hostile release, fake embedder."""
    data_dir = tmp_path_factory.mktemp("browser-fake") / "data"
    settings = service_settings(data_dir)
    retriever = Retriever.open(settings=settings.index_settings(), embedder=fake_embedder,
                               analyzer=analyzer)
    retriever.upsert([*tiny_docs, HOSTILE_EN, HOSTILE_ZH])
    with _serve_index(data_dir, retriever) as base:
        yield base


@pytest.fixture(scope="session")
def empty_base(
    tmp_path_factory: pytest.TempPathFactory, fake_embedder: FakeEmbedder, analyzer: Analyzer
) -> Iterator[str]:
    """An index with no documents: every search has no results."""
    data_dir = tmp_path_factory.mktemp("browser-empty") / "data"
    settings = service_settings(data_dir)
    retriever = Retriever.open(settings=settings.index_settings(), embedder=fake_embedder,
                               analyzer=analyzer)
    with _serve_index(data_dir, retriever) as base:
        yield base


# Package scope: Playwright's sync API keeps an asyncio loop running in the main thread while it
# is open, which would stop later tests (anyio.run) from starting their own.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install it with scripts/browser_deps.sh")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=["--no-sandbox"])
        yield browser
        browser.close()


NewPage = Callable[..., Page]


@pytest.fixture
def new_page(browser: Browser) -> Iterator[NewPage]:
    """`new_page(width=1280, height=900, locale="en-US")` → a page in a fresh context (own
    storage, so a remembered UI language does not leak between tests)."""
    contexts = []

    def make(width: int = 1280, height: int = 900, locale: str = "en-US") -> Page:
        context = browser.new_context(viewport={"width": width, "height": height},
                                      locale=locale)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: NewPage) -> Page:
    return new_page()


def api_search(base: str, query: str, lang: str | None = None, k: int = 10) -> dict[str, Any]:
    """The API's own answer for a search, to compare the page with."""
    response = httpx.post(f"{base}/v1/search", json={"query": query, "k": k, "lang": lang},
                          timeout=60)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def api_document(base: str, doc_id: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/v1/documents/{quote_id(doc_id)}", timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


CARDS = "#results > li.result"


def cards(page: Page) -> list[dict[str, Any]]:
    """What each result card shows, read from the DOM as text."""
    result: list[dict[str, Any]] = page.eval_on_selector_all(CARDS, """cards => cards.map(c => {
        const main = c.querySelector('.passage-main');
        const side = c.querySelector('.passage-counterpart .passage-text');
        const mark = main.querySelector('mark.hl');
        return {
            doc_id: c.dataset.docId, start: Number(c.dataset.start), end: Number(c.dataset.end),
            title: main.querySelector('.title').textContent,
            badge: main.querySelector('.badge').textContent,
            date: main.querySelector('time') && main.querySelector('time').textContent,
            text: main.querySelector('.passage-text').textContent,
            mark: mark && mark.textContent,
            counterpart: side && side.textContent,
        };
    })""")
    return result


def show_in_document(page: Page, index: int = 0, side: str = "main") -> None:
    """Click "Show in document" of result `index`, its own passage or (side="counterpart")
    the aligned one."""
    # By position, not name: the link's text follows the page's language.
    page.locator(CARDS).nth(index).locator(f".passage-{side} .actions a").click()


def settled(page: Page) -> None:
    """Wait until no search is in flight (the results list drops `aria-busy` when done)."""
    page.wait_for_function("() => !document.getElementById('results').hasAttribute('aria-busy')")


def search(page: Page, query: str) -> None:
    """Type `query` in the box and press Enter; returns once its results (or error) are shown."""
    box = page.get_by_role("searchbox")
    box.fill(query)
    with page.expect_response("**/v1/search"):
        box.press("Enter")
    settled(page)


def open_url(page: Page, url: str) -> None:
    """Load `url` (a search URL) and wait for the search it runs on load."""
    with page.expect_response("**/v1/search"):
        page.goto(url)
    settled(page)


def shoot(page: Page, name: str) -> Path:
    """A screenshot of what the viewport shows, under SHOTS (outside the repository)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
