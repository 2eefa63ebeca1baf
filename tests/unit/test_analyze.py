"""The analyzer: jieba search-mode segmentation for Chinese, Snowball + stop words for English."""

from __future__ import annotations

from pathlib import Path

import pytest
import Stemmer

from index.errors import QiaoError
from index.indexes.analyze import CHINESE_STOP_WORDS, ENGLISH_STOP_WORDS, Analyzer


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


def test_long_chinese_word_also_yields_its_dictionary_subwords(analyzer: Analyzer) -> None:
    terms = analyzer.terms("浦东新区发布新政策")
    assert {"浦东", "新区", "浦东新区", "发布"} <= set(terms)


def test_chinese_is_segmented_into_words_not_characters(analyzer: Analyzer) -> None:
    terms = analyzer.terms("虹桥国际中央商务区")
    assert "虹桥" in terms
    assert "虹" not in terms and "桥" not in terms


def test_chinese_stop_words_and_punctuation_are_dropped(analyzer: Analyzer) -> None:
    terms = analyzer.terms("青浦区的发展和创新，是“高质量”的！")
    assert {"青浦区", "发展", "创新"} <= set(terms)
    assert not set(terms) & CHINESE_STOP_WORDS
    assert all(ch.isalnum() for term in terms for ch in term)


def test_english_is_lowercased_stemmed_and_stop_words_removed(analyzer: Analyzer) -> None:
    assert analyzer.terms("The Developing Districts of Shanghai") == [
        "develop",
        "district",
        "shanghai",
    ]


def test_snowball_conflates_inflections_to_one_term(analyzer: Analyzer) -> None:
    forms = ["developing", "development", "develops", "developed", "developer", "develop"]
    assert {analyzer.terms(form)[0] for form in forms} == {"develop"}
    # ...but keeps apart words that only share a prefix.
    assert analyzer.terms("policy") != analyzer.terms("police")


def test_possessives_and_curly_apostrophes_reduce_to_the_word(analyzer: Analyzer) -> None:
    assert analyzer.terms("Qingpu’s") == analyzer.terms("Qingpu's") == ["qingpu"]
    # "it's" stems to the stop word "it" and is dropped.
    assert analyzer.terms("it’s") == []


def test_numbers_are_kept_whole(analyzer: Analyzer) -> None:
    terms = analyzer.terms("1,200 residents; growth of 3.5% in 2023 (5G)")
    assert {"1200", "3.5", "2023", "5g"} <= set(terms)


def test_hyphens_split_words(analyzer: Analyzer) -> None:
    assert analyzer.terms("state-of-the-art e-commerce") == ["state", "art", "e", "commerc"]


def test_mixed_text_analyses_each_script_with_its_own_analyser(analyzer: Analyzer) -> None:
    terms = analyzer.terms("Qingpu青浦区 hub and 2023年的Hongqiao虹桥")
    assert terms[:3] == ["qingpu", "青浦", "青浦区"]
    assert {"hub", "2023", "年", "hongqiao", "虹桥"} <= set(terms)
    assert "and" not in terms and "的" not in terms


def test_full_width_forms_match_ascii(analyzer: Analyzer) -> None:
    assert analyzer.terms("ＧＤＰ增长１２％") == analyzer.terms("GDP增长12%")


def test_batch_equals_one_by_one(analyzer: Analyzer) -> None:
    texts = ["青浦区委书记徐建", "", "Digital innovation highland", "the of and"]
    assert analyzer.terms_batch(texts) == [analyzer.terms(t) for t in texts]
    assert analyzer.terms("") == [] and analyzer.terms("the of and") == []


def test_english_stop_list_is_lucenes_and_stems_are_pystemmer(analyzer: Analyzer) -> None:
    assert len(ENGLISH_STOP_WORDS) == 33 and "the" in ENGLISH_STOP_WORDS
    stemmer = Stemmer.Stemmer("english")
    words = ["innovation", "highlands", "committees", "chairs", "running"]
    assert analyzer.terms(" ".join(words)) == stemmer.stemWords(words)


def test_user_terms_are_segmented_whole_and_stay_local(analyzer: Analyzer, tmp_path: Path) -> None:
    text = "打造数字创新高地，建设水乡客厅。"
    plain = analyzer.terms(text)
    assert "数字创新高地" not in plain and "水乡客厅" not in plain

    user_dict = tmp_path / "user.dict"
    user_dict.write_text("\ufeff数字创新高地 10 n\n\n", encoding="utf-8")
    custom = Analyzer(user_dict=user_dict)
    assert "数字创新高地" in custom.terms(text)
    assert "水乡客厅" not in custom.terms(text)
    before = custom.fingerprint

    custom.add_terms(["水乡客厅"])
    assert "水乡客厅" in custom.terms(text)
    assert custom.fingerprint != before != analyzer.fingerprint
    # The other analyzer's jieba dictionary is untouched.
    assert analyzer.terms(text) == plain


def test_fingerprint_is_stable_and_tracks_the_user_dictionary(tmp_path: Path) -> None:
    assert Analyzer().fingerprint == Analyzer().fingerprint
    one, two = tmp_path / "one.dict", tmp_path / "two.dict"
    one.write_text("数字创新高地\n", encoding="utf-8")
    two.write_text("水乡客厅\n", encoding="utf-8")
    assert Analyzer(one).fingerprint == Analyzer(one).fingerprint
    assert Analyzer(one).fingerprint != Analyzer(two).fingerprint != Analyzer().fingerprint
    added = Analyzer()
    added.add_terms(["数字创新高地"])
    assert added.fingerprint == Analyzer(one).fingerprint


@pytest.mark.parametrize("line", ["Qingpu", "数字 创新", "数字创新 0", "数字创新 12 n extra"])
def test_bad_user_dictionary_lines_are_refused_with_the_line_number(
    tmp_path: Path, line: str
) -> None:
    path = tmp_path / "user.dict"
    path.write_text(f"青浦区\n{line}\n", encoding="utf-8")
    with pytest.raises(QiaoError, match="line 2"):
        Analyzer(user_dict=path)


def test_missing_user_dictionary_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(QiaoError, match="cannot read user dictionary"):
        Analyzer(user_dict=tmp_path / "absent.dict")


def test_add_terms_refuses_non_chinese_terms() -> None:
    with pytest.raises(QiaoError, match="only Chinese"):
        Analyzer().add_terms(["G60科创走廊"])
