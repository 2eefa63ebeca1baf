"""Chunking: exact spans, paragraph-sized passages, the token budget, and the cleaned text view."""

from __future__ import annotations

import json
import os
import statistics
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.config import ChunkPlan, IndexSettings
from index.errors import DocumentError, QiaoError
from index.ingest.chunk import chunk_document, embedding_text
from index.ingest.textview import clean_view
from index.records import Document, Lang, Passage
from tests.fakes import FakeEmbedder

XQUAD_DIR = Path(
    os.environ.get(
        "QIAO_XQUAD_DIR", Path(__file__).resolve().parents[2].parent / "shared" / "xquad"
    )
)
SEED = Path(__file__).resolve().parents[2].parent / "shared" / "seed"
FAKE = FakeEmbedder()
# Project defaults (IndexSettings): (target_chars, max_chars) per language.
LENGTHS: dict[Lang, tuple[int, int]] = {"en": (600, 850), "zh": (200, 300)}


def per_char_tokens(texts: list[str]) -> list[int]:
    """A tokenizer stand-in: one token per character plus two special tokens."""
    return [len(t) + 2 for t in texts]


def doc_of(text: str, lang: Lang = "en", title: str = "Title") -> Document:
    return Document(f"d.{lang}", "d", lang, title, text)


def chunk(
    text: str,
    *,
    target: int = 600,
    maximum: int = 850,
    max_tokens: int = 10_000,
    count: Callable[[list[str]], list[int]] = per_char_tokens,
    lang: Lang = "en",
) -> list[Passage]:
    return chunk_document(
        doc_of(text, lang),
        count_tokens=count,
        max_tokens=max_tokens,
        target_chars=target,
        max_chars=maximum,
    )


def assert_span_invariants(doc: Document, passages: list[Passage]) -> None:
    """The contract every chunking satisfies, whatever the input."""
    text = doc.text
    assert [p.ordinal for p in passages] == list(range(len(passages)))
    previous_end = 0
    covered = bytearray(len(text))
    for p in passages:
        assert p.doc_id == doc.doc_id
        assert text[p.start : p.end] == p.text
        assert previous_end <= p.start < p.end <= len(text)
        assert not p.text[0].isspace() and not p.text[-1].isspace()
        covered[p.start : p.end] = b"\x01" * (p.end - p.start)
        previous_end = p.end
    missed = [i for i, c in enumerate(text) if not c.isspace() and not covered[i]]
    assert missed == []


# --- paragraph-sized passages ----------------------------------------------------------------


def test_paragraph_that_fits_is_exactly_one_passage() -> None:
    para1 = "First paragraph, " + "word " * 40 + "end."
    para2 = "Second paragraph,\nhard wrapped, " + "word " * 60 + "end."
    text = f"  {para1}\n\n \t\n{para2}\n"
    passages = chunk(text, target=150, maximum=400)
    assert [p.text for p in passages] == [para1, para2]


def test_short_paragraphs_merge_forward_up_to_target() -> None:
    one_liner = "A one-liner."
    body = "Body sentence. " * 10 + "End."  # 154 chars: not short for target 300
    long_body = ("Long sentence here. " * 15).strip()  # 299 chars: with the one-liner > 300
    text = f"{one_liner}\n\n{body}\n\n{body}\n\n{one_liner}\n\n{long_body}"
    passages = chunk(text, target=300, maximum=400)
    assert [p.text for p in passages] == [f"{one_liner}\n\n{body}", body, one_liner, long_body]


def test_merging_stops_once_the_group_is_no_longer_short() -> None:
    short = "Short line."
    text = "\n\n".join([short, short, "x" * 50 + ".", short])
    # Short means < target/3 = 40 chars: "short, short" is still short, adding 51 chars is not.
    passages = chunk(text, target=120, maximum=200)
    assert [p.text for p in passages] == [
        f"{short}\n\n{short}\n\n{'x' * 50}.",
        short,
    ]


