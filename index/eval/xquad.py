"""XQuAD as a retrieval benchmark: articles → bilingual documents, questions → gold spans."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.errors import QiaoError
from index.records import Document, Lang

PARAGRAPH_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class Question:
    """A question and its gold answer span in the document of its language."""

    qid: str
    lang: Lang
    text: str
    doc_id: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class XQuAD:
    documents: list[Document]
    questions: dict[Lang, list[Question]]  # same order in both languages: questions[l][i] pair


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except FileNotFoundError as exc:
        raise QiaoError(f"{path} not found: pass --xquad-dir pointing at the XQuAD folder") from exc
    except (ValueError, KeyError) as exc:
        raise QiaoError(f"{path} is not SQuAD-format JSON: check the file") from exc
    return list(data)


def load_xquad(directory: Path, articles: int | None = None) -> XQuAD:
    """Read xquad-dev.{en,zh}.json: one document per article and language (paragraphs joined by
    a blank line), both versions sharing a release_id; gold spans are document offsets."""
    documents: list[Document] = []
    questions: dict[Lang, list[Question]] = {"en": [], "zh": []}
    langs: tuple[Lang, Lang] = ("en", "zh")
    for lang in langs:
        data = _load(directory / f"xquad-dev.{lang}.json")
        for number, article in enumerate(data[:articles]):
            release_id = f"xquad-{number:02d}"
            doc_id = f"{release_id}.{lang}"
            parts: list[str] = []
            offset = 0
            for paragraph in article["paragraphs"]:
                context = paragraph["context"]
                for qa in paragraph["qas"]:
                    answer = qa["answers"][0]
                    start = offset + answer["answer_start"]
                    questions[lang].append(
                        Question(
                            qa["id"],
                            lang,
                            qa["question"],
                            doc_id,
                            start,
                            start + len(answer["text"]),
                        )
                    )
                parts.append(context)
                offset += len(context) + len(PARAGRAPH_SEPARATOR)
            title = str(article.get("title") or release_id)
            documents.append(
                Document(doc_id, release_id, lang, title, PARAGRAPH_SEPARATOR.join(parts))
            )
    return XQuAD(documents, questions)
