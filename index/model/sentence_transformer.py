"""Transformer embedders: `TokenEmbedder` (tokenising, batching, prompts, span pooling: what
every backend shares) and `SentenceTransformerEmbedder`, any sentence-transformers model
directory run by torch. The ONNX backend (`index.model.onnx`) shares `TokenEmbedder` and imports
neither torch nor sentence-transformers. torch is imported inside functions only.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from index.embed import IntArray, Matrix, TextTooLong
from index.errors import EmptyInput, ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


# Padded tokens per forward pass, and texts per batch. Measured on 2 AVX2 cores with XQuAD
# paragraphs: 512-2048 tokens run ~2,000 tok/s, 8,192 ~1,300 (activations spill out of cache).
BATCH_TOKENS = 1024
MAX_BATCH = 64


class TokenEmbedder:
    """What every `Embedder` over a transformer shares, batch-first: texts are tokenised once (in
    Rust, in parallel), sorted by token length and cut into batches of about `batch_tokens`
    padded tokens; a subclass runs a batch (`_forward`). Prompts come from the model's config:
    `query` for queries, `passage` (or `document`) for passages, none if absent.

    Over-long input raises `TextTooLong`; nothing is ever truncated.
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        model_id: str,
        dim: int,
        max_tokens: int,
        pad_id: int,
        prompts: dict[str, str],
        batch_tokens: int = BATCH_TOKENS,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._tokenizer: Any = tokenizer  # a `tokenizers.Tokenizer`
        self._model_id = model_id
        self._dim = dim
        self._max_tokens = max_tokens
        self._pad_id = pad_id
        self._batch_tokens = batch_tokens
        self._max_batch = max_batch
        self._query_prompt = prompts.get("query", "")
        self._passage_prompt = prompts.get("passage", prompts.get("document", ""))
        self._prompt_lengths = {
            p: self._prompt_length(p) for p in {self._query_prompt, self._passage_prompt} if p
        }

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def prompts(self) -> tuple[str, str]:
        """The (query, passage) prompts prepended to texts."""
        return self._query_prompt, self._passage_prompt

    def count_tokens(self, texts: list[str], *, query: bool = False) -> list[int]:
        """Tokens each text costs, prompt and special tokens included (no truncation)."""
        if not texts:
            return []
        prompt = self._query_prompt if query else self._passage_prompt
        lengths, _ = self._tokenize(texts, prompt)
        return [int(n) for n in lengths]

    def embed_queries(self, texts: list[str]) -> Matrix:
        """(len(texts), dim) float32, L2-normalised rows, in input order."""
        return self._embed(texts, self._query_prompt)

    def embed_passages(self, texts: list[str]) -> Matrix:
        """(len(texts), dim) float32, L2-normalised rows, in input order."""
        return self._embed(texts, self._passage_prompt)

    def embed_passages_with_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]]
    ) -> tuple[Matrix, list[Matrix]]:
        """Passage vectors, and for each text a (len(spans[i]), dim) matrix pooled from the
        contextual token vectors that overlap each character span (offsets into texts[i])."""
        pooled: list[Matrix] = [np.empty((0, self._dim), np.float32)] * len(texts)
        vectors = self._embed(texts, self._passage_prompt, spans, pooled)
        return vectors, pooled

    # -- internals ---------------------------------------------------------------------------

    def _tokenize(self, texts: list[str], prompt: str) -> tuple[IntArray, IntArray]:
        """Token lengths, and all ids concatenated (with special tokens), for prompt + text."""
        lengths, flat, _ = self._encode(texts, prompt, with_offsets=False)
        return lengths, flat

    def _tokenize_with_offsets(
        self, texts: list[str], prompt: str
    ) -> tuple[IntArray, IntArray, list[IntArray]]:
        """Like `_tokenize`, plus each token's character offsets into prompt + text."""
        return self._encode(texts, prompt, with_offsets=True)

    def _encode(
        self, texts: list[str], prompt: str, *, with_offsets: bool
    ) -> tuple[IntArray, IntArray, list[IntArray]]:
        tokenizer = self._tokenizer
        # The backend is shared with the HF tokenizer, which may have left padding/truncation on.
        if tokenizer.truncation is not None:
            tokenizer.no_truncation()
        if tokenizer.padding is not None:
            tokenizer.no_padding()
        inputs = [prompt + t for t in texts] if prompt else texts
        # encode_batch_fast skips computing offsets, which only span pooling needs.
        encode = tokenizer.encode_batch if with_offsets else tokenizer.encode_batch_fast
        encodings = encode(inputs, add_special_tokens=True)
        ids = [e.ids for e in encodings]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(
            itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum())
        )
        offsets = (
            [np.asarray(e.offsets, dtype=np.int64).reshape(-1, 2) for e in encodings]
            if with_offsets
            else []
        )
        return lengths, flat, offsets

    def _prompt_length(self, prompt: str) -> int:
        # As sentence-transformers counts it: prompt tokens with the leading special token.
        encoding = self._tokenizer.encode(prompt, add_special_tokens=True)
        specials = self._tokenizer.get_added_tokens_decoder()
        n = len(encoding.ids)
        return (
            n - 1
            if n and encoding.ids[-1] in specials and specials[encoding.ids[-1]].special
            else n
        )

    def _embed(
        self,
        texts: list[str],
        prompt: str,
        spans: list[list[tuple[int, int]]] | None = None,
        pooled: list[Matrix] | None = None,
    ) -> Matrix:
        if not texts:
            raise EmptyInput("no texts to embed")
        offsets: list[IntArray] = []
        if spans is not None:
            lengths, flat, offsets = self._tokenize_with_offsets(texts, prompt)
        else:
            lengths, flat = self._tokenize(texts, prompt)
        too_long = np.flatnonzero(lengths > self._max_tokens)
        if too_long.size:
            i = int(too_long[0])
            raise TextTooLong(
                f"text {i} has {int(lengths[i])} tokens but {self._model_id} reads at most "
                f"{self._max_tokens} ({too_long.size} too long); split it into shorter passages"
            )
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        prompt_length = self._prompt_lengths.get(prompt)
        for batch in batch_slices(lengths[order], self._batch_tokens, self._max_batch):
            rows = order[batch]
            width = int(lengths[rows[0]])
            cols = np.arange(width)
            mask = cols[None, :] < lengths[rows][:, None]
            positions = np.minimum(starts[rows][:, None] + cols[None, :], len(flat) - 1)
            ids = np.where(mask, flat[positions], self._pad_id)
            vectors, tokens = self._forward(ids, mask, prompt_length, spans is not None)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            out[rows] = vectors / np.maximum(norms, 1e-12)
            if spans is not None and pooled is not None and tokens is not None:
                for r, t in enumerate(rows.tolist()):
                    pooled[t] = _pool_spans(
                        tokens[r, : int(lengths[t])], offsets[t], spans[t], len(prompt), out[t]
                    )
        return out

    def _forward(
        self, ids: IntArray, mask: npt.NDArray[np.bool_], prompt_length: int | None,
        with_tokens: bool,
    ) -> tuple[Matrix, Matrix | None]:
        """One padded batch → (pooled vectors (b, dim), token vectors (b, width, dim) or None
        unless `with_tokens`). `prompt_length`: the prompt's tokens, for models whose pooling
        leaves the prompt out."""
        raise NotImplementedError


