"""What the model reads at ingest (`IndexSettings.embed_units`), and the vectors it yields."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from index.config import ChunkPlan
from index.embed import Matrix
from index.indexes.analyze import Analyzer
from index.ingest.chunk import embedding_text, title_context
from index.ingest.prepare import TITLE_WEIGHT, prepare_segments
from index.ingest.textview import clean_view
from index.records import Document, PreparedDocument
from index.vectors import round_trip
from tests.fakes import FakeEmbedder

PLAN = ChunkPlan(800, 280, 1500, 500)


class RecordingEmbedder(FakeEmbedder):
    """The fake embedder, remembering every passage-side text it was asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.read: list[str] = []

    def embed_passages(self, texts: list[str]) -> Matrix:
        self.read.extend(texts)
        return super().embed_passages(texts)

    def embed_passages_with_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]]
    ) -> tuple[Matrix, list[Matrix]]:
        self.read.extend(texts)
        return super().embed_passages_with_spans(texts, spans)


def segments_for(
    units: str, embedder: FakeEmbedder, docs: list[Document], analyzer: Analyzer
) -> list[PreparedDocument]:
    return prepare_segments(docs, embedder, analyzer, replace(PLAN, embed_units=units))


def sentence_texts(doc: Document, spans: np.ndarray) -> list[str]:
    return [clean_view(doc.text, int(s), int(e)).text for _, s, e in spans]


def test_sentences_mode_reads_each_sentence_and_title_once_and_no_passage(
    tiny_docs: list[Document], analyzer: Analyzer
) -> None:
    embedder = RecordingEmbedder()
    segments = segments_for("sentences", embedder, tiny_docs, analyzer)
    sentences = [t for seg in segments for t in sentence_texts(seg.document, seg.sentence_spans)]
    titles = {title_context(d.title) for d in tiny_docs} - {""}
    assert sorted(embedder.read) == sorted(sentences + sorted(titles))
    read_tokens = sum(embedder.count_tokens(embedder.read))
    passage_tokens = sum(
        embedder.count_tokens(
            [embedding_text(seg.document, p) for seg in segments for p in seg.passages()]
        )
    )
    assert read_tokens < 1.5 * passage_tokens  # one pass over the text, not two


def test_passage_vector_is_the_token_weighted_mean_of_its_sentences_and_title(
    tiny_docs: list[Document], analyzer: Analyzer
) -> None:
    embedder = FakeEmbedder()
    segments = segments_for("sentences", embedder, tiny_docs, analyzer)
    checked = 0
    for seg in segments:
        texts = sentence_texts(seg.document, seg.sentence_spans)
        # Stored sentence vectors are the embedder's, rounded to 8 bits as a segment keeps them
        # (the fake embedder's vectors also move by 1e-3 with their place in a batch).
        fresh = embedder.embed_passages(texts)
        cosines = (seg.sentence_vectors * fresh).sum(axis=1) / (
            np.linalg.norm(seg.sentence_vectors, axis=1) * np.linalg.norm(fresh, axis=1))
        assert cosines.min() > 0.999
        assert np.abs(round_trip(seg.sentence_vectors) - seg.sentence_vectors).max() < 1e-6
        title = title_context(seg.document.title)
        (title_vector,) = embedder.embed_passages([title])
        (title_tokens,) = embedder.count_tokens([title])
        for row in range(len(seg.spans)):
            mine = seg.sentence_spans[:, 0] == row
            weights = np.asarray(
                embedder.count_tokens([t for t, m in zip(texts, mine, strict=True) if m])
            )
            expected = (weights[:, None] * seg.sentence_vectors[mine]).sum(axis=0)
            expected += min(TITLE_WEIGHT * title_tokens, weights.sum() / 2) * title_vector
            expected /= np.linalg.norm(expected)
            np.testing.assert_allclose(seg.vectors[row], expected, atol=2e-3)
            checked += 1
    assert checked == sum(len(seg.spans) for seg in segments) > 3


def test_a_long_title_never_outweighs_a_short_passage(analyzer: Analyzer) -> None:
    title = " ".join(f"word{i}" for i in range(60))
    doc = Document("t.en", "t", "en", title, "Short text here.")
    embedder = FakeEmbedder()
    (seg,) = segments_for("sentences", embedder, [doc], analyzer)
    (sentence,) = embedder.embed_passages(["Short text here."])
    (title_vector,) = embedder.embed_passages([title])
    # Weighted half as much as the passage: closer to the sentence than to the title.
    assert float(seg.vectors[0] @ sentence) > float(seg.vectors[0] @ title_vector)


@pytest.mark.parametrize("units", ["passages+sentences", "passages"])
def test_passage_modes_embed_each_passage_whole(
    units: str, tiny_docs: list[Document], analyzer: Analyzer
) -> None:
    embedder = RecordingEmbedder()
    segments = segments_for(units, embedder, tiny_docs, analyzer)
    for seg in segments:
        texts = [embedding_text(seg.document, p) for p in seg.passages()]
        np.testing.assert_allclose(seg.vectors, embedder.embed_passages(texts), atol=2e-3)
        assert len(seg.sentence_vectors) == len(seg.sentence_spans)
    sentences = [t for seg in segments for t in sentence_texts(seg.document, seg.sentence_spans)]
    read_sentences = set(sentences) & set(embedder.read)
    assert bool(read_sentences) == (units == "passages+sentences")
