"""The library's front door: open a data directory, search it, upsert and delete documents."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from index.config import ChunkPlan, IndexSettings
from index.embed import Embedder, Matrix
from index.errors import EmptyInput, QiaoError
from index.indexes.analyze import Analyzer
from index.ingest.prepare import Progress, prepare_segments
from index.ingest.read import detect_lang
from index.records import LANGS, Counterpart, Document, Hit, Passage, PreparedDocument
from index.search.hits import counterpart_of, hits_for
from index.search.query_cache import QueryVectorCache
from index.search.rank import MODES, Filters, Mode, SearchParams, search_rows
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

log = logging.getLogger(__name__)

MAX_K = 100


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
        self._query_vectors = QueryVectorCache(settings.query_cache_size)
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

    def documents(self) -> list[Document]:
        snap = self._current()
        return [snap.segments[d].document for d in snap.doc_order]

    def document(self, doc_id: str) -> Document | None:
        seg = self._current().segments.get(doc_id)
        return seg.document if seg else None

    def passages(self, doc_id: str) -> list[Passage]:
        seg = self._current().segments.get(doc_id)
        return seg.passages() if seg else []

    def counterparts(self, doc_id: str) -> list[Counterpart | None]:
        """The aligned span of the other language version for each passage of `doc_id`."""
        snapshot = self._current()
        if doc_id not in snapshot.segments:
            return []
        first = snapshot.row_offset[doc_id]
        count = len(snapshot.segments[doc_id].spans)
        return [counterpart_of(snapshot, row) for row in range(first, first + count)]

    def stats(self) -> dict[str, int]:
        snap = self._current()
        return {
            "documents": len(snap.segments),
            "passages": snap.n_rows,
            "releases": len({s.document.release_id for s in snap.segments.values()}),
        }

    # -- search ------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        lang: str | None = None,
        mode: Mode = "hybrid",
        filters: Filters | None = None,
        counterpart: bool = True,
    ) -> list[Hit]:
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
    ) -> list[list[Hit]]:
        """Search a batch of queries. `lang` restricts results to that language ("en"/"zh");
        None returns either. Offsets of hits, answers and counterparts index their documents.
        """
        if not 1 <= k <= MAX_K:
            raise QiaoError(f"k must be between 1 and {MAX_K}, got {k}")
        if lang is not None and lang not in LANGS:
            raise QiaoError(f"lang must be one of {', '.join(LANGS)} or empty, got {lang!r}")
        if mode not in MODES:
            raise QiaoError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not queries or any(not q.strip() for q in queries):
            raise EmptyInput("the query is empty: type some words to search for")
        snapshot = self._current()
        if snapshot.n_rows == 0:
            return [[] for _ in queries]
        terms = self.analyzer.terms_batch(list(queries))
        vectors: Matrix
        if mode == "lexical":
            vectors = np.zeros((len(queries), snapshot.dim), np.float32)
        else:
            vectors = self._query_vectors.embed(self.embedder, queries)
        query_langs = [detect_lang(q) for q in queries]
        ranked = search_rows(
            snapshot, vectors, terms, query_langs, k, lang, mode, filters or Filters(), self.params
        )
        return [
            hits_for(snapshot, r, vectors[i], terms[i], counterpart) for i, r in enumerate(ranked)
        ]

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
