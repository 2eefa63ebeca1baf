"""The "typical RAG" chunker used as a baseline: recursive character splitting with overlap.

Re-implemented from its well-known behaviour (split on paragraph, line, word, character
boundaries in that order; pack pieces up to `size` characters; start the next chunk with up to
`overlap` characters of the previous one), keeping source spans so hits can be checked.
"""

from __future__ import annotations

from itertools import pairwise

SEPARATORS = ("\n\n", "\n", " ", "")


def _pieces(
    text: str, start: int, end: int, size: int, seps: tuple[str, ...]
) -> list[tuple[int, int]]:
    """Split [start, end) into spans no longer than `size`, at the coarsest separator possible."""
    if end - start <= size:
        return [(start, end)]
    sep, rest = seps[0], seps[1:]
    if sep == "":
        return [(i, min(i + size, end)) for i in range(start, end, size)]
    cuts = [start]
    at = text.find(sep, start, end)
    while at != -1:
        if at > cuts[-1]:
            cuts.append(at)  # the separator starts the next piece
        at = text.find(sep, at + len(sep), end)
    cuts.append(end)
    out: list[tuple[int, int]] = []
    for a, b in pairwise(cuts):
        if b - a > size:
            out.extend(_pieces(text, a, b, size, rest))
        elif b > a:
            out.append((a, b))
    return out


def recursive_chunks(text: str, size: int = 1000, overlap: int = 200) -> list[tuple[int, int]]:
    """Chunk spans of `text` (whitespace-trimmed, possibly overlapping), in order."""
    pieces = _pieces(text, 0, len(text), size, SEPARATORS)
    chunks: list[tuple[int, int]] = []
    window: list[tuple[int, int]] = []
    for piece in pieces:
        if window and piece[1] - window[0][0] > size:
            chunks.append((window[0][0], window[-1][1]))
            while window and (
                window[-1][1] - window[0][0] > overlap or piece[1] - window[0][0] > size
            ):
                window.pop(0)
        window.append(piece)
    if window:
        chunks.append((window[0][0], window[-1][1]))
    trimmed: list[tuple[int, int]] = []
    for a, b in chunks:
        seg = text[a:b]
        lead = len(seg) - len(seg.lstrip())
        tail = len(seg) - len(seg.rstrip())
        if b - tail > a + lead:
            trimmed.append((a + lead, b - tail))
    return trimmed
