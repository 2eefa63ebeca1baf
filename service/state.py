"""What the app holds between requests: the Retriever (loaded once, in the background), the
thread pool that runs searches off the event loop, and the write queue.

Loading the model takes seconds, so it runs in a background thread started by the lifespan:
`/healthz` answers at once and `/readyz` turns 200 when `retriever` is set. Searches run in a
thread pool sized to the machine; writes (ingest, delete, reload) run in order on the write
queue's one thread (`service.write_queue`), so an ingest never holds a search thread and never
overlaps a reload of another process's commit. Ingest jobs (`wait=false`) are journaled by
`service.jobs` and go through the same queue.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TypeVar

import anyio
import anyio.to_thread

from index import (
    Document,
    Embedder,
    IndexSettings,
    QiaoError,
    Retriever,
    UpsertReport,
    default_lexicon,
    open_index,
)
from service.errors import ApiError
from service.jobs import IngestJobs, JobHook, QueueUnavailable
from service.settings import ServiceSettings
from service.write_queue import ShuttingDown, WriteQueue

log = logging.getLogger(__name__)

T = TypeVar("T")
LoadErrorHook = Callable[[QiaoError], None]

# Text run through the analyser and the model once after loading: jieba reads its dictionary
# and torch sets up its kernels on first use, which would otherwise slow the first search.
_WARM_UP = "warm-up 预热"


class ServiceState:
    """The loaded index and the means to use it from async code. One per app."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        retriever: Retriever | None = None,
        embedder: Embedder | None = None,
        on_load_error: LoadErrorHook | None = None,
    ) -> None:
        self.settings = settings
        self._prebuilt = retriever
        self._embedder = embedder
        self._on_load_error = on_load_error
        self.retriever: Retriever | None = None
        self.error: QiaoError | None = None
        self._loader: threading.Thread | None = None
        self._search_limiter: anyio.CapacityLimiter | None = None
        # One write thread, started on first use, at a lower CPU priority than searches.
        self.writes = WriteQueue(settings.ingest_group_docs, settings.write_niceness)
        self.jobs: IngestJobs | None = None
        self.on_job_end: JobHook | None = None  # set by the app (metrics)
        self._jobs_problem = "the index is still loading: retry shortly"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Create the pools (inside the event loop) and begin loading the index and model."""
        self._search_limiter = anyio.CapacityLimiter(self.settings.search_threads)
        if self._prebuilt is not None:
            self._ready(self._prebuilt)
            return
        # A daemon thread: a shutdown during a model load need not wait for it.
        self._loader = threading.Thread(target=self._load, name="qiao-load", daemon=True)
        self._loader.start()

    def stop(self) -> None:
        """Finish the queued writes (a commit is never cut short; accepted ingest jobs wait
        in their journal for the next start) and end the write thread."""
        self.writes.stop()
        if self.jobs is not None:
            self.jobs.close()
        if self.retriever is not None:
            self.retriever.close()

    def _load(self) -> None:
        index_settings = self.settings.index_settings()
        try:
            retriever = self._open(index_settings)
        except QiaoError as exc:
            self._fail(exc)
            return
        except Exception as exc:  # a bug, not bad input: keep the traceback in the log
            log.exception("loading the index failed")
            self._fail(QiaoError(f"loading failed ({type(exc).__name__}: {exc}); see the log"))
            return
        self._ready(retriever)
        stats = retriever.stats()
        log.info(
            "ready: %d documents, %d passages from %s", stats["documents"], stats["passages"],
            index_settings.data_dir, extra={"generation": retriever.generation, **stats},
        )
        if changes := retriever.chunker_changes():
            log.warning(
                "%s was built with other chunking settings (%s); documents ingested now use the "
                "configured ones, unchanged documents keep theirs until `qiao ingest --rebuild`",
                index_settings.data_dir, "; ".join(changes),
            )

    def _ready(self, retriever: Retriever) -> None:
        """Serve `retriever`, and take its data directory's ingest queue (resubmitting the
        jobs accepted before a restart)."""
        try:
            self.jobs = IngestJobs.open(self.writes, retriever, self.on_job_end)
        except QueueUnavailable as exc:
            self._jobs_problem = str(exc)
            log.warning("asynchronous ingest is off: %s", exc)
        self.retriever = retriever

    def _open(self, index_settings: IndexSettings) -> Retriever:
        if self._embedder is None:
            from index import load_embedder

            self._embedder = load_embedder(index_settings)
        # With the embedder given up front, open() refuses an index built by another model.
        retriever = open_index(index_settings, embedder=self._embedder)
        self._embedder.embed_queries([_WARM_UP])
        retriever.analyzer.terms_batch([_WARM_UP])
        # Only a lookup through search needs the dictionary: read it without delaying ready.
        threading.Thread(target=default_lexicon, name="qiao-lexicon", daemon=True).start()
        return retriever

    def _fail(self, exc: QiaoError) -> None:
        self.error = exc
        log.error("cannot serve: %s", exc)
        if self._on_load_error is not None:
            self._on_load_error(exc)

    def counts(self) -> dict[str, int] | None:
        """Index size, or None until loaded."""
        retriever = self.retriever
        return None if retriever is None else retriever.stats()

    def ready_retriever(self) -> Retriever:
        """The Retriever, or a 503 that says why there is none yet."""
        retriever = self.retriever
        if retriever is not None:
            return retriever
        if self.error is not None:
            raise ApiError(503, "load_failed", str(self.error))
        raise ApiError(503, "not_ready", "the model and index are still loading: retry shortly")

    # -- running library calls ---------------------------------------------------------------

    async def read(self, work: Callable[[], T]) -> T:
        """Run `work` (a search or lookup) in the search thread pool."""
        assert self._search_limiter is not None, "start() runs in the lifespan"
        return await anyio.to_thread.run_sync(work, limiter=self._search_limiter)

    async def offload(self, work: Callable[[], T]) -> T:
        """Run blocking `work` that is neither a search nor a write (reading uploads)."""
        return await anyio.to_thread.run_sync(work)

    async def write(self, work: Callable[[], T]) -> T:
        """Run `work` (delete, reload) on the write thread, after the writes queued before."""
        return await _outcome(self.writes.call(work))

    async def upsert(self, retriever: Retriever, documents: Sequence[Document]) -> UpsertReport:
        """Ingest on the write thread, in one commit with the ingests queued beside it."""
        return await _outcome(self.writes.upsert(retriever, documents))

    def ready_jobs(self) -> IngestJobs:
        """The ingest queue, or a 503 that says why asynchronous ingest is unavailable."""
        if self.jobs is None:
            raise ApiError(503, "queue_unavailable", self._jobs_problem)
        return self.jobs

    async def follow_commits(self) -> None:
        """Pick up generations committed by other processes (`qiao ingest`) until cancelled."""
        interval = self.settings.reload_seconds
        if interval <= 0:
            return
        last_problem = ""
        while True:
            await anyio.sleep(interval)
            retriever = self.retriever
            if retriever is None:
                continue
            try:
                if await self.write(retriever.reload):
                    log.info("loaded generation %s", retriever.generation,
                             extra={"generation": retriever.generation, **retriever.stats()})
                last_problem = ""
            except Exception as exc:  # logged, and retried on the next tick
                # Typically another process's commit removed the generation being read (the
                # library reports that as DataDirError, FAISS as RuntimeError); the old
                # snapshot keeps serving meanwhile.
                problem = f"{type(exc).__name__}: {exc}"
                if problem != last_problem:
                    log.warning("could not load the latest generation: %s", problem)
                last_problem = problem


async def _outcome(future: Future[T]) -> T:
    try:
        return await asyncio.wrap_future(future)
    except ShuttingDown:
        raise ApiError(503, "shutting_down", "the server is shutting down: retry shortly") from None
