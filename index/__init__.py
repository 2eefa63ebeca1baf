"""Qiao's retrieval library: ingest → chunk → embed → index → search → fuse.

`from index import Retriever` is the entry point. Heavy modules (FAISS, jieba, torch) load on
first use, not at `import index`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from index.records import Counterpart, Document, Hit, Passage, Span
    from index.retriever import Retriever, UpsertReport
    from index.search.rank import Filters

__all__ = [
    "Counterpart",
    "Document",
    "Filters",
    "Hit",
    "Passage",
    "Retriever",
    "Span",
    "UpsertReport",
]

_HOMES = {
    "Retriever": "index.retriever",
    "UpsertReport": "index.retriever",
    "Filters": "index.search",
    "Counterpart": "index.records",
    "Document": "index.records",
    "Hit": "index.records",
    "Passage": "index.records",
    "Span": "index.records",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'index' has no attribute {name!r}")
