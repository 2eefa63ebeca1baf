"""The embedder on ONNX Runtime, without torch or sentence-transformers.

`OnnxEmbedder` reads what a sentence-transformers model directory says about itself (the
tokenizer, the prompts, the token window, the pooling and whether vectors are normalised) and
runs the transformer exported by `index.model.export` with ONNX Runtime; pooling (mean or CLS,
with or without the prompt's tokens) and normalisation are done here in NumPy, as the model's
own modules do them. Tokenising, batching and span pooling are `TokenEmbedder`'s. Loading it
imports neither torch nor sentence-transformers, so a command that only searches starts in a
second or two, not in ten. Only this module imports onnxruntime.

Threads: ORT runs `OMP_NUM_THREADS` intra-op threads (the server sets it from
`QIAO_TORCH_THREADS`), else as many as there are cores. With more than one thread, the worker
threads spin between kernels: waking a sleeping worker for each of a forward pass's ~300
kernels cost a third of a short query's time and a quarter of batch throughput on 2 cores
(measured). The server's default of one thread per search has no workers, so nothing spins
beside searches.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from index.embed import IntArray, Matrix
from index.errors import ModelError
from index.model.export import OUTPUT_NAME
from index.model.sentence_transformer import TokenEmbedder

# What the embedder can feed the graph; the export takes the first two.
FEEDABLE_INPUTS = frozenset({"input_ids", "attention_mask", "token_type_ids"})
# Module classes by name: sentence-transformers versions write them under different packages
# ("sentence_transformers.models.Pooling", "sentence_transformers.….pooling.Pooling").
_TRANSFORMER, _POOLING, _NORMALIZE = "Transformer", "Pooling", "Normalize"


def default_threads() -> int:
    raw = os.environ.get("OMP_NUM_THREADS", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else max(1, os.cpu_count() or 1)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}; run `qiao model prepare`") from None


class OnnxEmbedder(TokenEmbedder):
    """A sentence-transformers model (transformer, then mean or CLS pooling, then optionally
    normalisation) with its transformer run by ONNX Runtime."""

    def __init__(self, tokenizer: Any, session: Any, *, model_id: str, dim: int,
                 max_tokens: int, pad_id: int, prompts: dict[str, str], cls_pooling: bool,
                 include_prompt: bool) -> None:
        super().__init__(tokenizer, model_id=model_id, dim=dim, max_tokens=max_tokens,
                         pad_id=pad_id, prompts=prompts)
        self._session = session
        self._inputs = [i.name for i in session.get_inputs()]
        self._cls_pooling = cls_pooling
        self._include_prompt = include_prompt

    @classmethod
    def load_onnx(cls, path: Path, onnx_file: Path, model_id: str, *,
                  threads: int | None = None) -> OnnxEmbedder:
        """The model directory `path` with its transformer replaced by `onnx_file`.

        Raises ModelError (one line) when a file is missing or unusable, or the model's modules
        are not transformer → pooling (mean or CLS) → optional normalisation.
        """
        from tokenizers import Tokenizer

        hint = "set QIAO_EMBED_BACKEND=torch to load it with sentence-transformers"
        modules = _json(path / "modules.json") or []
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        if kinds[:2] != [_TRANSFORMER, _POOLING] or kinds[2:] not in ([], [_NORMALIZE]):
            raise ModelError(f"{path}: modules {kinds} are not transformer, pooling and "
                             f"normalisation; {hint}")
        pooling_dir = path / modules[1].get("path", "1_Pooling")
        pooling = _json(pooling_dir / "config.json") or {}
        # Newer configs name the mode; older ones set one flag per mode.
        mode = pooling.get("pooling_mode")
        if mode is None:
            flags = [key for key, on in pooling.items() if key.startswith("pooling_mode_") and on]
            mode = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(
                flags[0]) if len(flags) == 1 else None
        if mode not in ("mean", "cls"):
            raise ModelError(f"{path}: pooling {pooling} is neither mean nor CLS; {hint}")
        dim = pooling.get("word_embedding_dimension") or pooling.get("embedding_dimension")
        if not isinstance(dim, int) or dim <= 0:
            raise ModelError(f"{path}: the pooling config does not give the dimension; {hint}")
        st_config = _json(path / "sentence_bert_config.json") or {}
        tokenizer_config = _json(path / "tokenizer_config.json") or {}
        prompts = (_json(path / "config_sentence_transformers.json") or {}).get("prompts") or {}
        max_tokens = st_config.get("max_seq_length") or tokenizer_config.get("model_max_length")
        if not isinstance(max_tokens, int) or not 0 < max_tokens < 1_000_000:
            raise ModelError(f"{path}: the model does not say how many tokens it reads; {hint}")
        try:
            tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises plain Exceptions for bad files
            raise ModelError(f"cannot load the tokenizer of {path}: {exc}; {hint}") from None
        # As the HF tokenizer does: special-token spellings inside the text are plain text.
        tokenizer.encode_special_tokens = bool(tokenizer_config.get("split_special_tokens"))
        pad_token = tokenizer_config.get("pad_token")
        if isinstance(pad_token, dict):
            pad_token = pad_token.get("content")
        pad_id = tokenizer.token_to_id(pad_token) if isinstance(pad_token, str) else None
        return cls(
            tokenizer, open_session(onnx_file, threads or default_threads()),
            model_id=model_id, dim=int(dim), max_tokens=max_tokens, pad_id=int(pad_id or 0),
            prompts={k: v or "" for k, v in prompts.items()}, cls_pooling=mode == "cls",
            include_prompt=bool(pooling.get("include_prompt", True)),
        )

    def _forward(
        self, ids: IntArray, mask: npt.NDArray[np.bool_], prompt_length: int | None,
        with_tokens: bool,
    ) -> tuple[Matrix, Matrix | None]:
        feeds = {"input_ids": ids, "attention_mask": mask.astype(np.int64)}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (tokens,) = self._session.run([OUTPUT_NAME], {k: feeds[k] for k in self._inputs})
        tokens = tokens.astype(np.float32, copy=False)
        if self._cls_pooling:
            return tokens[:, 0].copy(), tokens if with_tokens else None
        weights = mask.astype(np.float32)
        if prompt_length is not None and not self._include_prompt:
            weights[:, :prompt_length] = 0.0  # as sentence-transformers' pooling leaves it out
        summed = np.einsum("bt,btd->bd", weights, tokens)
        counts = np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
        return (summed / counts).astype(np.float32), tokens if with_tokens else None


def open_session(onnx_file: Path, threads: int) -> Any:
    """An ORT CPU session on `onnx_file` with `threads` intra-op threads; ModelError if unusable."""
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if threads > 1 else "0")
    hint = "run `qiao model prepare` to redo the export, or set QIAO_EMBED_BACKEND=torch"
    try:
        session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT's errors (InvalidProtobuf, Fail, ...) derive from Exception
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load ONNX file {onnx_file}: {message[:200]}; {hint}") from None
    inputs = {i.name for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    if OUTPUT_NAME not in outputs or not inputs <= FEEDABLE_INPUTS:
        raise ModelError(
            f"ONNX file {onnx_file} takes {sorted(inputs)} and gives {sorted(outputs)}, not "
            f"token vectors from ids and mask; {hint}"
        )
    return session
