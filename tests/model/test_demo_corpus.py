"""The demo corpus with the real model: answers a reader would want, alignment, exact spans."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from index.config import IndexSettings
from index.embed import Embedder
from index.indexes.analyze import Analyzer
from index.ingest.read import read_paths
from index.retriever import Retriever

pytestmark = pytest.mark.model

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
EN, ZH = "qingpu-briefing-2023-09-05.en", "qingpu-briefing-2023-09-05.zh"


@pytest.fixture(scope="module")
def demo(demo_data_dir: Path, real_embedder: Embedder) -> Retriever:
    return Retriever.open(
        demo_data_dir, settings=IndexSettings(data_dir=demo_data_dir), embedder=real_embedder,
        analyzer=Analyzer(),
    )


def test_demo_corpus_is_one_release_in_two_languages(demo: Retriever) -> None:
    docs = {d.doc_id: d for d in demo.documents()}
    assert set(docs) == {EN, ZH}
    assert docs[EN].release_id == docs[ZH].release_id
    assert docs[EN].date == docs[ZH].date == "2023-09-05"
    assert docs[EN].text == (CORPUS / f"{EN}.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("question", "lang", "expected"),
    [
        ("Who is the Secretary of the CPC Qingpu District Committee?", "en", "Xu Jian"),
        ("青浦区委书记是谁？", "zh", "徐建"),
        ("Who is the Secretary of the CPC Qingpu District Committee?", "zh", "徐建"),
        ("青浦区委书记是谁？", "en", "Xu Jian"),
        ("How much were the procurement orders signed at the CIIE?", "en", "4.4 billion"),
        ("进博会累计采购订单金额是多少？", "zh", "44亿美元"),
    ],
)
def test_reader_questions_find_the_answer(
    demo: Retriever, question: str, lang: str, expected: str
) -> None:
    hits = demo.search(question, k=3, lang=lang)
    assert hits and hits[0].lang == lang
    assert expected in " ".join(hits[0].text.split())  # the English file is hard-wrapped
    assert hits[0].counterpart is not None


def test_digital_innovation_highland_plans_are_found_in_both_languages(demo: Retriever) -> None:
    en = demo.search("What are the plans for the digital innovation highland?", k=3, lang="en")
    zh = demo.search("打造数字创新高地有哪些举措？", k=3, lang="zh")
    assert any("digital" in h.text.lower() for h in en[:1])
    assert any("数字" in h.text for h in zh[:1])


def _numbers(text: str) -> set[str]:
    # Percentages and plain numbers of 3+ digits are written the same way in both versions.
    # (Digits next to CJK characters have no \b between them, hence the look-arounds.)
    return set(re.findall(r"\d+(?:\.\d+)?%|(?<![\d.])\d{3,}(?![\d.])", text))


def test_alignment_pairs_passages_that_translate_each_other(demo: Retriever) -> None:
    """Passages whose figures (percentages, 3+ digit numbers) also occur in the other version:
    their counterpart must carry those figures, in both directions. One English figure is
    written differently in Chinese ("190 billion" is 1900亿), so not every check can pass."""
    checked, right = 0, 0
    for doc_id, other_id in ((EN, ZH), (ZH, EN)):
        other_text = demo.document(other_id).text  # type: ignore[union-attr]
        for passage, counterpart in zip(
            demo.passages(doc_id), demo.counterparts(doc_id), strict=True
        ):
            wanted = {n for n in _numbers(passage.text) if n in other_text}
            if not wanted:
                continue
            checked += 1
            right += counterpart is not None and wanted <= _numbers(counterpart.text)
    assert checked >= 12
    assert right / checked >= 0.9, f"{right} of {checked} counterparts carry the figures"


def test_every_span_in_the_demo_index_is_exact(demo: Retriever) -> None:
    for doc in demo.documents():
        for p in demo.passages(doc.doc_id):
            assert doc.text[p.start : p.end] == p.text


@pytest.mark.parametrize(
    ("question", "lang", "expected"),
    [
        # The README's examples, in both languages and both directions.
        ("Who chairs the CPC Qingpu District Committee?", "en", "Xu Jian, Secretary"),
        ("Who chairs the CPC Qingpu District Committee?", "zh", "区委书记徐建"),
        ("谁是中共青浦区委书记？", "zh", "区委书记徐建"),
        ("谁是中共青浦区委书记？", "en", "Xu Jian, Secretary"),
        ("谁是中共青浦区委书记？", None, "区委书记徐建"),
    ],
)
def test_readme_examples_answer_with_the_right_sentence(
    demo: Retriever, question: str, lang: str | None, expected: str
) -> None:
    hits = demo.search(question, k=3, lang=lang)
    answer = hits[0].answer
    assert answer is not None
    assert expected in " ".join(answer.text.split())
    assert "中文版" not in answer.text  # never the navigation crumb


@pytest.mark.parametrize(
    "query", ["qwertyuiop", "今天天气怎么样？", "What is the population of Mars?"])
def test_nonsense_is_not_answered(demo: Retriever, query: str) -> None:
    found = demo.search(query, k=3)
    assert found.answerable is False
    assert found.hits  # the closest passages are still listed


@pytest.mark.parametrize(
    "query", ["Who chairs the CPC Qingpu District Committee?", "谁是中共青浦区委书记？",
              "进博会累计采购订单金额是多少？"])
def test_real_questions_are_answered(demo: Retriever, query: str) -> None:
    assert demo.search(query, k=3).answerable is True


def test_counterparts_hold_the_translation_with_high_confidence(demo: Retriever) -> None:
    counterparts = [c for d in (EN, ZH) for c in demo.counterparts(d) if c is not None]
    assert len(counterparts) >= 20
    confident = [c for c in counterparts if c.confidence is not None and c.confidence >= 0.5]
    assert len(confident) / len(counterparts) >= 0.9


def test_a_paragraph_missing_from_one_version_is_never_shown_at_full_confidence(
    tmp_path: Path, real_embedder: Embedder, demo: Retriever,
) -> None:
    """The Chinese version without its paragraph on innovation parks (二是持续做强创新园区):
    English passages whose translation was there get no counterpart or a low confidence; the
    rest stay confident."""
    zh_text = (CORPUS / f"{ZH}.txt").read_text(encoding="utf-8")
    start = zh_text.index("二是持续做强创新园区")
    end = zh_text.index("\n\n", start)
    # English passages whose counterpart (in the full demo) lies in the removed paragraph.
    orphans = {p.passage_id for p, c in zip(demo.passages(EN), demo.counterparts(EN),
                                            strict=True)
               if c is not None and start <= c.start and c.end <= end}
    assert orphans
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in (f"{EN}.txt", "qingpu-briefing-2023-09-05.meta.json"):
        (folder / name).write_bytes((CORPUS / name).read_bytes())
    (folder / f"{ZH}.txt").write_text(zh_text[:start] + zh_text[end + 2:], encoding="utf-8")
    docs, problems = read_paths([folder])
    assert problems == []
    cut = Retriever.open(settings=IndexSettings(data_dir=tmp_path / "data"),
                         embedder=real_embedder, analyzer=Analyzer())
    cut.upsert(docs)
    shown = dict(zip((p.passage_id for p in cut.passages(EN)), cut.counterparts(EN),
                     strict=True))
    for passage_id in orphans:
        counterpart = shown[passage_id]
        assert counterpart is None or (counterpart.confidence or 0) < 0.5, passage_id
    others = [c for p, c in shown.items() if p not in orphans and c is not None]
    assert sum((c.confidence or 0) >= 0.5 for c in others) / len(others) >= 0.85


def test_a_sentence_is_looked_up_through_the_alignment(demo: Retriever) -> None:
    found = demo.view().lookup(
        "Xu Jian, Secretary of the CPC Qingpu District Committee, introduced the details of "
        "Qingpu District’s efforts and work plans to promote high-quality economic and "
        "societal development.")
    assert found is not None and found.method == "alignment" and found.doc_id == ZH
    assert found.translation.text.startswith("中共青浦区委书记徐建介绍了")
    assert found.confidence >= 0.5
    back = demo.view().lookup(found.translation.text)
    assert back is not None and back.method == "alignment" and back.doc_id == EN
    assert "Xu\nJian, Secretary" in back.translation.text
    not_there = demo.view().lookup("The weather in Paris was sunny all week.")
    assert not_there is not None and not_there.method == "search"
