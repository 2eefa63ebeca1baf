"""A Markdown release on the page: the markup is hidden, the exact text stays in the DOM."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from index.indexes.analyze import Analyzer
from index.records import Document
from index.retriever import Retriever
from tests.browser.conftest import (
    CARDS,
    _serve_index,
    api_document,
    api_search,
    search,
    show_in_document,
)
from tests.fakes import FakeEmbedder
from tests.service.conftest import service_settings

pytestmark = pytest.mark.browser

NOTICE = Document(
    doc_id="library-hours.en",
    release_id="library-hours",
    lang="en",
    title="Library hours",
    text=(
        "# Library hours\n\n"
        "The **city library** opens at `nine` on Sundays, see [the notice](https://example.org/n).\n"
        "- Children's room: ten to four.\n"
        "- Reading room: nine to nine.\n"
    ),
    date="2024-06-02",
)
MARKUP = ("**", "`", "](", "# ", "- ")


@pytest.fixture(scope="module")
def markdown_base(tmp_path_factory: pytest.TempPathFactory, fake_embedder: FakeEmbedder,
                  analyzer: Analyzer) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("browser-markdown") / "data"
    retriever = Retriever.open(settings=service_settings(data_dir).index_settings(),
                               embedder=fake_embedder, analyzer=analyzer)
    retriever.upsert([NOTICE])
    with _serve_index(data_dir, retriever) as base:
        yield base


def test_markdown_markup_is_hidden_in_cards_and_the_document_but_the_text_stays_exact(
    page: Page, markdown_base: str
) -> None:
    query = "When does the city library open on Sundays?"
    results = api_search(markdown_base, query)["results"]
    assert results and any(r["markup"] for r in results)
    for r in results:
        for start, end in r["markup"]:
            assert r["start"] <= start < end <= r["end"]
    page.goto(markdown_base + "/")
    search(page, query)
    texts = page.locator(f"{CARDS} .passage-main .passage-text")
    assert texts.count() == len(results)
    for i, r in enumerate(results):
        # The DOM keeps the exact passage (highlights, copies), the reader does not see markup.
        assert texts.nth(i).text_content() == r["text"]
        shown = texts.nth(i).inner_text()
        assert not [m for m in MARKUP if m in shown], shown
    assert "city library" in "".join(texts.all_inner_texts())

    show_in_document(page)
    document = api_document(markdown_base, results[0]["doc_id"])
    doc_text = page.locator("#doc-text")
    assert doc_text.text_content() == document["text"]
    shown = doc_text.inner_text()
    assert not [m for m in MARKUP if m in shown], shown
    assert "Library hours" in shown and "Children's room: ten to four." in shown
    # List markers are drawn as bullets, not dropped.
    assert page.locator("#doc-text .md-bullet").count() == 2
