"""A deterministic, model-free embedder for unit tests: hashed bags of words and CJK bigrams."""

from __future__ import annotations

import hashlib
import re
from itertools import pairwise

import numpy as np

from index.embed import Matrix

_TOKEN = re.compile(r"[A-Za-z0-9]+|[\u4e00-\u9fff]")


def _features(text: str) -> list[str]:
    tokens = [t.lower() for t in _TOKEN.findall(text)]
    cjk = [t for t in tokens if len(t) == 1 and "\u4e00" <= t <= "\u9fff"]
    bigrams = [a + b for a, b in pairwise(cjk)]
    return tokens + bigrams


class FakeEmbedder:
    """Same text → same vector; texts sharing words → similar vectors. No cross-lingual signal."""

    def __init__(self, dim: int = 64, max_tokens: int = 512) -> None:
        self._dim = dim
        self._max_tokens = max_tokens

    @property
    def model_id(self) -> str:
        return f"fake-hash-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def count_tokens(self, texts: list[str], *, query: bool = False) -> list[int]:
        # Like a subword model: a token per CJK char, ~1.3 per English word, plus prompt/specials.
        extra = 5 if query else 6
        return [len(_TOKEN.findall(t)) * 4 // 3 + extra for t in texts]

    def _embed(self, texts: list[str]) -> Matrix:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in _features(text):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self._dim
                sign = 1.0 if digest[4] & 1 else -1.0
                out[row, bucket] += sign
            out[row, row % self._dim] += 1e-3  # never an all-zero row
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def embed_queries(self, texts: list[str]) -> Matrix:
        return self._embed(texts)

    def embed_passages(self, texts: list[str]) -> Matrix:
        return self._embed(texts)

    def embed_passages_with_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]]
    ) -> tuple[Matrix, list[Matrix]]:
        pooled = [
            self._embed([text[s:e] for s, e in text_spans])
            if text_spans
            else np.zeros((0, self._dim), np.float32)
            for text, text_spans in zip(texts, spans, strict=True)
        ]
        return self._embed(texts), pooled
