"""Bytes → text: decoding a file's bytes exactly, refusing what is not text.

The text keeps every character of the file; only line ends are normalised (CRLF and lone CR
become LF), so offsets into it are offsets into what the user wrote.
"""

from __future__ import annotations

from index.ingest.problems import Rejected

DEFAULT_MAX_BYTES = 20 * 2**20

# Bytes that never occur in text files (all C0 controls except tab, LF, VT, FF, CR; DEL).
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\v\f\r") + b"\x7f"
BINARY_CONTROL_SHARE = 0.1
_UTF8_BOM = b"\xef\xbb\xbf"


def decode_text(data: bytes) -> str:
    """UTF-8 bytes (BOM optional, dropped) → str with CRLF and lone CR turned into LF.

    Raises `DocumentError` for empty, binary, UTF-16, non-UTF-8 or whitespace-only input.
    """
    if not data:
        raise Rejected("empty file (0 bytes): add text to it or remove it")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Rejected("UTF-16 text: save it as UTF-8")
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
        text = str(memoryview(data)[start:], "utf-8")
    except UnicodeDecodeError as err:
        offset = start + err.start
        line = data.count(b"\n", 0, offset) + 1
        raise Rejected(f"not UTF-8 text (byte {offset}): convert it to UTF-8", line) from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text or text.isspace():
        raise Rejected("the file contains only whitespace: add text to it or remove it")
    return text
