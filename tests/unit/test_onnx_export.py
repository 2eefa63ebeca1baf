"""The ONNX export of a model directory, and the ONNX Runtime embedder over it, on a tiny BERT.

The export is checked against torch by the same embedder code (vectors, span vectors, prompts,
window); the files are checked for atomic, re-run-safe writing and for clear errors on damage.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from index.config import IndexSettings
from index.embed import TextTooLong
from index.errors import ModelError
from index.model.export import (
    ONNX_FILE,
    ONNX_MANIFEST,
    export_onnx,
    onnx_dir_for,
    verify_onnx,
)
from index.model.load import load_embedder
from index.model.onnx import OnnxEmbedder, open_session
from index.model.sentence_transformer import SentenceTransformerEmbedder
from tests.tiny_model import build_tiny_model

TEXTS = ["a", "b c d e a b c", "c", "d e", "a b c d e", "e e", "b", "a b c d e a b c d"]


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT with word-level tokens, mean pooling and normalisation, as ST saves."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), normalize=True)


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The export directory of the tiny model (made once; tests that damage it use a copy)."""
    out_dir = tmp_path_factory.mktemp("export") / "onnx"
    export_onnx(tiny_model_dir, out_dir)
    return out_dir


@pytest.fixture
def export_copy(exported: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "onnx"
    shutil.copytree(exported, copy)
    return copy


def test_onnx_embedder_reproduces_the_torch_embedder(tiny_model_dir: Path, exported: Path) -> None:
    torch_embedder = SentenceTransformerEmbedder.load(tiny_model_dir, "tiny")
    onnx_embedder = OnnxEmbedder.load_onnx(tiny_model_dir, exported / ONNX_FILE, "tiny", threads=1)
    assert onnx_embedder.prompts == torch_embedder.prompts == ("query : ", "passage : ")
    assert (onnx_embedder.dim, onnx_embedder.max_tokens) == (16, 16)
    assert onnx_embedder.count_tokens(TEXTS) == torch_embedder.count_tokens(TEXTS)
    ours = onnx_embedder.embed_passages(TEXTS)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 16)
    np.testing.assert_allclose(ours, torch_embedder.embed_passages(TEXTS), atol=1e-5)
    np.testing.assert_allclose(
        onnx_embedder.embed_queries(TEXTS), torch_embedder.embed_queries(TEXTS), atol=1e-5
    )
    spans = [[(0, 1)], [(0, 3), (4, 13)]]
    ours_spans = onnx_embedder.embed_passages_with_spans(TEXTS[:2], spans)[1]
    theirs_spans = torch_embedder.embed_passages_with_spans(TEXTS[:2], spans)[1]
    for a, b in zip(ours_spans, theirs_spans, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    with pytest.raises(TextTooLong) as long:
        onnx_embedder.embed_passages(["a", "a " * 14])
    assert "text 1 has 18 tokens" in one_line(long)


def test_export_writes_the_file_then_its_manifest_and_no_leftovers(
    tiny_model_dir: Path, exported: Path
) -> None:
    manifest = json.loads((exported / ONNX_MANIFEST).read_text(encoding="utf-8"))
    assert manifest["size"] == (exported / ONNX_FILE).stat().st_size
    assert sorted(p.name for p in exported.iterdir()) == sorted([".lock", ONNX_FILE, ONNX_MANIFEST])
    assert verify_onnx(tiny_model_dir, exported) == exported / ONNX_FILE


def test_a_second_export_reuses_a_valid_one(
    tiny_model_dir: Path, export_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_export(*_args: object) -> None:
        raise AssertionError("a valid export was redone")

    monkeypatch.setattr("index.model.export._export_into", no_export)
    assert export_onnx(tiny_model_dir, export_copy) == export_copy / ONNX_FILE


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("flip", "checksum mismatch"),
        ("truncate", "truncated or altered"),
        ("drop_manifest", "no complete ONNX export"),
        ("garble_manifest", "manifest in .* is corrupt"),
    ],
)
def test_a_damaged_export_is_a_clear_error_and_is_redone(
    tiny_model_dir: Path, export_copy: Path, damage: str, message: str
) -> None:
    file, manifest = export_copy / ONNX_FILE, export_copy / ONNX_MANIFEST
    data = bytearray(file.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        file.write_bytes(bytes(data))
    elif damage == "truncate":
        file.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "drop_manifest":
        manifest.unlink()
    else:
        manifest.write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match=message) as exc:
        verify_onnx(tiny_model_dir, export_copy)
    one_line(exc)
    assert export_onnx(tiny_model_dir, export_copy) == file
    assert verify_onnx(tiny_model_dir, export_copy) == file


def test_an_export_of_an_older_model_version_is_stale(
    tiny_model_dir: Path, export_copy: Path, tmp_path: Path
) -> None:
    model_copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_copy)
    verify_onnx(model_copy, export_copy)  # the same files (names, sizes, times) are the same model
    config = model_copy / "config_sentence_transformers.json"
    config.write_text(config.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    with pytest.raises(ModelError, match="another model version"):
        verify_onnx(model_copy, export_copy)


def test_a_corrupt_onnx_file_fails_to_load_with_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / ONNX_FILE
    garbage.write_bytes(b"\x08\x07not an onnx graph" * 100)
    with pytest.raises(ModelError, match="cannot load ONNX file") as exc:
        open_session(garbage, threads=1)
    assert "QIAO_EMBED_BACKEND=torch" in one_line(exc)


def test_a_failed_export_leaves_nothing_behind(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def diverges(*_args: object) -> None:
        raise ModelError("the ONNX export differs from the torch model by 0.5")

    monkeypatch.setattr("index.model.export._check_against_torch", diverges)
    out_dir = tmp_path / "onnx"
    with pytest.raises(ModelError, match="differs"):
        export_onnx(tiny_model_dir, out_dir)
    assert [p.name for p in out_dir.iterdir()] == [".lock"]


def test_load_embedder_exports_another_model_into_the_model_cache(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    before = sorted(p.name for p in tiny_model_dir.rglob("*"))
    settings = IndexSettings(
        model=str(tiny_model_dir), model_dir=tmp_path / "cache", embed_backend="onnx"
    )
    embedder = load_embedder(settings)
    assert isinstance(embedder, OnnxEmbedder)
    out_dir = onnx_dir_for(settings, tiny_model_dir)
    assert out_dir.is_relative_to(tmp_path / "cache")
    assert verify_onnx(tiny_model_dir, out_dir) == out_dir / ONNX_FILE
    assert sorted(p.name for p in tiny_model_dir.rglob("*")) == before  # user's dir untouched


def test_an_export_that_cannot_trace_is_one_clear_line_and_leaves_nothing(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_trace(*_args: object) -> None:
        raise RuntimeError("Unsupported: some operator\nwith a long trace below")

    monkeypatch.setattr("index.model.export._trace", cannot_trace)
    out_dir = tmp_path / "onnx"
    with pytest.raises(ModelError, match=r"cannot export .* Unsupported: some operator") as exc:
        export_onnx(tiny_model_dir, out_dir)
    assert "QIAO_EMBED_BACKEND=torch" in one_line(exc)
    assert [p.name for p in out_dir.iterdir()] == [".lock"]


def test_an_unwritable_export_directory_is_one_clear_line(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    with pytest.raises(ModelError, match="cannot write the ONNX export") as exc:
        export_onnx(tiny_model_dir, blocker / "onnx")
    assert "QIAO_MODEL_DIR" in one_line(exc)
