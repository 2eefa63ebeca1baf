"""Which sentence of a passage answers the question: a few readable features, one linear model.

Embedding similarity alone picks the sentence that is *about* the question, often not the one
holding the answer ("How much did line 6 cost?" → a sentence about line 6). So each sentence
also gets: how much of the question's weight (IDF) it shares, whether it holds the kind of
thing asked for (a person for "who/谁", a date for "when/何时", an amount for "how much/多少"…),
whether it is body text at all (not a heading, crumb, dateline or title line), its length and
place. A linear model over these scores the sentences of one passage; its weights are learned
on XQuAD dev answers by `scripts/train_answer_model.py` and shipped in `answer_model.json`.
Body sentences always beat non-body lines when the passage has any.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]
Features = npt.NDArray[np.float64]
Kind = Literal["person", "date", "money", "number", "place", "other"]
KINDS: tuple[Kind, ...] = ("person", "date", "money", "number", "place")

ANSWER_MODEL_FILE = Path(__file__).with_name("answer_model.json")

# -- what the question asks for -----------------------------------------------------------------

_ASKS: tuple[tuple[Kind, re.Pattern[str]], ...] = (
    ("money", re.compile(
        r"\bhow much\b.*\b(cost|costs|pay|paid|price|spend|spent|worth|budget|invest\w*|fund\w*"
        r"|fare|fee|charge\w*|money|dollars?|yuan)\b|多少钱|花费|费用|价格|票价|成本|投资了?多少"
        r"|耗资|造价|资金|预算", re.I)),
    ("date", re.compile(
        r"\bwhen\b|\bwhat (year|years|date|day|month|century|decade|time|period|era)\b"
        r"|\bwhich (year|date|day|month|century|decade|period|era)\b|\bhow long ago\b"
        r"|什么时候|何时|哪一?年|哪个?世纪|什么年代|哪一?天|几月|几号"
        r"|哪个时期|什么时期|日期", re.I)),
    ("number", re.compile(
        r"\bhow (many|much|long|old|far|large|big|high|tall|deep|wide|often|fast)\b"
        r"|\bwhat (percentage|percent|proportion|share|number|amount|fraction|size|population)\b"
        r"|多少|几[个位名人次年岁种条座所家项倍]|多长|多大|多久|多高|多远"
        r"|百分之几|比例|几成", re.I)),
    ("person", re.compile(r"\bwho\b|\bwhom\b|\bwhose\b|谁|哪位|什么人", re.I)),
    ("place", re.compile(
        r"\bwhere\b|\bwhat (city|country|state|province|region|place|town|area|continent)\b"
        r"|\bwhich (city|country|state|province|region|place|town|area|continent)\b"
        r"|哪里|哪儿|在哪|何处|什么地方|哪个(国家|城市|省|地区|地方)|哪座", re.I)),
)


def question_kind(question: str) -> Kind:
    """What the question asks for; "other" when no pattern says."""
    for kind, pattern in _ASKS:
        if pattern.search(question):
            return kind
    return "other"


# -- what a sentence holds ------------------------------------------------------------------------

_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november"
           "|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
_CN_DIGITS = "〇零一二三四五六七八九十百千万亿两"
_HOLDS: dict[Kind, re.Pattern[str]] = {
    "money": re.compile(
        r"[$€£¥￥]|\b(dollars?|euros?|pounds?|yuan|rmb|usd|cents?)\b|[0-9" + _CN_DIGITS
        + r"]\s*(亿|万)?\s*(元|美元|英镑|欧元|日元|港元)", re.I),
    "date": re.compile(
        r"\b(1\d{3}|20\d{2})s?\b|\b(" + _MONTHS + r")\.?\s+\d|\b\d{1,2}\s+(" + _MONTHS + r")\b"
        r"|\bcentur(y|ies)\b|\bdecades?\b|\b(bc|ad|bce|ce)\b"
        r"|\d{2,4}\s*年|[〇零一二三四五六七八九]{2,4}年|\d{1,2}\s*月|\d{1,2}\s*日|世纪|年代", re.I),
    "number": re.compile(
        r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty"
        r"|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?|millions?|billions?"
        r"|dozens?|half|quarter|percent)\b|[" + _CN_DIGITS + r"]+\s*[个位名人次年岁种条座所家"
        r"项倍成%％层米里吨]", re.I),
    # A name: two capitalised words in a row, or a Chinese transliterated name (with ·).
    "person": re.compile(r"\b[A-Z][a-z'’]+(?:\s+(?:[A-Z]\.\s*)*[A-Z][a-z'’]+)+|[\u4e00-\u9fff]·"
                         r"[\u4e00-\u9fff]|(书记|主席|总统|总理|市长|区长|部长|主任|院长|校长"
                         r"|董事长|先生|女士|教授|博士)"),
    "place": re.compile(r"\b(in|at|from|near)\s+(the\s+)?[A-Z][a-z]+|[\u4e00-\u9fff]{1,6}"
                        r"(省|市|县|区|州|国|岛|河|江|山|湖|海|镇|村|路|街)"),
}
_SENTENCE_END = re.compile(r"[.!?。！？…;；:：][\"'”’」』)）\]]*\s*$")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def is_body(sentence: str) -> bool:
    """A sentence of running text: it ends like one and is long enough. Headings, navigation
    crumbs (`| 中文版 |`), datelines and title lines are not."""
    text = sentence.strip()
    if "|" in text or not _SENTENCE_END.search(text):
        return False
    han = len(_HAN.findall(text))
    return han >= 6 or len(_WORD.findall(text)) - han >= 4


# -- features and the model -----------------------------------------------------------------------

# Cosines of one passage's sentences differ by hundredths; scaled, their weights regularise like
# the other features' (which range over about one unit).
SIMILARITY_SCALE = 20.0

ANSWER_FEATURES: tuple[str, ...] = (
    "similarity",        # cosine of question and sentence vectors (× SIMILARITY_SCALE)
    "similarity_gap",    # that, minus the passage's best (0 for the best sentence)
    "weighted_overlap",  # share of the question's IDF weight the sentence holds
    "overlap_gap",       # that, minus the passage's best
    "overlap",           # share of question terms it holds (unweighted)
    "holds_asked",       # holds the kind of thing asked for (0 when the kind is unknown)
    "not_body",          # heading, crumb, dateline, title line
    "log_length",        # log(characters) − log(60)
    "first",             # first sentence of the passage
)


@dataclass(frozen=True, slots=True)
class QuestionInfo:
    """What sentence scoring needs of a question."""

    text: str
    lang: str
    kind: Kind
    weights: Mapping[str, float]  # term → IDF weight (each distinct query term)

    @classmethod
    def of(cls, text: str, lang: str, terms: Sequence[str], idf: Mapping[str, float]
           ) -> QuestionInfo:
        return cls(text, lang, question_kind(text),
                   {t: idf.get(t, 0.0) for t in dict.fromkeys(terms)})


def sentence_features(
    question: QuestionInfo, sentences: Sequence[str], similarities: Sequence[float],
    sentence_terms: Sequence[set[str]],
) -> Features:
    """(len(sentences), len(ANSWER_FEATURES)): the features of each sentence of one passage."""
    n = len(sentences)
    out = np.zeros((n, len(ANSWER_FEATURES)), np.float64)
    if n == 0:
        return out
    sims = np.asarray(similarities, np.float64)
    total = sum(question.weights.values()) or 1.0
    count = len(question.weights) or 1
    weighted = np.array([sum(w for t, w in question.weights.items() if t in terms) / total
                         for terms in sentence_terms])
    plain = np.array([sum(1 for t in question.weights if t in terms) / count
                      for terms in sentence_terms])
    out[:, 0] = SIMILARITY_SCALE * sims
    out[:, 1] = SIMILARITY_SCALE * (sims - sims.max())
    out[:, 2] = weighted
    out[:, 3] = weighted - weighted.max()
    out[:, 4] = plain
    if question.kind != "other":
        pattern = _HOLDS[question.kind]
        out[:, 5] = [1.0 if pattern.search(s) else 0.0 for s in sentences]
    out[:, 6] = [0.0 if is_body(s) else 1.0 for s in sentences]
    out[:, 7] = [math.log(max(len(s), 1)) - math.log(60) for s in sentences]
    out[0, 8] = 1.0
    return out


@dataclass(frozen=True, slots=True)
class AnswerModel:
    """Linear scores over ANSWER_FEATURES (conditional logits: a softmax within a passage), one
    set of weights for a question in the passage's language and one for a question in the
    other language (there, shared terms are only names and numbers)."""

    same: tuple[float, ...]
    cross: tuple[float, ...]

    def scores(self, features: Features, cross: bool = False) -> npt.NDArray[np.float64]:
        weights = np.asarray(self.cross if cross else self.same, np.float64)
        scored: npt.NDArray[np.float64] = features @ weights
        return scored

    def best(self, features: Features, sentences: Sequence[str], cross: bool = False) -> int:
        """Index of the answer sentence: the best-scoring body sentence, else the best line."""
        scores = self.scores(features, cross)
        body = np.array([is_body(s) for s in sentences])
        if body.any():
            scores = np.where(body, scores, -np.inf)
        return int(np.argmax(scores))

    def to_json(self) -> dict[str, object]:
        return {"features": list(ANSWER_FEATURES),
                "same": [round(w, 6) for w in self.same],
                "cross": [round(w, 6) for w in self.cross]}

    @classmethod
    def from_json(cls, data: Mapping[str, Sequence[object]]) -> AnswerModel:
        names = tuple(str(n) for n in data["features"])
        same = tuple(float(str(w)) for w in data["same"])
        cross = tuple(float(str(w)) for w in data["cross"])
        if names != ANSWER_FEATURES or not len(same) == len(cross) == len(names):
            raise ValueError("answer model features do not match this version of Qiao")
        return cls(same, cross)


@cache
def default_answer_model() -> AnswerModel:
    """The shipped model (weights learned on XQuAD dev; see the training script)."""
    return AnswerModel.from_json(json.loads(ANSWER_MODEL_FILE.read_text(encoding="utf-8")))
