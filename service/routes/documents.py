"""Documents and releases: list, read, ingest (JSON or file upload), delete.

Ids arrive URL-encoded in the path (`{doc_id:path}` keeps an encoded '/' from splitting the
route; such an id is then refused by `validate_id` like any other bad id).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, UploadFile
from fastapi.responses import JSONResponse

from index import DocumentError, Lang, Retriever, UpsertReport, validate_id
from service.deps import (
    MetricsDep,
    RetrieverDep,
    SettingsDep,
    StateDep,
    require_reader,
    require_writer,
)
from service.errors import ApiError
from service.intake import (
    Intake,
    Upload,
    documents_from_json,
    documents_from_uploads,
    within_limits,
)
from service.jobs import Job
from service.metrics import Metrics
from service.schemas import (
    DeleteReport,
    DocumentBatchIn,
    DocumentDetail,
    DocumentPage,
    DocumentsBody,
    DocumentSummary,
    IndexSummaryOut,
    JobOut,
    PassageSpan,
    Rejection,
    ReleaseOut,
    WriteReport,
    markup_in,
)
from service.settings import LIST_MAX_LIMIT, ServiceSettings

reads = APIRouter(prefix="/v1", tags=["documents"], dependencies=[Depends(require_reader)])
writes = APIRouter(prefix="/v1", tags=["documents"], dependencies=[Depends(require_writer)])

DocId = Annotated[str, Path(description="The doc_id, URL-encoded (e.g. '#' as %23).")]


def _valid_id(value: str, what: str) -> str:
    try:
        return validate_id(value, what)
    except DocumentError as exc:
        raise ApiError(422, "invalid_id", str(exc)) from None


@reads.get("/documents", response_model=DocumentPage)
async def list_documents(
    state: StateDep,
    retriever: RetrieverDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=LIST_MAX_LIMIT)] = 100,
    lang: Lang | None = None,
    release_id: str | None = None,
) -> DocumentPage:
    """Documents in ingest order (metadata only, no text), optionally filtered."""

    view = retriever.view()

    def page() -> DocumentPage:
        total, found = view.document_page(lang, release_id, offset, limit)
        return DocumentPage(
            total=total, offset=offset, limit=limit,
            documents=[DocumentSummary.of(d) for d in found],
        )

    return await state.read(page)


@reads.get("/summary", response_model=IndexSummaryOut)
async def get_summary(state: StateDep, retriever: RetrieverDep) -> IndexSummaryOut:
    """What the index holds: counts, documents per language, the dates covered and the newest
    documents (the search page's start state)."""
    view = retriever.view()
    return IndexSummaryOut.of(await state.read(view.summary))


@reads.get("/documents/{doc_id:path}", response_model=DocumentDetail)
async def get_document(doc_id: DocId, state: StateDep, retriever: RetrieverDep) -> DocumentDetail:
    """The document's metadata, its full `text` (all offsets refer to it) and its passages."""
    _valid_id(doc_id, "doc_id")
    view = retriever.view()  # one snapshot: the text and the spans always agree
    document, passages = await state.read(lambda: (view.document(doc_id),
                                                   view.passages(doc_id)))
    if document is None:
        raise ApiError(404, "not_found", f"no document {doc_id!r}")
    return DocumentDetail(
        **DocumentSummary.of(document).model_dump(), text=document.text,
        passages=[PassageSpan.of(p) for p in passages],
        pages=None if document.pages is None else list(document.pages),
        markup=markup_in(document.text, 0),
    )


@reads.get("/releases/{release_id:path}", response_model=ReleaseOut)
async def get_release(release_id: str, state: StateDep, retriever: RetrieverDep) -> ReleaseOut:
    """A release with its language versions (metadata only)."""
    _valid_id(release_id, "release_id")
    view = retriever.view()
    release = await state.read(lambda: view.release(release_id))
    if release is None:
        raise ApiError(404, "not_found", f"no release {release_id!r}")
    return ReleaseOut(release_id=release_id,
                      documents=[DocumentSummary.of(d) for d in release.documents])


WaitQuery = Annotated[bool, Query(description=(
    "true: answer when the documents are committed and searchable (200). false: answer as "
    "soon as they are safely queued (202 with a job; see GET /v1/jobs/{job_id})."
))]
# What a 202 looks like, for the OpenAPI schema.
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": JobOut, "description": "Queued as an ingest job (wait=false)."}
}


def _write_report(report: UpsertReport, rejected: list[Rejection],
                  notes: list[Rejection] | None = None) -> WriteReport:
    return WriteReport(added=report.added, replaced=report.replaced, unchanged=report.unchanged,
                       rejected=rejected, passages=report.passages, notes=notes or [])


def job_out(job: Job) -> JobOut:
    rejected = [Rejection(source=source, message=message) for source, message in job.rejected]
    return JobOut(
        job_id=job.job_id, status=job.status, status_url=f"/v1/jobs/{job.job_id}",
        accepted_at=_utc(job.accepted_at),
        finished_at=None if job.finished_at is None else _utc(job.finished_at),
        documents=list(job.doc_ids), rejected=rejected,
        result=None if job.report is None else _write_report(job.report, rejected),
        error=job.error,
    )


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


