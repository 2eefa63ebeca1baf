"""Asynchronous ingest: a job is answered once it is on disk, and committed in the background.

`POST /v1/documents?wait=false` answers 202 with a job as soon as the documents are journaled
(written to a file, fsynced, renamed into place), not when they are embedded and committed.
The write queue commits them like any ingest; `GET /v1/jobs/{job_id}` tells how it ended.
A server that stops or dies before the commit finds the journal at its next start and commits
it then, so an accepted job is never lost. A job recovered after its commit had landed but
before its end was recorded is run again and reports its documents as unchanged.

Files, in `<data dir>/ingest-queue/` (beside the generations, never inside one):
- `pending/<accepted ns>-<job_id>.jsonl`: a header line (job id, acceptance time, rejections),
  then one document per line, in the JSON form `qiao ingest` reads;
- `done/<job_id>.json`: how the job ended; the newest `KEEP_DONE` are kept;
- `.lock`: held by the one server that owns the queue. A second server on the same data
  directory serves searches and synchronous ingests, and refuses `wait=false`.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from index import (
    Document,
    Retriever,
    UpsertReport,
    document_from_record,
    document_record,
    write_atomic,
)
from service.write_queue import ShuttingDown, WriteQueue

log = logging.getLogger(__name__)

QUEUE_DIR = "ingest-queue"
KEEP_DONE = 1000  # finished jobs whose outcome can still be asked for (on disk and in memory)
JobStatus = Literal["queued", "done", "failed"]


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    status: JobStatus
    accepted_at: float  # Unix seconds
    doc_ids: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...]  # (source, message) of what the intake refused
    finished_at: float | None = None
    report: UpsertReport | None = None
    error: str | None = None


JobHook = Callable[[Job], None]


class QueueUnavailable(Exception):
    """Jobs cannot be accepted here; the message says why and what to do."""


class IngestJobs:
    """The journal and the jobs of one data directory. Blocking (file I/O): call from a thread."""

    def __init__(
        self, folder: Path, writes: WriteQueue, retriever: Retriever, on_end: JobHook | None
    ) -> None:
        self.folder = folder
        self._writes = writes
        self._retriever = retriever
        self._on_end = on_end
        self._pending = folder / "pending"
        self._done = folder / "done"
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._finished = 0

    @classmethod
    def open(
        cls, writes: WriteQueue, retriever: Retriever, on_end: JobHook | None = None
    ) -> IngestJobs:
        """Take the queue of the retriever's data directory and resubmit its pending jobs;
        `on_end` is called (on the write thread) with each job that ends.

        Raises QueueUnavailable if another server owns it or it cannot be written.
        """
        jobs = cls(retriever.data_dir / QUEUE_DIR, writes, retriever, on_end)
        try:
            jobs._pending.mkdir(parents=True, exist_ok=True)
            jobs._done.mkdir(exist_ok=True)
            fd = os.open(jobs.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise QueueUnavailable(
                f"cannot write the ingest queue in {jobs.folder} ({exc.strerror}): "
                "send wait=true"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise QueueUnavailable(
                "another server owns this data directory's ingest queue: send wait=true, or "
                "send the job to that server"
            ) from None
        jobs._lock_fd = fd
        jobs._resubmit_pending()
        return jobs

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def accept(self, documents: list[Document], rejected: list[tuple[str, str]]) -> Job:
        """Journal the documents (durably) and queue them for ingest; the job as accepted."""
        job = Job(
            job_id=uuid.uuid4().hex, status="queued", accepted_at=time.time(),
            doc_ids=tuple(d.doc_id for d in documents), rejected=tuple(rejected),
        )
        path = self._pending / f"{time.time_ns():020d}-{job.job_id}.jsonl"
        header = {"job_id": job.job_id, "accepted_at": job.accepted_at,
                  "rejected": [list(r) for r in rejected]}
        lines = [json.dumps(header)] + [
            json.dumps(document_record(d), ensure_ascii=False) for d in documents
        ]
        write_atomic(path, "\n".join(lines) + "\n", durable=True)
        self._submit(job, documents, path)
        return job

    def get(self, job_id: str) -> Job | None:
        """The job's state: queued, or how it ended; None if unknown (or long finished)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            return job
        try:
            return _job_from_json(json.loads((self._done / f"{job_id}.json").read_text("utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # -- internals ---------------------------------------------------------------------------

    def _submit(self, job: Job, documents: list[Document], path: Path) -> None:
        with self._lock:
            self._jobs[job.job_id] = job
        future = self._writes.upsert(self._retriever, documents, durable=True)
        future.add_done_callback(lambda f: self._ended(job, path, f))

    def _ended(self, job: Job, path: Path, future: Future[UpsertReport]) -> None:
        if future.cancelled() or isinstance(future.exception(), ShuttingDown):
            return  # the service stopped first: the next start resubmits the job
        exc = future.exception()
        ended = dataclasses.replace(
            job, status="failed" if exc else "done", finished_at=time.time(),
            report=None if exc else future.result(), error=str(exc) if exc else None,
        )
        try:
            # Not fsynced: losing this record only replays the job, which is then "unchanged".
            write_atomic(self._done / f"{job.job_id}.json", json.dumps(dataclasses.asdict(ended)),
                          durable=False)
            path.unlink(missing_ok=True)
        except OSError as exc_io:  # the commit stands; the job may run again after a restart
            log.warning("could not record the end of ingest job %s: %s", job.job_id, exc_io)
        if self._on_end is not None:  # before the job shows as ended
            self._on_end(ended)
        with self._lock:
            self._jobs[job.job_id] = ended
            self._jobs.move_to_end(job.job_id)
            self._finished += 1
            while len(self._jobs) > KEEP_DONE and self._jobs[next(iter(self._jobs))].finished_at:
                self._jobs.popitem(last=False)
            prune = self._finished % 100 == 0
        if prune:
            self._prune_done()
        log.info("ingest job %s %s", job.job_id, ended.status,
                 extra={"job_id": job.job_id, "documents": len(job.doc_ids)})

    def _prune_done(self) -> None:
        try:
            files = sorted(self._done.glob("*.json"), key=lambda p: p.stat().st_mtime)
            for old in files[:-KEEP_DONE]:
                old.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not prune finished ingest jobs: %s", exc)

    def _resubmit_pending(self) -> None:
        for leftover in self._pending.glob(".*.tmp"):  # a crash before the rename: not accepted
            leftover.unlink(missing_ok=True)
        for path in sorted(self._pending.glob("*.jsonl")):
            try:
                job, documents = _read_pending(path)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.error("skipping unreadable ingest job file %s: %s", path, exc)
                continue
            log.info("resubmitting ingest job %s accepted before a restart", job.job_id)
            self._submit(job, documents, path)


def _rejections(raw: list[list[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(source), str(message)) for source, message in raw)


def _read_pending(path: Path) -> tuple[Job, list[Document]]:
    header_line, *doc_lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(header_line)
    documents = [document_from_record(json.loads(line)) for line in doc_lines if line]
    job = Job(
        job_id=str(header["job_id"]), status="queued", accepted_at=float(header["accepted_at"]),
        doc_ids=tuple(d.doc_id for d in documents),
        rejected=_rejections(header["rejected"]),
    )
    return job, documents


def _job_from_json(data: dict[str, Any]) -> Job:
    report = data["report"]
    return Job(
        job_id=str(data["job_id"]), status=data["status"], accepted_at=float(data["accepted_at"]),
        doc_ids=tuple(data["doc_ids"]),
        rejected=_rejections(data["rejected"]),
        finished_at=data["finished_at"], error=data["error"],
        report=None if report is None else UpsertReport(**report),
    )
