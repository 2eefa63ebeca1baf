"""`IndexView`: everything a reader asks of the index, answered from one committed snapshot.

A view never changes: a commit that lands while a view is in use does not move it, so a
document, its passages and a search made through one view always agree. Front ends take a view
per request (`Retriever.view()`) and ask it everything that request needs.
"""

from __future__ import annotations

import datetime as dt
import heapq
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.embed import Matrix
from index.errors import EmptyInput, QiaoError
from index.ingest.sentences import sentence_spans
from index.records import LANGS, Counterpart, Document, Lang, Passage, SearchResults
from index.search.fuse import top_rows
from index.search.hits import counterpart_of, results_for
from index.search.lookup import Translation, lookup_rows
from index.search.queries import QueryEncoder
from index.search.rank import MODES, Filters, Mode, SearchParams, search_rows
from index.search.snapshot_source import dense_lists
from index.store.snapshot import DocKey, Snapshot

MAX_K = 100
# Lookup is for a sentence or a passage, not a document: longer text is refused.
MAX_LOOKUP_CHARS = 2000
MAX_LOOKUP_SENTENCES = 20
# A document window shows this much text around the span asked for, and never more than
# WINDOW_MAX_CHARS in all (a longer document is read in several windows).
WINDOW_CONTEXT_CHARS = 1500
WINDOW_MAX_CHARS = 20_000


@dataclass(frozen=True, slots=True)
class Release:
    """A release with its language versions (by language), and its date (the first version's
    that has one)."""

    release_id: str
    date: str | None
    documents: tuple[Document, ...]


@dataclass(frozen=True, slots=True)
class IndexSummary:
    """What an index holds, for a start page: counts, documents per language, the dates
    covered, and the titles of the newest documents (as example searches)."""

    documents: int
    passages: int
    releases: int
    languages: dict[str, int]
    date_from: str | None
    date_to: str | None
    newest: tuple[Document, ...]  # without their text (metadata only)


# One summary per snapshot: a start page asks for it on every visit.
_SUMMARIES: weakref.WeakKeyDictionary[Snapshot, IndexSummary] = weakref.WeakKeyDictionary()
_SUMMARY_LOCK = threading.Lock()
SUMMARY_NEWEST = 6


@dataclass(frozen=True, slots=True)
class DocumentWindow:
    """`document.text[start:end]` as `text`; `complete` when that is the whole document."""

    document: Document
    start: int
    end: int
    text: str

    @property
    def complete(self) -> bool:
        return self.start == 0 and self.end == len(self.document.text)


def check_search(queries: Sequence[str], k: int, lang: str | None, mode: str) -> None:
    """A one-line error for search arguments no backend can answer."""
    if not 1 <= k <= MAX_K:
        raise QiaoError(f"k must be between 1 and {MAX_K}, got {k}")
    if lang is not None and lang not in LANGS:
        raise QiaoError(f"lang must be one of {', '.join(LANGS)} or empty, got {lang!r}")
    if mode not in MODES:
        raise QiaoError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not queries or any(not q.strip() for q in queries):
        raise EmptyInput("the query is empty: type some words to search for")


