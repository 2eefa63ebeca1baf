"""Qiao's passages in Qdrant: the distributed backend (a server or cluster, or qdrant-client's
local mode for one process), behind the same `SearchSource` seam as the embedded segments.

Layout, two collections:
- `{name}`: one point per passage. Named vectors `dense` (the passage vector), `sentences` (the
  passage's sentence vectors as one multivector compared by MAX_SIM: the best-matching
  sentence) and `lexical` (our own jieba/English terms as a sparse vector of BM25 term-frequency
  weights; Qdrant's IDF modifier supplies BM25's IDF over the whole collection). The payload
  holds what filtering and pivoting need: doc_id, release_id, lang, date (day ordinal, -1 when
  undated), ordinal, content_hash and the passage's aligned range in `counterpart_doc`.
- `{name}_documents`: one point per document (no vector) whose payload is the prepared
  document without its vectors: text and metadata, spans, terms, sentences and links. A
  document point is written after its passages: it is the commit mark (`verify` checks that
  every document's passages are there with its content hash, and nothing else is).

Point ids are derived from names (`doc_id#ordinal`), so re-writing a document overwrites its
points in place, two writers never duplicate a passage, and a passage's aligned rows are
computed from its payload without a lookup. A search is one `query_batch_points` round trip
per batch of queries: per query the dense pool, the BM25 list and the sentences' MAX_SIM over
both (prefetches), fused by Qiao's own weights client-side (`rank.ranked_lists`). Hits are then
read back as the few documents they come from, as prepared documents, and composed by the same
code as the embedded index's.

Only the modules of `index/backends/` import qdrant_client: this one (the store and its
writes), `qdrant_points` (ids, term weights, filters, payloads), `qdrant_source` (candidate
searches) and `qdrant_edge` (the in-process engine).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from index.backends.qdrant_points import (
    bm25_vector,
    document_payload,
    passage_point_id,
    point_id,
    prepared_from,
)
from index.backends.qdrant_source import QdrantSource
from index.errors import BackendUnavailable, QiaoError
from index.records import PreparedDocument
from index.store.segment import date_ordinal

DOCUMENTS_SUFFIX = "_documents"
STATS_ID = 0  # the documents collection's statistics point (document ids are never 0)
DEFAULT_AVG_TERMS = 100.0
# Points per upsert request: large enough to amortise a round trip, small enough for a
# server's request limit (a point is about 384 × 4 bytes per vector, sentences included).
WRITE_BATCH = 128
# Writes go through each shard's leader in order: a replace (upsert, then drop what is left of
# the old version, then the commit mark) is seen in that order on every replica.
_STRONG = models.WriteOrdering.STRONG
_UNREACHABLE = (ResponseHandlingException, UnexpectedResponse, ConnectionError, TimeoutError,
                OSError)


@dataclass(frozen=True, slots=True)
class QdrantTarget:
    """Where the collections are: a server (`url`, `api_key`) or a local-mode folder (`path`;
    ":memory:" for a throwaway one)."""

    collection: str
    url: str | None = None
    api_key: str | None = None
    path: str | None = None
    timeout: float = 10.0
    edge: bool = False  # `path` holds qdrant-edge shards (Qdrant's engine in-process)

    def describe(self) -> str:
        return self.url or self.path or ":memory:"


class QdrantStore:
    """Qiao's passages and documents in a Qdrant collection pair (see the module docstring)."""

    def __init__(self, client: Any, collection: str, dim: int,
                 where: str = "qdrant") -> None:
        self.client = client
        self.collection = collection
        self.documents = collection + DOCUMENTS_SUFFIX
        self.dim = dim
        self.where = where
        self._avg_terms: float | None = None

    @classmethod
    def connect(cls, target: QdrantTarget, dim: int) -> QdrantStore:
        """A client for `target` (nothing is created: see `init`)."""
        try:
            if target.edge and target.path not in (None, ":memory:"):
                from index.backends.qdrant_edge import EdgeClient

                client: Any = EdgeClient(Path(str(target.path)))
            elif target.url is not None:
                # No version check here: it would contact the server when a service starts,
                # which must not depend on Qdrant being up (requests fail with a 503 instead).
                client = QdrantClient(url=target.url, api_key=target.api_key,
                                      timeout=int(target.timeout), check_compatibility=False)
            elif target.path in (None, ":memory:"):
                client = QdrantClient(location=":memory:")
            else:
                client = QdrantClient(path=target.path)
        except RuntimeError as exc:  # local mode: another process holds the folder
            raise BackendUnavailable(f"Qdrant at {target.describe()} is busy ({exc}): "
                                     "retry when the other writer is done") from None
        return cls(client, target.collection, dim, target.describe())

    def close(self) -> None:
        self.client.close()

    def _call(self, what: str, work: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a client call; an unreachable or failing server is one BackendUnavailable."""
        try:
            return work(*args, **kwargs)
        except _UNREACHABLE as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise BackendUnavailable(f"Qdrant at {self.where} did not answer ({what}: {reason}):"
                                     " check that it runs, then retry") from None

    # -- collections -------------------------------------------------------------------------

    def exists(self) -> bool:
        return bool(self._call("collection_exists", self.client.collection_exists,
                               self.collection))

    def init(self, shards: int = 1, replication: int = 1, write_consistency: int = 1) -> bool:
        """Create the two collections and their payload indexes if missing (on a cluster: with
        `shards` shards, each held by `replication` nodes, a write acknowledged by
        `write_consistency` of them). True when created."""
        if self.exists():
            return False
        layout: dict[str, int] = {}
        if self.where.startswith(("http://", "https://")):
            layout = {"shard_number": shards, "replication_factor": replication,
                      "write_consistency_factor": write_consistency}
        dense = models.VectorParams(size=self.dim, distance=models.Distance.DOT)
        sentences = models.VectorParams(
            size=self.dim, distance=models.Distance.DOT,
            multivector_config=models.MultiVectorConfig(
                comparator=models.MultiVectorComparator.MAX_SIM),
        )
        self._call("create_collection", self.client.create_collection, self.collection,
                   vectors_config={"dense": dense, "sentences": sentences},
                   sparse_vectors_config={
                       "lexical": models.SparseVectorParams(modifier=models.Modifier.IDF)},
                   **layout)
        self._call("create_collection", self.client.create_collection, self.documents,
                   vectors_config={}, **layout)
        with warnings.catch_warnings():
            # Local mode says payload indexes do nothing there (it scans); a server uses them.
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            self._payload_indexes()
        return True

    def _payload_indexes(self) -> None:
        for name, kind in (("doc_id", models.PayloadSchemaType.KEYWORD),
                           ("release_id", models.PayloadSchemaType.KEYWORD),
                           ("lang", models.PayloadSchemaType.KEYWORD),
                           ("content_hash", models.PayloadSchemaType.KEYWORD),
                           ("date", models.PayloadSchemaType.INTEGER)):
            self._call("create_payload_index", self.client.create_payload_index,
                       self.collection, name, kind)
        for name in ("doc_id", "release_id"):
            self._call("create_payload_index", self.client.create_payload_index,
                       self.documents, name, models.PayloadSchemaType.KEYWORD)

    def require(self) -> None:
        if not self.exists():
            raise QiaoError(f"Qdrant at {self.where} has no collection {self.collection!r}: "
                            "create it with `qiao qdrant init`, then ingest")

    def avg_terms(self, fresh: Sequence[PreparedDocument] = ()) -> float:
        """The average passage length (terms) BM25 weights use: fixed by the first documents
        written, so every passage's weights stay comparable."""
        if self._avg_terms is not None:
            return self._avg_terms
        found = self._call("retrieve", self.client.retrieve, self.documents, [STATS_ID],
                           with_payload=True)
        if found:
            self._avg_terms = float(found[0].payload["avg_terms"])
            return self._avg_terms
        lengths = [len(t) for p in fresh for t in p.terms]
        if not lengths:
            return DEFAULT_AVG_TERMS
        avg = max(1.0, float(np.mean(lengths)))
        self._call("upsert", self.client.upsert, self.documents, [
            models.PointStruct(id=STATS_ID, vector={}, payload={"avg_terms": avg})], wait=True)
        self._avg_terms = avg
        return avg

    # -- writes ------------------------------------------------------------------------------

    def write(self, prepared: Sequence[PreparedDocument]) -> None:
        """Write (add or replace) prepared documents: passages first, then drop any passage of
        theirs left from an older version, then the document point (the commit mark)."""
        avg = self.avg_terms(prepared)
        for doc in prepared:
            points = list(self._passage_points(doc, avg))
            for start in range(0, len(points), WRITE_BATCH):
                self._call("upsert", self.client.upsert, self.collection,
                           points[start:start + WRITE_BATCH], wait=True, ordering=_STRONG)
            stale = models.Filter(
                must=[models.FieldCondition(key="doc_id", match=models.MatchValue(
                    value=doc.doc_id))],
                must_not=[models.FieldCondition(key="content_hash", match=models.MatchValue(
                    value=doc.content_hash))],
            )
            self._call("delete", self.client.delete, self.collection,
                       models.FilterSelector(filter=stale), wait=True, ordering=_STRONG)
            self._call("upsert", self.client.upsert, self.documents, [models.PointStruct(
                id=point_id(doc.doc_id), vector={}, payload=document_payload(doc))], wait=True,
                ordering=_STRONG)

    def _passage_points(self, doc: PreparedDocument, avg: float) -> Iterator[models.PointStruct]:
        d = doc.document
        owner = doc.sentence_spans[:, 0].astype(np.int64) if len(doc.sentence_spans) else \
            np.zeros(0, np.int64)
        for ordinal in range(len(doc.spans)):
            vector: dict[str, Any] = {
                "dense": np.asarray(doc.vectors[ordinal], np.float32).tolist(),
                "lexical": bm25_vector(doc.terms[ordinal], avg),
            }
            own = np.asarray(doc.sentence_vectors, np.float32)[owner == ordinal]
            if len(own):
                vector["sentences"] = own.tolist()
            first, end, score = (float(x) for x in doc.counterparts[ordinal])
            yield models.PointStruct(id=passage_point_id(doc.doc_id, ordinal), vector=vector,
                                     payload={
                "doc_id": doc.doc_id, "release_id": d.release_id, "lang": d.lang,
                "date": date_ordinal(d.date), "ordinal": ordinal,
                "content_hash": doc.content_hash,
                "counterpart_doc": doc.counterpart_doc,
                "counterpart": [int(first), int(end), score],
            })

    def delete(self, doc_ids: Sequence[str]) -> None:
        """Remove documents: the document point first (no longer committed), then its
        passages."""
        if not doc_ids:
            return
        self._call("delete", self.client.delete, self.documents,
                   models.PointIdsList(points=[point_id(d) for d in doc_ids]), wait=True)
        gone = models.Filter(must=[models.FieldCondition(
            key="doc_id", match=models.MatchAny(any=list(doc_ids)))])
        self._call("delete", self.client.delete, self.collection,
                   models.FilterSelector(filter=gone), wait=True)

    # -- reads -------------------------------------------------------------------------------

    def document_payloads(self, doc_ids: Iterable[str], fields: list[str] | None = None
                          ) -> dict[str, dict[str, Any]]:
        """Documents' payloads by doc_id: whole, or only `fields` (doc_id is always read)."""
        ids = [point_id(d) for d in dict.fromkeys(doc_ids)]
        if not ids:
            return {}
        wanted: list[str] | bool = True if fields is None else ["doc_id", *fields]
        found = self._call("retrieve", self.client.retrieve, self.documents, ids,
                           with_payload=wanted)
        # Each `.payload` read converts the whole payload (qdrant-edge): read it once.
        payloads = [p.payload for p in found]
        return {payload["doc_id"]: payload for payload in payloads
                if payload and "doc_id" in payload}

    def content_hashes(self, doc_ids: Iterable[str]) -> dict[str, str]:
        return {d: p["content_hash"]
                for d, p in self.document_payloads(doc_ids, ["content_hash"]).items()}

    def release_doc_ids(self, releases: Iterable[str]) -> list[str]:
        wanted = list(dict.fromkeys(releases))
        if not wanted:
            return []
        condition = models.Filter(must=[models.FieldCondition(
            key="release_id", match=models.MatchAny(any=wanted))])
        return [(p.payload or {})["doc_id"]
                for p in self._scroll(self.documents, condition, ["doc_id"])]

    def prepared(self, doc_ids: Iterable[str]) -> dict[str, PreparedDocument]:
        """Documents as prepared documents, vectors read back from their passages' points."""
        payloads = self.document_payloads(doc_ids)
        ids = [passage_point_id(d, i) for d, p in payloads.items() for i in range(len(p["spans"]))]
        points: dict[int, Any] = {}
        for start in range(0, len(ids), 1024):
            found = self._call("retrieve", self.client.retrieve, self.collection,
                               ids[start:start + 1024], with_payload=False,
                               with_vectors=["dense", "sentences"])
            points.update({int(p.id): p.vector for p in found})
        out = {}
        for doc_id, payload in payloads.items():
            n = len(payload["spans"])
            vectors: list[Any] = [points.get(passage_point_id(doc_id, i)) for i in range(n)]
            if any(v is None for v in vectors):
                continue  # being rewritten: its passages are not all there
            dense = np.asarray([v["dense"] for v in vectors], np.float32).reshape(n, self.dim)
            sentences = [np.asarray(v.get("sentences", []), np.float32).reshape(-1, self.dim)
                         for v in vectors]
            out[doc_id] = prepared_from(payload, dense, np.concatenate(sentences)
                                        if sentences else np.zeros((0, self.dim), np.float32))
        return out

    def _scroll(self, collection: str, condition: models.Filter | None,
                fields: list[str] | bool) -> Iterator[models.Record]:
        offset = None
        while True:
            points, offset = self._call("scroll", self.client.scroll, collection,
                                        scroll_filter=condition, limit=1024, offset=offset,
                                        with_payload=fields, with_vectors=False)
            yield from points
            if offset is None:
                return

    def passage_payloads(self, fields: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        for p in self._scroll(self.collection, None, fields):
            yield int(p.id), p.payload or {}

    def document_list(self, fields: list[str], **equal: str) -> Iterator[dict[str, Any]]:
        """`fields` of every committed document, or of those whose payload has the values
        given (e.g. `release_id=...`, `lang=...`: indexed fields, filtered by Qdrant)."""
        condition = None
        if equal:
            condition = models.Filter(must=[
                models.FieldCondition(key=key, match=models.MatchValue(value=value))
                for key, value in equal.items()])
        for p in self._scroll(self.documents, condition, fields):
            if int(p.id) != STATS_ID:
                yield p.payload or {}

    def passage_count(self) -> int:
        return int(self._call("count", self.client.count, self.collection, exact=True).count)

    def count(self) -> tuple[int, int]:
        """(documents, passages) committed."""
        docs = self._call("count", self.client.count, self.documents, exact=True).count
        found = self._call("retrieve", self.client.retrieve, self.documents, [STATS_ID])
        passages = self._call("count", self.client.count, self.collection, exact=True).count
        return int(docs) - len(found), int(passages)

    def best_points(self, indices: Sequence[int]) -> list[tuple[str, int, float] | None]:
        """For each sparse dimension, the (doc_id, ordinal, score) of the passage a one-term
        query ranks first, or None when no passage holds it: one round trip."""
        requests = [models.QueryRequest(query=models.SparseVector(indices=[i], values=[1.0]),
                                        using="lexical", limit=1,
                                        with_payload=["doc_id", "ordinal"]) for i in indices]
        if not requests:
            return []
        responses = self._call("query_batch_points", self.client.query_batch_points,
                               self.collection, requests=requests)
        out: list[tuple[str, int, float] | None] = []
        for response in responses:
            top = response.points[0] if response.points else None
            payload = top.payload if top is not None else None
            out.append(None if top is None or not payload else
                       (str(payload["doc_id"]), int(payload["ordinal"]), float(top.score)))
        return out

    def source(self) -> QdrantSource:
        return QdrantSource(self)
