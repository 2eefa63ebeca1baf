"""Request payloads → `Document`s, checked exactly as `qiao ingest` checks files.

No validation of its own: JSON documents are written as a JSONL file and uploaded files under
their own names into a temporary directory, and the library's `read_paths` reads that. So an
API client and the CLI get the same defaults (doc_id, lang detection, titles) and the same
one-line reasons for anything rejected. Blocking (disk I/O): call from a worker thread.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from index.ingest.read import Problem, read_paths
from index.records import Document
from service.schemas import DocumentIn, Rejection

BATCH_FILE = "documents.jsonl"
MAX_NAME_BYTES = 200  # well under every file system's limit, with room for a temp prefix


@dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded file: the name the client gave and its content."""

    filename: str | None
    content: BinaryIO


@dataclass(frozen=True, slots=True)
class Intake:
    documents: list[Document]
    rejected: list[Rejection]


def documents_from_json(
    items: Sequence[DocumentIn], max_bytes: int, max_document_bytes: int
) -> Intake:
    """JSON documents → documents and rejections; `documents[i]` names the i-th item.

    `max_bytes` bounds the whole batch as written for the reader; `max_document_bytes` each
    document's text in UTF-8, the same limit an uploaded file has.
    """
    too_large: list[Rejection] = []
    lines: list[str] = []
    for number, item in enumerate(items):
        size = len(item.text.encode("utf-8", "surrogatepass"))
        if size > max_document_bytes:
            too_large.append(Rejection(source=f"documents[{number}]", message=(
                f"the text is too large ({size / 2**20:.1f} MB; the limit is "
                f"{max_document_bytes / 2**20:.1f} MB per document): split it")))
            lines.append("")  # a blank line keeps line i+1 = documents[i] for the reader
            continue
        # ASCII escapes keep lone surrogates intact, so the reader reports them as bad text.
        lines.append(json.dumps(item.model_dump(exclude_none=True), ensure_ascii=True))
    with tempfile.TemporaryDirectory(prefix="qiao-json-") as tmp:
        path = Path(tmp, BATCH_FILE)
        path.write_text("\n".join(lines) + "\n", encoding="ascii")
        documents, problems = read_paths([path], max_bytes=max_bytes)
        line_ref = re.compile(re.escape(str(path)) + r":(\d+)")

        def item_ref(match: re.Match[str]) -> str:
            return f"documents[{int(match.group(1)) - 1}]"

        rejected = too_large + [
            Rejection(
                source=f"documents[{p.line - 1}]" if p.line else "documents",
                message=line_ref.sub(item_ref, p.message),
            )
            for p in problems
        ]
    return Intake(documents, rejected)


def _safe_name(filename: str | None) -> tuple[str | None, str]:
    """(name to write under, or None with the reason it cannot be used)."""
    name = filename or ""
    if not name:
        return None, "a file part without a file name: send files as multipart 'files'"
    # Browsers and curl send the bare name; a path ('../x', '/etc/x', 'C:\\x') is an attempt
    # to write elsewhere, and is refused rather than silently cut down to its last part.
    if re.search(r"[/\\]", name):
        return None, "the file name contains a path ('/' or '\\'): send the bare file name"
    if name.startswith("."):
        return None, "hidden file name (starts with '.'): rename the file"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES or not name.isprintable():
        return None, "unusable file name (too long or with control characters): rename it"
    return name, ""


def documents_from_uploads(uploads: Sequence[Upload], max_bytes: int) -> Intake:
    """Uploaded files (.txt/.md/.html/.jsonl, and NAME.meta.json sidecars) → documents.

    Files pair by name (`NAME.en.txt` / `NAME.zh.txt`) as on disk; a rejection's `source` is
    the file name, with `:line` for JSONL lines.
    """
    rejected: list[Rejection] = []
    with tempfile.TemporaryDirectory(prefix="qiao-upload-") as tmp:
        folder = Path(tmp)
        written: set[str] = set()
        for upload in uploads:
            name, why = _safe_name(upload.filename)
            if name is not None and name in written:
                name, why = None, "a file of this name is already in the upload: rename one"
            if name is None:
                rejected.append(Rejection(source=upload.filename or "(no name)", message=why))
                continue
            with (folder / name).open("wb") as out:
                shutil.copyfileobj(upload.content, out)
            written.add(name)
        documents, problems = read_paths([folder], max_bytes=max_bytes) if written else ([], [])
        rejected.extend(_rejection_in(folder, p) for p in problems)
    return Intake(documents, rejected)


def _rejection_in(folder: Path, problem: Problem) -> Rejection:
    prefix = str(folder) + "/"
    source = problem.path.removeprefix(prefix)
    if problem.line is not None:
        source = f"{source}:{problem.line}"
    return Rejection(source=source, message=problem.message.replace(prefix, ""))