def test_heading_stays_with_the_long_paragraph_it_introduces() -> None:
    heading = "1. Prioritizing strategic empowerment"
    sentence = "The district grows quickly and plans more. "
    body = (sentence * 12).strip()  # 515 chars: must be split for max 300
    passages = chunk(f"{heading}\n\n{body}", target=200, maximum=300)
    assert passages[0].text.startswith(f"{heading}\n\nThe district")
    assert all(p.text != heading for p in passages)
    assert all(len(p.text) <= 300 for p in passages)


def test_long_paragraph_splits_at_sentences_into_balanced_pieces() -> None:
    sentences = [f"Sentence number {i:02d} says something useful here." for i in range(12)]
    text = " ".join(sentences)  # 12 x 46 chars + 11 spaces = 563
    passages = chunk(text, target=150, maximum=250)
    # 563 chars need 3 pieces of at most 250 (5 + 5 + 2 sentences); balanced is 4 + 4 + 4.
    assert [p.text for p in passages] == [
        " ".join(sentences[0:4]),
        " ".join(sentences[4:8]),
        " ".join(sentences[8:12]),
    ]


def test_chinese_paragraph_splits_after_sentence_ends() -> None:
    sentence = "青浦区正在建设数字创新高地，推动高质量发展。"  # 22 chars
    text = sentence * 20  # 440 chars, max 300
    passages = chunk(text, target=200, maximum=300, lang="zh")
    assert len(passages) == 2
    assert [p.text for p in passages] == [sentence * 10, sentence * 10]


def test_overlong_sentence_splits_at_clause_punctuation() -> None:
    clause = "在青浦区的东部地区建设国际化的会展产业园区，"  # 22 chars, ends with a comma
    text = clause * 20 + "完成。"
    passages = chunk(text, target=100, maximum=150, lang="zh")
    assert all(len(p.text) <= 150 for p in passages)
    assert all(p.text.endswith(("，", "。")) for p in passages)
    assert "".join(p.text for p in passages) == text


def test_text_without_any_boundary_is_cut_hard_but_keeps_combining_marks() -> None:
    text = "e\u0301" * 100  # 200 code points, every second one a combining accent
    passages = chunk(text, target=30, maximum=51)
    assert all(len(p.text) <= 51 for p in passages)
    assert all(unicodedata.combining(p.text[0]) == 0 for p in passages)
    assert "".join(p.text for p in passages) == text


def test_whitespace_only_document_has_no_passages() -> None:
    assert chunk("") == []
    assert chunk(" \n\n\t\u3000\n ") == []


def test_chunk_settings_reject_inconsistent_lengths() -> None:
    with pytest.raises(ValueError, match="target_chars"):
        chunk("Some text.", target=500, maximum=100)
    settings = IndexSettings()
    assert ChunkPlan.from_settings(settings).for_lang("zh") == (
        settings.chunk_target_chars_zh, settings.chunk_max_chars_zh
    )
    with pytest.raises(QiaoError, match="QIAO_CHUNK_TARGET_CHARS_EN"):
        ChunkPlan(900, 280, 800, 500)


# --- token budget ----------------------------------------------------------------------------


def test_token_budget_splits_passages_and_counts_in_batches() -> None:
    calls: list[int] = []

    def counting(texts: list[str]) -> list[int]:
        calls.append(len(texts))
        return per_char_tokens(texts)

    # 191, 143 and 95 chars: none short enough (< 100) to merge, all over an 80-token budget.
    paragraphs = ["Alpha beta gamma delta. " * 8, "Epsilon zeta eta. " * 8, "Theta iota. " * 8]
    doc = doc_of("\n\n".join(p.strip() for p in paragraphs))
    passages = chunk_document(
        doc, count_tokens=counting, max_tokens=80, target_chars=300, max_chars=850
    )
    assert_span_invariants(doc, passages)
    costs = per_char_tokens([embedding_text(doc, p) for p in passages])
    assert max(costs) <= 80
    assert len(passages) > len(paragraphs)
    # One batched call per splitting round, never one call per passage.
    assert calls[0] == len(paragraphs)
    assert len(calls) <= 4


