"""Qdrant's own shard engine in-process (qdrant-edge): the part of `QdrantClient` that
`QdrantStore` uses, one edge shard per collection under a folder.

This is the closest thing to a Qdrant server that runs here (persistent segments, the server's
dense, multivector and sparse-IDF scoring, prefetch, payload indexes): the contract tests run
the store against it as well as against qdrant-client's local mode. Requests arrive as
qdrant-client models and are translated; answers come back with the attributes the store reads
(`points`, `id`, `score`, `payload`, `vector`, `count`).
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import qdrant_edge as edge
from qdrant_client import models


@dataclass(frozen=True, slots=True)
class _Response:
    points: list[Any]


@dataclass(frozen=True, slots=True)
class _Count:
    count: int


def _vector(value: Any) -> Any:
    if isinstance(value, models.SparseVector):
        return edge.SparseVector(indices=list(value.indices), values=list(value.values))
    return value


def _condition(condition: Any) -> Any:
    if not isinstance(condition, models.FieldCondition):
        raise ValueError(f"unsupported condition for qdrant-edge: {type(condition).__name__}")
    match: Any = None
    if isinstance(condition.match, models.MatchValue):
        match = edge.MatchValue(condition.match.value)
    elif isinstance(condition.match, models.MatchAny):
        values: Any = list(condition.match.any)
        match = edge.MatchAny(values)
    bounds: Any = None
    if condition.range is not None:
        r: Any = condition.range  # numeric bounds only (the store filters day ordinals)
        bounds = edge.RangeFloat(gte=r.gte, gt=r.gt, lte=r.lte, lt=r.lt)
    return edge.FieldCondition(condition.key, match=match, range=bounds)


def _filter(value: models.Filter | None) -> Any:
    if value is None:
        return None

    def each(part: Any) -> list[Any] | None:
        if part is None:
            return None
        items = part if isinstance(part, list) else [part]
        return [_condition(c) for c in items]

    return edge.Filter(must=each(value.must), must_not=each(value.must_not))


def _query(query: Any, using: str | None) -> Any:
    return edge.Query.Nearest(_vector(query), using=using)


def _request(request: models.QueryRequest) -> Any:
    prefetches = None
    if request.prefetch:
        items = request.prefetch if isinstance(request.prefetch, list) else [request.prefetch]
        prefetches = [edge.Prefetch(p.limit or 10, query=_query(p.query, p.using),
                                    filter=_filter(p.filter)) for p in items]
    fields: Any = request.with_payload or False  # the store asks for lists of field names
    return edge.QueryRequest(request.limit or 10, query=_query(request.query, request.using),
                             prefetches=prefetches, with_payload=fields,
                             filter=_filter(request.filter))


class EdgeClient:
    """`QdrantClient`'s methods that `QdrantStore` calls, over edge shards in `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._shards: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _shard(self, name: str) -> Any:
        with self._lock:
            if name not in self._shards:
                self._shards[name] = edge.EdgeShard.load(str(self.root / name))
            return self._shards[name]

    def collection_exists(self, name: str) -> bool:
        return name in self._shards or (self.root / name).is_dir()

    def create_collection(self, name: str, vectors_config: dict[str, models.VectorParams],
                          sparse_vectors_config: dict[str, models.SparseVectorParams]
                          | None = None, **_: Any) -> None:
        vectors = {}
        for key, params in vectors_config.items():
            multi = (edge.MultiVectorConfig(edge.MultiVectorComparator.MaxSim)
                     if params.multivector_config is not None else None)
            vectors[key] = edge.EdgeVectorParams(params.size, edge.Distance.Dot,
                                                 multivector_config=multi)
        sparse = {key: edge.EdgeSparseVectorParams(
            modifier=edge.Modifier.Idf if p.modifier == models.Modifier.IDF else None)
            for key, p in (sparse_vectors_config or {}).items()}
        if not vectors and not sparse:
            # A shard needs some vector; a collection of payloads only gets an unused sparse one.
            sparse = {"unused": edge.EdgeSparseVectorParams()}
        config = edge.EdgeConfig(vectors=vectors or None, sparse_vectors=sparse or None)
        with self._lock:
            self._shards[name] = edge.EdgeShard.create(str(self.root / name), config)

    def delete_collection(self, name: str) -> None:
        with self._lock:
            shard = self._shards.pop(name, None)
        if shard is not None:
            shard.close()
        shutil.rmtree(self.root / name, ignore_errors=True)

    def create_payload_index(self, collection: str, field: str,
                             schema: models.PayloadSchemaType) -> None:
        kind = (edge.PayloadSchemaType.Integer if schema == models.PayloadSchemaType.INTEGER
                else edge.PayloadSchemaType.Keyword)
        self._shard(collection).update(edge.UpdateOperation.create_field_index(field, kind))

    def upsert(self, collection: str, points: list[models.PointStruct],
               wait: bool = True, **_: Any) -> None:
        converted = []
        for p in points:
            vector = p.vector if isinstance(p.vector, dict) else {}
            converted.append(edge.Point(p.id, {k: _vector(v) for k, v in vector.items()},
                                        payload=p.payload))
        self._shard(collection).update(edge.UpdateOperation.upsert_points(converted))

    def delete(self, collection: str, selector: Any, wait: bool = True, **_: Any) -> None:
        shard = self._shard(collection)
        if isinstance(selector, models.PointIdsList):
            shard.update(edge.UpdateOperation.delete_points(list(selector.points)))
        else:
            shard.update(edge.UpdateOperation.delete_points_by_filter(_filter(selector.filter)))

    def set_payload(self, collection: str, payload: dict[str, Any], points: list[Any],
                    wait: bool = True) -> None:
        self._shard(collection).update(edge.UpdateOperation.set_payload(points, payload))

    def retrieve(self, collection: str, ids: list[Any], with_payload: Any = True,
                 with_vectors: Any = False) -> list[Any]:
        return list(self._shard(collection).retrieve(ids, with_payload, with_vectors))

    def scroll(self, collection: str, scroll_filter: models.Filter | None = None,
               limit: int = 10, offset: Any = None, with_payload: Any = True,
               with_vectors: Any = False) -> tuple[list[Any], Any]:
        request = edge.ScrollRequest(offset=offset, limit=limit, filter=_filter(scroll_filter),
                                     with_payload=with_payload, with_vector=with_vectors)
        points, following = self._shard(collection).scroll(request)
        return list(points), following

    def count(self, collection: str, exact: bool = True) -> _Count:
        return _Count(int(self._shard(collection).count(edge.CountRequest(exact=exact))))

    def query_batch_points(self, collection: str, requests: list[models.QueryRequest]
                           ) -> list[_Response]:
        batch = edge.QueryBatchRequest([_request(r) for r in requests])
        return [_Response(list(found)) for found in self._shard(collection).query_batch(batch)]

    def close(self) -> None:
        with self._lock:
            shards, self._shards = list(self._shards.values()), {}
        for shard in shards:
            shard.flush()
            shard.close()
