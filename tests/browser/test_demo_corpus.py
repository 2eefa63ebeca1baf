"""The search page over the demo corpus with the real model: what a reader sees for an English
and a Chinese question, the document view, the URL, the answer box, and screenshots."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import (
    CARDS,
    NewPage,
    api_document,
    api_search,
    cards,
    open_url,
    search,
    settled,
    shoot,
    show_in_document,
)

pytestmark = [pytest.mark.browser, pytest.mark.model]

RELEASE = "qingpu-briefing-2023-09-05"
EN_QUESTION = "Who is the Secretary of the CPC Qingpu District Committee?"
ZH_QUESTION = "青浦区委书记是谁？"


def search_url(base: str, query: str, lang: str | None = None) -> str:
    params = {"q": query} | ({"lang": lang} if lang else {})
    return f"{base}/?{urlencode(params)}"


def test_english_question_shows_the_release_with_the_answer_highlighted(
    page: Page, demo_base: str
) -> None:
    expected = api_search(demo_base, EN_QUESTION)["results"]
    top = expected[0]
    assert top["release_id"] == RELEASE and top["lang"] == "en"
    assert "Xu\nJian" in top["answer"]["text"]
    page.goto(demo_base + "/")
    search(page, EN_QUESTION)
    shown = cards(page)
    assert [(c["doc_id"], c["start"]) for c in shown] == [
        (r["doc_id"], r["start"]) for r in expected
    ]
    assert shown[0]["title"] == top["title"]
    assert shown[0]["mark"] == top["answer"]["text"]
    assert shown[0]["badge"] == "English"
    assert shown[0]["counterpart"] == top["counterpart"]["text"]
    assert "徐建" in shown[0]["counterpart"]


def test_chinese_question_from_the_url_shows_chinese_passages_with_the_answer(
    page: Page, demo_base: str
) -> None:
    expected = api_search(demo_base, ZH_QUESTION, lang="zh")["results"]
    top = expected[0]
    assert top["release_id"] == RELEASE and "徐建" in top["answer"]["text"]
    open_url(page, search_url(demo_base, ZH_QUESTION, "zh"))
    assert page.get_by_role("searchbox").input_value() == ZH_QUESTION
    assert page.get_by_label("Chinese").is_checked()
    shown = cards(page)
    assert [(c["doc_id"], c["start"]) for c in shown] == [
        (r["doc_id"], r["start"]) for r in expected
    ]
    assert {c["badge"] for c in shown} == {"Chinese"}
    assert shown[0]["mark"] == top["answer"]["text"]
    assert shown[0]["counterpart"] == top["counterpart"]["text"]


def test_back_button_returns_to_the_previous_query(page: Page, demo_base: str) -> None:
    open_url(page, search_url(demo_base, ZH_QUESTION, "zh"))
    first = cards(page)
    search(page, "digital innovation highland")
    assert "digital" in page.url and "lang=zh" in page.url
    with page.expect_response("**/v1/search"):
        page.go_back()
    settled(page)
    expect(page.get_by_role("searchbox")).to_have_value(ZH_QUESTION)
    assert page.get_by_label("Chinese").is_checked()
    assert cards(page) == first


def test_show_in_document_highlights_exactly_the_span_in_both_versions(
    page: Page, demo_base: str
) -> None:
    top = api_search(demo_base, EN_QUESTION)["results"][1]  # not at the top of the document
    open_url(page, search_url(demo_base, EN_QUESTION))
    show_in_document(page, 1)
    mark = page.locator("#doc mark")
    expect(mark).to_be_in_viewport()
    en = api_document(demo_base, top["doc_id"])
    assert mark.text_content() == en["text"][top["start"] : top["end"]]
    assert page.locator("#doc-text").text_content() == en["text"]
    assert page.locator("#doc-title").text_content() == en["title"]

    cp = top["counterpart"]
    zh = api_document(demo_base, cp["doc_id"])
    page.get_by_role("button", name="Show the Chinese version").click()
    expect(page.locator("#doc-title")).to_have_text(zh["title"])
    expect(mark).to_be_in_viewport()
    assert mark.text_content() == zh["text"][cp["start"] : cp["end"]]

    page.go_back()  # to the English version, still highlighted
    expect(page.locator("#doc-title")).to_have_text(en["title"])
    assert mark.text_content() == en["text"][top["start"] : top["end"]]
    page.go_back()  # to the results
    expect(page.locator(CARDS).first).to_be_visible()


def _answer_route(body: dict[str, Any]) -> Any:
    def handle(route: Route) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))
    return handle


def test_answer_box_cites_passages_and_opens_them(page: Page, demo_base: str) -> None:
    results = api_search(demo_base, EN_QUESTION, lang="en")["results"]
    cited = results[0]
    zh = api_document(demo_base, f"{RELEASE}.zh")
    zh_fact = "中共青浦区委书记徐建"
    zh_start = zh["text"].index(zh_fact)
    citations = [
        {"n": 1, "doc_id": cited["doc_id"], "title": cited["title"], "url": cited["url"],
         "start": cited["answer"]["start"], "end": cited["answer"]["end"],
         "text": cited["answer"]["text"]},
        # Not among the English results: clicking it opens the Chinese document at the span.
        {"n": 2, "doc_id": zh["doc_id"], "title": zh["title"], "url": zh["url"],
         "start": zh_start, "end": zh_start + len(zh_fact), "text": zh_fact},
    ]
    answer = {"answer": "Xu Jian <b>chairs</b> the committee [1], also in Chinese [2]; see [9].",
              "lang": "en", "citations": citations, "passages": []}
    page.route("**/v1/answer", _answer_route(answer))
    open_url(page, search_url(demo_base, EN_QUESTION, "en"))
    box = page.locator("#answer")
    expect(box).to_be_visible()
    assert page.locator("#answer-text").text_content() == answer["answer"]
    assert page.locator("#answer b").count() == 0
    buttons = page.locator("#answer-text button")
    assert buttons.all_text_contents() == ["[1]", "[2]"]  # [9] cites nothing: plain text

    buttons.nth(0).click()
    focused = page.evaluate("document.activeElement.dataset.docId")
    assert focused == cited["doc_id"]
    assert page.evaluate("document.activeElement.dataset.start") == str(cited["start"])

    buttons.nth(1).click()
    expect(page.locator("#doc mark")).to_be_visible()
    assert page.locator("#doc mark").text_content() == zh_fact
    page.go_back()
    expect(box).to_be_visible()


def test_no_answer_endpoint_shows_no_answer_box(page: Page, demo_base: str) -> None:
    page.route("**/v1/answer", lambda route: route.fulfill(
        status=404, content_type="application/json",
        body=json.dumps({"error": {"code": "not_found", "message": "no such endpoint"}})))
    open_url(page, search_url(demo_base, EN_QUESTION))
    assert cards(page)
    expect(page.locator("#answer")).to_be_hidden()


@pytest.mark.parametrize("width", [1280, 360])
def test_screenshots_of_english_and_chinese_searches(
    new_page: NewPage, demo_base: str, width: int
) -> None:
    """Results and document view written to SHOTS for a person to look at; the checks here
    are the layout's basics (no sideways scrolling, the highlight in view)."""
    for query, locale, name in [
        (EN_QUESTION, "en-US", "en"),
        ("数字创新高地有哪些计划？", "zh-CN", "zh"),
    ]:
        page = new_page(width=width, height=900, locale=locale)
        with page.expect_response("**/v1/answer") as answer:
            open_url(page, search_url(demo_base, query))
        assert cards(page)
        if answer.value.ok:  # the answer box is part of the picture when the server has one
            expect(page.locator("#answer")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shoot(page, f"search-{name}-{width}")
        show_in_document(page)
        expect(page.locator("#doc mark")).to_be_in_viewport()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shoot(page, f"document-{name}-{width}")


def test_a_question_nothing_answers_says_so_above_the_weak_matches(
    page: Page, demo_base: str
) -> None:
    assert api_search(demo_base, "qwertyuiop")["answerable"] is False
    page.goto(demo_base + "/")
    search(page, "qwertyuiop")
    notice = page.locator("#no-answer")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("No passage in the index answers this")
    assert cards(page)  # the closest passages are still listed below
    expect(page.locator("#answer")).to_be_hidden()
    search(page, EN_QUESTION)  # a real question clears the notice
    expect(notice).to_be_hidden()
