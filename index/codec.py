"""The one JSON form of a `Document`: what the store, the ingest-job journal and JSONL files hold.

`document_record` writes every field (absent optional ones as null); `document_from_record` reads
a record written by it back, trusting it (the store and the journal wrote it themselves). Input
from users goes through `index.ingest.read.documents_from_records`, which validates each field.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from index.records import Document

DOCUMENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Document))


def document_record(document: Document) -> dict[str, Any]:
    """`document` as a JSON-ready dict with exactly the fields of `Document` (pages as a list)."""
    record = {name: getattr(document, name) for name in DOCUMENT_FIELDS}
    if document.pages is not None:
        record["pages"] = list(document.pages)
    return record


def document_from_record(record: dict[str, Any]) -> Document:
    """The `Document` of a record written by `document_record`; extra keys are ignored, a missing
    required field raises KeyError."""
    return Document(
        doc_id=record["doc_id"],
        release_id=record["release_id"],
        lang=record["lang"],
        title=record["title"],
        text=record["text"],
        date=record.get("date"),
        url=record.get("url"),
        pages=tuple(record["pages"]) if record.get("pages") is not None else None,
    )
