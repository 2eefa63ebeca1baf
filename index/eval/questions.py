"""An operator's own check: questions with the answer they expect, run against an index.

A JSONL file, one question per line: `{"question", "expect", "lang"?, "doc_id"?}`. `expect` is a
regular expression (or plain text: an invalid pattern is matched literally, case-insensitively,
whitespace-insensitively) that the right passage contains; `doc_id` optionally names the
document it must come from; `lang` restricts results to that language. For each question:
hit@1 and hit@5 (a matching passage among the first 1 / 5) and whether the top hit's answer
sentence matches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from index.compose import display_text
from index.errors import QiaoError
from index.records import LANGS, Hit
from index.view import IndexView


@dataclass(frozen=True, slots=True)
class Question:
    line: int
    question: str
    expect: str
    lang: str | None = None
    doc_id: str | None = None


@dataclass(frozen=True, slots=True)
class QuestionResult:
    question: Question
    rank: int | None  # 1-based rank of the first matching passage among the top 5
    answer_hit: bool  # the top hit's answer sentence matches
    top_doc: str | None
    top_answer: str | None

    @property
    def hit1(self) -> bool:
        return self.rank == 1

    @property
    def hit5(self) -> bool:
        return self.rank is not None


def load_questions(path: Path) -> list[Question]:
    """Read the file; a bad line raises QiaoError naming it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise QiaoError(f"cannot read {path}: {err}") from None
    questions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise QiaoError(f"{path}:{number}: not JSON ({err.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("question"), str) \
                or not isinstance(record.get("expect"), str) \
                or not record["question"].strip() or not record["expect"].strip():
            raise QiaoError(f'{path}:{number}: needs "question" and "expect" (text); got {line!r}')
        lang = record.get("lang")
        if lang is not None and lang not in LANGS:
            raise QiaoError(f"{path}:{number}: lang must be en or zh, got {lang!r}")
        questions.append(Question(number, record["question"], record["expect"], lang,
                                  record.get("doc_id")))
    if not questions:
        raise QiaoError(f"{path} holds no questions: one JSON object per line")
    return questions


def _matcher(expect: str) -> re.Pattern[str]:
    try:
        return re.compile(expect, re.I)
    except re.error:
        return re.compile(r"\s*".join(re.escape(ch) for ch in expect if not ch.isspace()), re.I)


def check_questions(view: IndexView, questions: Sequence[Question], k: int = 5
                    ) -> list[QuestionResult]:
    results = []
    for q in questions:
        pattern = _matcher(q.expect)
        hits = view.search(q.question, k, q.lang)

        def matches(hit: Hit, q: Question = q, pattern: re.Pattern[str] = pattern) -> bool:
            return (q.doc_id is None or hit.doc_id == q.doc_id) and bool(
                pattern.search(display_text(hit.text)))

        rank = next((i for i, hit in enumerate(hits, start=1) if matches(hit)), None)
        top = hits[0] if len(hits) else None
        answer = top.answer.text if top is not None and top.answer is not None else None
        results.append(QuestionResult(
            q, rank, answer is not None and bool(pattern.search(display_text(answer))),
            top.doc_id if top else None, answer))
    return results
