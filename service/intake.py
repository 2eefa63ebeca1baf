"""Request payloads → `Document`s, checked exactly as `qiao ingest` checks files.

No validation of its own: JSON documents go through the library's `documents_from_records`,
uploaded files through `documents_from_files`, the same readers `qiao ingest` uses, in memory.
So an API client and the CLI get the same defaults (doc_id, lang detection, titles) and the
same one-line reasons for anything rejected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import BinaryIO

from index import Document, Problem, Retriever, documents_from_files, documents_from_records
from service.schemas import DocumentIn, Rejection

MAX_NAME_BYTES = 200  # well under every file system's limit


@dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded file: the name the client gave and its content."""

    filename: str | None
    content: BinaryIO


@dataclass(frozen=True, slots=True)
class Intake:
    documents: list[Document]
    rejected: list[Rejection]
    notes: list[Rejection] = field(default_factory=list)  # read, but worth saying how


def _rejection(problem: Problem) -> Rejection:
    source = problem.path if problem.line is None else f"{problem.path}:{problem.line}"
    return Rejection(source=source, message=problem.message)


def documents_from_json(items: Sequence[DocumentIn], max_document_bytes: int) -> Intake:
    """JSON documents → documents and rejections labelled `documents[i]`; each text may hold
    at most `max_document_bytes` of UTF-8, the limit an uploaded file has."""
    records = [item.model_dump(exclude_none=True) for item in items]
    documents, problems = documents_from_records(records, max_text_bytes=max_document_bytes)
    return Intake(documents, [_rejection(p) for p in problems])


def _name_problem(name: str) -> str | None:
    """Why a file name cannot be used, or None."""
    if not name:
        return "a file part without a file name: send files as multipart 'files'"
    # Browsers and curl send the bare name; a path ('../x', '/etc/x', 'C:\\x') is refused rather
    # than silently cut down to its last part.
    if re.search(r"[/\\]", name):
        return "the file name contains a path ('/' or '\\'): send the bare file name"
    if name.startswith("."):
        return "hidden file name (starts with '.'): rename the file"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES or not name.isprintable():
        return "unusable file name (too long or with control characters): rename it"
    return None


def documents_from_uploads(uploads: Sequence[Upload], max_bytes: int) -> Intake:
    """Uploaded files (.txt/.md/.html/.jsonl, and NAME.meta.json sidecars) → documents.

    Files pair by name (`NAME.en.txt` / `NAME.zh.txt`) as on disk; a rejection's `source` is
    the file name, with `:line` for JSONL lines. A file over `max_bytes` is rejected unread.
    """
    rejected: list[Rejection] = []
    files: dict[str, bytes] = {}
    for upload in uploads:
        name = upload.filename or ""
        why = _name_problem(name)
        if why is None and name in files:
            why = "a file of this name is already in the upload: rename one"
        if why is not None:
            rejected.append(Rejection(source=name or "(no name)", message=why))
            continue
        files[name] = upload.content.read(max_bytes + 1)  # more than the limit is refused
    notes: list[Problem] = []
    documents, problems = documents_from_files(files, max_bytes=max_bytes, notes=notes)
    return Intake(documents, rejected + [_rejection(p) for p in problems],
                  [_rejection(n) for n in notes])


def within_limits(intake: Intake, retriever: Retriever) -> Intake:
    """`intake` without the documents over the index's passage limit, each now a rejection."""
    kept, refused = retriever.screen(intake.documents)
    if not refused:
        return intake
    return replace(intake, documents=kept,
                   rejected=[*intake.rejected, *(_rejection(p) for p in refused)])
