"""DOCX → canonical text: paragraphs and tables in document order, each a block of its own.

Paragraphs (headings included, as their own lines) are separated by a blank line; a table is
a block whose rows are lines, cells joined by " | ". The document's core title is a guessed
title. python-docx (MIT) is imported only here.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from index.ingest.problems import Rejected


@dataclass(frozen=True, slots=True)
class DocxText:
    text: str
    title: str | None


def extract_docx_text(data: bytes) -> DocxText:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as err:
        raise Rejected(f"could not open the Word file ({type(err).__name__}): save it as .docx "
                       "(Word 2007 or later) or as .txt") from None
    blocks: list[str] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = [" | ".join(dict.fromkeys(c.text.strip() for c in row.cells if c.text.strip()))
                    for row in item.rows]
            block = "\n".join(r for r in rows if r)
        else:
            block = item.text.strip()
        if block:
            blocks.append(block)
    if not blocks:
        raise Rejected("the Word file has no text: add text or remove it")
    title = (document.core_properties.title or "").strip() or None
    return DocxText("\n\n".join(blocks), title)
