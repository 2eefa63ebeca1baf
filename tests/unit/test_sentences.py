"""Sentence and paragraph boundaries: concrete English/Chinese cases and the span invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.ingest.sentences import paragraph_spans, sentence_spans


def sentences(text: str) -> list[str]:
    spans = sentence_spans(text)
    return [text[s:e] for s, e in spans]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Mr. Smith paid Dr. Jones. They met on St. Mark's Square.",
            ["Mr. Smith paid Dr. Jones.", "They met on St. Mark's Square."],
        ),
        (
            "The rate rose 3.5 percent. It was 2.75 before.",
            ["The rate rose 3.5 percent.", "It was 2.75 before."],
        ),
        (
            "See No. 5 for the rules. No. That is wrong.",
            ["See No. 5 for the rules.", "No.", "That is wrong."],
        ),
        (
            "J. R. R. Tolkien wrote it. He was British.",
            ["J. R. R. Tolkien wrote it.", "He was British."],
        ),
        (
            "The U.S. economy grew, e.g. in Jan. and Feb. Exports rose.",
            ["The U.S. economy grew, e.g. in Jan. and Feb. Exports rose."],
        ),
        (
            "It opened at 9 a.m. Visitors came from Apple Inc. and others. Prices fell.",
            ["It opened at 9 a.m. Visitors came from Apple Inc. and others.", "Prices fell."],
        ),
        ("He paused... Then he spoke. Done.", ["He paused... Then he spoke.", "Done."]),
        (
            '"Are you sure?" he asked. "Yes!" She nodded.',
            ['"Are you sure?" he asked.', '"Yes!"', "She nodded."],
        ),
        (
            "He said “stop.” Then he left. (It was late.) Nobody knew.",
            ["He said “stop.”", "Then he left.", "(It was late.)", "Nobody knew."],
        ),
        (
            "It ends here. and not here. 2023 was good.",
            ["It ends here. and not here.", "2023 was good."],
        ),
    ],
)
def test_english_sentences(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "他说：“今天下雨了。”我们没有出门！明天呢？再说吧；总之……就这样",
            ["他说：“今天下雨了。”", "我们没有出门！", "明天呢？", "再说吧；", "总之……", "就这样"],
        ),
        (
            "（这是括号里的话。）接着说。「引用。」『再引用！』《书名》很好。",
            ["（这是括号里的话。）", "接着说。", "「引用。」", "『再引用！』", "《书名》很好。"],
        ),
        ("真的吗?是的!好", ["真的吗?", "是的!", "好"]),
        ("GDP增长了3.5%。这是好消息。", ["GDP增长了3.5%。", "这是好消息。"]),
        (
            "青浦区，位于上海市西部，是“长三角”的中心。",
            ["青浦区，位于上海市西部，是“长三角”的中心。"],
        ),
    ],
)
def test_chinese_sentences(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_mixed_english_and_chinese() -> None:
    text = "Qingpu is in Shanghai. 青浦区位于上海西部。It borders Jiangsu. 它与江苏接壤！"
    assert sentences(text) == [
        "Qingpu is in Shanghai.",
        "青浦区位于上海西部。",
        "It borders Jiangsu.",
        "它与江苏接壤！",
    ]


def test_hard_wrapped_newline_does_not_end_a_sentence() -> None:
    text = (
        "This sentence is\nwrapped across lines. The next one\nis too.\n"
        "这是一个\n被换行的句子。下一句"
    )
    assert sentences(text) == [
        "This sentence is\nwrapped across lines.",
        "The next one\nis too.",
        "这是一个\n被换行的句子。",
        "下一句",
    ]


def test_blank_line_always_ends_a_sentence() -> None:
    text = "A heading without a period\n\nBody text, no period\n \t \nLast 标题\n\n\n正文"
    assert sentences(text) == [
        "A heading without a period",
        "Body text, no period",
        "Last 标题",
        "正文",
    ]


def test_list_number_at_line_start_is_not_a_sentence() -> None:
    text = "1. Prioritizing strategic empowerment area and\nbuilding a platform"
    assert sentences(text) == [text]


def test_spans_are_absolute_offsets_of_the_requested_range() -> None:
    text = "Skip me. Take this one. And this!  Not this."
    #       0         1         2         3         4
    #       0123456789012345678901234567890123456789012345
    assert sentence_spans(text, 9, 34) == [(9, 23), (24, 33)]
    assert sentence_spans(text, 5, 5) == []
    assert sentence_spans("   \n\n\t ") == []


def test_paragraphs_are_separated_by_blank_lines_only() -> None:
    text = "  First line\nstill first\n\nSecond\n   \n\nThird  \n"
    assert paragraph_spans(text) == [(2, 24), (26, 32), (38, 43)]
    assert [text[s:e] for s, e in paragraph_spans(text)] == [
        "First line\nstill first",
        "Second",
        "Third",
    ]


_PIECES = [
    "Mr.", "Dr.", "e.g.", "U.S.", "3.5", "No.", "J.", "etc.", "Hello", "world", "The", "it",
    "。", "！", "？", "；", "…", "……", ".", "!", "?", "...", "”", "’", "」", "』", "）", ")",
    '"', "'", "“", "「", "中", "文", "青浦", " ", "  ", "\t", "\n", "\n\n", " \n \n", "\u3000",
    "😀", "e\u0301", "1.", "\u200b",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=3)), max_size=60).map("".join),
    st.data(),
)
def test_sentences_cover_every_non_whitespace_char_once(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    spans = sentence_spans(text, start, end)
    covered = [0] * len(text)
    previous_end = start
    for s, e in spans:
        assert previous_end <= s < e <= end
        assert not text[s].isspace() and not text[e - 1].isspace()
        previous_end = e
        for i in range(s, e):
            covered[i] += 1
    assert max(covered, default=0) <= 1
    assert all(covered[i] == 1 for i in range(start, end) if not text[i].isspace())
    # A paragraph break never falls inside a sentence.
    assert all(not paragraph_spans(text, s, e)[1:] for s, e in spans)


def test_lines_that_each_end_a_sentence_are_sentences() -> None:
    # One sentence per line (as parallel news and subtitles are written): a headline without a
    # period is a sentence of its own, not glued to the next line.
    text = "Floods hit the coast\nThousands were moved to safety.\nRoads reopened on Monday.\n"
    assert sentences(text) == ["Floods hit the coast", "Thousands were moved to safety.",
                               "Roads reopened on Monday."]


def test_hard_wrapped_prose_keeps_its_sentences_across_lines() -> None:
    # Few lines end like a sentence: the newlines are wraps, not sentence ends.
    text = ("The district will build a new park\nnear the lake, and the city will\n"
            "fund the bridge. Work starts in May.")
    assert sentences(text) == ["The district will build a new park\nnear the lake, and the "
                               "city will\nfund the bridge.", "Work starts in May."]


def test_a_chinese_line_ending_in_a_closing_quote_ends_a_sentence() -> None:
    text = "他说：“我们会按时完成”\n工程将于五月开工。"
    assert sentences(text) == ["他说：“我们会按时完成”", "工程将于五月开工。"]
