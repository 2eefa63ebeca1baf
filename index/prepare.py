"""Documents → DocSegments: chunk, embed, analyse. The expensive half of ingest, done in batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.analyze import Analyzer
from index.chunk import chunk_document, embedding_text
from index.config import IndexSettings
from index.embed import Embedder, Matrix
from index.records import Document, Passage
from index.sentences import sentence_spans
from index.snapshot import DocSegment
from index.textview import clean_view

Progress = Callable[[int, int], None]  # (done, total) in passages


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """Chunker parameters, recorded in the manifest."""

    target_chars_en: int
    target_chars_zh: int
    max_chars_en: int
    max_chars_zh: int
    sentence_vectors: str = "embedded"

    @classmethod
    def from_settings(cls, settings: IndexSettings) -> ChunkPlan:
        return cls(
            settings.chunk_target_chars_en,
            settings.chunk_target_chars_zh,
            settings.chunk_max_chars_en,
            settings.chunk_max_chars_zh,
            settings.sentence_vectors,
        )

    def for_lang(self, lang: str) -> tuple[int, int]:
        if lang == "zh":
            return self.target_chars_zh, self.max_chars_zh
        return self.target_chars_en, self.max_chars_en


def passages_for(doc: Document, embedder: Embedder, plan: ChunkPlan) -> list[Passage]:
    target, maximum = plan.for_lang(doc.lang)
    return chunk_document(
        doc,
        count_tokens=lambda texts: embedder.count_tokens(texts),
        max_tokens=embedder.max_tokens,
        target_chars=target,
        max_chars=maximum,
    )


def _sentences_of(doc: Document, passages: Sequence[Passage]) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    for p in passages:
        out.extend((p.ordinal, s, e) for s, e in sentence_spans(doc.text, p.start, p.end))
    return out


def _embed_in_batches(
    embedder: Embedder,
    texts: list[str],
    spans: list[list[tuple[int, int]]],
    progress: Progress | None,
    batch: int = 128,
) -> tuple[Matrix, list[Matrix]]:
    vectors: list[Matrix] = []
    pooled: list[Matrix] = []
    for i in range(0, len(texts), batch):
        v, p = embedder.embed_passages_with_spans(texts[i : i + batch], spans[i : i + batch])
        vectors.append(v)
        pooled.extend(p)
        if progress:
            progress(min(i + batch, len(texts)), len(texts))
    if not vectors:
        return np.zeros((0, embedder.dim), np.float32), []
    return np.concatenate(vectors), pooled


def _embed_plain(
    embedder: Embedder, texts: list[str], progress: Progress | None, batch: int = 256
) -> Matrix:
    parts: list[Matrix] = []
    for i in range(0, len(texts), batch):
        parts.append(embedder.embed_passages(texts[i : i + batch]))
        if progress:
            progress(min(i + batch, len(texts)), len(texts))
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)


def _embedding_input(
    doc: Document, passage: Passage, sentences: list[tuple[int, int, int]]
) -> tuple[str, list[tuple[int, int]]]:
    """The passage's embedding text and its sentences' spans inside that text."""
    text = embedding_text(doc, passage)
    view = clean_view(doc.text, passage.start, passage.end)
    prefix = len(text) - len(view.text)  # the title context in front of the view
    spans = [
        (prefix + view.view_index(s), prefix + view.view_index(e))
        for ordinal, s, e in sentences
        if ordinal == passage.ordinal
    ]
    return text, spans


def prepare_segments(
    docs: Sequence[Document],
    embedder: Embedder,
    analyzer: Analyzer,
    plan: ChunkPlan,
    progress: Progress | None = None,
) -> list[DocSegment]:
    """Chunk, embed and analyse `docs`; counterparts are left empty (set by realignment).

    Passage vectors embed the title plus a cleaned view of the passage. Sentence vectors (they
    rank passages by their best sentence and pick the answer sentence) either embed each
    sentence's cleaned view, or with `plan.sentence_vectors == "pooled"` come from the passage's
    own forward pass. Texts are sorted by length inside the embedder.
    """
    chunked = [(doc, passages_for(doc, embedder, plan)) for doc in docs]
    sentences = [_sentences_of(doc, ps) for doc, ps in chunked]
    inputs = [
        _embedding_input(doc, p, sents)
        for (doc, ps), sents in zip(chunked, sentences, strict=True)
        for p in ps
    ]
    texts = [t for t, _ in inputs]
    if plan.sentence_vectors == "pooled":
        vectors, pooled = _embed_in_batches(embedder, texts, [s for _, s in inputs], progress)
        sentence_vectors = (
            np.concatenate(pooled) if pooled else np.zeros((0, embedder.dim), np.float32)
        )
    else:
        sentence_texts = [
            clean_view(doc.text, s, e).text
            for (doc, _), sents in zip(chunked, sentences, strict=True)
            for _, s, e in sents
        ]
        everything = _embed_plain(embedder, texts + sentence_texts, progress)
        vectors, sentence_vectors = everything[: len(texts)], everything[len(texts) :]
    terms = analyzer.terms_batch([p.text for _, ps in chunked for p in ps])
    sentence_terms = analyzer.terms_batch(
        [
            doc.text[s:e]
            for (doc, _), sents in zip(chunked, sentences, strict=True)
            for _, s, e in sents
        ]
    )

    segments: list[DocSegment] = []
    row = srow = 0
    for (doc, ps), sents in zip(chunked, sentences, strict=True):
        n, s = len(ps), len(sents)
        segments.append(
            DocSegment(
                document=doc,
                content_hash=doc.content_hash,
                spans=np.array([(p.start, p.end) for p in ps], dtype=np.int64).reshape(n, 2),
                vectors=vectors[row : row + n],
                terms=tuple(tuple(t) for t in terms[row : row + n]),
                sentence_spans=np.array(sents, dtype=np.int64).reshape(s, 3),
                sentence_vectors=sentence_vectors[srow : srow + s],
                sentence_terms=tuple(tuple(t) for t in sentence_terms[srow : srow + s]),
                counterparts=np.full((n, 3), -1.0),
            )
        )
        row += n
        srow += s
    return segments
