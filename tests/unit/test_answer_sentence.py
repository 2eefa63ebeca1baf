"""Answer-sentence scoring: what a question asks for, body text, features and the model."""

from __future__ import annotations

import numpy as np
import pytest

from index.search.answer_sentence import (
    ANSWER_FEATURES,
    AnswerModel,
    QuestionInfo,
    default_answer_model,
    is_body,
    question_kind,
    sentence_features,
)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Who chairs the CPC Qingpu District Committee?", "person"),
        ("谁是中共青浦区委书记？", "person"),
        ("When did line 6 open?", "date"),
        ("6号线什么时候开通？", "date"),
        ("How much did line 6 cost to build?", "money"),
        ("6号线总投资多少钱？", "money"),
        ("How many stations does line 6 have?", "number"),
        ("6号线有多少个车站？", "number"),
        ("Where is the CIIE held?", "place"),
        ("进博会在哪里举办？", "place"),
        ("What is the goal of the plan?", "other"),
    ],
)
def test_question_kind(question: str, kind: str) -> None:
    assert question_kind(question) == kind


@pytest.mark.parametrize(
    ("line", "body"),
    [
        ("| 中文版 |", False),
        ("Press Release for Media Briefing of the Shanghai Municipal Government", False),
        ("二、聚焦数字创新高地，激发高质量发展动能", False),
        ("SHANGHAI, Sept. 5", False),
        ("Xu Jian, Secretary of the CPC Qingpu District Committee, introduced the plans.", True),
        ("中共青浦区委书记徐建介绍了有关情况。", True),
        ("她说：“6号线让100万居民步行15分钟即可到达地铁站。”", True),
    ],
)
def test_is_body(line: str, body: bool) -> None:
    assert is_body(line) is body


def _question(text: str, terms: list[str]) -> QuestionInfo:
    return QuestionInfo.of(text, "zh", terms, dict.fromkeys(terms, 1.0))


def test_features_reward_the_asked_kind_and_shared_terms() -> None:
    question = _question("6号线总投资多少钱？", ["6", "号线", "总投资", "多少"])
    sentences = ["她说：“6号线让100万居民步行15分钟即可到达地铁站。”",
                 "6号线总投资286亿元，将于2027年建成。"]
    features = sentence_features(question, sentences, [0.86, 0.85],
                                 [{"6", "号线"}, {"6", "号线", "总投资"}])
    names = list(ANSWER_FEATURES)
    assert features.shape == (2, len(names))
    assert features[:, names.index("holds_asked")].tolist() == [0.0, 1.0]
    overlap = names.index("weighted_overlap")
    assert features[1, overlap] > features[0, overlap]
    assert features[0, names.index("similarity_gap")] == 0.0  # the most similar sentence
    assert default_answer_model().best(features, sentences) == 1


def test_a_body_sentence_beats_any_heading_or_crumb() -> None:
    question = _question("谁是中共青浦区委书记？", ["中共", "青浦", "区委", "书记"])
    sentences = ["| 中文版 |", "昨天上午，市政府举行新闻发布会。"]
    features = sentence_features(question, sentences, [0.95, 0.70], [set(), set()])
    # Even a model that loves similarity never answers with the crumb.
    greedy = AnswerModel(tuple(np.eye(len(ANSWER_FEATURES))[0]),
                         tuple(np.eye(len(ANSWER_FEATURES))[0]))
    assert greedy.best(features, sentences) == 1
    assert greedy.best(features[:1], sentences[:1]) == 0  # only lines: the best line


def test_model_json_round_trip_and_mismatch() -> None:
    model = default_answer_model()
    assert AnswerModel.from_json(model.to_json()) == AnswerModel(
        tuple(round(w, 6) for w in model.same), tuple(round(w, 6) for w in model.cross))
    with pytest.raises(ValueError, match="do not match"):
        AnswerModel.from_json({"features": ["similarity"], "same": [1.0], "cross": [1.0]})
