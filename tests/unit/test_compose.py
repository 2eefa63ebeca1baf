"""index.compose: numbered sources, extractive answers, the prompt and the citation filter."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from index.compose import (
    MIN_RELATIVE_SCORE,
    CitationStreamFilter,
    Source,
    display_text,
    extractive_answer,
    generated_answer,
    prompt_messages,
    sources_for,
    strip_unknown_citations,
)
from index.records import Counterpart, Hit, Span

EN_TEXT = (
    "Qingpu briefing.\n\nXu Jian, Secretary of the district committee, spoke.\n"
    "He presented the plan. Trains run every four minutes.\n\nThe park opens in May."
)
ZH_TEXT = "青浦发布会。\n\n区委书记徐建发言。他介绍了规划。列车每四分钟一班。\n\n公园五月开放。"
# Another release that repeats a sentence of the first (a re-published notice).
COPY_TEXT = "Repeat notice.\n\nTrains run every four minutes."
DOCS = {"r.en": EN_TEXT, "r.zh": ZH_TEXT, "copy.en": COPY_TEXT}


def span_of(text: str, piece: str) -> tuple[int, int]:
    start = text.index(piece)
    return start, start + len(piece)


def hit(doc_id: str, passage: str, answer: str | None, score: float,
        counterpart: str | None = None) -> Hit:
    text = DOCS[doc_id]
    lang = "en" if doc_id.endswith(".en") else "zh"
    start, end = span_of(text, passage)
    answer_span = None
    if answer is not None:
        a, b = span_of(text, answer)
        answer_span = Span(a, b, text[a:b])
    cp = None
    if counterpart is not None:
        other = "r.zh" if lang == "en" else "r.en"
        c, d = span_of(DOCS[other], counterpart)
        other_lang = "zh" if lang == "en" else "en"
        cp = Counterpart(other, other_lang, c, d, DOCS[other][c:d], 0.9,  # type: ignore[arg-type]
                         f"title {other_lang}", f"https://example.org/{other_lang}")
    return Hit(f"{doc_id}#0", doc_id, "r", lang, f"title {lang}", "2023-09-05",  # type: ignore[arg-type]
               f"https://example.org/{lang}", start, end, text[start:end], score, answer_span, cp)


EN_PLAN = (
    "Xu Jian, Secretary of the district committee, spoke.\n"
    "He presented the plan. Trains run every four minutes."
)
ZH_PLAN = "区委书记徐建发言。他介绍了规划。列车每四分钟一班。"


def assert_exact(source: Source) -> None:
    text = DOCS[source.doc_id]
    assert text[source.start : source.end] == source.text
    if source.answer is not None:
        assert source.start <= source.answer.start < source.answer.end <= source.end
        assert text[source.answer.start : source.answer.end] == source.answer.text


def test_sources_in_the_answer_language_are_used_as_found() -> None:
    h = hit("r.en", EN_PLAN, "Trains run every four minutes.", 1.0, ZH_PLAN)
    [source] = sources_for([h], "en")
    assert (source.n, source.doc_id, source.start, source.end) == (1, "r.en", h.start, h.end)
    assert source.answer == h.answer
    assert not source.via_counterpart
    assert_exact(source)


def test_a_hit_in_the_other_language_becomes_its_counterpart_with_an_exact_sentence() -> None:
    h = hit("r.en", EN_PLAN, "Trains run every four minutes.", 1.0, ZH_PLAN)
    [source] = sources_for([h], "zh")
    assert source.doc_id == "r.zh" and source.lang == "zh" and source.via_counterpart
    assert source.text == ZH_PLAN
    assert_exact(source)
    # The English answer is the last sentence of its passage: so is the chosen Chinese one.
    assert source.answer is not None and source.answer.text == "列车每四分钟一班。"


def test_hits_without_a_passage_in_the_language_are_skipped_and_overlaps_count_once() -> None:
    no_counterpart = hit("r.en", "The park opens in May.", None, 0.9)
    same = hit("r.zh", ZH_PLAN, "他介绍了规划。", 1.0)
    pivoted = hit("r.en", EN_PLAN, "He presented the plan.", 0.8, ZH_PLAN)
    sources = sources_for([same, no_counterpart, pivoted], "zh")
    assert [(s.n, s.doc_id, s.text) for s in sources] == [(1, "r.zh", ZH_PLAN)]


def test_a_counterpart_source_carries_its_own_documents_title_and_url() -> None:
    h = hit("r.en", EN_PLAN, None, 1.0, ZH_PLAN)
    [source] = sources_for([h], "zh")
    assert (source.title, source.url) == ("title zh", "https://example.org/zh")


def test_extractive_answer_quotes_answer_sentences_with_their_numbers() -> None:
    hits = [
        hit("r.en", EN_PLAN, "Trains run every four minutes.", 1.0),
        hit("r.en", "The park opens in May.", "The park opens in May.", 0.7),
        hit("r.en", "Qingpu briefing.", "Qingpu briefing.", MIN_RELATIVE_SCORE / 2),
    ]
    answer = extractive_answer(sources_for(hits, "en"), "en")
    assert answer.text == "Trains run every four minutes. [1] The park opens in May. [2]"
    assert [c.n for c in answer.citations] == [1, 2]
    assert len(answer.sources) == 3  # the weak third passage is given but not quoted
    for c in answer.citations:
        assert DOCS[c.doc_id][c.start : c.end] == c.text


def test_extractive_answer_numbers_its_citations_without_gaps() -> None:
    # The second source repeats the first's sentence, so it is not quoted: the third becomes
    # [2], and the skipped source is listed after the cited ones.
    hits = [
        hit("r.en", EN_PLAN, "Trains run every four minutes.", 1.0),
        hit("copy.en", "Trains run every four minutes.", "Trains run every four minutes.", 0.9),
        hit("r.en", "The park opens in May.", "The park opens in May.", 0.8),
    ]
    answer = extractive_answer(sources_for(hits, "en"), "en")
    assert answer.text == "Trains run every four minutes. [1] The park opens in May. [2]"
    assert [c.n for c in answer.citations] == [1, 2]
    assert [s.n for s in answer.sources] == [1, 2, 3]
    assert answer.sources[1].text == "The park opens in May."
    assert answer.citations[1].start == answer.sources[1].answer.start  # type: ignore[union-attr]


def test_extractive_answer_in_chinese_has_no_spaces_and_one_line() -> None:
    wrapped = "区委书记徐建发言。"
    hits = [hit("r.zh", ZH_PLAN, wrapped, 1.0)]
    answer = extractive_answer(sources_for(hits, "zh"), "zh")
    assert answer.text == "区委书记徐建发言。[1]"
    assert answer.citations[0].text == wrapped


def test_extractive_answer_without_sources_is_empty() -> None:
    answer = extractive_answer([], "en")
    assert (answer.text, answer.citations, answer.sources) == ("", (), ())


def test_display_text_joins_hard_wraps_without_spaces_between_chinese_characters() -> None:
    assert display_text("Xu\nJian,  Secretary\n") == "Xu Jian, Secretary"
    # A wrap inside Chinese text is no word break; a space the writer put there stays.
    assert display_text("中共青浦\n区委书记 徐建 said") == "中共青浦区委书记 徐建 said"


def test_display_text_shows_markdown_without_its_markup() -> None:
    assert display_text("## **票价**根据里程计算。") == "票价根据里程计算。"
    assert display_text("- See [the map](https://example.org/map) for `Line 17`.") == (
        "See the map for Line 17.")


def test_prompt_numbers_the_passages_and_demands_citations_in_the_answer_language() -> None:
    hits = [hit("r.zh", ZH_PLAN, None, 1.0), hit("r.zh", "公园五月开放。", None, 0.5)]
    system, user = prompt_messages("公园什么时候开放？", sources_for(hits, "zh"), "zh")
    assert system["role"] == "system" and user["role"] == "user"
    assert "Chinese" in system["content"] and "[1], [2]" in system["content"]
    assert f"[1] title zh (2023-09-05)\n{ZH_PLAN}" in user["content"]
    assert "[2] title zh (2023-09-05)\n公园五月开放。" in user["content"]
    assert user["content"].endswith("Question: 公园什么时候开放？")


def test_unknown_citations_are_removed_with_the_space_before_them() -> None:
    text = ("Xu Jian is Secretary [1]. He runs the moon base [9]. Both [1, 9] and [2][7]. "
            "是［9］的。")
    assert strip_unknown_citations(text, {1, 2}) == (
        "Xu Jian is Secretary [1]. He runs the moon base. Both [1] and [2]. 是的。"
    )


def test_generated_answer_cites_only_given_passages_once_each_in_order() -> None:
    hits = [hit("r.en", EN_PLAN, None, 1.0), hit("r.en", "The park opens in May.", None, 0.5)]
    sources = sources_for(hits, "en")
    answer = generated_answer("It opens in May [2]. Xu spoke [1][9]. Again [2].", sources, "en")
    assert answer.text == "It opens in May [2]. Xu spoke [1]. Again [2]."
    assert [(c.n, c.text) for c in answer.citations] == [(2, "The park opens in May."),
                                                         (1, EN_PLAN)]


PIECES = st.lists(
    st.sampled_from(["[", "]", "1", "9", "12", ",", " ", "a", "。", "［", "］", "x y"]), max_size=40
)


@given(PIECES, st.data())
def test_the_stream_filter_equals_the_whole_text_filter_for_any_split(
    parts: list[str], data: st.DataObject
) -> None:
    text = "".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=8)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    stream = CitationStreamFilter({1, 12})
    shown = "".join(stream.feed(p) for p in pieces) + stream.finish()
    assert shown == strip_unknown_citations(text, {1, 12})


def test_the_stream_filter_holds_back_a_marker_split_across_pieces() -> None:
    stream = CitationStreamFilter({1})
    assert stream.feed("moon base [") == "moon base"
    assert stream.feed("9") == ""
    assert stream.feed("]. Done [1") == ". Done"
    assert stream.feed("].") + stream.finish() == " [1]."
