"""The library's front door: open a data directory, read it through views, upsert and delete."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from itertools import islice
from pathlib import Path

from index.config import ChunkPlan, IndexSettings
from index.embed import Embedder
from index.indexes.analyze import Analyzer
from index.ingest.prepare import Progress, prepare_segments, screen_documents, with_terms
from index.ingest.problems import Problem
from index.records import Counterpart, Document, Passage, PreparedDocument, SearchResults
from index.search.queries import QueryEncoder
from index.search.rank import Filters, Mode, SearchParams
from index.store.commit import Change, commit, make_current
from index.store.datadir import check_data_dir, current_name, write_lock
from index.store.manifest import BuildInfo, Manifest
from index.store.merge import MergePolicy
from index.store.reader import open_snapshot
from index.store.snapshot import Snapshot
from index.view import MAX_K, IndexView
from index.writer import (
    IndexState,
    Prepare,
    UpsertReport,
    delete,
    merge,
    merge_as_needed,
    upsert,
)

log = logging.getLogger(__name__)


def batched(items: Iterable[Document], size: int) -> Iterator[list[Document]]:
    """`items` in lists of `size` (the last may be shorter), read as needed."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


__all__ = ["MAX_K", "Retriever", "UpsertReport"]


class Retriever:
    """Search and maintain one data directory.

    Reads go through views of an immutable snapshot and may come from many threads; writes are
    serialised (in-process by a lock, across processes by a file lock) and publish a new
    snapshot only after it is committed to disk.
    """

    def __init__(
        self,
        data_dir: Path,
        settings: IndexSettings,
        embedder: Embedder | None,
        analyzer: Analyzer,
        params: SearchParams,
    ) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self._embedder = embedder
        self.analyzer = analyzer
        self.params = params
        self.merge_policy = MergePolicy(max_rows=settings.max_segment_passages)
        self._write_lock = threading.Lock()
        self._embedder_lock = threading.Lock()
        self._queries = QueryEncoder(analyzer, lambda: self.embedder, settings.query_cache_size)
        self._snapshot: Snapshot | None = None
        self._manifest: Manifest | None = None

    @classmethod
    def open(
        cls,
        data_dir: Path | str | None = None,
        *,
        settings: IndexSettings | None = None,
        embedder: Embedder | None = None,
        analyzer: Analyzer | None = None,
        params: SearchParams | None = None,
        fresh: bool = False,
    ) -> Retriever:
        """Open (or prepare to create) the index in `data_dir` (default: settings.data_dir).

        Without an `embedder`, the configured model is loaded on first use, so lexical-only
        commands (delete, verify) never load it. Raises IndexMismatch when the directory was
        built with a different model or analyser. `fresh` skips loading what is there (it may
        have been built by another model or format): for `rebuild`.
        """
        settings = settings or IndexSettings()
        path = Path(data_dir) if data_dir is not None else settings.data_dir
        check_data_dir(path)
        retriever = cls(
            path, settings, embedder, analyzer or Analyzer(settings.user_dict),
            params or SearchParams(),
        )
        if not fresh:
            retriever.reload()
        return retriever

    def close(self) -> None:
        """Release what the index holds open (nothing for the embedded index: its files are
        memory-mapped read-only; a Qdrant folder is locked while open)."""

    # -- state -------------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        with self._embedder_lock:
            if self._embedder is None:
                from index.model.load import load_embedder

                self._embedder = load_embedder(self.settings)
            return self._embedder

    def _expected_info(self, embedder: Embedder) -> BuildInfo:
        return BuildInfo(
            model_id=embedder.model_id,
            dim=embedder.dim,
            chunker=asdict(ChunkPlan.from_settings(self.settings)),
            analyzer=self.analyzer.fingerprint,
        )

    def chunker_changes(self) -> list[str]:
        """How the committed index's chunking settings (embed_units included) differ from the
        configured ones, as "name: built → now" lines; [] when they agree or nothing is built.

        Unchanged documents are skipped on ingest, so after a change the index mixes both
        until it is rebuilt.
        """
        if self._manifest is None:
            return []
        built = self._manifest.info.chunker
        now = asdict(ChunkPlan.from_settings(self.settings))
        return [
            f"{name}: {built.get(name, 'not recorded')} → {now.get(name, 'not recorded')}"
            for name in sorted(set(built) | set(now))
            if built.get(name) != now.get(name)
        ]

    def reload(self) -> bool:
        """Load the committed state if it changed on disk; True if something was loaded. Only
        new segments are opened: the others are shared with the current snapshot."""
        name = current_name(self.data_dir) if self.data_dir.exists() else None
        if name is not None and self._manifest is not None and name == self._manifest.name:
            return False
        reuse = {s.name: s for s in self._snapshot.segments} if self._snapshot else {}
        loaded = open_snapshot(self.data_dir, reuse) if name else None
        if loaded is None:
            self._snapshot, self._manifest = None, None
            return False
        snapshot, manifest = loaded
        if self._embedder is not None:
            self._expected_info(self._embedder).check_compatible(manifest.info, self.data_dir)
        self._snapshot, self._manifest = snapshot, manifest
        return True

    def _current(self) -> Snapshot:
        snapshot = self._snapshot
        if snapshot is None:
            dim = self._manifest.info.dim if self._manifest else 1
            snapshot = Snapshot.empty(BuildInfo("", dim, {}, ""))
        return snapshot

    @property
    def generation(self) -> str | None:
        """The committed manifest this Retriever reads (e.g. "manifest-000042")."""
        return self._manifest.name if self._manifest else None

    @property
    def manifest(self) -> Manifest | None:
        return self._manifest

    def view(self) -> IndexView:
        """An immutable view of the committed state: every read through it sees one snapshot,
        whatever commits meanwhile. Take one per request."""
        return IndexView(self._current(), self._queries, self.params, self.generation)

    # Shorthands for one read each (each takes its own view; use `view()` for several).

    def documents(self) -> list[Document]:
        return self.view().documents()

    def document(self, doc_id: str) -> Document | None:
        return self.view().document(doc_id)

    def passages(self, doc_id: str) -> list[Passage]:
        return self.view().passages(doc_id)

    def counterparts(self, doc_id: str) -> list[Counterpart | None]:
        return self.view().counterparts(doc_id)

    def stats(self) -> dict[str, int]:
        return self.view().stats()

    def search(
        self, query: str, k: int = 10, lang: str | None = None, mode: Mode = "hybrid",
        filters: Filters | None = None, counterpart: bool = True,
    ) -> SearchResults:
        """`IndexView.search` on the current view."""
        return self.view().search(query, k, lang, mode, filters, counterpart)

    def search_batch(
        self, queries: Sequence[str], k: int = 10, lang: str | None = None,
        mode: Mode = "hybrid", filters: Filters | None = None, counterpart: bool = True,
    ) -> list[SearchResults]:
        """`IndexView.search_batch` on the current view."""
        return self.view().search_batch(queries, k, lang, mode, filters, counterpart)

    def export_prepared(self) -> Iterator[PreparedDocument]:
        """Every committed document as prepared (vectors, links, and terms analysed again from
        the text: segments keep postings, not term lists), in ingest order: to copy the index
        into another backend without embedding again."""
        snapshot = self._current()
        for key in list(snapshot.doc_index.values()):
            yield with_terms(snapshot.prepared(key), self.analyzer)

    # -- writes ------------------------------------------------------------------------------

    def _state(self) -> IndexState:
        return IndexState(self.data_dir, self._manifest, self._current())

    def _adopt(self, state: IndexState) -> None:
        self._snapshot, self._manifest = state.snapshot, state.manifest

    def _info_for_write(self) -> BuildInfo:
        info = self._expected_info(self.embedder)
        if self._manifest is not None:
            info.check_compatible(self._manifest.info, self.data_dir)
        return info

    def _preparer(self, progress: Progress | None) -> Prepare:
        plan = ChunkPlan.from_settings(self.settings)

        def prepare(docs: list[Document]) -> list[PreparedDocument]:
            return prepare_segments(docs, self.embedder, self.analyzer, plan, progress)

        return prepare

    def screen(self, documents: Iterable[Document]) -> tuple[list[Document], list[Problem]]:
        """The documents within the per-document passage limit, and a one-line problem for each
        of the others (checked before anything is embedded)."""
        return screen_documents(documents, self.embedder, ChunkPlan.from_settings(self.settings),
                                self.settings.max_document_passages)

    def upsert(
        self, documents: Sequence[Document], progress: Progress | None = None
    ) -> UpsertReport:
        """Add or replace documents by doc_id in one commit; unchanged content is skipped.

        Replaced documents lose all their old passages and vectors; the counterpart links of
        every touched release are recomputed. Small segments are merged afterwards when the
        merge policy asks for it.
        """
        return self._upsert(documents, self._preparer(progress))

    def upsert_prepared(self, prepared: Sequence[PreparedDocument]) -> UpsertReport:
        """Upsert documents already prepared (chunked, embedded and analysed elsewhere, e.g. by
        ingest workers, or a benchmark's synthetic archive): one commit, as `upsert`. They must
        come from the configured model and analyser."""
        by_id = {p.doc_id: p for p in prepared}

        def given(docs: list[Document]) -> list[PreparedDocument]:
            return [by_id[doc.doc_id] for doc in docs]

        return self._upsert([p.document for p in prepared], given)

    def _upsert(self, documents: Sequence[Document], prepare: Prepare) -> UpsertReport:
        with self._write_lock, write_lock(self.data_dir):
            self.reload()
            report, state = upsert(self._state(), documents, prepare, self._info_for_write,
                                   self.settings.ann_min_passages)
            self._adopt(state)
            if state.manifest is not None and (report.added or report.replaced):
                log.info("committed %s: %d documents, %d passages", state.manifest.name,
                         state.manifest.documents, state.manifest.passages)
                self._adopt(merge_as_needed(self._state(), self.merge_policy,
                                            state.manifest.info, self.settings.ann_min_passages))
            return report

    def upsert_many(
        self, documents: Iterable[Document], *, batch_docs: int | None = None,
        progress: Progress | None = None,
    ) -> Iterator[UpsertReport]:
        """Upsert `documents` in batches of `batch_docs` (default: the setting), each batch its
        own commit, read as they come: a long ingest is searchable, and survives a crash, up to
        its last committed batch (run again, it skips what was committed), and its memory stays
        that of one batch. Yields each batch's report."""
        for batch in batched(documents, batch_docs or self.settings.ingest_batch_docs):
            yield self.upsert(batch, progress)

    def rebuild(
        self, documents: Iterable[Document], *, batch_docs: int | None = None,
        progress: Progress | None = None,
    ) -> UpsertReport:
        """Make `documents` the whole index, re-embedding all of them.

        For a change of model, chunker or format: nothing of the old index is read. Batches are
        written as they come (memory stays that of a batch) but become current together, at the
        end: until then the old index keeps serving, and a crash leaves it as it was.
        """
        with self._write_lock, write_lock(self.data_dir):
            info = self._expected_info(self.embedder)
            previous = (current_name(self.data_dir, old_format=True) if self.data_dir.exists()
                        else None)
            state = IndexState(self.data_dir, None, Snapshot.empty(info))
            added: list[str] = []
            counts: dict[str, int] = {}
            prepare = self._preparer(progress)
            ann = self.settings.ann_min_passages
            for batch in batched(documents, batch_docs or self.settings.ingest_batch_docs):
                report, state = upsert(state, batch, prepare, lambda: info, ann, switch=False)
                state = merge_as_needed(state, self.merge_policy, info, ann, switch=False)
                added.extend(report.added + report.replaced)
                counts.update(report.passage_counts)
            if state.manifest is None:  # nothing to index: an empty index, still a commit
                manifest, _ = commit(self.data_dir, None, {}, Change(), info, switch=False)
                state = IndexState(self.data_dir, manifest, state.snapshot)
            assert state.manifest is not None
            make_current(self.data_dir, state.manifest.name, keep=previous)
            self._adopt(state)
            return UpsertReport(added=added, passages=sum(counts.values()), passage_counts=counts)

    def delete(self, doc_ids: Sequence[str]) -> list[str]:
        """Remove documents (all passages, vectors, terms); returns the ids that existed."""
        with self._write_lock, write_lock(self.data_dir):
            self.reload()
            if self._manifest is None:
                return []
            removed, state = delete(self._state(), doc_ids, self._manifest.info)
            self._adopt(state)
            if removed:
                self._adopt(merge_as_needed(self._state(), self.merge_policy,
                                            self._manifest.info, self.settings.ann_min_passages))
            return removed

    def merge(self, names: Sequence[str] | None = None) -> bool:
        """Merge the named segments (default: what the merge policy chooses) now, in one commit;
        False when there is nothing to merge."""
        with self._write_lock, write_lock(self.data_dir):
            self.reload()
            if self._manifest is None:
                return False
            chosen = list(names) if names else self.merge_policy.plan(self._manifest.segments)
            if not chosen:
                return False
            self._adopt(merge(self._state(), chosen, self._manifest.info,
                              self.settings.ann_min_passages))
            return True