class IndexView:
    """Reads of one snapshot: search, documents, passages, releases, windows. Thread-safe."""

    def __init__(
        self, snapshot: Snapshot, queries: QueryEncoder, params: SearchParams,
        generation: str | None,
    ) -> None:
        self._snapshot = snapshot
        self._queries = queries
        self._params = params
        self.generation = generation

    # -- search ------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        lang: str | None = None,
        mode: Mode = "hybrid",
        filters: Filters | None = None,
        counterpart: bool = True,
    ) -> SearchResults:
        """Passages answering `query`, best first. See `search_batch`."""
        return self.search_batch([query], k, lang, mode, filters, counterpart)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int = 10,
        lang: str | None = None,
        mode: Mode = "hybrid",
        filters: Filters | None = None,
        counterpart: bool = True,
    ) -> list[SearchResults]:
        """Search a batch of queries. `lang` restricts results to that language ("en"/"zh");
        None returns either. Offsets of hits, answers and counterparts index their documents.
        """
        check_search(queries, k, lang, mode)
        query_langs = self._queries.langs(queries)
        snapshot = self._snapshot
        if snapshot.n_rows == 0:
            return [SearchResults((), q) for q in query_langs]
        terms = self._queries.terms(queries)
        vectors: Matrix
        if mode == "lexical":
            vectors = np.zeros((len(queries), snapshot.dim), np.float32)
        else:
            vectors = self._queries.vectors(queries)
        ranked = search_rows(
            snapshot, vectors, terms, query_langs, k, lang, mode, filters or Filters(),
            self._params,
        )
        return results_for(snapshot, ranked, queries, query_langs, terms, vectors,
                           mode != "lexical", counterpart)

    def language_of(self, text: str) -> Lang:
        """The language a query or a looked-up text is read in."""
        return self._queries.langs([text])[0]

    def lookup(self, text: str, lang: str | None = None) -> Translation | None:
        """The published translation of `text` (a sentence or a passage) into `lang` (default:
        the other language than the text's): the text as found in its own language and the
        sentences aligned with it, or, when the text is not in the archive or has no aligned
        partner, the closest sentence of a cross-lingual search. None when the archive holds
        nothing in `lang`."""
        if not text.strip():
            raise EmptyInput("the text is empty: give a sentence or a passage to look up")
        if len(text) > MAX_LOOKUP_CHARS:
            raise QiaoError(f"the text is {len(text)} characters; lookup takes a sentence or a "
                            f"passage of at most {MAX_LOOKUP_CHARS}")
        source: Lang = self._queries.langs([text])[0]
        if lang is not None and lang not in LANGS:
            raise QiaoError(f"lang must be one of {', '.join(LANGS)} or empty, got {lang!r}")
        target: Lang = lang if lang is not None else LANGS[1 - LANGS.index(source)]
        if target == source:
            raise QiaoError(f"the text is already in {source}: ask for a translation into the "
                            f"other language (lang={LANGS[1 - LANGS.index(source)]})")
        spans = sentence_spans(text)[:MAX_LOOKUP_SENTENCES]
        sentences = [text[a:b] for a, b in spans] or [text.strip()]
        embedded = [text] + (sentences if len(sentences) > 1 else [])
        return self._translate(text, sentences, lambda: self._queries.vectors(embedded),
                               self._queries.terms([text])[0], source, target)

    def _translate(self, text: str, sentences: Sequence[str], vectors: Callable[[], Matrix],
                   terms: Sequence[str], source: Lang, target: Lang) -> Translation | None:
        """`lookup` once the text is split and analysed (`vectors` embeds it when needed)."""
        snapshot = self._snapshot
        if snapshot.n_rows == 0:
            return None
        return lookup_rows(snapshot, text, sentences, vectors(), terms, source, target,
                           self._params)

    def nearest(self, vectors: Matrix, k: int = 10, exact: bool = False) -> list[list[str]]:
        """The passage_ids of the k nearest passage vectors of each query vector, by the index's
        own (approximate, for large segments) search, or `exact`ly: comparing the two measures
        the approximate search's recall."""
        snapshot = self._snapshot
        found = []
        for line in dense_lists(snapshot, vectors, None, k, exact):
            ids = []
            for row, _ in top_rows(line, k):
                key, ordinal = snapshot.key_of_row(row)
                ids.append(f"{snapshot.segments[key[0]].doc_ids[key[1]]}#{ordinal}")
            found.append(ids)
        return found

    # -- documents ---------------------------------------------------------------------------

    def document(self, doc_id: str) -> Document | None:
        key = self._snapshot.key_of(doc_id)
        return None if key is None else self._snapshot.document(key)

    def passages(self, doc_id: str) -> list[Passage]:
        """The passages of `doc_id` (their spans index its text); [] for an unknown id."""
        key = self._snapshot.key_of(doc_id)
        if key is None:
            return []
        seg, doc = key
        return self._snapshot.segments[seg].passages_of(doc)

    def counterparts(self, doc_id: str) -> list[Counterpart | None]:
        """The aligned span of the other language version for each passage of `doc_id`."""
        key = self._snapshot.key_of(doc_id)
        if key is None:
            return []
        return [counterpart_of(self._snapshot, row) for row in self._snapshot.rows_of(key)]

    def _doc_keys(self, lang: Lang | None, release_id: str | None) -> list[DocKey]:
        """Documents in ingest order, filtered on metadata (no text is read)."""
        snap = self._snapshot
        keys = (snap.release_keys(release_id) if release_id is not None
                else list(snap.doc_index.values()))
        if lang is None:
            return keys
        wanted = LANGS.index(lang)
        return [(seg, doc) for seg, doc in keys if int(snap.segments[seg].langs[doc]) == wanted]

    def documents(self, lang: Lang | None = None, release_id: str | None = None) -> list[Document]:
        """Documents in ingest order, optionally only one language or one release."""
        return self.document_page(lang, release_id)[1]

    def document_page(
        self, lang: Lang | None = None, release_id: str | None = None, offset: int = 0,
        limit: int | None = None,
    ) -> tuple[int, list[Document]]:
        """(how many documents match, the documents of [offset, offset + limit)), in ingest
        order; only the page's texts are read."""
        keys = self._doc_keys(lang, release_id)
        page = keys[offset:] if limit is None else keys[offset:offset + limit]
        return len(keys), [self._snapshot.document(key) for key in page]

    def window(
        self, doc_id: str, start: int | None = None, end: int | None = None
    ) -> DocumentWindow | None:
        """The document (None if unknown), or a window of WINDOW_CONTEXT_CHARS around
        [start, end) (document offsets). A window never passes WINDOW_MAX_CHARS: a longer
        document or span gives its beginning, and the caller reads on with a later span.
        Raises QiaoError when the span is not inside the text.
        """
        doc = self.document(doc_id)
        if doc is None:
            return None
        length = len(doc.text)
        if start is None and end is None:
            lo, hi = 0, min(length, WINDOW_MAX_CHARS)
        else:
            first = start if start is not None else end
            last = end if end is not None else start
            assert first is not None and last is not None
            if not 0 <= first <= last <= length:
                raise QiaoError(
                    f"start/end must satisfy 0 <= start <= end <= {length} (the length of "
                    f"{doc_id}); got start={start}, end={end}"
                )
            lo = max(0, first - WINDOW_CONTEXT_CHARS)
            hi = min(length, last + WINDOW_CONTEXT_CHARS, lo + WINDOW_MAX_CHARS)
        return DocumentWindow(doc, lo, hi, doc.text[lo:hi])

    # -- releases ----------------------------------------------------------------------------

    def release(self, release_id: str) -> Release | None:
        snap = self._snapshot
        keys = snap.release_keys(release_id)
        if not keys:
            return None
        docs = sorted((snap.document(key) for key in keys),
                      key=lambda d: (d.lang, d.doc_id))
        return Release(release_id, next((d.date for d in docs if d.date), None), tuple(docs))

    def release_date(self, release_id: str) -> str | None:
        """The date of the first version (by language) that has one, from metadata only."""
        snap = self._snapshot
        keys = sorted(snap.release_keys(release_id),
                      key=lambda k: (int(snap.segments[k[0]].langs[k[1]]),
                                     snap.segments[k[0]].doc_ids[k[1]]))
        return next((d for k in keys if (d := snap.segments[k[0]].dates[k[1]])), None)

    def release_ids(
        self,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        query: str | None = None,
    ) -> list[str]:
        """Releases dated within [date_from, date_to] (both optional; undated ones only when
        neither is given), newest first; with `query`, the releases whose passages match it
        best come first (releases without a matching passage are left out)."""
        dates = self._release_dates()
        if query:
            hits = self.search(query, MAX_K, filters=Filters(date_from=date_from, date_to=date_to))
            order = list(dict.fromkeys(hit.release_id for hit in hits))
        else:
            order = sorted(dates, key=lambda r: (dates[r] or "", r), reverse=True)
        return [r for r in order if r in dates and dated_within(dates[r], date_from, date_to)]

    def _release_dates(self) -> dict[str, str | None]:
        """Every release's date (see `release_date`)."""
        return {r: self.release_date(r) for r in self._snapshot.release_index}

    def summary(self) -> IndexSummary:
        """See `IndexSummary`; computed once per committed state, from metadata only."""
        snap = self._snapshot
        with _SUMMARY_LOCK:
            known = _SUMMARIES.get(snap)
        if known is not None:
            return known
        languages: dict[str, int] = {}
        dated: list[tuple[str, DocKey]] = []
        for key in snap.doc_index.values():
            segment = snap.segments[key[0]]
            lang = LANGS[int(segment.langs[key[1]])]
            languages[lang] = languages.get(lang, 0) + 1
            date = segment.dates[key[1]]
            dated.append((date or "", key))
        dates = [d for d, _ in dated if d]
        newest = heapq.nlargest(SUMMARY_NEWEST, dated, key=lambda item: item[0])
        docs = tuple(
            Document(seg.doc_ids[doc], seg.release_ids[doc], LANGS[int(seg.langs[doc])],
                     seg.titles[doc], "", seg.dates[doc], seg.urls[doc])
            for seg, doc in ((snap.segments[k[0]], k[1]) for _, k in newest)
        )
        summary = IndexSummary(snap.n_documents, snap.n_live, snap.n_releases, languages,
                               min(dates) if dates else None, max(dates) if dates else None,
                               docs)
        with _SUMMARY_LOCK:
            _SUMMARIES[snap] = summary
        return summary

    def stats(self) -> dict[str, int]:
        snap = self._snapshot
        return {
            "documents": snap.n_documents,
            "passages": snap.n_live,
            "releases": snap.n_releases,
        }


def dated_within(date: str | None, date_from: dt.date | None, date_to: dt.date | None) -> bool:
    if date_from is None and date_to is None:
        return True
    if date is None:
        return False
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        return False
    return (date_from is None or day >= date_from) and (date_to is None or day <= date_to)
