"""Sources → `Document`s: files on disk, files in memory (uploads) and records (JSON, JSONL).

Nothing here raises for bad input: every entry point returns the valid documents and one
`Problem` per file, line or record it could not use, so one bad file never stops a batch.
`Document.text` is the file's text exactly as given (only CRLF / lone CR become LF); for HTML it
is the main text extracted by trafilatura. All later offsets refer to that text.

- `read_paths`: files and directories on disk (walked recursively, sorted, hidden entries
  skipped), labelled by path;
- `documents_from_files`: named files already in memory (an upload), labelled by name;
- `documents_from_records`: JSON objects with the fields of a JSONL line, labelled
  `documents[i]`.
The three share one reader per format and one validation, so the CLI and the API accept and
refuse the same things with the same one-line reasons.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from index.ingest.decode import DEFAULT_MAX_BYTES, decode_text
from index.ingest.formats import EXTRACTORS, SUPPORTED_SUFFIXES
from index.ingest.metadata import (
    RECORD_KEYS,
    RECORD_REQUIRED,
    SIDECAR_SUFFIX,
    FileName,
    Sidecar,
    assemble,
    is_sidecar,
    parse_sidecar,
    string_fields,
    validate_id,
)
from index.ingest.problems import Problem, Rejected, show, size_text
from index.records import Document

__all__ = [
    "DEFAULT_MAX_BYTES",
    "SUPPORTED_SUFFIXES",
    "PathReader",
    "Problem",
    "documents_from_files",
    "documents_from_records",
    "read_paths",
    "validate_id",
]

log = logging.getLogger(__name__)

_SUFFIX_LIST = ", ".join(SUPPORTED_SUFFIXES)
Progress = Callable[[int, int], None]


# -- records ----------------------------------------------------------------------------------


def document_of_record(raw: object, *, max_text_bytes: int | None = None) -> Document:
    """One document from a JSON object with the fields of a JSONL line; Rejected if invalid."""
    if not isinstance(raw, dict):
        raise Rejected('each document must be a JSON object like {"release_id": …}')
    missing = [key for key in RECORD_REQUIRED if raw.get(key) is None]
    if missing:
        raise Rejected(
            f"missing field {', '.join(missing)}: each document needs release_id, title, text"
        )
    fields = string_fields(raw, RECORD_KEYS, strict=False)
    body = fields.pop("text")
    if max_text_bytes is not None:
        size = len(body.encode("utf-8"))
        if size > max_text_bytes:
            raise Rejected(
                f"the text is too large ({size_text(size)}; the limit is "
                f"{size_text(max_text_bytes)} per document): split it"
            )
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    return assemble(body, given=fields)


def documents_from_records(
    records: Sequence[Mapping[str, Any]], *, source: str = "documents",
    max_text_bytes: int | None = None,
) -> tuple[list[Document], list[Problem]]:
    """Validated documents from JSON objects; a bad one is a Problem labelled `source[i]`
    (0-based) and the others are kept. Texts over `max_text_bytes` of UTF-8 are refused."""
    chosen: dict[str, tuple[Document, str, int | None]] = {}
    problems: list[Problem] = []
    for i, raw in enumerate(records):
        label = f"{source}[{i}]"
        try:
            document = document_of_record(raw, max_text_bytes=max_text_bytes)
        except Rejected as err:
            problems.append(Problem(label, None, str(err)))
            continue
        _keep_later(chosen, document, label, None, problems)
    return [document for document, _, _ in chosen.values()], problems


def _keep_later(
    chosen: dict[str, tuple[Document, str, int | None]], document: Document, label: str,
    line: int | None, problems: list[Problem],
) -> None:
    """Put `document` in `chosen` by doc_id; an earlier one with its id is dropped, and reported
    where it came from."""
    earlier = chosen.pop(document.doc_id, None)
    if earlier is not None:
        where = label if line is None else f"{label}:{line}"
        message = (
            f"duplicate doc_id {show(document.doc_id)}: also in {where}; the later one was used"
        )
        problems.append(Problem(earlier[1], earlier[2], message))
    chosen[document.doc_id] = (document, label, line)


def _documents_from_jsonl(label: str, text: str) -> tuple[list[tuple[Document, int]],
                                                          list[Problem]]:
    """One document per non-blank line; a bad line is a `Problem` and the others are kept."""
    documents: list[tuple[Document, int]] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line or line.isspace():
            continue
        try:
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as err:
                raise Rejected(
                    f"invalid JSON ({err.msg} at column {err.colno}): fix the line"
                ) from None
            documents.append((document_of_record(raw), number))
        except Rejected as err:
            problems.append(Problem(label, number, str(err)))
    return documents, problems


# -- files (on disk or in memory) ---------------------------------------------------------------


class _Files:
    """How to get at a batch of files: their bytes by label, and a sidecar's bytes by label.

    `key` identifies a file whatever the label's spelling (a real path on disk), so a sidecar
    is read once and can be told claimed or not."""

    def __init__(
        self,
        read: Callable[[str], bytes],
        read_sidecar: Callable[[str], bytes | None],
        key: Callable[[str], str],
    ) -> None:
        self.read = read
        self._read_sidecar = read_sidecar
        self._key = key
        self._sidecars: dict[str, Sidecar | Rejected | None] = {}
        self.claimed: set[str] = set()
        # What was read, but differently than one might assume (a file not in UTF-8).
        self.notes: list[Problem] = []

    def sidecar(self, label: str) -> Sidecar | None:
        key = self._key(label)
        self.claimed.add(key)
        if key not in self._sidecars:
            try:
                data = self._read_sidecar(label)
                self._sidecars[key] = None if data is None else parse_sidecar(decode_text(data))
            except Rejected as err:
                self._sidecars[key] = err
        found = self._sidecars[key]
        if isinstance(found, Rejected):
            raise found
        return found

    def is_claimed(self, label: str) -> bool:
        return self._key(label) in self.claimed


def _read_file(label: str, files: _Files) -> tuple[list[tuple[Document, int | None]],
                                                   list[Problem]]:
    kind = SUPPORTED_SUFFIXES[PurePath(label).suffix.lower()]
    if kind == "jsonl":
        found, problems = _documents_from_jsonl(label, decode_text(files.read(label)))
        return [(doc, line) for doc, line in found], problems
    name = FileName.of(label)
    try:
        sidecar = files.sidecar(name.sidecar)
    except Rejected as err:
        why = f"{err}; {PurePath(label).name} was not read"
        return [], [Problem(name.sidecar, err.line, why)]
    extracted = EXTRACTORS[kind](files.read(label))
    if extracted.encoding != "utf-8":
        files.notes.append(Problem(label, None, f"read as {_ENCODING_NAMES[extracted.encoding]} "
                                                "(not UTF-8); offsets index the decoded text"))
    document = assemble(
        extracted.text, given=extracted.given, sidecar=sidecar, guessed=extracted.guessed,
        name=name, lang_hint=extracted.lang_hint, pages=extracted.pages,
    )
    return [(document, None)], []


_ENCODING_NAMES = {"gb18030": "GB18030/GBK", "big5": "Big5", "utf-16": "UTF-16"}


def _read_each(label: str, files: _Files) -> tuple[list[tuple[Document, int | None]],
                                                   list[Problem]]:
    """One file's documents (with their JSONL lines) and problems; never raises."""
    try:
        return _read_file(label, files)
    except Rejected as err:
        return [], [Problem(label, err.line, str(err))]
    except OSError as err:
        return [], [Problem(label, None, f"cannot read: {err.strerror}")]