async def _ingest(
    intake: Intake, state: StateDep, retriever: Retriever, metrics: Metrics,
    settings: ServiceSettings, wait: bool,
) -> WriteReport | JSONResponse:
    intake = await state.offload(lambda: within_limits(intake, retriever))
    if not intake.documents:
        reasons = "; ".join(f"{r.source}: {r.message}" for r in intake.rejected)
        raise ApiError(422, "invalid_document", f"nothing to ingest: {reasons or 'no documents'}")
    if not wait:
        return await _accept_job(intake, state, metrics, settings)
    report = await state.upsert(retriever, intake.documents)
    metrics.count_ingest(len(report.added), len(report.replaced), len(report.unchanged),
                         len(intake.rejected), report.passages)
    return _write_report(report, intake.rejected, intake.notes)


async def _accept_job(
    intake: Intake, state: StateDep, metrics: Metrics, settings: ServiceSettings
) -> JSONResponse:
    jobs = state.ready_jobs()
    queued = state.writes.queued_documents
    if queued + len(intake.documents) > settings.max_queued_docs:
        raise ApiError(503, "queue_full",
                       f"{queued} documents are waiting for ingest (QIAO_MAX_QUEUED_DOCS is "
                       f"{settings.max_queued_docs}): retry later", headers={"Retry-After": "10"})
    rejected = [(r.source, r.message) for r in intake.rejected]
    job = await state.offload(lambda: jobs.accept(intake.documents, rejected))
    metrics.count_ingest(0, 0, 0, len(intake.rejected), 0)  # the rest when it commits
    body = job_out(job)
    return JSONResponse(body.model_dump(mode="json"), status_code=202,
                        headers={"Location": body.status_url})


def _check_batch(settings: ServiceSettings, count: int) -> None:
    if count > settings.max_batch_docs:
        raise ApiError(413, "batch_too_large",
                       f"{count} documents in one request; the limit is {settings.max_batch_docs} "
                       "(QIAO_MAX_BATCH_DOCS): split the batch")


@writes.post("/documents", response_model=WriteReport, responses=ACCEPTED)
async def post_documents(
    body: DocumentsBody, settings: SettingsDep, state: StateDep, retriever: RetrieverDep,
    metrics: MetricsDep, wait: WaitQuery = True,
) -> WriteReport | JSONResponse:
    """Add or replace documents by doc_id: one document object, or `{"documents": [...]}`.

    Unchanged documents (same content) are skipped without re-embedding. Documents that fail
    the checks of `qiao ingest` are listed in `rejected` and the rest is ingested; when none
    is left the answer is a 422. Requests that arrive while another ingest runs are committed
    together. With `wait=false` the answer is a 202 with a job once the documents are on disk.
    """
    items = body.documents if isinstance(body, DocumentBatchIn) else [body]
    _check_batch(settings, len(items))
    intake = await state.offload(lambda: documents_from_json(items, settings.max_file_bytes))
    return await _ingest(intake, state, retriever, metrics, settings, wait)


@writes.post("/documents:upload", response_model=WriteReport, responses=ACCEPTED)
async def upload_documents(
    files: list[UploadFile], settings: SettingsDep, state: StateDep, retriever: RetrieverDep,
    metrics: MetricsDep, wait: WaitQuery = True,
) -> WriteReport | JSONResponse:
    """Add or replace documents from files (.txt .md .html .pdf .docx .jsonl, and NAME.meta.json
    sidecars) sent as multipart `files`; pairing and metadata as in `qiao ingest`;
    `wait` as for `POST /v1/documents`."""
    _check_batch(settings, len(files))
    uploads = [Upload(f.filename, f.file) for f in files]
    intake = await state.offload(lambda: documents_from_uploads(uploads, settings.max_file_bytes))
    _check_batch(settings, len(intake.documents))  # a .jsonl file may hold many
    return await _ingest(intake, state, retriever, metrics, settings, wait)


@writes.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(
    job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")], state: StateDep,
    _: RetrieverDep,
) -> JobOut:
    """An ingest job: queued, done (with what it did) or failed (with why). Finished jobs
    are remembered for the latest 1,000."""
    jobs = state.ready_jobs()
    job = await state.offload(lambda: jobs.get(job_id))
    if job is None:
        raise ApiError(404, "not_found", f"no ingest job {job_id!r} (or it ended long ago)")
    return job_out(job)


@writes.delete("/documents/{doc_id:path}", response_model=DeleteReport)
async def delete_document(
    doc_id: DocId, state: StateDep, retriever: RetrieverDep, metrics: MetricsDep
) -> DeleteReport:
    """Remove the document with all its passages; its counterpart links are recomputed."""
    _valid_id(doc_id, "doc_id")
    deleted = await state.write(lambda: retriever.delete([doc_id]))
    if not deleted:
        raise ApiError(404, "not_found", f"no document {doc_id!r}")
    metrics.deleted.inc(len(deleted))
    return DeleteReport(deleted=deleted)
