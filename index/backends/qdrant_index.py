"""Search and writes through a `QdrantStore`, by the same ranking, alignment and hit composition
as the embedded index.

A search ranks point ids with `rank.search_rows` over the store's `QdrantSource`, then reads
back the documents of its hits (and their other language versions) as prepared documents,
puts them in a throwaway in-memory snapshot, and composes hits there with `results_for`, the
embedded index's own code: spans, answer sentences and counterparts come out identical in
form. Term weights of answer sentences are the whole collection's (Qdrant's IDF), not the
throwaway snapshot's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from index.backends.qdrant import QdrantStore
from index.backends.qdrant_points import term_index
from index.backends.qdrant_source import QdrantSource
from index.codec import document_from_record
from index.embed import Matrix
from index.indexes.lexical import K1, B
from index.records import Document, Lang, PreparedDocument, SearchResults
from index.search.hits import results_for
from index.search.queries import QueryEncoder
from index.search.rank import Filters, Mode, SearchParams, search_rows
from index.store.manifest import BuildInfo
from index.store.realign import realign_releases
from index.store.snapshot import Snapshot
from index.store.verify import VerifyReport, Violation
from index.view import check_search
from index.writer import UpsertReport

Prepare = Callable[[list[Document]], list[PreparedDocument]]
_EXACT = 1 << 62  # a throwaway snapshot is searched exactly (it is never searched, only read)
# What a write reads of the stored versions: not their texts.
_IDENTITY = ["content_hash", "release_id"]
SETTLE_ROUNDS = 3  # re-checks of a written release for versions another writer added


class QdrantIndex:
    """Qiao over Qdrant: `search`, `upsert`, `delete`, `document`."""

    def __init__(self, store: QdrantStore, queries: QueryEncoder, params: SearchParams,
                 info: BuildInfo) -> None:
        self.store = store
        self._queries = queries
        self._params = params
        self.info = info

    # -- search ------------------------------------------------------------------------------

    def search(self, query: str, k: int = 10, lang: str | None = None, mode: Mode = "hybrid",
               filters: Filters | None = None, counterpart: bool = True) -> SearchResults:
        return self.search_batch([query], k, lang, mode, filters, counterpart)[0]

    def search_batch(
        self, queries: Sequence[str], k: int = 10, lang: str | None = None,
        mode: Mode = "hybrid", filters: Filters | None = None, counterpart: bool = True,
    ) -> list[SearchResults]:
        check_search(queries, k, lang, mode)
        query_langs = self._queries.langs(queries)
        terms = self._queries.terms(queries)
        vectors: Matrix = (np.zeros((len(queries), self.info.dim), np.float32)
                           if mode == "lexical" else self._queries.vectors(queries))
        return self.search_encoded(queries, query_langs, terms, vectors, k, lang, mode,
                                   filters or Filters(), counterpart)

    def search_encoded(
        self, queries: Sequence[str], query_langs: Sequence[Lang],
        terms: Sequence[Sequence[str]], vectors: Matrix, k: int, lang: str | None,
        mode: Mode, filters: Filters, counterpart: bool = True,
    ) -> list[SearchResults]:
        """`search_batch` for queries already analysed and embedded (evaluations)."""
        source = self.store.source()
        ranked = search_rows(source, vectors, terms, query_langs, k, lang, mode, filters,
                             self._params)
        return self.compose(source, ranked, queries, query_langs, terms, vectors,
                            mode != "lexical", counterpart)

    def compose(
        self, source: QdrantSource, ranked: Sequence[Sequence[tuple[int, float]]],
        queries: Sequence[str], query_langs: Sequence[Lang], terms: Sequence[Sequence[str]],
        vectors: Matrix, judge: bool, counterpart: bool,
    ) -> list[SearchResults]:
        """Ranked point ids as SearchResults, composed over the hits' documents."""
        owners = source.passages_of(row for line in ranked for row, _ in line)
        # The hits' payloads name their other versions: both are read in one go.
        others = {str(source.payloads[row]["counterpart_doc"]) for row in owners
                  if source.payloads[row].get("counterpart_doc")}
        snapshot = self.snapshot_of({doc_id for doc_id, _ in owners.values()} | others)
        local: dict[int, int] = {}
        for row, found in owners.items():
            key = snapshot.key_of(found[0])
            if key is not None and found[1] < len(snapshot.rows_of(key)):
                local[row] = snapshot.rows_of(key).start + found[1]
        mapped = [[(local[row], score) for row, score in line if row in local] for line in ranked]
        return results_for(snapshot, mapped, queries, query_langs, terms, vectors, judge,
                           counterpart, idf=self.idf)

    def snapshot_of(self, doc_ids: Iterable[str]) -> Snapshot:
        """A throwaway in-memory snapshot of these documents and their other language
        versions, for the embedded code that composes hits, counterparts and lookups."""
        prepared = self.store.prepared(doc_ids)
        others = {p.counterpart_doc for p in prepared.values() if p.counterpart_doc}
        if others - set(prepared):
            prepared.update(self.store.prepared(others - set(prepared)))
        return Snapshot.from_prepared(list(prepared.values()), self.info, _EXACT)

    def idf(self, terms: Sequence[str]) -> Mapping[str, float]:
        """BM25's IDF of each term over the whole collection, read from Qdrant's own: a
        one-term query's best point scores idf × that point's stored term weight."""
        distinct = list(dict.fromkeys(terms))
        if not distinct:
            return {}
        tops = self.store.best_points([term_index(t) for t in distinct])
        payloads = self.store.document_payloads(
            (top[0] for top in tops if top is not None), ["terms"])
        avg = self.store.avg_terms()
        out: dict[str, float] = {}
        unseen: list[float] = []  # counting costs a pass over the collection: only if needed

        def unseen_idf() -> float:
            if not unseen:
                n = max(self.store.passage_count(), 1)
                unseen.append(math.log(1.0 + (n + 0.5) / 0.5))
            return unseen[0]

        for term, top in zip(distinct, tops, strict=True):
            if top is None or top[0] not in payloads:
                out[term] = unseen_idf()
                continue
            doc_id, ordinal, score = top
            passage_terms = payloads[doc_id]["terms"][ordinal]
            index = term_index(term)
            tf = sum(1 for t in passage_terms if term_index(t) == index)
            if tf == 0:  # a hash collision: another term's top passage
                out[term] = unseen_idf()
                continue
            weight = tf / (tf + K1 * ((1.0 - B) + B * len(passage_terms) / avg))
            out[term] = score / weight
        return out

    # -- documents ---------------------------------------------------------------------------

    def document(self, doc_id: str) -> Document | None:
        payload = self.store.document_payloads([doc_id]).get(doc_id)
        return None if payload is None else document_from_record(payload["record"])

    # -- writes ------------------------------------------------------------------------------

    def changed(self, documents: Sequence[Document]) -> list[Document]:
        """The documents (the last of each doc_id) whose content the collection does not hold."""
        latest = {doc.doc_id: doc for doc in documents}
        stored = self.store.content_hashes(latest)
        return [d for d in latest.values() if stored.get(d.doc_id) != d.content_hash]

    def upsert(self, documents: Sequence[Document], prepare: Prepare) -> UpsertReport:
        """Add or replace documents (the last of a doc_id wins); unchanged content is skipped.
        The releases they touch are realigned with the versions already stored, and a stored
        version whose links change is rewritten with them."""
        latest = {doc.doc_id: doc for doc in documents}
        todo = self.changed(documents)
        return self.upsert_prepared(prepare(todo) if todo else [], list(latest.values()))

    def upsert_prepared(self, prepared: Sequence[PreparedDocument],
                        documents: Sequence[Document] = ()) -> UpsertReport:
        """Write documents prepared elsewhere (an ingest worker embeds without holding the
        store); `documents` are all those of the batch, for the report's unchanged ones.
        Whatever the collection already holds with the same content is skipped."""
        latest = {doc.doc_id: doc for doc in documents}
        latest.update({p.doc_id: p.document for p in prepared})
        stored = self.store.document_payloads(latest, _IDENTITY)
        report = UpsertReport()
        for doc in latest.values():
            old = stored.get(doc.doc_id)
            if old is not None and old["content_hash"] == doc.content_hash:
                report.unchanged.append(doc.doc_id)
            else:
                (report.replaced if old is not None else report.added).append(doc.doc_id)
        fresh = {p.doc_id: p for p in prepared if p.doc_id not in report.unchanged}
        if not fresh:
            return report
        todo = [p.document for p in fresh.values()]
        releases = {doc.release_id for doc in todo}
        releases |= {str(stored[d]["release_id"]) for d in fresh if d in stored}
        older_ids = [d for d in self.store.release_doc_ids(releases) if d not in fresh]
        older = self.store.prepared(older_ids)
        aligned = realign_releases({**older, **fresh}, releases)
        self.store.write([aligned[d] for d in fresh] + _relinked(older, aligned))
        self._settle(releases, set(older) | set(fresh))
        counts = {d: len(p.spans) for d, p in fresh.items()}
        return UpsertReport(report.added, report.replaced, report.unchanged,
                            sum(counts.values()), counts)

    def _settle(self, releases: set[str], seen: set[str]) -> None:
        """Realign `releases` again while another writer has added a version since they were
        aligned from the `seen` documents: two workers writing the two versions of one
        release at once each see the other's on this check, and the release ends aligned."""
        for _ in range(SETTLE_ROUNDS):
            now = set(self.store.release_doc_ids(releases))
            if now <= seen:
                return
            stored = self.store.prepared(now)
            self.store.write(_relinked(stored, realign_releases(stored, releases)))
            seen = now

    def delete(self, doc_ids: Sequence[str]) -> list[str]:
        """Remove documents; their releases' remaining versions lose their links. Returns the
        doc_ids that were there."""
        stored = self.store.document_payloads(doc_ids, _IDENTITY)
        if not stored:
            return []
        self.store.delete(list(stored))
        releases = {str(p["release_id"]) for p in stored.values()}
        remaining = self.store.prepared(self.store.release_doc_ids(releases))
        if remaining:
            self.store.write(_relinked(remaining, realign_releases(remaining, releases)))
        return [d for d in doc_ids if d in stored]