def _unclaimed(sidecar_labels: Sequence[str], files: _Files) -> list[Problem]:
    problems = []
    for label in sidecar_labels:
        if not files.is_claimed(label):
            base = PurePath(label).name[: -len(SIDECAR_SUFFIX)]
            message = (
                f"metadata file with no document beside it: name the documents "
                f"{base}.en.EXT / {base}.zh.EXT, or remove it"
            )
            problems.append(Problem(label, None, message))
    return problems


def _read_files(
    labels: Sequence[str], sidecar_labels: Sequence[str], files: _Files,
    problems: list[Problem], progress: Progress | None,
) -> tuple[list[Document], list[Problem]]:
    """Read every document file; the later of two documents with one doc_id wins (the earlier
    is reported); a sidecar that no document claimed is reported."""
    chosen: dict[str, tuple[Document, str, int | None]] = {}
    for done, label in enumerate(labels, start=1):
        found, file_problems = _read_each(label, files)
        problems.extend(file_problems)
        for document, line in found:
            _keep_later(chosen, document, label, line, problems)
        if progress is not None:
            progress(done, len(labels))
    problems.extend(_unclaimed(sidecar_labels, files))
    log.debug("read %d files: %d documents, %d problems", len(labels), len(chosen),
              len(problems))
    return [document for document, _, _ in chosen.values()], problems


def _unsupported(label: str) -> str:
    suffix = PurePath(label).suffix or "(no extension)"
    return f"unsupported file type {suffix}: Qiao reads {_SUFFIX_LIST}; convert it or move it away"


def _too_large(size: int, max_bytes: int) -> Rejected:
    return Rejected(
        f"too large ({size_text(size)}; the limit is {size_text(max_bytes)}): "
        "split it into smaller files"
    )


def _sorted_out(labels: Sequence[str]) -> tuple[list[str], list[str], list[Problem]]:
    """Labels → (document files, sidecars, problems for unsupported types)."""
    documents: list[str] = []
    sidecars: list[str] = []
    problems: list[Problem] = []
    for label in labels:
        if is_sidecar(label):
            sidecars.append(label)
        elif PurePath(label).suffix.lower() in SUPPORTED_SUFFIXES:
            documents.append(label)
        else:
            problems.append(Problem(label, None, _unsupported(label)))
    return documents, sidecars, problems


