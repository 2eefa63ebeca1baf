"""Answer-sentence examples from XQuAD, to train and measure the answer model.

For each question of a setting: the sentences of the gold passage (the passage holding the
answer) with the one that contains the gold span marked, to train on; and the sentences of the
top hit (what users see), to measure answer-sentence hit@1 exactly as `qiao eval xquad` does.
Articles are split in halves (0–11, 12–23) for cross-validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from index.embed import Matrix
from index.eval.retrieval import SETTINGS, K, PreparedBench, _golds
from index.eval.xquad import Question
from index.search.answer_sentence import AnswerModel, Features, QuestionInfo
from index.search.hits import passage_sentences, question_info
from index.search.rank import Filters, SearchParams, search_rows
from index.store.snapshot import Snapshot

Labels = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class SentenceSet:
    """One passage's sentences for one question: features, texts and which hold the answer."""

    features: Features
    texts: tuple[str, ...]
    labels: Labels
    cross: bool  # the passage is in another language than the question


@dataclass(frozen=True, slots=True)
class AnswerExample:
    setting: str
    qid: str
    article: int
    gold: SentenceSet | None  # None when no single sentence of the gold passage holds the span
    top: SentenceSet | None  # the top hit's sentences (labels all False off the gold passage)


def _article(doc_id: str) -> int:
    return int(doc_id.split("-")[1].split(".")[0])


def _sentence_set(snap: Snapshot, row: int, vector: Matrix, info: QuestionInfo,
                  gold: Question) -> SentenceSet:
    doc_id = snap.document(snap.key_of_row(row)[0]).doc_id
    block = passage_sentences(snap, row, vector, info)
    labels = np.array([doc_id == gold.doc_id and a <= gold.start and gold.end <= b
                       for a, b in block.spans], bool)
    return SentenceSet(block.features, tuple(block.texts), labels, block.cross)


def answer_examples(
    bench: PreparedBench, settings: Sequence[str], params: SearchParams | None = None
) -> list[AnswerExample]:
    """Examples for the named settings (those with a result language)."""
    params = params or SearchParams()
    out: list[AnswerExample] = []
    for setting in SETTINGS:
        if setting.name not in settings or setting.lang is None:
            continue
        ql = setting.query_lang
        snap = bench.snapshots[setting.index]
        vectors, terms, langs = bench.qvecs[ql], bench.qterms[ql], bench.qlangs[ql]
        ranked = search_rows(snap, vectors, terms, langs, K, setting.lang, "hybrid", Filters(),
                             params)
        for i, (question, hits) in enumerate(zip(bench.questions[ql], ranked, strict=True)):
            gold = _golds(question, setting, bench.gold)[0]
            info = question_info(snap, question.text, langs[i], terms[i])

            gold_set = None
            key = snap.key_of(gold.doc_id)
            if key is not None:
                for row in snap.rows_of(key):
                    candidate = _sentence_set(snap, row, vectors[i], info, gold)
                    if candidate.labels.sum() == 1 and len(candidate.labels) > 1:
                        gold_set = candidate
                        break
            top = _sentence_set(snap, hits[0][0], vectors[i], info, gold) if hits else None
            out.append(AnswerExample(setting.name, question.qid, _article(gold.doc_id),
                                     gold_set, top))
    return out


def answer_hit_rate(model: AnswerModel, examples: Sequence[AnswerExample]) -> float:
    """Share of examples whose top hit's chosen sentence holds the answer."""
    if not examples:
        return 0.0
    hits = sum(1 for e in examples
               if e.top is not None and e.top.texts
               and bool(e.top.labels[model.best(e.top.features, e.top.texts, e.top.cross)]))
    return hits / len(examples)
