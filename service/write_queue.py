"""The service's one write thread, with group commit of ingests.

Writes (ingests, deletes, reloads of other processes' commits) run one at a time, in the order
they were submitted, on one thread at a lower CPU priority than searches. Ingests that wait in
the queue one after another are committed together: one embedding pass over their documents
and one commit (which rebuilds the FAISS and BM25 files), instead of a commit per request.
Each request still gets the report of its own documents. A group never holds two versions of
one doc_id, so it ends in the same index as committing its requests one by one would.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from index import Document, Retriever, UpsertReport

log = logging.getLogger(__name__)

T = TypeVar("T")

# CFS weight 110 against 1024: a write gets ~1/10 of a core a search wants.
DEFAULT_WRITE_NICENESS = 10


class ShuttingDown(Exception):
    """The service stopped before this write ran."""


def yield_to_searches(increment: int) -> None:
    """Lower the calling thread's CPU priority by `increment` (Linux: per thread). Embedding a
    new document takes tens of searches' worth of CPU; at equal priority searches queued behind
    it and their tail latency grew tenfold under load. Writes wait a little longer instead."""
    if increment <= 0:
        return
    try:
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + increment
        os.setpriority(os.PRIO_PROCESS, thread, niceness)
    except (OSError, AttributeError):  # not Linux, or not allowed: writes share equally
        log.debug("could not lower the write thread's priority")


@dataclass(frozen=True, slots=True)
class _Upsert:
    retriever: Retriever
    documents: tuple[Document, ...]
    future: Future[UpsertReport]
    # Journaled elsewhere (an accepted ingest job): at shutdown it may wait for the next start.
    durable: bool


@dataclass(frozen=True, slots=True)
class _Call:
    work: Callable[[], Any]
    future: Future[Any]


_Op = _Upsert | _Call


class WriteQueue:
    """Runs writes in submission order on one thread; consecutive ingests share one commit."""

    def __init__(
        self, max_group_docs: int, niceness: int = DEFAULT_WRITE_NICENESS,
        name: str = "qiao-write",
    ) -> None:
        self.max_group_docs = max_group_docs
        self._niceness = niceness
        self._name = name
        self._ops: deque[_Op] = deque()
        self._queued_docs = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def queued_documents(self) -> int:
        """Documents submitted for ingest and not yet committed (nor failed)."""
        return self._queued_docs

    def upsert(
        self, retriever: Retriever, documents: Sequence[Document], *, durable: bool = False
    ) -> Future[UpsertReport]:
        """Queue an upsert; the future gets the report of these documents only."""
        future: Future[UpsertReport] = Future()
        self._put(_Upsert(retriever, tuple(documents), future, durable), len(documents))
        return future

    def call(self, work: Callable[[], T]) -> Future[T]:
        """Queue any other write (delete, reload); the future gets what `work` returns."""
        future: Future[T] = Future()
        self._put(_Call(work, future), 0)
        return future

    def _put(self, op: _Op, documents: int) -> None:
        with self._cond:
            if self._stopping:
                op.future.set_exception(ShuttingDown("the service is shutting down"))
                return
            self._ops.append(op)
            self._queued_docs += documents
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()

    def stop(self) -> None:
        """Run what is queued (a commit is never cut short), except journaled ingests, which
        the next start picks up again; then end the thread."""
        with self._cond:
            self._stopping = True
            kept: deque[_Op] = deque()
            for op in self._ops:
                if isinstance(op, _Upsert) and op.durable:
                    self._queued_docs -= len(op.documents)
                    op.future.cancel()
                else:
                    kept.append(op)
            self._ops = kept
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    # -- the write thread --------------------------------------------------------------------

    def _run(self) -> None:
        yield_to_searches(self._niceness)
        while True:
            with self._cond:
                while not self._ops and not self._stopping:
                    self._cond.wait()
                if not self._ops:
                    return
                batch = self._take()
            if isinstance(batch, _Call):
                _settle(batch.future, batch.work)
            else:
                self._commit(batch)

    def _take(self) -> _Call | list[_Upsert]:
        """The next op, or the longest run of ingests at the head that can share a commit."""
        head = self._ops.popleft()
        if isinstance(head, _Call):
            return head
        group, ids, size = [head], {d.doc_id for d in head.documents}, len(head.documents)
        while self._ops:
            nxt = self._ops[0]
            if not isinstance(nxt, _Upsert) or nxt.retriever is not head.retriever:
                break
            nxt_ids = {d.doc_id for d in nxt.documents}
            if nxt_ids & ids or size + len(nxt.documents) > self.max_group_docs:
                break
            self._ops.popleft()
            group.append(nxt)
            ids |= nxt_ids
            size += len(nxt.documents)
        return group

    def _commit(self, group: list[_Upsert]) -> None:
        retriever = group[0].retriever
        try:
            report = retriever.upsert([d for op in group for d in op.documents])
        except Exception as exc:
            if len(group) == 1:
                self._finish(group[0], exc)
                return
            # One request's documents must not fail the others': commit them one by one.
            log.warning("a group commit failed (%s); committing its %d requests one by one",
                        exc, len(group))
            for op in group:
                self._commit([op])
            return
        for op in group:
            self._finish(op, report_of(report, op.documents))
        if len(group) > 1:
            log.info("group commit of %d ingest requests", len(group))

    def _finish(self, op: _Upsert, outcome: UpsertReport | Exception) -> None:
        with self._cond:
            self._queued_docs -= len(op.documents)
        if not op.future.set_running_or_notify_cancel():
            return
        if isinstance(outcome, Exception):
            op.future.set_exception(outcome)
        else:
            op.future.set_result(outcome)


def report_of(report: UpsertReport, documents: Sequence[Document]) -> UpsertReport:
    """The part of a group's report that concerns `documents`."""
    ids = {d.doc_id for d in documents}
    counts = {k: v for k, v in report.passage_counts.items() if k in ids}
    return UpsertReport(
        added=[d for d in report.added if d in ids],
        replaced=[d for d in report.replaced if d in ids],
        unchanged=[d for d in report.unchanged if d in ids],
        passages=sum(counts.values()),
        passage_counts=counts,
    )


def _settle(future: Future[T], work: Callable[[], T]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = work()
    except BaseException as exc:  # handed to the waiting request, which re-raises it
        future.set_exception(exc)
    else:
        future.set_result(result)
