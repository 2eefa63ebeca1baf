"""Text → L2-normalised float32 vectors. `Embedder` is the protocol every stage depends on."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]


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
