"""An immutable, searchable state of the index: the live segments of one manifest, their deletion
marks and the link overlays, seen as one table of passage rows.

Rows are numbered across segments in manifest order (segment i's local row r is global row
`base[i] + r`); deleted documents' rows stay in place but are not `live`. Searches hold one
snapshot for their whole run; a commit builds a new one (reusing the opened segments it still
lists) and swaps it in, so a search sees the old or the new state of a document, never a half.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from index.records import LANGS, Document, PreparedDocument
from index.store.manifest import BuildInfo
from index.store.segment import DocLinks, Segment, build_segment

Mask = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
DocKey = tuple[int, int]  # (segment index, document ordinal in it)


@dataclass(eq=False)
class Snapshot:
    """The live documents of some segments, as one row table. Treat as immutable once built."""

    segments: tuple[Segment, ...]
    deleted: tuple[Mask | None, ...]  # per segment: its deleted documents (None: none)
    overlays: Mapping[tuple[str, int], DocLinks]  # (segment name, doc ordinal) → newer links
    info: BuildInfo
    generation: int = 0
    base: I64 = field(init=False)

    def __post_init__(self) -> None:
        sizes = [s.n_rows for s in self.segments]
        self.base = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)

    @classmethod
    def from_prepared(cls, docs: Sequence[PreparedDocument], info: BuildInfo,
                      ann_min_rows: int) -> Snapshot:
        """A snapshot of one in-memory segment (evaluation, tests): nothing on disk."""
        segment = build_segment("seg-memory", docs, info.dim, ann_min_rows)
        return cls((segment,), (None,), {}, info)

    @classmethod
    def empty(cls, info: BuildInfo) -> Snapshot:
        return cls((), (), {}, info)

    @property
    def dim(self) -> int:
        return self.info.dim

    @property
    def n_rows(self) -> int:
        return int(self.base[-1])

    # -- rows -------------------------------------------------------------------------------------

    def locate(self, rows: I64) -> tuple[I64, I64]:
        """(segment index, local row) of each global row."""
        seg = np.searchsorted(self.base, rows, side="right") - 1
        return seg, rows - self.base[seg]

    def key_of_row(self, row: int) -> tuple[DocKey, int]:
        """The document holding `row` and the passage's ordinal in it."""
        seg = int(np.searchsorted(self.base, row, side="right") - 1)
        local = row - int(self.base[seg])
        segment = self.segments[seg]
        doc = int(segment.passage_doc[local])
        return (seg, doc), local - int(segment.doc_rows[doc, 0])

    def rows_of(self, key: DocKey) -> range:
        seg, doc = key
        local = self.segments[seg].rows_of(doc)
        base = int(self.base[seg])
        return range(base + local.start, base + local.stop)

    @functools.cached_property
    def live(self) -> Mask:
        """Rows of documents not deleted."""
        parts = []
        for segment, deleted in zip(self.segments, self.deleted, strict=True):
            if deleted is None:
                parts.append(np.ones(segment.n_rows, bool))
            else:
                parts.append(~deleted[segment.passage_doc])
        return np.concatenate(parts) if parts else np.zeros(0, bool)

    @functools.cached_property
    def n_live(self) -> int:
        return int(self.live.sum())

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        """BM25's IDF of each distinct term over the whole index (document frequencies count
        deleted rows until a merge drops them: close enough for weighting sentence overlap)."""
        n = max(self.n_live, 1)
        out = {}
        for term in dict.fromkeys(terms):
            df = min(n, sum(s.postings.document_frequency(term) for s in self.segments))
            out[term] = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        return out

    @functools.cached_property
    def live_length(self) -> int:
        """Terms in all live rows (BM25's collection length)."""
        total = 0
        for segment, deleted in zip(self.segments, self.deleted, strict=True):
            lengths = np.asarray(segment.postings.lengths, np.int64)
            total += int(lengths.sum() if deleted is None
                         else lengths[~deleted[segment.passage_doc]].sum())
        return total

    @functools.cached_property
    def row_lang(self) -> npt.NDArray[np.int8]:
        parts = [np.asarray(s.langs)[s.passage_doc] for s in self.segments]
        return np.concatenate(parts) if parts else np.zeros(0, np.int8)

    @functools.cached_property
    def row_date(self) -> I64:
        parts = [s.date_ordinals[s.passage_doc] for s in self.segments]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    # -- documents --------------------------------------------------------------------------------

    def key_of(self, doc_id: str) -> DocKey | None:
        """Where the live version of `doc_id` is (None: not indexed). Costs one lookup per
        segment, not a table of every document."""
        for seg in range(len(self.segments) - 1, -1, -1):
            doc = self.segments[seg].doc_ordinals.get(doc_id)
            deleted = self.deleted[seg]
            if doc is not None and (deleted is None or not deleted[doc]):
                return seg, doc
        return None

    def release_keys(self, release_id: str) -> list[DocKey]:
        """The live documents of a release, in ingest order."""
        keys = []
        for seg, (segment, deleted) in enumerate(zip(self.segments, self.deleted, strict=True)):
            for doc in segment.release_ordinals.get(release_id, ()):
                if deleted is None or not deleted[doc]:
                    keys.append((seg, doc))
        return keys

    def release_doc_ids(self, release_id: str) -> list[str]:
        """The live doc_ids of a release, in ingest order."""
        return [self.segments[seg].doc_ids[doc] for seg, doc in self.release_keys(release_id)]

    @functools.cached_property
    def n_documents(self) -> int:
        return sum(s.n_docs - (0 if d is None else int(d.sum()))
                   for s, d in zip(self.segments, self.deleted, strict=True))

    @functools.cached_property
    def n_releases(self) -> int:
        releases: set[str] = set()
        for segment, deleted in zip(self.segments, self.deleted, strict=True):
            if deleted is None:
                releases.update(segment.release_ordinals)
            else:
                releases.update(r for r, docs in segment.release_ordinals.items()
                                if not deleted[docs].all())
        return len(releases)

    @functools.cached_property
    def doc_index(self) -> dict[str, DocKey]:
        """doc_id → where its live version is, in ingest order. A table of every document
        (listing them): lookups use `key_of`."""
        index: dict[str, DocKey] = {}
        for seg, (segment, deleted) in enumerate(zip(self.segments, self.deleted, strict=True)):
            for doc, doc_id in enumerate(segment.doc_ids):
                if deleted is None or not deleted[doc]:
                    index[doc_id] = (seg, doc)
        return index

    @functools.cached_property
    def release_index(self) -> dict[str, list[str]]:
        """release_id → its live doc_ids."""
        out: dict[str, list[str]] = {}
        for doc_id, (seg, doc) in self.doc_index.items():
            out.setdefault(self.segments[seg].release_ids[doc], []).append(doc_id)
        return out

    def document(self, key: DocKey) -> Document:
        seg, doc = key
        return self.segments[seg].document(doc)

    def content_hash(self, key: DocKey) -> str:
        seg, doc = key
        return self.segments[seg].content_hash(doc)

    def release_of(self, key: DocKey) -> str:
        seg, doc = key
        return self.segments[seg].release_ids[doc]

    def links(self, key: DocKey) -> DocLinks:
        """The document's counterpart links: an overlay written since its segment, if any."""
        seg, doc = key
        segment = self.segments[seg]
        return self.overlays.get((segment.name, doc)) or segment.links_of(doc)

    def prepared(self, key: DocKey) -> PreparedDocument:
        seg, doc = key
        return self.segments[seg].prepared(doc, self.links(key))

    # -- filters ----------------------------------------------------------------------------------

    def allowed_rows(
        self,
        lang: str | None = None,
        release_ids: Sequence[str] | None = None,
        doc_ids: Sequence[str] | None = None,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
    ) -> Mask:
        """Live rows that pass the filters."""
        mask = self.live.copy()
        if lang is not None:
            mask &= self.row_lang == LANGS.index(lang)
        if release_ids is not None or doc_ids is not None:
            wanted = set(doc_ids) if doc_ids is not None else None
            if release_ids is not None:
                in_releases = {d for r in release_ids for d in self.release_doc_ids(r)}
                wanted = in_releases if wanted is None else wanted & in_releases
            keep = np.zeros(self.n_rows, bool)
            for doc_id in wanted or ():
                key = self.key_of(doc_id)
                if key is not None:
                    rows = self.rows_of(key)
                    keep[rows.start:rows.stop] = True
            mask &= keep
        if date_from is not None:
            mask &= self.row_date >= date_from.toordinal()
        if date_to is not None:
            mask &= (self.row_date >= 0) & (self.row_date <= date_to.toordinal())
        return mask

    def segment_slices(self, mask: Mask) -> list[Mask]:
        """`mask` cut into one piece per segment."""
        return [mask[int(self.base[i]):int(self.base[i + 1])] for i in range(len(self.segments))]

    def segment_live(self, i: int) -> Mask | None:
        """Segment i's live rows, or None when none of its documents is deleted."""
        return self._segment_live[i]

    @functools.cached_property
    def _segment_live(self) -> list[Mask | None]:
        # Computed once per snapshot: every search asks for each segment's.
        return [None if deleted is None else ~deleted[segment.passage_doc]
                for segment, deleted in zip(self.segments, self.deleted, strict=True)]
