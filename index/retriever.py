"""The library's front door: open a data directory, search it, upsert and delete documents."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from index.config import ChunkPlan, IndexSettings
from index.embed import Embedder
from index.indexes.analyze import Analyzer
from index.ingest.prepare import Progress, prepare_segments
from index.records import Counterpart, Document, Passage, PreparedDocument, SearchResults
from index.search.queries import QueryEncoder
from index.search.rank import Filters, Mode, SearchParams
from index.store.current import generation_number
from index.store.generation import (
    BuildInfo,
    check_data_dir,
    current_generation,
    load_snapshot,
    save_snapshot,
    write_lock,
)
from index.store.snapshot import Snapshot, realign_releases
from index.view import MAX_K, IndexView

log = logging.getLogger(__name__)

__all__ = ["MAX_K", "Retriever", "UpsertReport"]


@dataclass(frozen=True, slots=True)
class UpsertReport:
    """What an upsert did, by doc_id."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    passages: int = 0
    # Passages of each added or replaced document (a caller that batched several requests into
    # one upsert splits the report by these).
    passage_counts: dict[str, int] = field(default_factory=dict)


class Retriever:
    """Search and maintain one data directory.

    Searches run against an immutable snapshot and may come from many threads; writes are
    serialised (in-process by a lock, across processes by a file lock) and publish a new snapshot
    only after it is committed to disk.
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
        self._write_lock = threading.Lock()
        self._embedder_lock = threading.Lock()
        self._queries = QueryEncoder(analyzer, lambda: self.embedder, settings.query_cache_size)
        self._snapshot: Snapshot | None = None
        self._info: BuildInfo | None = None
        self._generation: str | None = None

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
            path,
            settings,
            embedder,
            analyzer or Analyzer(settings.user_dict),
            params or SearchParams(),
        )
        if not fresh:
            retriever.reload()
        return retriever

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
            dense_factory=self.settings.dense_index,
        )

    def chunker_changes(self) -> list[str]:
        """How the committed index's chunking settings (embed_units included) differ from the
        configured ones, as "name: built → now" lines; [] when they agree or nothing is built.

        Unchanged documents are skipped on ingest, so after a change the index mixes both
        until it is rebuilt.
        """
        if self._info is None:
            return []
        built = self._info.chunker
        now = asdict(ChunkPlan.from_settings(self.settings))
        return [
            f"{name}: {built.get(name, 'not recorded')} → {now.get(name, 'not recorded')}"
            for name in sorted(set(built) | set(now))
            if built.get(name) != now.get(name)
        ]

    def reload(self) -> bool:
        """Load the committed generation if it changed on disk; True if something was loaded."""
        generation = current_generation(self.data_dir) if self.data_dir.exists() else None
        if generation is not None and generation == self._generation:
            return False
        loaded = load_snapshot(self.data_dir) if generation else None
        if loaded is None:
            self._snapshot, self._info, self._generation = None, None, None
            return False
        snapshot, info = loaded
        if self._embedder is not None:
            self._expected_info(self._embedder).check_compatible(info, self.data_dir)
        self._snapshot, self._info, self._generation = snapshot, info, generation
        return True

    def _current(self) -> Snapshot:
        snapshot = self._snapshot
        if snapshot is None:
            snapshot = Snapshot.empty(
                self._info.dim if self._info else 1, self.settings.dense_index
            )
        return snapshot

    @property
    def generation(self) -> str | None:
        return self._generation

    def view(self) -> IndexView:
        """An immutable view of the committed state: every read through it sees one snapshot,
        whatever commits meanwhile. Take one per request."""
        return IndexView(self._current(), self._queries, self.params, self._generation)

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
        self,
        query: str,
        k: int = 10,
        lang: str | None = None,
        mode: Mode = "hybrid",
        filters: Filters | None = None,
        counterpart: bool = True,
    ) -> SearchResults:
        """`IndexView.search` on the current view."""
        return self.view().search(query, k, lang, mode, filters, counterpart)

    def search_batch(
        self,
        queries: Sequence[str],
        k: int = 10,
        lang: str | None = None,
        mode: Mode = "hybrid",
        filters: Filters | None = None,
        counterpart: bool = True,
    ) -> list[SearchResults]:
        """`IndexView.search_batch` on the current view."""
        return self.view().search_batch(queries, k, lang, mode, filters, counterpart)

    # -- writes ------------------------------------------------------------------------------

    def upsert(
        self, documents: Sequence[Document], progress: Progress | None = None
    ) -> UpsertReport:
        """Add or replace documents by doc_id in one commit; unchanged content is skipped.

        Replaced documents lose all their old passages and vectors; the counterpart links of
        every touched release are recomputed.
        """
        with self._write_lock, write_lock(self.data_dir):
            self.reload()
            snapshot = self._current()
            report = UpsertReport()
            changed: dict[str, Document] = {}
            for doc in documents:  # the last occurrence of a doc_id in a batch wins
                changed[doc.doc_id] = doc
            todo: list[Document] = []
            for doc in changed.values():
                seg = snapshot.segments.get(doc.doc_id)
                if seg is not None and seg.content_hash == doc.content_hash:
                    report.unchanged.append(doc.doc_id)
                    continue
                (report.replaced if seg is not None else report.added).append(doc.doc_id)
                todo.append(doc)
            if not todo:
                return report
            embedder = self.embedder
            info = self._expected_info(embedder)
            if self._info is not None:
                info.check_compatible(self._info, self.data_dir)
            new_segments = prepare_segments(
                todo, embedder, self.analyzer, ChunkPlan.from_settings(self.settings), progress
            )
            segments = dict(snapshot.segments)
            releases = {doc.release_id for doc in todo}
            for doc in todo:
                old = segments.pop(doc.doc_id, None)
                if old is not None:
                    releases.add(old.document.release_id)
            for seg in new_segments:
                segments[seg.doc_id] = seg
            self._commit(segments, releases, info)
            counts = {seg.doc_id: len(seg.spans) for seg in new_segments}
            return UpsertReport(
                report.added, report.replaced, report.unchanged, sum(counts.values()), counts
            )

    def rebuild(
        self, documents: Sequence[Document], progress: Progress | None = None
    ) -> UpsertReport:
        """Make `documents` the whole index, re-embedding all of them, in one commit.

        For a change of model, chunker or format: nothing of the old index is read. Like every
        commit it is atomic; until it lands, the old generation stays current.
        """
        with self._write_lock, write_lock(self.data_dir):
            latest = {doc.doc_id: doc for doc in documents}  # the last occurrence wins
            embedder = self.embedder
            info = self._expected_info(embedder)
            new_segments = prepare_segments(
                list(latest.values()), embedder, self.analyzer,
                ChunkPlan.from_settings(self.settings), progress,
            )
            segments = {seg.doc_id: seg for seg in new_segments}
            current = current_generation(self.data_dir) if self.data_dir.exists() else None
            self._commit(
                segments, {doc.release_id for doc in latest.values()}, info,
                generation=generation_number(current) + 1 if current else 1,
            )
            counts = {seg.doc_id: len(seg.spans) for seg in new_segments}
            return UpsertReport(
                added=list(latest), passages=sum(counts.values()), passage_counts=counts
            )

    def delete(self, doc_ids: Sequence[str]) -> list[str]:
        """Remove documents (all passages, vectors, terms); returns the ids that existed."""
        with self._write_lock, write_lock(self.data_dir):
            self.reload()
            snapshot = self._current()
            segments = dict(snapshot.segments)
            removed = [d for d in doc_ids if d in segments]
            if not removed:
                return []
            releases = {segments.pop(d).document.release_id for d in removed}
            assert self._info is not None
            self._commit(segments, releases, self._info)
            return removed

    def _commit(
        self,
        segments: dict[str, PreparedDocument],
        releases: set[str],
        info: BuildInfo,
        generation: int | None = None,
    ) -> None:
        segments = realign_releases(segments, releases)
        if generation is None:
            generation = (self._current().generation or 0) + 1
        snapshot = Snapshot.build(segments, info.dim, info.dense_factory, generation)
        name = save_snapshot(self.data_dir, snapshot, info)
        self._snapshot, self._info, self._generation = snapshot, info, name
        log.info("committed %s: %d documents, %d passages", name, len(segments), snapshot.n_rows)
