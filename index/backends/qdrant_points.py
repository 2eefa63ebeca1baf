"""How Qiao's records become Qdrant points: ids derived from names, BM25 term weights as
sparse vectors, filters with the embedded index's semantics, and a prepared document as a
payload (and back). Pure functions; no client calls.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from qdrant_client import models

from index.codec import document_from_record, document_record
from index.embed import Matrix
from index.indexes.lexical import K1, B
from index.records import PreparedDocument
from index.search.source import Where

_MAX_ID = (1 << 63) - 1


def point_id(name: str) -> int:
    """A stable 63-bit point id for a passage (`doc_id#ordinal`) or a document (`doc_id`)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _MAX_ID or 1


def passage_point_id(doc_id: str, ordinal: int) -> int:
    return point_id(f"{doc_id}#{ordinal}")


def term_index(term: str) -> int:
    """A term's sparse-vector dimension (32 bits: a few collisions in a million-term vocabulary,
    each merging two rare terms' statistics)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "big")


def bm25_vector(terms: Sequence[str], avg_terms: float) -> models.SparseVector:
    """A passage's terms as BM25 term-frequency weights, `tf / (tf + k1·(1 - b + b·len/avg))`:
    with Qdrant's IDF modifier a query's score is BM25 (Lucene's variant, as the embedded
    index computes it), the average length fixed when the collection got its first passages."""
    counts = Counter(term_index(t) for t in terms)
    norm = K1 * ((1.0 - B) + B * len(terms) / avg_terms)
    indices = sorted(counts)
    return models.SparseVector(indices=indices,
                               values=[counts[i] / (counts[i] + norm) for i in indices])


def query_vector(terms: Sequence[str]) -> models.SparseVector:
    """A query's terms: each counts once per repetition, as in the embedded BM25."""
    counts = Counter(term_index(t) for t in terms)
    indices = sorted(counts)
    return models.SparseVector(indices=indices, values=[float(counts[i]) for i in indices])


def payload_filter(where: Where) -> models.Filter | None:
    """`where` as a Qdrant filter (None: everything), with the embedded index's semantics."""
    must: list[models.Condition] = []
    if where.lang is not None:
        must.append(models.FieldCondition(key="lang", match=models.MatchValue(value=where.lang)))
    f = where.filters
    if f.release_id is not None:
        must.append(models.FieldCondition(key="release_id",
                                          match=models.MatchValue(value=f.release_id)))
    if f.doc_id is not None:
        must.append(models.FieldCondition(key="doc_id", match=models.MatchValue(value=f.doc_id)))
    if f.date_from is not None:
        must.append(models.FieldCondition(key="date",
                                          range=models.Range(gte=f.date_from.toordinal())))
    if f.date_to is not None:
        must.append(models.FieldCondition(key="date",
                                          range=models.Range(gte=0, lte=f.date_to.toordinal())))
    return models.Filter(must=must) if must else None


def passes(payload: dict[str, Any], where: Where) -> bool:
    """The same test as `payload_filter`, on a payload already read."""
    f = where.filters
    date = int(payload.get("date", -1))
    return ((where.lang is None or payload.get("lang") == where.lang)
            and (f.release_id is None or payload.get("release_id") == f.release_id)
            and (f.doc_id is None or payload.get("doc_id") == f.doc_id)
            and (f.date_from is None or date >= f.date_from.toordinal())
            and (f.date_to is None or 0 <= date <= f.date_to.toordinal()))


def document_payload(p: PreparedDocument) -> dict[str, Any]:
    """The prepared document without its vectors (those live in its passages' points)."""
    return {
        "record": document_record(p.document),
        "content_hash": p.content_hash,
        "spans": p.spans.tolist(),
        "terms": [list(t) for t in p.terms],
        "sentence_spans": p.sentence_spans.tolist(),
        "sentence_terms": [list(t) for t in p.sentence_terms],
        "counterparts": p.counterparts.tolist(),
        "counterpart_doc": p.counterpart_doc,
        "sentence_counterparts": p.sentence_counterparts.tolist(),
        # Metadata at the top level, for listings that must not read every text.
        "doc_id": p.doc_id,
        "release_id": p.document.release_id,
        "lang": p.document.lang,
        "title": p.document.title,
        "date": p.document.date,
        "url": p.document.url,
    }


def prepared_from(payload: dict[str, Any], vectors: Matrix, sentence_vectors: Matrix
                  ) -> PreparedDocument:
    def array(key: str, width: int, dtype: Any) -> Any:
        return np.asarray(payload[key], dtype).reshape(-1, width)

    return PreparedDocument(
        document=document_from_record(payload["record"]),
        content_hash=payload["content_hash"],
        spans=array("spans", 2, np.int64),
        vectors=vectors,
        terms=tuple(tuple(t) for t in payload["terms"]),
        sentence_spans=array("sentence_spans", 3, np.int64),
        sentence_vectors=sentence_vectors,
        sentence_terms=tuple(tuple(t) for t in payload["sentence_terms"]),
        counterparts=array("counterparts", 3, np.float64),
        counterpart_doc=payload["counterpart_doc"],
        sentence_counterparts=array("sentence_counterparts", 3, np.float64),
    )