def test_title_too_long_for_the_token_window_is_a_document_error() -> None:
    doc = doc_of("Some text.", title="A very long title " * 20)
    with pytest.raises(DocumentError, match="title"):
        chunk_document(
            doc, count_tokens=per_char_tokens, max_tokens=50, target_chars=600, max_chars=850
        )


def test_embedding_text_adds_title_context_but_span_excludes_it() -> None:
    text = "# Goals\n\nThe **district** plans\na [new park](http://x.test).\n\n青浦区\n建设公园。"
    doc = Document("r.en", "r", "en", "Qingpu  briefing\n2023", text)
    passages = chunk_document(
        doc, count_tokens=per_char_tokens, max_tokens=500, target_chars=600, max_chars=850
    )
    assert len(passages) == 1
    assert passages[0].text == text.strip()
    assert embedding_text(doc, passages[0]) == (
        "Qingpu briefing 2023\nGoals The district plans a new park. 青浦区建设公园。"
    )


# --- property test over random documents ------------------------------------------------------

_PIECES = [
    "Mr.", "e.g.", "U.S.", "3.5", "No. 5", "J. Smith", "Hello", "world", "The", "district",
    "。", "！", "？", "；", "…", ".", "!", "?", "...", "”", "’", "」", "）", '"', "'", "“", "「",
    "，", ",", "：", "青浦", "中", "文", "高质量发展", " ", "  ", "\t", "\n", "\n\n", " \n\t\n",
    "\u3000", "😀", "👍🏽", "👩\u200d💻", "e\u0301", "\u0301", "# ", "- ", "**", "`", "[a](b)",
    "x" * 40, "长" * 30,
]  # fmt: skip

random_text = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=4)), max_size=80).map(
    "".join
)


@settings(max_examples=200, deadline=None)
@given(
    text=random_text,
    target=st.integers(1, 80),
    extra=st.integers(0, 80),
    max_tokens=st.integers(12, 60),
    use_fake=st.booleans(),
)
def test_passages_are_exact_ordered_complete_and_within_budget(
    text: str, target: int, extra: int, max_tokens: int, use_fake: bool
) -> None:
    doc = doc_of(text, title="T")
    count = FAKE.count_tokens if use_fake else per_char_tokens
    passages = chunk_document(
        doc,
        count_tokens=count,
        max_tokens=max_tokens,
        target_chars=target,
        max_chars=target + extra,
    )
    assert_span_invariants(doc, passages)
    if passages:
        assert max(count([embedding_text(doc, p) for p in passages])) <= max_tokens


def test_two_megabyte_document_chunks_in_seconds() -> None:
    paragraph = (
        "Mr. Xu said the district\nwill build 3.5 km of roads. " * 6
        + "青浦区将建设数字创新高地。" * 10
        + "\n\n"
    )
    text = (paragraph * (2_000_000 // len(paragraph) + 1))[:2_000_000]
    doc = doc_of(text)
    started = time.perf_counter()
    passages = chunk_document(
        doc, count_tokens=FAKE.count_tokens, max_tokens=512, target_chars=600, max_chars=850
    )
    elapsed = time.perf_counter() - started
    assert passages[-1].end == len(text.rstrip())
    # A quadratic step would take minutes here; the bound is loose for slow CI machines.
    assert elapsed < 10


# --- cleaned view with an offset map ----------------------------------------------------------


def test_view_joins_hard_wraps_and_strips_markdown() -> None:
    text = "## Title\n\n> Some **bold** text\nwrapped `here`.\n- item [one](u.html)\n中文硬\n换行"
    view = clean_view(text)
    assert view.text == "Title Some bold text wrapped here. item one 中文硬换行"
    start, end = view.source_span(view.text.index("bold"), view.text.index("bold") + 4)
    assert text[start:end] == "bold"
    start, end = view.source_span(view.text.index("wrapped"), len(view.text))
    assert text[start:end] == "wrapped `here`.\n- item [one](u.html)\n中文硬\n换行"


def test_view_of_a_range_maps_to_absolute_offsets() -> None:
    text = "skip this.  Keep\n\tthese  words. skip"
    view = clean_view(text, 11, 31)
    assert view.text == "Keep these words."
    assert view.source_span(0, len(view.text)) == (12, 31)
    assert view.source_span(4, 5) == (16, 18)  # the space stands for "\n\t"


view_text = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=4)), max_size=60).map(
    "".join
)


