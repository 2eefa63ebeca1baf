"""Check every invariant of a data directory without trusting any of it.

`verify_data_dir` opens the committed generation (pinned, so a concurrent commit cannot remove
it) and reports each problem as a `Violation`: CURRENT naming a complete generation, manifest
checksums, every file readable (a truncated FAISS or lexical file fails), one passage row per
vector and per term list, FAISS and BM25 holding exactly the passage rows, documents whole
(their text matches their content hash) and every span inside its document's text.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from index.codec import document_from_record
from index.errors import QiaoError
from index.indexes.backends import DENSE_FILE, open_dense_index, open_lexical_index
from index.records import LANGS, Document
from index.store.generation import (
    CURRENT,
    FORMAT_VERSION,
    MANIFEST,
    backends_of,
    pinned_generation,
    sha256_of,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant: where (a file or folder) and what is wrong."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The generation checked (None if CURRENT names none), what it holds, what is wrong."""

    generation: str | None
    documents: int = 0
    passages: int = 0
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def verify_data_dir(data_dir: Path) -> VerifyReport:
    """Check the committed generation of `data_dir`; violations are empty when all holds."""
    if not data_dir.is_dir():
        return VerifyReport(None, violations=[Violation(str(data_dir), "is not a directory")])
    try:
        with pinned_generation(data_dir) as name:
            if name is None:
                problem = "is missing: the directory holds no committed index"
                return VerifyReport(None, violations=[Violation(str(data_dir / CURRENT), problem)])
            return verify_generation(data_dir / name)
    except QiaoError as exc:
        return VerifyReport(None, violations=[Violation(str(data_dir), str(exc))])


def verify_generation(folder: Path) -> VerifyReport:
    """Check one generation folder (see the module docstring for the invariants)."""
    checks = _Checks(folder)
    manifest = checks.attempt(MANIFEST, lambda: _json_object(folder / MANIFEST))
    if manifest is None:
        return VerifyReport(folder.name, violations=checks.violations)
    if manifest.get("format") != FORMAT_VERSION:
        checks.fail(MANIFEST, f"format {manifest.get('format')!r}, expected {FORMAT_VERSION}")
        return VerifyReport(folder.name, violations=checks.violations)
    _check_checksums(checks, manifest.get("files"))
    dim = manifest.get("dim")
    if not isinstance(dim, int) or dim <= 0:
        checks.fail(MANIFEST, f"dim {dim!r} is not a positive integer")
        return VerifyReport(folder.name, violations=checks.violations)

    spans = checks.array("passages.npy", columns=2, integer=True)
    n = len(spans) if spans is not None else None
    checks.array("counterparts.npy", rows=n, columns=3)
    vectors = checks.array("vectors.npy", rows=n, columns=dim, dtype=np.float32)
    sentences = checks.array("sentences.npy", columns=3, integer=True)
    s = len(sentences) if sentences is not None else None
    checks.array("sentence_vectors.npy", rows=s, columns=dim, dtype=np.float32)
    checks.term_lists("terms.jsonl", rows=n)
    checks.term_lists("sentence_terms.jsonl", rows=s)
    docs = _check_documents(checks, spans, sentences)
    counts = manifest.get("counts", {})
    for key, actual in (("documents", len(docs)), ("passages", n), ("sentences", s)):
        if actual is not None and counts.get(key) != actual:
            checks.fail(MANIFEST, f"counts.{key} is {counts.get(key)!r} but there are {actual}")
    if n is not None:
        _check_dense(checks, n, dim, vectors, manifest)
        _check_lexical(checks, n, manifest)
    return VerifyReport(folder.name, len(docs), n or 0, checks.violations)


