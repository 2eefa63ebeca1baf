"""Export a sentence-transformers model's transformer to one ONNX file, once, atomically.

The file holds the model's first module (the Hugging Face transformer): token ids and attention
mask in, contextual token vectors (`token_embeddings`) out. Tokenising, pooling and normalising
stay in sentence-transformers (see `index.embed_onnx`), so both backends share them. The traced
graph is fused once, at export, so every later load starts from the fused graph: by ONNX
Runtime's transformer optimiser where the model is BERT-like (each layer's attention becomes one
`Attention` kernel, residual + LayerNorm one `SkipLayerNormalization`, bias + GELU one kernel:
about 130 nodes instead of 500, which saves thread hand-offs on short queries), otherwise by
its generic "extended" optimisations.

Files in the export directory: `model.onnx`, then `qiao-onnx.json` (export version, the file's
size and SHA-256, and a fingerprint of the source model's files), written last: an export
without a matching manifest is incomplete and is redone. Exports run under a lock file, in a
temporary directory, and are renamed into place. torch and onnxruntime are imported inside
functions only.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.config import DEFAULT_MODEL, IndexSettings
from index.errors import ModelError
from index.files import check_model_file, fsync_path, sha256_of

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]

ONNX_FILE = "model.onnx"
ONNX_MANIFEST = "qiao-onnx.json"
# Bump when the exported graph changes: older exports are redone.
EXPORT_VERSION = 2
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "token_embeddings"
OPSET = 17
# Largest difference allowed between ONNX Runtime's and torch's token vectors on a probe batch of
# another shape than the traced one; float32 reordering alone stays near 1e-5.
PROBE_TOLERANCE = 1e-3


def onnx_dir_for(settings: IndexSettings, model_path: Path) -> Path:
    """Where the ONNX export of the model at `model_path` lives.

    The default model's export sits inside its prepared directory (rebuilt with it); any other
    model's in the model cache, so that a user's model directory is never written to.
    """
    if settings.model == DEFAULT_MODEL:
        return model_path / "onnx"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", model_path.name).strip("-") or "model"
    digest = hashlib.sha256(str(model_path.resolve()).encode()).hexdigest()[:12]
    return settings.model_dir / "onnx" / f"{name}-{digest}"


def export_onnx(model_path: Path, out_dir: Path, progress: Progress | None = None) -> Path:
    """The path of a valid ONNX export of `model_path` in `out_dir`, exporting it if needed.

    Idempotent: a complete export whose manifest matches the file and the current source model is
    returned as is; a missing, corrupt or stale one is redone. Raises ModelError (one line) if the
    export fails or does not reproduce the torch model; nothing half-written is left behind.
    """
    report = progress or (lambda _stage, _fraction: None)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot write the ONNX export to {out_dir}: {exc.strerror}; "
            "set QIAO_MODEL_DIR to a writable directory or QIAO_EMBED_BACKEND=torch"
        ) from None
    with _export_lock(out_dir):
        try:
            path = verify_onnx(model_path, out_dir)
            report("ONNX export ready", 1.0)
            return path
        except ModelError as exc:
            if (out_dir / ONNX_MANIFEST).exists() or (out_dir / ONNX_FILE).exists():
                log.warning("redoing the ONNX export", extra={"reason": str(exc)})
        started = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
        try:
            _export_into(model_path, tmp, report)
            _install(tmp, out_dir)
        except OSError as exc:
            raise ModelError(
                f"cannot write the ONNX export to {out_dir}: {exc.strerror or exc}"
            ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        path = out_dir / ONNX_FILE
        log.info(
            "exported the model to ONNX",
            extra={
                "path": str(path),
                "bytes": path.stat().st_size,
                "seconds": round(time.perf_counter() - started, 1),
            },
        )
        report("ONNX export ready", 1.0)
        return path


def verify_onnx(model_path: Path, out_dir: Path) -> Path:
    """The export's file if its manifest matches it and the source model; ModelError otherwise."""
    hint = "run `qiao model prepare` (or load the model once) to redo it"
    file = out_dir / ONNX_FILE
    try:
        manifest = json.loads((out_dir / ONNX_MANIFEST).read_text(encoding="utf-8"))
        version, size, sha256 = manifest["export_version"], manifest["size"], manifest["sha256"]
        source = manifest["source"]
    except FileNotFoundError:
        raise ModelError(f"no complete ONNX export in {out_dir}; {hint}") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelError(f"the ONNX export manifest in {out_dir} is corrupt; {hint}") from None
    if version != EXPORT_VERSION:
        raise ModelError(f"the ONNX export in {out_dir} was made by another Qiao version; {hint}")
    if source != source_fingerprint(model_path):
        raise ModelError(f"the ONNX export in {out_dir} is of another model version; {hint}")
    check_model_file(file, size, sha256, what="ONNX file", hint=hint)
    return file