def documents_from_files(
    files: Mapping[str, bytes], *, max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Progress | None = None, notes: list[Problem] | None = None,
) -> tuple[list[Document], list[Problem]]:
    """Documents from named files in memory (file name → bytes), e.g. an upload. Names pair
    and take sidecars as on disk (`NAME.en.txt`, `NAME.zh.txt`, `NAME.meta.json`); problems are
    labelled by name (`name:line` for JSONL lines). `notes` receives what was read but said
    differently (a file in GBK, named)."""

    def read(label: str) -> bytes:
        data = files[label]
        if len(data) > max_bytes:
            raise _too_large(len(data), max_bytes)
        return data

    documents, sidecars, problems = _sorted_out(list(files))
    reader = _Files(read, lambda label: read(label) if label in files else None, str)
    found = _read_files(documents, sidecars, reader, problems, progress)
    if notes is not None:
        notes.extend(reader.notes)
    return found


# -- the disk -----------------------------------------------------------------------------------


def _read_disk_file(path: Path, max_bytes: int) -> bytes:
    if not path.is_file():
        raise Rejected("not a regular file: give a file or a directory")
    size = path.stat().st_size
    if size > max_bytes:
        raise _too_large(size, max_bytes)
    with path.open("rb") as f:
        data = f.read(max_bytes + 1)  # the file may have grown since stat()
    if len(data) > max_bytes:
        raise _too_large(len(data), max_bytes)
    return data


def _walk(root: Path, problems: list[Problem]) -> list[Path]:
    """Files under `root`, sorted, without hidden files or directories."""

    def unreadable(err: OSError) -> None:
        problems.append(Problem(str(err.filename or root), None, f"cannot read: {err.strerror}"))

    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath, f) for f in sorted(filenames) if not f.startswith("."))
    return found


def _collect(paths: Sequence[Path]) -> tuple[list[str], list[Problem]]:
    """Expand `paths` → (file labels, each file once; problems)."""
    labels: list[str] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for path in paths:
        if path.is_dir():
            entries = _walk(path, problems)
            if not entries:
                problems.append(Problem(str(path), None, "no files found in this directory"))
        elif path.exists():
            entries = [path]
        else:
            problems.append(Problem(str(path), None, "no such file or directory: check the path"))
            continue
        for entry in entries:
            key = os.path.realpath(entry)
            if key not in seen:
                seen.add(key)
                labels.append(str(entry))
    return labels, problems


def read_paths(
    paths: Sequence[Path], *, max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Progress | None = None,
) -> tuple[list[Document], list[Problem]]:
    """Read files and directories (recursively, sorted, hidden entries skipped) into documents.

    Returns the valid documents and a `Problem` for every file, line or document that was not
    used; a batch with problems still returns all good documents. When two documents share a
    `doc_id` the later one is kept. `progress(done, total)` is called after each file.
    """
    labels, problems = _collect(paths)
    documents, sidecars, unsupported = _sorted_out(labels)
    problems.extend(unsupported)

    def read_sidecar(label: str) -> bytes | None:
        path = Path(label)
        return _read_disk_file(path, max_bytes) if path.is_file() else None

    reader = _Files(lambda label: _read_disk_file(Path(label), max_bytes), read_sidecar,
                    os.path.realpath)
    return _read_files(documents, sidecars, reader, problems, progress)


@dataclass
class PathReader:
    """Files and directories on disk, read one file at a time: for an ingest too large to
    hold in memory. `files` is known at once (the walk); `documents()` yields each valid
    document as its file is read, and `problems` fills as files are read (sidecars no
    document claimed are added once the iteration ends). A doc_id that comes twice is
    upserted twice, the later winning."""

    files: list[str]
    problems: list[Problem]
    _sidecars: list[str]
    _reader: _Files
    done: int = 0

    @classmethod
    def open(cls, paths: Sequence[Path], *, max_bytes: int = DEFAULT_MAX_BYTES) -> PathReader:
        labels, problems = _collect(paths)
        documents, sidecars, unsupported = _sorted_out(labels)

        def read_sidecar(label: str) -> bytes | None:
            path = Path(label)
            return _read_disk_file(path, max_bytes) if path.is_file() else None

        reader = _Files(lambda label: _read_disk_file(Path(label), max_bytes), read_sidecar,
                        os.path.realpath)
        return cls(documents, problems + unsupported, sidecars, reader)

    @property
    def notes(self) -> list[Problem]:
        """Files read in another encoding than UTF-8 (each named with it)."""
        return self._reader.notes

    def documents(self) -> Iterator[Document]:
        for label in self.files:
            found, problems = _read_each(label, self._reader)
            self.problems.extend(problems)
            self.done += 1
            for document, _ in found:
                yield document
        self.problems.extend(_unclaimed(self._sidecars, self._reader))