def verify_qdrant(store: QdrantStore) -> VerifyReport:
    """Check what the collections hold: every committed document (a document point) has each
    of its passages exactly once, with its content hash; no passage belongs to a document that
    is not committed, to an older version of it, or to an ordinal past its end."""
    store.require()
    expected: dict[str, tuple[str, int]] = {}
    for payload in store.document_list(["doc_id", "content_hash", "spans"]):
        expected[str(payload["doc_id"])] = (str(payload["content_hash"]), len(payload["spans"]))
    seen: dict[tuple[str, int], int] = {}
    violations: list[Violation] = []
    passages = 0
    for point, payload in store.passage_payloads(["doc_id", "ordinal", "content_hash"]):
        passages += 1
        doc_id, ordinal = str(payload.get("doc_id")), int(payload.get("ordinal", -1))
        where = f"{store.collection}/{point}"
        seen[(doc_id, ordinal)] = seen.get((doc_id, ordinal), 0) + 1
        if doc_id not in expected:
            violations.append(Violation(where, f"stale: passage {doc_id}#{ordinal} of a "
                                               "document that is not committed"))
            continue
        content_hash, count = expected[doc_id]
        if payload.get("content_hash") != content_hash or not 0 <= ordinal < count:
            violations.append(Violation(where, f"stale: passage {doc_id}#{ordinal} of an "
                                               "older version"))
    for (doc_id, ordinal), times in seen.items():
        if times > 1:
            violations.append(Violation(store.collection, f"duplicate: passage "
                                                          f"{doc_id}#{ordinal} {times} times"))
    for doc_id, (_, count) in expected.items():
        lost = [i for i in range(count) if (doc_id, i) not in seen]
        if lost:
            violations.append(Violation(store.documents, f"missing: {len(lost)} of {count} "
                                                         f"passages of {doc_id}"))
    return VerifyReport(store.collection, len(expected), passages, violations)


def _relinked(stored: Mapping[str, PreparedDocument],
              aligned: Mapping[str, PreparedDocument]) -> list[PreparedDocument]:
    """The stored documents whose links the realignment changed, with the new links."""
    return [aligned[d] for d, old in stored.items()
            if aligned[d].counterpart_doc != old.counterpart_doc
            or not np.array_equal(aligned[d].counterparts, old.counterparts)
            or not np.array_equal(aligned[d].sentence_counterparts, old.sentence_counterparts)]
