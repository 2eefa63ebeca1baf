"""`IndexView` over Qdrant: what a reader (the API, MCP) asks, answered from the collections.

Searches go through `QdrantIndex`; documents, passages, releases and the summary are read from
the documents collection's payloads (metadata fields only, except for the documents shown).
Reads that need a whole release or a document's counterparts build a throwaway in-memory
snapshot of those documents and ask the embedded view's own code. Unlike the embedded view, a
Qdrant view is not one frozen state: a write that lands between two reads of one request is
seen by the second.

Translation lookup runs the embedded lookup over the documents Qdrant's searches bring up.
Not available on Qdrant (a one-line error): nearest-vector reads. Listing all releases, the
summary and paging through all documents read every document's metadata (a release, or one
language, is filtered by Qdrant).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import Any

from index.backends.qdrant_index import QdrantIndex
from index.codec import document_from_record
from index.embed import Matrix
from index.errors import QiaoError
from index.records import LANGS, Counterpart, Document, Lang, Passage, SearchResults
from index.search.lookup import SEARCH_PASSAGES, SOURCE_PASSAGES, Translation, lookup_rows
from index.search.queries import QueryEncoder
from index.search.rank import Filters, Mode, SearchParams, search_rows
from index.store.snapshot import Snapshot
from index.view import SUMMARY_NEWEST, IndexSummary, IndexView, Release

_META = ["doc_id", "release_id", "lang", "date", "title", "url"]


class QdrantView(IndexView):
    """An `IndexView` whose reads go to Qdrant (see the module docstring)."""

    def __init__(self, index: QdrantIndex, queries: QueryEncoder, params: SearchParams) -> None:
        super().__init__(Snapshot.empty(index.info), queries, params, "qdrant")
        self.index = index

    # -- search ------------------------------------------------------------------------------

    def search_batch(
        self, queries: Sequence[str], k: int = 10, lang: str | None = None,
        mode: Mode = "hybrid", filters: Filters | None = None, counterpart: bool = True,
    ) -> list[SearchResults]:
        return self.index.search_batch(queries, k, lang, mode, filters, counterpart)

    def _translate(self, text: str, sentences: Sequence[str], vectors: Callable[[], Matrix],
                   terms: Sequence[str], source: Lang, target: Lang) -> Translation | None:
        """The embedded lookup over the documents that Qdrant's searches for the text bring
        up (its own language, and the target's), with their other language versions."""
        embedded = vectors()
        found = self.index.store.source()
        rows = [row for k, lang in ((SOURCE_PASSAGES, source), (SEARCH_PASSAGES, target))
                for row, _ in search_rows(found, embedded[:1], [terms], [source], k, lang,
                                          "hybrid", Filters(), self._params)[0]]
        owners = found.passages_of(rows)
        snapshot = self.index.snapshot_of({doc_id for doc_id, _ in owners.values()})
        if snapshot.n_rows == 0:
            return None
        return lookup_rows(snapshot, text, sentences, embedded, terms, source, target,
                           self._params)

    def nearest(self, vectors: Matrix, k: int = 10, exact: bool = False) -> list[list[str]]:
        raise QiaoError("nearest-vector reads are not available on the Qdrant backend")

    # -- documents ---------------------------------------------------------------------------

    def document(self, doc_id: str) -> Document | None:
        return self.index.document(doc_id)

    def passages(self, doc_id: str) -> list[Passage]:
        payload = self.index.store.document_payloads([doc_id]).get(doc_id)
        if payload is None:
            return []
        text = payload["record"]["text"]
        return [Passage(doc_id, i, int(s), int(e), text[s:e])
                for i, (s, e) in enumerate(payload["spans"])]

    def counterparts(self, doc_id: str) -> list[Counterpart | None]:
        snapshot = self.index.snapshot_of([doc_id])
        return IndexView(snapshot, self._queries, self._params, None).counterparts(doc_id)

    def _metadata(self, lang: Lang | None = None, release_id: str | None = None
                  ) -> list[dict[str, Any]]:
        equal = {key: value for key, value in (("lang", lang), ("release_id", release_id))
                 if value is not None}
        found = list(self.index.store.document_list(_META, **equal))
        return sorted(found, key=lambda p: str(p["doc_id"]))

    def document_page(
        self, lang: Lang | None = None, release_id: str | None = None, offset: int = 0,
        limit: int | None = None,
    ) -> tuple[int, list[Document]]:
        """Documents by doc_id (Qdrant keeps no ingest order)."""
        found = self._metadata(lang, release_id)
        page = found[offset:] if limit is None else found[offset:offset + limit]
        payloads = self.index.store.document_payloads(str(p["doc_id"]) for p in page)
        docs = [document_from_record(payloads[str(p["doc_id"])]["record"])
                for p in page if str(p["doc_id"]) in payloads]
        return len(found), docs

    # -- releases ----------------------------------------------------------------------------

    def release(self, release_id: str) -> Release | None:
        docs = self.document_page(release_id=release_id)[1]
        if not docs:
            return None
        docs = sorted(docs, key=lambda d: (d.lang, d.doc_id))
        return Release(release_id, next((d.date for d in docs if d.date), None), tuple(docs))

    def release_date(self, release_id: str) -> str | None:
        found = sorted(self._metadata(release_id=release_id),
                       key=lambda p: (LANGS.index(p["lang"]), str(p["doc_id"])))
        return next((str(p["date"]) for p in found if p.get("date")), None)

    def _release_dates(self) -> dict[str, str | None]:
        dates: dict[str, str | None] = {}
        for p in sorted(self._metadata(), key=lambda p: (LANGS.index(p["lang"]),
                                                         str(p["doc_id"]))):
            release = str(p["release_id"])
            if dates.get(release) is None:
                dates[release] = p.get("date") or None
        return dates

    def summary(self) -> IndexSummary:
        found = self._metadata()
        languages: dict[str, int] = {}
        for p in found:
            languages[p["lang"]] = languages.get(p["lang"], 0) + 1
        dates = [str(p["date"]) for p in found if p.get("date")]
        newest = heapq.nlargest(SUMMARY_NEWEST, found, key=lambda p: p.get("date") or "")
        docs = tuple(Document(str(p["doc_id"]), str(p["release_id"]), p["lang"], p["title"], "",
                              p.get("date"), p.get("url")) for p in newest)
        _, passages = self.index.store.count()
        releases = len({p["release_id"] for p in found})
        return IndexSummary(len(found), passages, releases, languages,
                            min(dates) if dates else None, max(dates) if dates else None, docs)

    def stats(self) -> dict[str, int]:
        documents, passages = self.index.store.count()
        releases = len({p["release_id"] for p in self.index.store.document_list(["release_id"])})
        return {"documents": documents, "passages": passages, "releases": releases}