@settings(max_examples=200, deadline=None)
@given(text=view_text, data=st.data())
def test_every_view_char_comes_from_the_source_it_maps_to(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    view = clean_view(text, start, end)
    previous = (start, start)
    for i, char in enumerate(view.text):
        s, e = view.source_span(i, i + 1)
        assert start <= s < e <= end
        assert previous[1] <= s  # monotonic, non-overlapping
        if e - s == 1 and text[s] == char:
            pass
        else:
            assert char == " " and text[s:e].isspace(), (i, char, text[s:e])
        previous = (s, e)
    i = data.draw(st.integers(0, len(view.text)))
    j = data.draw(st.integers(i, len(view.text)))
    s, e = view.source_span(i, j)
    assert start <= s <= e <= end
    assert view.source_span(0, len(view.text))[0] <= s


# --- real corpora -----------------------------------------------------------------------------


def xquad_documents(lang: Lang) -> list[tuple[Document, list[str]]]:
    path = XQUAD_DIR / f"xquad-dev.{lang}.json"
    if not path.exists():
        pytest.skip(f"XQuAD not found at {path} (set QIAO_XQUAD_DIR)")
    articles = json.loads(path.read_text(encoding="utf-8"))["data"]
    out = []
    for n, article in enumerate(articles):
        paragraphs = [p["context"] for p in article["paragraphs"]]
        doc = Document(f"xq{n}.{lang}", f"xq{n}", lang, article["title"], "\n\n".join(paragraphs))
        out.append((doc, paragraphs))
    return out


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_xquad_passages_are_about_one_paragraph(lang: Lang) -> None:
    target, maximum = LENGTHS[lang]
    lengths: list[int] = []
    for doc, paragraphs in xquad_documents(lang):
        passages = chunk_document(
            doc,
            count_tokens=FAKE.count_tokens,
            max_tokens=FAKE.max_tokens,
            target_chars=target,
            max_chars=maximum,
        )
        assert_span_invariants(doc, passages)
        lengths.extend(len(p.text) for p in passages)
        offset = 0
        for para in paragraphs:
            lead = len(para) - len(para.lstrip())
            start, end = offset + lead, offset + len(para.rstrip())
            offset += len(para) + 2
            overlapping = [p for p in passages if p.start < end and p.end > start]
            if target / 3 <= end - start <= maximum:
                # A paragraph that fits and is not short is one passage, which only starts
                # earlier when short paragraphs before it merged into it.
                assert len(overlapping) == 1
                only = overlapping[0]
                assert only.end == end
                assert only.start == start or len(only.text) <= target
            for p in overlapping:
                if p.start < start or p.end > end:
                    # Only short paragraphs merge, and a merged passage stays within target.
                    assert len(p.text) <= target
    assert statistics.mean(lengths) <= maximum
    assert max(lengths) <= maximum


def test_seed_release_headings_are_never_passages_of_their_own() -> None:
    path = SEED / "qingpu-briefing-2023-09-05.en.txt"
    if not path.exists():
        pytest.skip(f"seed release not found at {path}")
    doc = doc_of(path.read_text(encoding="utf-8"))
    passages = chunk_document(
        doc, count_tokens=FAKE.count_tokens, max_tokens=512, target_chars=600, max_chars=850
    )
    assert_span_invariants(doc, passages)
    headings = [
        line for line in doc.text.split("\n\n") if line.strip()[:3] in ("1. ", "2. ", "3. ")
    ]
    assert len(headings) == 3
    for heading in headings:
        holder = next(p for p in passages if heading.strip() in p.text)
        assert len(holder.text) > len(heading.strip()) + 200
    assert max(len(p.text) for p in passages) <= 850