class _Checks:
    """Collects violations for one generation folder; loaders return None after a violation."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.violations: list[Violation] = []

    def fail(self, rel: str, problem: str) -> None:
        one_line = " ".join(problem.split())  # library messages may span lines
        self.violations.append(Violation(str(self.folder / rel), one_line))

    def attempt(self, rel: str, load: Callable[[], T]) -> T | None:
        # Damaged files fail in many ways (numpy, json, faiss, bm25s); each is one violation.
        try:
            return load()
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, QiaoError) as exc:
            self.fail(rel, f"unreadable ({type(exc).__name__}: {exc})")
            return None

    def array(
        self,
        rel: str,
        *,
        columns: int,
        rows: int | None = None,
        integer: bool = False,
        dtype: type[np.generic] | None = None,
    ) -> npt.NDArray[Any] | None:
        array: npt.NDArray[Any] | None = self.attempt(
            rel, lambda: np.load(self.folder / rel, allow_pickle=False)
        )
        if array is None:
            return None
        problem = None
        if array.ndim != 2 or array.shape[1] != columns:
            problem = f"shape {array.shape}, expected (rows, {columns})"
        elif rows is not None and len(array) != rows:
            problem = f"{len(array)} rows, but there are {rows} passages/sentences"
        elif integer and not np.issubdtype(array.dtype, np.integer):
            problem = f"dtype {array.dtype}, expected integers"
        elif dtype is not None and array.dtype != dtype:
            problem = f"dtype {array.dtype}, expected {np.dtype(dtype)}"
        if problem:
            self.fail(rel, problem)
            return None
        return array

    def term_lists(self, rel: str, rows: int | None) -> None:
        lines = self.attempt(rel, lambda: _jsonl(self.folder / rel))
        if lines is None:
            return
        if rows is not None and len(lines) != rows:
            self.fail(rel, f"{len(lines)} term lists, but there are {rows} rows")
        if not all(isinstance(t, list) and all(isinstance(x, str) for x in t) for t in lines):
            self.fail(rel, "a line is not a list of terms")


def _json_object(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _jsonl(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _check_checksums(checks: _Checks, files: object) -> None:
    if not isinstance(files, dict) or not files:
        checks.fail(MANIFEST, "lists no files")
        return
    for rel, digest in sorted(files.items()):
        path = checks.folder / rel
        if not path.is_file():
            checks.fail(rel, "is missing")
        elif checks.attempt(rel, functools.partial(sha256_of, path)) not in (digest, None):
            checks.fail(rel, "checksum differs from the manifest (damaged or truncated)")
    present = {str(p.relative_to(checks.folder)) for p in checks.folder.rglob("*") if p.is_file()}
    for rel in sorted(present - set(files) - {MANIFEST}):
        checks.fail(rel, "is not listed in the manifest")


def _check_documents(
    checks: _Checks, spans: npt.NDArray[Any] | None, sentences: npt.NDArray[Any] | None
) -> dict[str, tuple[Document, int]]:
    """Each document whole and its rows/sentences exactly tiling the tables; doc_id → (doc,
    passage count)."""
    rel = "documents.jsonl"
    records = checks.attempt(rel, lambda: _jsonl(checks.folder / rel))
    docs: dict[str, tuple[Document, int]] = {}
    if records is None:
        return docs
    next_row = next_sentence = 0
    links: list[tuple[str, str]] = []  # (where, counterpart doc_id)
    for line, rec in enumerate(records, start=1):
        where = f"{rel}:{line}"
        try:
            doc = document_from_record(rec)
            (row, count), (s_row, s_count) = rec["rows"], rec["sentences"]
            content_hash, counterpart_doc = rec["content_hash"], rec["counterpart_doc"]
        except (KeyError, TypeError, ValueError) as exc:
            checks.fail(where, f"not a document record ({exc})")
            return docs
        if not isinstance(doc.text, str) or doc.lang not in LANGS:
            checks.fail(where, "text is not a string or lang is not en/zh")
            continue
        if doc.doc_id in docs:
            checks.fail(where, f"{doc.doc_id} appears twice")
        if content_hash != doc.content_hash:
            checks.fail(where, f"{doc.doc_id}: text and metadata do not match its content hash")
        if (row, s_row) != (next_row, next_sentence) or count < 0 or s_count < 0:
            checks.fail(where, f"{doc.doc_id}: rows/sentences do not continue the previous doc")
        next_row, next_sentence = row + count, s_row + s_count
        docs[doc.doc_id] = (doc, count)
        own = spans[row : row + count] if spans is not None else None
        if own is not None:
            _check_spans(checks, where, doc, own, count)
        if sentences is not None and own is not None:
            _check_sentences(checks, where, doc, own, sentences[s_row : s_row + s_count])
        if counterpart_doc is not None:
            links.append((where, counterpart_doc))
    if spans is not None and next_row != len(spans):
        checks.fail(rel, f"documents cover {next_row} passage rows, passages.npy has {len(spans)}")
    if sentences is not None and next_sentence != len(sentences):
        checks.fail(rel, f"documents cover {next_sentence} sentences, there are {len(sentences)}")
    for where, other in links:
        if other not in docs:
            checks.fail(where, f"counterpart {other} is not in the index")
    return docs


def _check_spans(
    checks: _Checks, where: str, doc: Document, own: npt.NDArray[Any], count: int
) -> None:
    if len(own) != count:
        checks.fail(where, f"{doc.doc_id}: {count} passages, but only {len(own)} rows remain")
        return
    starts, ends = own[:, 0], own[:, 1]
    if len(own) and not ((starts >= 0).all() and (starts < ends).all()):
        checks.fail(where, f"{doc.doc_id}: a passage span is empty or negative")
    elif len(own) and int(ends.max()) > len(doc.text):
        checks.fail(where, f"{doc.doc_id}: a passage span ends past the text ({len(doc.text)})")


def _check_sentences(
    checks: _Checks,
    where: str,
    doc: Document,
    own: npt.NDArray[Any],
    sentences: npt.NDArray[Any],
) -> None:
    if not len(sentences):
        return
    ordinal, start, end = sentences[:, 0], sentences[:, 1], sentences[:, 2]
    if not ((ordinal >= 0).all() and (ordinal < len(own)).all()):
        checks.fail(where, f"{doc.doc_id}: a sentence points at a passage it does not have")
        return
    inside = (own[ordinal, 0] <= start) & (start < end) & (end <= own[ordinal, 1])
    if not inside.all():
        checks.fail(where, f"{doc.doc_id}: a sentence span lies outside its passage")


def _check_dense(
    checks: _Checks, n: int, dim: int, vectors: npt.NDArray[Any] | None,
    manifest: dict[str, Any],
) -> None:
    backend = backends_of(manifest)["dense"]
    rel = DENSE_FILE.get(backend, "dense")
    factory = str(manifest.get("dense_factory", "Flat"))
    index = checks.attempt(rel, lambda: open_dense_index(checks.folder, factory, backend))
    if index is None:
        return
    if index.size != n or index.dim != dim:
        checks.fail(rel, f"{index.size} vectors of dim {index.dim}, expected {n} of dim {dim}")
        return
    stored = index.stored_vectors()
    # Exact indexes keep the vectors themselves: they must be the passage vectors, in order.
    if vectors is not None and stored is not None and not np.allclose(stored, vectors,
                                                                      atol=1e-6):
        checks.fail(rel, "vectors differ from vectors.npy (rows out of step)")


def _check_lexical(checks: _Checks, n: int, manifest: dict[str, Any]) -> None:
    rel = "lexical"
    backend = backends_of(manifest)["lexical"]
    lexical = checks.attempt(
        rel, lambda: open_lexical_index(checks.folder / rel, backend, mmap=False)
    )
    if lexical is None:
        return
    if lexical.n_rows != n or lexical.n_live != n:
        checks.fail(rel, f"{lexical.n_rows} rows ({lexical.n_live} live), expected {n} passages")
        return
    if not np.array_equal(lexical.live_rows(), np.arange(n)):
        checks.fail(rel, "BM25 rows are not exactly the passage rows")
