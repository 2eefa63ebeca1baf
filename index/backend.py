"""Choosing the index backend from the settings: the embedded data directory (the default,
`Retriever`) or Qdrant (`QIAO_BACKEND=qdrant`).

Qdrant's local mode keeps its folder locked while a client has it open, so a writer holds it
only to check and to write a batch, never while embedding: ingest workers in several
processes take turns on one folder. Against a server there is no lock; workers write at once
(see the README on partitioning releases among workers).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from index.backends.qdrant import QdrantStore, QdrantTarget
from index.backends.qdrant_index import QdrantIndex, verify_qdrant
from index.config import ChunkPlan, IndexSettings
from index.embed import Embedder
from index.errors import BackendUnavailable, QiaoError
from index.indexes.analyze import Analyzer
from index.ingest.prepare import Progress, prepare_segments, screen_documents
from index.ingest.problems import Problem
from index.records import Document, PreparedDocument
from index.retriever import Retriever, batched
from index.search.queries import QueryEncoder
from index.search.rank import SearchParams
from index.store.manifest import BuildInfo
from index.store.verify import VerifyReport
from index.view import IndexView
from index.writer import UpsertReport

# How long a local-mode writer waits for another process to release the folder.
LOCK_WAIT_SECONDS = 300.0


def qdrant_target(settings: IndexSettings) -> QdrantTarget:
    """Where the settings put the Qdrant collections."""
    if settings.qdrant_url:
        return QdrantTarget(settings.qdrant_collection, url=settings.qdrant_url,
                            api_key=settings.qdrant_api_key, timeout=settings.qdrant_timeout)
    path = settings.qdrant_path or settings.data_dir / "qdrant"
    return QdrantTarget(settings.qdrant_collection, path=str(path),
                        timeout=settings.qdrant_timeout, edge=settings.qdrant_edge)


def _model_dim(settings: IndexSettings) -> int:
    from index.model.load import model_info

    return model_info(settings).dim


def init_qdrant(settings: IndexSettings, dim: int | None = None) -> tuple[QdrantStore, bool]:
    """Create the collections if missing; (store, created). The caller closes the store."""
    store = connect(settings, dim if dim is not None else _model_dim(settings))
    return store, store.init(settings.qdrant_shards, settings.qdrant_replication,
                             settings.qdrant_write_consistency)


def connect(settings: IndexSettings, dim: int, wait: float = 0.0) -> QdrantStore:
    """A store for the configured Qdrant; a busy local folder is retried for `wait` seconds."""
    target = qdrant_target(settings)
    if target.path is not None:
        Path(target.path).mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            return QdrantStore.connect(target, dim)
        except BackendUnavailable:
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


class QdrantOpener:
    """Opens `QdrantIndex`es for the settings, loading the model only when a search or a write
    needs it."""

    def __init__(self, settings: IndexSettings, embedder: Embedder | None = None,
                 analyzer: Analyzer | None = None, params: SearchParams | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self.analyzer = analyzer or Analyzer(settings.user_dict)
        self.params = params or SearchParams()
        self.queries = QueryEncoder(self.analyzer, lambda: self.embedder,
                                    settings.query_cache_size)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from index.model.load import load_embedder

            self._embedder = load_embedder(self.settings)
        return self._embedder

    def info(self) -> BuildInfo:
        return BuildInfo(self.embedder.model_id, self.embedder.dim,
                         asdict(ChunkPlan.from_settings(self.settings)),
                         self.analyzer.fingerprint)

    @contextmanager
    def index(self, wait: float = 0.0) -> Iterator[QdrantIndex]:
        """An index over the configured collections, closed after use."""
        info = self.info()
        store = connect(self.settings, info.dim, wait)
        try:
            store.require()
            yield QdrantIndex(store, self.queries, self.params, info)
        finally:
            store.close()

    def ingest(self, documents: Iterable[Document], batch_docs: int | None = None,
               progress: Progress | None = None) -> Iterator[UpsertReport]:
        """Upsert `documents` batch by batch; each batch is checked and written holding the
        store, and embedded without it. Yields each batch's report."""
        plan = ChunkPlan.from_settings(self.settings)
        for batch in batched(documents, batch_docs or self.settings.ingest_batch_docs):
            with self.index(LOCK_WAIT_SECONDS) as index:
                todo = index.changed(batch)
            prepared = (prepare_segments(todo, self.embedder, self.analyzer, plan, progress)
                        if todo else [])
            with self.index(LOCK_WAIT_SECONDS) as index:
                yield index.upsert_prepared(prepared, batch)

    def screen(self, documents: Iterable[Document]) -> tuple[list[Document], list[Problem]]:
        """As `Retriever.screen`: documents over the passage limit are refused."""
        return screen_documents(documents, self.embedder, ChunkPlan.from_settings(self.settings),
                                self.settings.max_document_passages)