def source_fingerprint(model_path: Path) -> str:
    """A digest of the names, sizes and modification times of the model's files.

    Cheap (no file is read) and changes whenever the model directory is rebuilt or edited.
    """
    digest = hashlib.sha256()
    for p in sorted(model_path.rglob("*")):
        relative = p.relative_to(model_path)
        # Hidden files (checksum stamps, see index.files) are not the model.
        if not p.is_file() or relative.parts[0] == "onnx" or any(
            part.startswith(".") for part in relative.parts
        ):
            continue
        stat = p.stat()
        digest.update(f"{relative.as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------
# Exporting


def _export_into(model_path: Path, tmp: Path, report: Progress) -> None:
    """Trace, fuse, check and checksum the export inside `tmp` (model.onnx + manifest)."""
    from index.model.sentence_transformer import load_sentence_transformer

    report("loading the model for export", 0.05)
    fingerprint = source_fingerprint(model_path)
    hf_model = _transformer_of(load_sentence_transformer(model_path, str(model_path)), model_path)
    traced, fused = tmp / "traced.onnx", tmp / ONNX_FILE
    try:
        report("tracing the model to ONNX", 0.15)
        _trace(hf_model, traced)
        report("fusing the ONNX graph", 0.6)
        _fuse(traced, fused, hf_model)
    except OSError:
        raise
    except Exception as exc:  # torch's and ORT's own error types; all mean "cannot export"
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"cannot export {model_path} to ONNX: {message}; set QIAO_EMBED_BACKEND=torch"
        ) from None
    traced.unlink()
    report("checking the ONNX graph against torch", 0.85)
    _check_against_torch(hf_model, fused)
    del hf_model
    fsync_path(fused)
    manifest = {
        "export_version": EXPORT_VERSION,
        "source": fingerprint,
        "size": fused.stat().st_size,
        "sha256": sha256_of(fused),
        "inputs": list(INPUT_NAMES),
        "output": OUTPUT_NAME,
    }
    (tmp / ONNX_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    fsync_path(tmp / ONNX_MANIFEST)


def _transformer_of(model: Any, model_path: Path) -> torch.nn.Module:
    """The Hugging Face model inside the sentence-transformers model's first module."""
    from sentence_transformers.base.modules.transformer import Transformer

    first = model[0]
    if not isinstance(first, Transformer) or first.tokenizer is None:
        raise ModelError(
            f"{model_path}: the ONNX backend runs models whose first module is a text "
            f"Transformer, not {type(first).__name__}; set QIAO_EMBED_BACKEND=torch"
        )
    hf_model: torch.nn.Module = first.auto_model.eval()
    # Plain matmul-softmax attention traces into the pattern ONNX Runtime fuses into one kernel.
    hf_model.set_attn_implementation("eager")  # type: ignore[operator]
    return hf_model


def _token_vector_module(hf_model: torch.nn.Module) -> torch.nn.Module:
    """The Hugging Face model as (ids, mask) → last hidden state, the signature that is traced."""
    import torch

    class TokenVectors(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = hf_model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return TokenVectors().eval()


def _probe_inputs(vocab_size: int, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (deterministic, inside the vocabulary) and mask for texts of `lengths`."""
    import torch

    width = max(lengths)
    ids = (torch.arange(len(lengths) * width).reshape(len(lengths), width) * 7 + 3) % vocab_size
    mask = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids * mask, mask


def _trace(hf_model: torch.nn.Module, out: Path) -> None:
    import torch

    config: Any = getattr(hf_model, "config", None)
    ids, mask = _probe_inputs(int(config.vocab_size), [8, 5])
    dynamic = {0: "batch", 1: "tokens"}
    # The TorchScript exporter (dynamo=False) needs no extra package; its tracer warns about
    # shape checks that are constant for right-padded batches, which the probe check confirms.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _token_vector_module(hf_model),
            (ids, mask),
            str(out),
            dynamo=False,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes={name: dynamic for name in (*INPUT_NAMES, OUTPUT_NAME)},
            opset_version=OPSET,
        )


def _fuse(traced: Path, out: Path, hf_model: torch.nn.Module) -> None:
    """Save the fused graph: transformer fusions if they apply, else the generic ones."""
    config: Any = getattr(hf_model, "config", None)
    heads, hidden = (getattr(config, name, 0) for name in ("num_attention_heads", "hidden_size"))
    if heads and hidden:
        try:
            if _fuse_transformer(traced, out, int(heads), int(hidden)):
                return
        except Exception as exc:  # the optimiser's own errors: fall back to the generic fusions
            log.info("transformer fusions do not apply (%s); using the generic ones", exc)
    _fuse_generic(traced, out)


def _fuse_transformer(traced: Path, out: Path, heads: int, hidden: int) -> bool:
    """Fuse with ORT's BERT optimiser; False (nothing written) if attention did not fuse."""
    from onnxruntime.transformers import optimizer  # type: ignore[import-untyped]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = optimizer.optimize_model(
            str(traced), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0,
            use_gpu=False,
        )
    fused = model.get_fused_operator_statistics()
    if not fused.get("Attention"):
        return False
    model.save_model_to_file(str(out))
    return True


def _fuse_generic(traced: Path, out: Path) -> None:
    """Save the graph after ONNX Runtime's extended (hardware-independent) optimisations."""
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out)
    ort.InferenceSession(str(traced), options, providers=["CPUExecutionProvider"])


def _check_against_torch(hf_model: torch.nn.Module, onnx_file: Path) -> None:
    """Refuse an export whose outputs differ from torch's on a batch of another shape."""
    import onnxruntime as ort
    import torch

    config: Any = getattr(hf_model, "config", None)
    ids, mask = _probe_inputs(int(config.vocab_size), [11, 7, 1])
    with torch.inference_mode():
        expected = hf_model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    actual = session.run([OUTPUT_NAME], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    real = mask.numpy().astype(bool)
    difference = float(np.max(np.abs(np.asarray(actual[0])[real] - expected[real])))
    if not difference <= PROBE_TOLERANCE:
        raise ModelError(
            f"the ONNX export differs from the torch model by {difference:.2g}; "
            "set QIAO_EMBED_BACKEND=torch"
        )


# ----------------------------------------------------------------------------------------------
# Files


def _install(tmp: Path, out_dir: Path) -> None:
    """Move the checked file, then its manifest, into place: the manifest marks it complete."""
    (out_dir / ONNX_MANIFEST).unlink(missing_ok=True)
    fsync_path(out_dir)
    os.replace(tmp / ONNX_FILE, out_dir / ONNX_FILE)
    os.replace(tmp / ONNX_MANIFEST, out_dir / ONNX_MANIFEST)
    fsync_path(out_dir)


@contextmanager
def _export_lock(out_dir: Path) -> Iterator[None]:
    """One exporter per directory at a time; a second waits, then finds the export done."""
    try:
        handle = (out_dir / ".lock").open("a")
    except OSError as exc:
        raise ModelError(
            f"cannot write the ONNX export to {out_dir}: {exc.strerror}; "
            "set QIAO_MODEL_DIR to a writable directory or QIAO_EMBED_BACKEND=torch"
        ) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