class SentenceTransformerEmbedder(TokenEmbedder):
    """An `Embedder` over a loaded `SentenceTransformer`: each batch runs through the model's own
    modules (transformer, pooling, normalisation) under `torch.inference_mode`."""

    def __init__(
        self,
        model: SentenceTransformer,
        model_id: str,
        *,
        batch_tokens: int = BATCH_TOKENS,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._model = model.eval()
        tokenizer = model.tokenizer
        if tokenizer is None or getattr(tokenizer, "backend_tokenizer", None) is None:
            raise ModelError(f"model {model_id} has no fast (tokenizers) tokenizer; cannot use it")
        self._needs_token_type_ids = "token_type_ids" in tokenizer.model_input_names
        dim = model.get_embedding_dimension()
        if not dim:
            raise ModelError(f"model {model_id} does not report its embedding dimension")
        super().__init__(
            tokenizer.backend_tokenizer,
            model_id=model_id,
            dim=int(dim),
            max_tokens=_window_of(model),
            pad_id=int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
            prompts={name: text or "" for name, text in (model.prompts or {}).items()},
            batch_tokens=batch_tokens,
            max_batch=max_batch,
        )

    @classmethod
    def load(cls, path: Path, model_id: str) -> SentenceTransformerEmbedder:
        """Load a local sentence-transformers directory on CPU, never touching a model hub."""
        return cls(load_sentence_transformer(path, model_id), model_id)

    def _forward(
        self, ids: IntArray, mask: npt.NDArray[np.bool_], prompt_length: int | None,
        with_tokens: bool,
    ) -> tuple[Matrix, Matrix | None]:
        import torch

        with torch.inference_mode():
            features: dict[str, Any] = {
                "input_ids": torch.from_numpy(ids),
                "attention_mask": torch.from_numpy(mask.astype(np.int64)),
            }
            if self._needs_token_type_ids:
                features["token_type_ids"] = torch.zeros_like(features["input_ids"])
            if prompt_length is not None:
                features["prompt_length"] = prompt_length
            output = self._model(features)
            vectors = output["sentence_embedding"].float().numpy()
            tokens = output["token_embeddings"].float().numpy() if with_tokens else None
        return vectors, tokens


def load_sentence_transformer(path: Path, model_id: str) -> SentenceTransformer:
    """A local sentence-transformers directory loaded on CPU, never touching a model hub."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    # A library load should not draw transformers' "Loading weights" bar on the user's terminal.
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        first_line = (
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        )
        raise ModelError(f"cannot load model {model_id} from {path}: {first_line}") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    return model


def _pool_spans(
    tokens: npt.NDArray[np.float32],
    offsets: IntArray,
    spans: list[tuple[int, int]],
    shift: int,
    fallback: npt.NDArray[np.float32],
) -> Matrix:
    """Mean of the token vectors overlapping each span (special tokens excluded), normalised.

    A span that covers no token (only whitespace) gets the passage vector `fallback`.
    """
    if not spans:
        return np.empty((0, tokens.shape[1]), np.float32)
    bounds = np.asarray(spans, dtype=np.int64) + shift
    real = offsets[:, 1] > offsets[:, 0]
    member = (offsets[None, :, 1] > bounds[:, 0:1]) & (offsets[None, :, 0] < bounds[:, 1:2]) & real
    counts = member.sum(axis=1, keepdims=True)
    sums = member.astype(np.float32) @ tokens
    vectors = np.where(counts > 0, sums / np.maximum(counts, 1), fallback[None, :])
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: Matrix = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return result


def batch_slices(sorted_lengths: IntArray, batch_tokens: int, max_batch: int) -> list[slice]:
    """Cut lengths sorted longest-first into slices of ≤ batch_tokens padded tokens (≥ 1 text)."""
    slices = []
    start, n = 0, len(sorted_lengths)
    while start < n:
        width = max(int(sorted_lengths[start]), 1)
        size = max(1, min(max_batch, batch_tokens // width, n - start))
        slices.append(slice(start, start + size))
        start += size
    return slices


def _window_of(model: SentenceTransformer) -> int:
    """The model's token window: its max_seq_length, else what its config allows."""
    if model.max_seq_length:
        return int(model.max_seq_length)
    tokenizer_max = getattr(model.tokenizer, "model_max_length", None) or 0
    if 0 < tokenizer_max < 1_000_000:
        return int(tokenizer_max)
    raise ModelError("the model does not say how many tokens it reads (set max_seq_length)")
