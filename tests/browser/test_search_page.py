"""The search page against small indexes (fake embedder): rendering, states, keyboard, URLs."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import (
    CARDS,
    HOSTILE_EN,
    HOSTILE_ZH,
    IMG,
    SCRIPT,
    NewPage,
    api_document,
    api_search,
    cards,
    open_url,
    search,
    settled,
    show_in_document,
)

pytestmark = pytest.mark.browser

def status(page: Page) -> str:
    return page.locator("#status").inner_text()


def test_box_is_focused_on_load_and_enter_searches_without_a_reload(
    page: Page, fake_base: str
) -> None:
    page.goto(fake_base + "/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.evaluate("window.__samePage = true")
    search(page, "How many stations does the metro line have?")
    assert page.evaluate("window.__samePage") is True
    assert "q=How+many+stations" in page.url
    expected = api_search(fake_base, "How many stations does the metro line have?")["results"]
    shown = cards(page)
    assert [(c["doc_id"], c["start"], c["end"]) for c in shown] == [
        (r["doc_id"], r["start"], r["end"]) for r in expected
    ]


def test_each_result_shows_title_date_badge_highlighted_answer_and_counterpart(
    page: Page, fake_base: str
) -> None:
    query = "How many stations does the metro line have?"
    page.goto(fake_base + "/")
    search(page, query)
    top = api_search(fake_base, query)["results"][0]
    card = cards(page)[0]
    assert card["title"] == top["title"]
    assert card["date"] == top["date"]
    assert card["badge"] == {"en": "English", "zh": "Chinese"}[top["lang"]]
    assert card["text"] == top["text"]
    assert top["answer"] is not None
    assert card["mark"] == top["answer"]["text"]
    assert top["counterpart"] is not None
    assert card["counterpart"] == top["counterpart"]["text"]
    # The counterpart's title comes from the release (fetched once the results are shown).
    versions = httpx.get(f"{fake_base}/v1/releases/{top['release_id']}").json()["documents"]
    cp_title = next(d["title"] for d in versions if d["doc_id"] == top["counterpart"]["doc_id"])
    expect(page.locator(CARDS).first.locator(".cp-title")).to_have_text(cp_title)


def test_hostile_markup_is_shown_as_characters_and_offsets_count_code_points(
    page: Page, fake_base: str
) -> None:
    query = "When does the ferry terminal open?"
    top = api_search(fake_base, query, lang="en")["results"][0]
    assert top["doc_id"] == HOSTILE_EN.doc_id
    # The answer lies after the emoji, so a UTF-16 slice would be off by one.
    assert top["answer"]["start"] > HOSTILE_EN.text.index("🚢")
    open_url(page, f"{fake_base}/?q={query}&lang=en")
    card = cards(page)[0]
    assert card["title"] == HOSTILE_EN.title
    assert SCRIPT in card["text"] and IMG in card["text"]
    assert card["mark"] == top["answer"]["text"]
    assert page.locator("#results script, #results img").count() == 0

    show_in_document(page)
    expect(page.locator("#doc mark")).to_be_visible()
    assert page.locator("#doc-title").text_content() == HOSTILE_EN.title
    assert page.locator("#doc mark").text_content() == HOSTILE_EN.text[top["start"] : top["end"]]
    assert page.locator("#doc-text").text_content() == HOSTILE_EN.text

    page.get_by_role("button", name="Show the Chinese version").click()
    expect(page.locator("#doc-title")).to_have_text(HOSTILE_ZH.title)
    cp = top["counterpart"]
    # The astral character lies before the span's end, so the end is counted in code points.
    assert cp["doc_id"] == HOSTILE_ZH.doc_id and cp["end"] > HOSTILE_ZH.text.index("𠀀")
    assert page.locator("#doc mark").text_content() == HOSTILE_ZH.text[cp["start"] : cp["end"]]
    assert page.locator("#doc script, #doc img").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_document_view_is_a_shareable_url_and_back_returns_to_the_results(
    page: Page, fake_base: str
) -> None:
    query = "river cleanup volunteers"
    page.goto(fake_base + "/")
    search(page, query)
    results_url = page.url
    first = cards(page)[0]
    show_in_document(page)
    expect(page.locator("#doc")).to_be_visible()
    doc_url = page.url
    assert f"start={first['start']}" in doc_url and f"end={first['end']}" in doc_url

    page.go_back()
    expect(page.locator("#results")).to_be_visible()
    assert page.url == results_url
    assert [c["doc_id"] for c in cards(page)] != []

    # The same link in a new tab (no history) shows the same highlighted span.
    fresh = page.context.new_page()
    fresh.goto(doc_url)
    expect(fresh.locator("#doc mark")).to_be_visible()
    text = api_document(fake_base, first["doc_id"])["text"]
    assert fresh.locator("#doc mark").text_content() == text[first["start"] : first["end"]]
    expect(fresh.get_by_role("link", name="← Back to results")).to_be_visible()


def test_no_results_says_so(page: Page, empty_base: str) -> None:
    page.goto(empty_base + "/")
    search(page, "metro line")
    assert page.locator(CARDS).count() == 0
    expect(page.locator("#status")).to_have_text(
        "No passages match “metro line”. Try other words, or search both languages."
    )


def test_no_results_message_follows_the_page_language(new_page: NewPage, empty_base: str) -> None:
    page = new_page(locale="zh-CN")
    page.goto(empty_base + "/")
    search(page, "地铁")
    assert status(page).startswith("没有与“地铁”匹配的段落")


def _fulfil_error(status: int) -> Any:
    def handle(route: Route) -> None:
        route.fulfill(status=status, content_type="application/json",
                      body=json.dumps({"error": {"code": "internal_error",
                                                 "message": "internal error: see the log"}}))
    return handle


def test_server_error_is_reported_and_old_results_are_cleared(page: Page, fake_base: str) -> None:
    page.goto(fake_base + "/")
    search(page, "metro line")
    assert cards(page)
    page.route("**/v1/search", _fulfil_error(500))
    search(page, "river")
    assert page.locator(CARDS).count() == 0
    assert "error" in (page.locator("#status").get_attribute("class") or "")
    expect(page.locator("#status")).to_contain_text("The search service failed (error 500)")


def test_loading_index_and_unreachable_server_have_their_own_messages(
    page: Page, fake_base: str
) -> None:
    page.goto(fake_base + "/")
    page.route("**/v1/search", _fulfil_error(503))
    search(page, "metro")
    expect(page.locator("#status")).to_have_text(
        "The search index is still loading. Try again in a moment."
    )
    page.unroute("**/v1/search")
    page.route("**/v1/search", lambda route: route.abort())
    page.get_by_role("searchbox").fill("river")
    page.get_by_role("searchbox").press("Enter")
    expect(page.locator("#status")).to_contain_text("The search service cannot be reached")


def test_slow_search_shows_a_loading_state_until_results_arrive(
    page: Page, fake_base: str
) -> None:
    held: list[Route] = []
    page.goto(fake_base + "/")
    page.route("**/v1/search", lambda route: held.append(route))
    box = page.get_by_role("searchbox")
    box.fill("metro line")
    box.press("Enter")
    expect(page.locator("#status")).to_have_text("Searching…")
    assert page.locator("#results").get_attribute("aria-busy") == "true"
    assert len(held) == 1
    held[0].continue_()
    settled(page)
    assert cards(page)
    expect(page.locator("#status")).not_to_have_text("Searching…")


def test_empty_query_asks_for_words_without_calling_the_api(page: Page, fake_base: str) -> None:
    searches: list[str] = []
    page.on("request", lambda request: searches.append(request.url)
            if "/v1/search" in request.url else None)
    page.goto(fake_base + "/")
    box = page.get_by_role("searchbox")
    box.fill("   ")
    box.press("Enter")
    expect(page.locator("#status")).to_have_text(
        "Type a question or a few words, then press Enter."
    )
    assert searches == []
    assert page.evaluate("document.activeElement.id") == "q"


def test_keyboard_moves_between_results_and_opens_one(page: Page, fake_base: str) -> None:
    page.goto(fake_base + "/")
    search(page, "district")
    shown = cards(page)
    assert len(shown) >= 3

    def focused_index() -> int:
        index: int = page.evaluate(
            "Array.from(document.querySelectorAll('#results > li')).indexOf(document.activeElement)"
        )
        return index

    page.keyboard.press("ArrowDown")
    assert focused_index() == 0
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert focused_index() == 2
    page.keyboard.press("ArrowUp")
    assert focused_index() == 1
    page.keyboard.press("Enter")
    expect(page.locator("#doc mark")).to_be_visible()
    assert f"doc={shown[1]['doc_id']}" in page.url.replace("%23", "#")
    page.go_back()
    expect(page.locator("#results")).to_be_visible()
    assert focused_index() == 1  # back where the reader was
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.press("ArrowUp")  # from the box: nothing above it
    assert page.evaluate("document.activeElement.id") == "q"


def test_narrow_screen_stacks_the_pair_without_horizontal_scrolling(
    new_page: NewPage, fake_base: str
) -> None:
    def layout(page: Page) -> dict[str, float]:
        box: dict[str, float] = page.evaluate("""() => {
            const card = document.querySelector('#results > li');
            const a = card.querySelector('.passage-main').getBoundingClientRect();
            const b = card.querySelector('.passage-counterpart').getBoundingClientRect();
            return {mainBottom: a.bottom, mainRight: a.right, cpTop: b.top, cpLeft: b.left,
                    scroll: document.documentElement.scrollWidth, width: window.innerWidth};
        }""")
        return box

    narrow = new_page(width=360, height=740)
    open_url(narrow, f"{fake_base}/?q=When+does+the+ferry+terminal+open%3F")
    small = layout(narrow)
    assert small["scroll"] <= small["width"]
    assert small["cpTop"] >= small["mainBottom"]  # stacked
    show_in_document(narrow)
    expect(narrow.locator("#doc mark")).to_be_visible()
    assert narrow.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    wide = new_page(width=1280)
    open_url(wide, f"{fake_base}/?q=When+does+the+ferry+terminal+open%3F")
    large = layout(wide)
    assert large["cpLeft"] >= large["mainRight"]  # side by side
    assert large["cpTop"] < large["mainBottom"]


def test_ui_language_follows_the_browser_and_the_switch_is_remembered(
    new_page: NewPage, fake_base: str
) -> None:
    page = new_page(locale="zh-CN")
    page.goto(fake_base + "/")
    expect(page.locator("#go")).to_have_text("搜索")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    page.get_by_role("searchbox").press("Enter")
    expect(page.locator("#status")).to_have_text("请输入问题或关键词，然后按 Enter。")

    page.get_by_role("button", name="Switch the page to English").click()
    expect(page.locator("#go")).to_have_text("Search")
    expect(page.locator("#status")).to_have_text(  # messages already shown follow too
        "Type a question or a few words, then press Enter."
    )
    assert page.get_by_role("searchbox").get_attribute("placeholder") == (
        "Ask a question in English or Chinese"
    )
    page.reload()
    expect(page.locator("#go")).to_have_text("Search")
    assert page.evaluate("document.documentElement.lang") == "en"


def test_language_control_filters_results_and_goes_into_the_url(
    page: Page, fake_base: str
) -> None:
    page.goto(fake_base + "/")
    search(page, "metro line stations")
    assert {c["badge"] for c in cards(page)} == {"English", "Chinese"}
    with page.expect_response("**/v1/search"):
        page.get_by_label("Chinese").check()
    settled(page)
    assert "lang=zh" in page.url
    assert {c["badge"] for c in cards(page)} == {"Chinese"}
    expected = api_search(fake_base, "metro line stations", lang="zh")["results"]
    assert [c["doc_id"] for c in cards(page)] == [r["doc_id"] for r in expected]


def test_copy_citation_puts_title_date_url_and_quote_on_the_clipboard(
    page: Page, fake_base: str
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=fake_base)
    query = "How many stations does the metro line have?"
    top = api_search(fake_base, query)["results"][0]
    open_url(page, f"{fake_base}/?q={query}")
    first = page.locator(CARDS).first
    first.locator(".passage-main").get_by_role("button", name="Copy citation").click()
    expect(page.locator("#status")).to_have_text("Citation copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == (f"“{' '.join(top['text'].split())}”\n— {top['title']}, {top['date']}\n"
                      f"{top['url']}")

    cp = top["counterpart"]
    cp_doc = api_document(fake_base, cp["doc_id"])
    first.locator(".passage-counterpart").get_by_role("button", name="Copy citation").click()
    expect(page.locator("#status")).to_have_text("Citation copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.splitlines()[1:] == [f"— {cp_doc['title']}, {cp_doc['date']}", cp_doc["url"]]
    assert "".join(copied.splitlines()[0].split()) == "“" + "".join(cp["text"].split()) + "”"


def test_copy_citation_works_without_the_clipboard_api(page: Page, fake_base: str) -> None:
    # Plain-http intranet pages have no navigator.clipboard: the selection fallback copies.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=fake_base)
    page.add_init_script("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    open_url(page, f"{fake_base}/?q=metro")
    page.locator(CARDS).first.locator(".passage-main").get_by_role(
        "button", name="Copy citation").click()
    expect(page.locator("#status")).to_have_text("Citation copied.")
    title = cards(page)[0]["title"]
    copied = page.context.new_page()
    copied.goto(fake_base + "/")
    assert title in copied.evaluate("navigator.clipboard.readText()")


def test_failed_llm_answer_shows_the_extractive_fallback(page: Page, fake_base: str) -> None:
    query = "How many stations does the metro line have?"
    top = api_search(fake_base, query)["results"][0]
    span = top["answer"]
    fallback = {
        "answer": f"{' '.join(span['text'].split())} [1]", "lang": top["lang"],
        "citations": [{"n": 1, "doc_id": top["doc_id"], "title": top["title"], "url": top["url"],
                       "start": span["start"], "end": span["end"], "text": span["text"]}],
        "passages": [],
    }
    page.route("**/v1/answer", lambda route: route.fulfill(
        status=504, content_type="application/json",
        body=json.dumps({"error": {"code": "llm_timeout", "message": "the LLM timed out"},
                         "fallback": fallback})))
    open_url(page, f"{fake_base}/?q={query}")
    expect(page.locator("#answer")).to_be_visible()
    assert page.locator("#answer-text").text_content() == fallback["answer"]
    expect(page.locator("#answer-sources")).to_contain_text(top["title"])


def test_the_counterpart_highlights_the_translated_answer_and_warns_when_unsure(
    page: Page, fake_base: str
) -> None:
    query = "How many stations does the metro line have?"
    real = api_search(fake_base, query)
    top = real["results"][0]
    cp = top["counterpart"]
    assert cp is not None
    # The same answer, with the counterpart's answer translation set to its last sentence-like
    # part, then once more at a low confidence.
    cut = cp["text"].rstrip().rfind("。", 0, len(cp["text"].rstrip()) - 1) + 1
    translated = {"start": cp["start"] + cut, "end": cp["end"], "text": cp["text"][cut:]}
    assert translated["text"]

    def answer_with(confidence: float) -> Any:
        body = json.loads(json.dumps(real))
        body["results"][0]["counterpart"] |= {"answer": translated, "confidence": confidence}
        return lambda route: route.fulfill(status=200, content_type="application/json",
                                           body=json.dumps(body))

    page.goto(fake_base + "/")
    page.route("**/v1/search", answer_with(0.97))
    search(page, query)
    side = page.locator(CARDS).first.locator(".passage-counterpart")
    expect(side.locator("mark")).to_have_text(translated["text"])
    assert side.locator(".cp-unsure").count() == 0
    assert cards(page)[0]["counterpart"] == cp["text"]
    page.unroute("**/v1/search")
    page.route("**/v1/search", answer_with(0.2))
    search(page, "metro line stations")
    side = page.locator(CARDS).first.locator(".passage-counterpart")
    expect(side.locator(".cp-unsure")).to_have_text(
        "The two versions differ here: this may not be its translation.")


def test_a_passage_from_a_pdf_shows_its_page_in_the_card_and_the_document_view(
    page: Page, fake_base: str
) -> None:
    query = "How many stations does the metro line have?"
    real = api_search(fake_base, query)
    top = real["results"][0]
    document = api_document(fake_base, top["doc_id"])
    # The same results and document, as if the document were a PDF whose page 4 starts
    # just before the passage.
    body = json.loads(json.dumps(real))
    body["results"][0]["page"] = 4
    pages = [0, 0, max(0, top["start"] - 1)]

    def as_pdf(route: Route) -> None:
        route.fulfill(status=200, content_type="application/json",
                      body=json.dumps({**document, "pages": pages}))

    page.route("**/v1/search", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(body)))
    page.route(f"**/v1/documents/{top['doc_id']}", as_pdf)
    page.goto(fake_base + "/")
    search(page, query)
    expect(page.locator(CARDS).first.locator(".passage-main .page")).to_have_text("p. 4")
    assert page.locator(CARDS).nth(1).locator(".page").count() == 0
    show_in_document(page)
    expect(page.locator("#doc-meta .page")).to_have_text("p. 4")


def test_the_start_page_says_what_the_index_holds_and_offers_titles_to_try(
    page: Page, fake_base: str
) -> None:
    summary = httpx.get(f"{fake_base}/v1/summary").json()
    assert summary["releases"] >= 3 and summary["newest"]
    page.goto(fake_base + "/")
    start = page.locator("#start")
    expect(start).to_be_visible()
    expect(page.locator("#start-summary")).to_contain_text(
        f"{summary['releases']} releases, {summary['documents']} documents")
    examples = page.locator("#start-examples a")
    assert 1 <= examples.count() <= 4
    titles = {d["title"] for d in summary["newest"]}
    first = examples.first.inner_text()
    assert first in titles
    examples.first.click()
    settled(page)
    assert cards(page) and "q=" in page.url
    expect(start).to_be_hidden()


def test_a_copied_quote_keeps_a_chinese_heading_apart_from_its_paragraph(
    page: Page, fake_base: str
) -> None:
    page.goto(fake_base + "/")
    quote = page.evaluate(
        "import('/static/js/dom.js').then((m) => m.tidyQuote("
        "'二、聚焦数字创新高地\\n\\n在产业发展\\n方面，我们把数字经济\\n摆在优先位置。'))")
    assert quote == "二、聚焦数字创新高地 在产业发展方面，我们把数字经济摆在优先位置。"
