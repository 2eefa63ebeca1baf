"""Bytes → text: decoding a file's bytes exactly, refusing what is not text.

The text keeps every character of the file; only line ends are normalised (CRLF and lone CR
become LF), so offsets into it are offsets into what the user wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.ingest.problems import Rejected

DEFAULT_MAX_BYTES = 20 * 2**20

# Bytes that never occur in text files (all C0 controls except tab, LF, VT, FF, CR; DEL).
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\v\f\r") + b"\x7f"
BINARY_CONTROL_SHARE = 0.1
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Decoded:
    """A file's text and the encoding it was read in ("utf-8", "gb18030", "big5", "utf-16")."""

    text: str
    encoding: str


def decode_text(data: bytes) -> str:
    """`decode_file(data).text`."""
    return decode_file(data).text


def decode_file(data: bytes) -> Decoded:
    """Text file bytes → str with CRLF and lone CR turned into LF, and the encoding used.

    UTF-8 (BOM optional, dropped) and UTF-16 with a BOM; files that are not UTF-8 but read as
    Chinese text in GB18030 (which includes GBK and GB2312) or Big5 are decoded so, as Chinese
    government text is often published. Raises `Rejected` for empty, binary, undecodable or
    whitespace-only input, naming the likely encoding and how to convert it.
    """
    if not data:
        raise Rejected("empty file (0 bytes): add text to it or remove it")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return _checked(data.decode("utf-16"), "utf-16")
        except UnicodeDecodeError:
            raise Rejected("broken UTF-16 text: save it as UTF-8") from None
    if b"\x00" in data:
        raise Rejected("binary file, not text (it contains NUL bytes): convert it to .txt or .md")
    controls = len(data) - len(data.translate(None, _CONTROL_BYTES))
    if controls > BINARY_CONTROL_SHARE * len(data):
        raise Rejected(
            f"binary file, not text ({controls} of {len(data)} bytes are control characters): "
            "convert it to .txt or .md"
        )
    start = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    try:
        return _checked(str(memoryview(data)[start:], "utf-8"), "utf-8")
    except UnicodeDecodeError as err:
        offset = start + err.start
    chinese = _legacy_chinese(data)
    if chinese is not None:
        return _checked(*chinese)
    line = data.count(b"\n", 0, offset) + 1
    raise Rejected(f"not UTF-8 text (byte {offset}){_likely_encoding(data)}", line)


def _checked(text: str, encoding: str) -> Decoded:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text or text.isspace():
        raise Rejected("the file contains only whitespace: add text to it or remove it")
    return Decoded(text, encoding)


_GUESS_MIN_BYTES = 200
# Share of a decoding's non-ASCII characters that must read as Chinese text.
CHINESE_LIKENESS = 0.9
_CHINESE = re.compile("[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef“”‘’…—·]")


def _legacy_chinese(data: bytes) -> tuple[str, str] | None:
    """The text of `data` in GB18030 or Big5, whichever reads as Chinese (the other gives
    symbols, kana and Cyrillic, or lone ideographs among Latin letters); None when neither
    does. GB18030 wins a tie: it is the mainland standard."""
    options = []
    for encoding in ("gb18030", "big5"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        options.append((_chinese_likeness(text), encoding == "gb18030", encoding, text))
    if not options:
        return None
    likeness, _, encoding, text = max(options)
    return (text, encoding) if likeness >= CHINESE_LIKENESS else None


def _chinese_likeness(text: str) -> float:
    """Share of the non-ASCII characters that are Chinese characters or punctuation next to
    another non-ASCII character (a Latin-1 accent read as GBK is a lone ideograph)."""
    wide = [i for i, ch in enumerate(text) if ord(ch) > 127]
    if not wide:
        return 0.0
    held = set(wide)
    good = sum(1 for i in wide if _CHINESE.match(text[i]) and (i - 1 in held or i + 1 in held))
    return good / len(wide)


def _likely_encoding(data: bytes) -> str:
    """": it looks like X: convert it with iconv ..." when a guess can be made."""
    from charset_normalizer import from_bytes  # only for files that fail to decode

    generic = ": convert it to UTF-8, e.g. iconv -f ENCODING -t UTF-8 FILE > FILE.utf8"
    if len(data) < _GUESS_MIN_BYTES:
        return generic  # too little text to tell encodings apart
    best = from_bytes(data[:65536]).best()
    if best is None or best.encoding in ("utf_8", "ascii"):
        return generic
    name = best.encoding.replace("_", "-").upper()
    return (f": it looks like {name}; convert it to UTF-8, e.g. "
            f"iconv -f {name} -t UTF-8 FILE > FILE.utf8")
