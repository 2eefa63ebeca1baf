"""The embedder on ONNX Runtime: the sentence-transformers pipeline with its transformer run by ORT.

`OnnxEmbedder` is a `SentenceTransformerEmbedder` whose model has its first module (the Hugging
Face transformer) replaced by `OnnxTransformer`, which runs the graph exported by
`index.onnx_export`. Everything else is the model's own sentence-transformers modules and the
shared embedder code: tokenizer, prompts, pooling, normalisation, length-sorted batching,
`TextTooLong` and span pooling. Only this module imports onnxruntime.

Threads: ORT uses torch's thread count (`OMP_NUM_THREADS`, which the server sets from
`QIAO_TORCH_THREADS`), so one setting governs both backends. With more than one thread, the
worker threads spin between kernels: waking a sleeping worker for each of a forward pass's ~300
kernels cost a third of a short query's time and a quarter of batch throughput on 2 cores
(measured). The server's default of one thread per search has no workers, so nothing spins
beside searches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnxruntime as ort  # type: ignore[import-untyped]
import torch

from index.errors import ModelError
from index.model.export import OUTPUT_NAME
from index.model.sentence_transformer import SentenceTransformerEmbedder, load_sentence_transformer

# What the shared embedder can feed the graph; the export takes the first two.
FEEDABLE_INPUTS = frozenset({"input_ids", "attention_mask", "token_type_ids"})


class OnnxTransformer(torch.nn.Module):
    """A sentence-transformers first module: features with ids and mask → token vectors, by ORT.

    Carries the tokenizer and window of the module it replaces, which is what the rest of the
    pipeline asks the first module for.
    """

    def __init__(self, session: Any, tokenizer: Any, max_seq_length: int, dim: int) -> None:
        super().__init__()
        self.session = session
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self._dim = dim
        self._inputs = [i.name for i in session.get_inputs()]

    def get_embedding_dimension(self) -> int:
        return self._dim

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        feeds = {name: features[name].numpy() for name in self._inputs}
        (vectors,) = self.session.run([OUTPUT_NAME], feeds)
        features["token_embeddings"] = torch.from_numpy(vectors)
        return features


class OnnxEmbedder(SentenceTransformerEmbedder):
    """`SentenceTransformerEmbedder` with the transformer run by ONNX Runtime (same outputs)."""

    @classmethod
    def load_onnx(
        cls, path: Path, onnx_file: Path, model_id: str, *, threads: int | None = None
    ) -> OnnxEmbedder:
        """Load the model directory `path` with its transformer replaced by `onnx_file`.

        `threads` defaults to torch's thread count. Raises ModelError (one line) if the file
        cannot be loaded or does not fit the model.
        """
        model = load_sentence_transformer(path, model_id)
        first: Any = model[0]
        tokenizer = getattr(first, "tokenizer", None)
        window = getattr(first, "max_seq_length", None)
        if tokenizer is None or not window:
            raise ModelError(
                f"{path}: the ONNX backend needs a text Transformer as the first module; "
                "set QIAO_EMBED_BACKEND=torch"
            )
        dim = int(first.get_embedding_dimension())
        session = open_session(onnx_file, threads or torch.get_num_threads())
        # Replacing the module drops the torch weights: only ORT's copy stays in memory.
        model[0] = OnnxTransformer(session, tokenizer, int(window), dim)
        return cls(model, model_id)


def open_session(onnx_file: Path, threads: int) -> Any:
    """An ORT CPU session on `onnx_file` with `threads` intra-op threads; ModelError if unusable."""
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
