"""What the app holds between requests: the Retriever (loaded once, in the background), the
thread pools that run library calls off the event loop, and the lock that orders writes.

Loading the model takes seconds, so it runs in a background thread started by the lifespan:
`/healthz` answers at once and `/readyz` turns 200 when `retriever` is set. Searches run in a
thread pool sized to the machine; writes (upsert, delete, reload) take one async lock, so an
ingest never holds a search thread and never overlaps a reload of another process's commit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import anyio
import anyio.to_thread

from index.config import IndexSettings
from index.embed import Embedder
from index.errors import QiaoError
from index.retriever import Retriever
from service.errors import ApiError
from service.settings import ServiceSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
LoadErrorHook = Callable[[QiaoError], None]

# Text run through the analyser and the model once after loading: jieba reads its dictionary
# and torch sets up its kernels on first use, which would otherwise slow the first search.
_WARM_UP = "warm-up 预热"
WRITE_NICENESS = 10  # CFS weight 110 against 1024: a write gets ~1/10 of a core a search wants


def _yield_to_searches() -> None:
    """Lower the write thread's CPU priority (Linux: per thread). Embedding a new document takes
    tens of searches' worth of CPU; at equal priority searches queued behind it and their tail
    latency grew tenfold under load. Writes wait a little longer instead."""
    try:
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + WRITE_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, niceness)
    except (OSError, AttributeError):  # not Linux, or not allowed: writes share equally
        log.debug("could not lower the write thread's priority")


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
        self._write_lock: anyio.Lock | None = None
        # One write thread, started on first use, at a lower CPU priority than searches.
        self._writer = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="qiao-write", initializer=_yield_to_searches
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Create the pools (inside the event loop) and begin loading the index and model."""
        self._search_limiter = anyio.CapacityLimiter(self.settings.search_threads)
        self._write_lock = anyio.Lock()
        if self._prebuilt is not None:
            self.retriever = self._prebuilt
            return
        # A daemon thread: a shutdown during a model load need not wait for it.
        self._loader = threading.Thread(target=self._load, name="qiao-load", daemon=True)
        self._loader.start()

    def stop(self) -> None:
        """Finish the write in progress (a commit is never cut short) and end the write thread."""
        self._writer.shutdown(wait=True)

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
        self.retriever = retriever
        stats = retriever.stats()
        log.info(
            "ready: %d documents, %d passages from %s", stats["documents"], stats["passages"],
            index_settings.data_dir, extra={"generation": retriever.generation, **stats},
        )

    def _open(self, index_settings: IndexSettings) -> Retriever:
        if self._embedder is None:
            from index.embed import load_embedder

            self._embedder = load_embedder(index_settings)
        # With the embedder given up front, open() refuses an index built by another model.
        retriever = Retriever.open(settings=index_settings, embedder=self._embedder)
        self._embedder.embed_queries([_WARM_UP])
        retriever.analyzer.terms_batch([_WARM_UP])
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
        """Run `work` (upsert, delete, reload) on the write thread, one write at a time."""
        assert self._write_lock is not None, "start() runs in the lifespan"
        async with self._write_lock:
            return await asyncio.wrap_future(self._writer.submit(work))

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