def verify_backend(settings: IndexSettings) -> VerifyReport:
    """`verify_qdrant` on the configured collections."""
    store = connect(settings, _model_dim(settings), LOCK_WAIT_SECONDS)
    try:
        return verify_qdrant(store)
    finally:
        store.close()


class QdrantRetriever(Retriever):
    """A `Retriever` whose index is Qdrant: what the server and MCP use with
    QIAO_BACKEND=qdrant. Reads go through `QdrantView`; writes realign touched releases and
    write through `QdrantIndex`. Nothing contacts Qdrant until a request needs it, so a server
    that is down makes requests fail (503, retry) rather than the service's start."""

    def __init__(self, settings: IndexSettings, embedder: Embedder | None,
                 analyzer: Analyzer, params: SearchParams) -> None:
        super().__init__(settings.data_dir, settings, embedder, analyzer, params)
        self._store: QdrantStore | None = None
        self._store_lock = threading.Lock()

    @classmethod
    def open_qdrant(cls, settings: IndexSettings, embedder: Embedder | None = None,
                    analyzer: Analyzer | None = None,
                    params: SearchParams | None = None) -> QdrantRetriever:
        return cls(settings, embedder, analyzer or Analyzer(settings.user_dict),
                   params or SearchParams())

    def _index(self) -> QdrantIndex:
        info = self._expected_info(self.embedder)
        with self._store_lock:
            if self._store is None:
                # Once per Retriever, not per request: a missing collection is said in one line
                # here; one dropped later fails its requests like a server that is down.
                store = connect(self.settings, info.dim)
                try:
                    store.require()
                except BaseException:
                    store.close()
                    raise
                self._store = store
            store = self._store
        return QdrantIndex(store, self._queries, self.params, info)

    def close(self) -> None:
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def reload(self) -> bool:
        return False  # every read asks Qdrant

    def chunker_changes(self) -> list[str]:
        return []

    @property
    def generation(self) -> str | None:
        return "qdrant"

    def view(self) -> IndexView:
        from index.backends.qdrant_view import QdrantView

        return QdrantView(self._index(), self._queries, self.params)

    def upsert(self, documents: Sequence[Document], progress: Progress | None = None
               ) -> UpsertReport:
        with self._write_lock:
            return self._index().upsert(documents, self._preparer(progress))

    def upsert_prepared(self, prepared: Sequence[PreparedDocument]) -> UpsertReport:
        with self._write_lock:
            return self._index().upsert_prepared(prepared)

    def rebuild(self, documents: Iterable[Document], *, batch_docs: int | None = None,
                progress: Progress | None = None) -> UpsertReport:
        raise QiaoError("rebuild is for the embedded index; with Qdrant, drop the collections "
                        "and ingest again")

    def delete(self, doc_ids: Sequence[str]) -> list[str]:
        with self._write_lock:
            return self._index().delete(doc_ids)

    def merge(self, names: Sequence[str] | None = None) -> bool:
        return False  # Qdrant optimises its own segments


def open_index(settings: IndexSettings, embedder: Embedder | None = None,
               analyzer: Analyzer | None = None, params: SearchParams | None = None
               ) -> Retriever:
    """The configured backend's Retriever: the data directory's, or Qdrant's."""
    if settings.backend == "qdrant":
        return QdrantRetriever.open_qdrant(settings, embedder, analyzer, params)
    return Retriever.open(settings=settings, embedder=embedder, analyzer=analyzer,
                          params=params)
