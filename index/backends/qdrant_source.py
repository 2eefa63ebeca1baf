"""A Qdrant collection as a `SearchSource`: each ranking step's candidates in one
`query_batch_points` call (per query the dense pool, the BM25 list, and MAX_SIM over both as
prefetches), filters and alignment read from the payloads the candidates came with."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from qdrant_client import models

from index.backends.qdrant_points import passage_point_id, passes, payload_filter, query_vector
from index.search.source import Ask, Candidates, Mode, RankedList, Where

if TYPE_CHECKING:
    from index.backends.qdrant import QdrantStore

# What a candidate brings back: enough to filter it and to pivot through its alignment.
PASSAGE_FIELDS = ["doc_id", "release_id", "lang", "date", "ordinal", "counterpart_doc",
                  "counterpart"]


class QdrantSource:
    """A Qdrant collection as a `SearchSource` (rows are point ids); payloads seen during one
    search are kept for its filtering and pivot steps."""

    def __init__(self, store: QdrantStore) -> None:
        self.store = store
        self.payloads: dict[int, dict[str, Any]] = {}

    def is_empty(self, where: Where) -> bool:
        return False  # an empty collection answers no candidates; counting would scan

    def candidates(
        self, asks: Sequence[Ask], mode: Mode, k: int, pool: int, sentences: bool,
    ) -> list[list[Candidates]]:
        requests: list[models.QueryRequest] = []
        asked: list[list[dict[str, int]]] = []  # per ask, per query: request of each list
        for ask in asks:
            asked.append(self._requests(ask, mode, k, pool, sentences, requests))
        responses: list[models.QueryResponse] = []
        if requests:  # every ask's requests in one round trip
            responses = self.store._call("query_batch_points",
                                         self.store.client.query_batch_points,
                                         self.store.collection, requests=requests)
        out = []
        for slots_of_ask in asked:
            found = []
            for slots in slots_of_ask:
                lists = {name: self._take(responses[at]) for name, at in slots.items()}
                found.append(Candidates(lists.get("dense", {}), lists.get("lexical", {}),
                                        lists.get("sentences", {})))
            out.append(found)
        return out

    def _requests(self, ask: Ask, mode: Mode, k: int, pool: int, sentences: bool,
                  requests: list[models.QueryRequest]) -> list[dict[str, int]]:
        """Append the ask's requests; per query, the index of the request of each list."""
        condition = payload_filter(ask.where)
        vectors, terms = ask.vectors, ask.terms
        asked: list[dict[str, int]] = []
        for i, query_terms in enumerate(terms):
            dense = np.asarray(vectors[i], np.float32).tolist()
            lexical = query_vector(query_terms)
            slots: dict[str, int] = {}
            prefetch = []
            if mode != "lexical":
                slots["dense"] = len(requests)
                requests.append(models.QueryRequest(query=dense, using="dense", limit=pool,
                                                    filter=condition,
                                                    with_payload=PASSAGE_FIELDS))
                prefetch.append(models.Prefetch(query=dense, using="dense", limit=pool,
                                                filter=condition))
            if mode != "dense" and lexical.indices:
                slots["lexical"] = len(requests)
                requests.append(models.QueryRequest(query=lexical, using="lexical", limit=k,
                                                    filter=condition,
                                                    with_payload=PASSAGE_FIELDS))
                prefetch.append(models.Prefetch(query=lexical, using="lexical", limit=k,
                                                filter=condition))
            if sentences and mode != "lexical":
                # MAX_SIM of the query against each pooled passage's sentences: the best one.
                slots["sentences"] = len(requests)
                requests.append(models.QueryRequest(query=[dense], using="sentences", limit=k,
                                                    prefetch=prefetch, filter=condition,
                                                    with_payload=PASSAGE_FIELDS))
            asked.append(slots)
        return asked

    def _take(self, response: models.QueryResponse) -> RankedList:
        line: RankedList = {}
        for point in response.points:
            row = int(point.id)
            if point.payload:
                self.payloads[row] = point.payload
            line[row] = float(point.score)
        return line

    def _payloads(self, rows: Iterable[int]) -> dict[int, dict[str, Any]]:
        missing = [r for r in rows if r not in self.payloads]
        if missing:
            found = self.store._call("retrieve", self.store.client.retrieve,
                                     self.store.collection, missing,
                                     with_payload=PASSAGE_FIELDS)
            self.payloads.update({int(p.id): p.payload or {} for p in found})
        return self.payloads

    def passing(self, rows: Iterable[int], where: Where) -> set[int]:
        wanted = list(rows)
        payloads = self._payloads(wanted)
        return {r for r in wanted if r in payloads and passes(payloads[r], where)}

    def aligned(self, rows: Iterable[int]) -> dict[int, list[int]]:
        payloads = self._payloads(list(rows))
        out: dict[int, list[int]] = {}
        for row in rows:
            payload = payloads.get(row)
            if not payload or not payload.get("counterpart_doc"):
                continue
            first, end = (int(x) for x in payload["counterpart"][:2])
            if first < 0:
                continue
            other = payload["counterpart_doc"]
            out[row] = [passage_point_id(other, i) for i in range(first, end)]
        return out

    def passages_of(self, rows: Iterable[int]) -> dict[int, tuple[str, int]]:
        """(doc_id, ordinal) of each row, its payload read once for all rows not seen yet."""
        wanted = list(rows)
        payloads = self._payloads(wanted)
        return {row: (str(payloads[row]["doc_id"]), int(payloads[row]["ordinal"]))
                for row in wanted if payloads.get(row)}
