"""Text → L2-normalised float32 vectors: the `Embedder` protocol every stage depends on.

Implementations live in `index.model` (sentence-transformers on torch or ONNX Runtime) and in
the tests (a deterministic fake). This module imports nothing heavy, so the vector, lexical and
alignment code can name `Matrix` without loading a model.

Over-long input: a text whose tokens (prompt and special tokens included) exceed `max_tokens`
raises `TextTooLong`; it is never truncated or windowed. The chunker keeps passages within
`max_tokens` (using `count_tokens`), so this only fires on a caller's mistake.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from index.errors import QiaoError

Matrix = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@runtime_checkable
class Embedder(Protocol):
    """Embeds queries and passages into one space. Rows are L2-normalised float32."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Longest input (special tokens and prompt included) the model sees without truncation."""
        ...

    def count_tokens(self, texts: list[str], *, query: bool = False) -> list[int]:
        """Tokens each text costs, prompt and special tokens included."""
        ...

    def embed_queries(self, texts: list[str]) -> Matrix: ...

    def embed_passages(self, texts: list[str]) -> Matrix: ...

    def embed_passages_with_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]]
    ) -> tuple[Matrix, list[Matrix]]:
        """Passage vectors plus one vector per character span of each text (e.g. its sentences).

        Span vectors come from the same forward pass where the model allows it (mean of the
        span's contextual token vectors, "late chunking"), so they cost no extra embedding.
        """
        ...


class TextTooLong(QiaoError):
    """A text has more tokens than the model's window; split it (the chunker does) and retry."""
