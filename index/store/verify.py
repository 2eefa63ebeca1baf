"""Check every invariant of a data directory without trusting any of it.

`verify_data_dir` opens the committed manifest (pinned, so a concurrent commit cannot remove it)
and reports each problem as a `Violation`: `CURRENT` naming a readable manifest; every file the
manifest names present with its recorded checksum (deletion marks, link overlays, each
segment's `segment.json`, and through it every file of the segment); in each segment, documents
whole (text and metadata match the content hash), passages tiling their document's rows inside
its text, sentences inside their passages, one vector per passage, postings consistent with row
lengths, links inside their counterpart documents; deletion marks of the right shape and count;
overlays naming live documents; and no document live twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from index.errors import QiaoError
from index.files import load_array, sha256_of
from index.records import LANGS, Document
from index.store.commit import read_overlay
from index.store.datadir import CURRENT, pinned_manifest
from index.store.manifest import DELETIONS, LINKS, MANIFESTS, SEGMENTS, Manifest
from index.store.segment import SEGMENT_FILE, Segment, open_segment, read_segment_record

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
    """The manifest checked (None if CURRENT names none), what it holds, what is wrong."""

    generation: str | None
    documents: int = 0
    passages: int = 0
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def verify_data_dir(data_dir: Path) -> VerifyReport:
    """Check the committed state of `data_dir`; violations are empty when all holds."""
    if not data_dir.is_dir():
        return VerifyReport(None, violations=[Violation(str(data_dir), "is not a directory")])
    try:
        with pinned_manifest(data_dir) as manifest:
            if manifest is None:
                problem = "is missing: the directory holds no committed index"
                return VerifyReport(None, violations=[Violation(str(data_dir / CURRENT), problem)])
            return verify_manifest(data_dir, manifest)
    except QiaoError as exc:
        return VerifyReport(None, violations=[Violation(str(data_dir), str(exc))])


class _Checks:
    """Collects violations; `attempt` turns a failed load into one violation."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.violations: list[Violation] = []

    def fail(self, rel: str, problem: str) -> None:
        one_line = " ".join(problem.split())  # library messages may span lines
        self.violations.append(Violation(str(self.root / rel), one_line))

    def attempt(self, rel: str, load: Callable[[], T]) -> T | None:
        # Damaged files fail in many ways (numpy, json, faiss); each is one violation.
        try:
            return load()
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, QiaoError) as exc:
            self.fail(rel, f"unreadable ({type(exc).__name__}: {exc})")
            return None

    def checksum(self, rel: str, expected: str | None) -> bool:
        path = self.root / rel
        if not path.is_file():
            self.fail(rel, "is missing")
            return False
        if expected is not None and self.attempt(rel, functools.partial(sha256_of, path)) \
                not in (expected, None):
            self.fail(rel, "checksum differs from the manifest (damaged or truncated)")
            return False
        return True


def verify_manifest(data_dir: Path, manifest: Manifest) -> VerifyReport:
    """Check everything `manifest` names (see the module docstring)."""
    checks = _Checks(data_dir)
    live: dict[str, str] = {}  # doc_id → where it is live
    documents = passages = 0
    opened: dict[str, tuple[Segment, Any]] = {}
    for entry in manifest.segments:
        rel = f"{SEGMENTS}/{entry.name}"
        if not checks.checksum(f"{rel}/{SEGMENT_FILE}", entry.record_sha256):
            continue
        record = checks.attempt(rel, functools.partial(read_segment_record, data_dir / rel))
        if record is None:
            continue
        # Every file is checked (and reported), not only up to the first bad one.
        intact = all([checks.checksum(f"{rel}/{name}", digest)
                      for name, digest in sorted(record["files"].items())])
        present = {p.name for p in (data_dir / rel).iterdir()}
        for name in sorted(present - set(record["files"]) - {SEGMENT_FILE}):
            checks.fail(f"{rel}/{name}", "is not listed in the segment's segment.json")
        if not intact:
            continue
        segment = checks.attempt(rel, functools.partial(open_segment, data_dir / rel))
        if segment is None:
            continue
        if (segment.n_docs, segment.n_rows, len(segment.sentences)) != (
            entry.docs, entry.passages, entry.sentences
        ):
            checks.fail(rel, "holds other counts than the manifest records")
            continue
        deleted = _deletions(checks, data_dir, entry.deletions, entry.deleted_docs,
                             manifest.checksums, segment)
        opened[entry.name] = (segment, deleted)
        _check_segment(checks, rel, segment, manifest.info.dim)
        for doc, doc_id in enumerate(segment.doc_ids):
            if deleted is not None and deleted[doc]:
                continue
            if doc_id in live:
                checks.fail(rel, f"{doc_id} is live here and in {live[doc_id]}")
            live[doc_id] = entry.name
            documents += 1
            passages += int(segment.doc_rows[doc, 1])
    links = _overlays(checks, manifest, opened)
    _check_links(checks, opened, links)
    counts = manifest.documents, manifest.passages
    if not checks.violations and counts != (documents, passages):
        checks.fail(f"{MANIFESTS}/{manifest.name}.json",
                    f"counts {counts} but the segments hold {(documents, passages)}")
    return VerifyReport(manifest.name, documents, passages, checks.violations)


def _deletions(
    checks: _Checks, data_dir: Path, file: str | None, count: int,
    checksums: dict[str, str], segment: Segment,
) -> Any:
    if file is None:
        return None
    rel = f"{DELETIONS}/{file}"
    if not checks.checksum(rel, checksums.get(rel)):
        return None
    mask = checks.attempt(rel, lambda: load_array(data_dir / rel))
    if mask is None:
        return None
    if mask.dtype != np.bool_ or mask.shape != (segment.n_docs,):
        checks.fail(rel, f"marks {mask.shape} {mask.dtype}, expected ({segment.n_docs},) bool")
        return None
    if int(mask.sum()) != count:
        checks.fail(rel, f"marks {int(mask.sum())} documents, the manifest says {count}")
    return mask


def _check_segment(checks: _Checks, rel: str, segment: Segment, dim: int) -> None:
    n, s = segment.n_rows, len(segment.sentences)
    doc_rows = np.asarray(segment.doc_rows, np.int64)
    if doc_rows.shape != (segment.n_docs, 2) or (
        len(doc_rows) and (doc_rows[0, 0] != 0 or (np.cumsum(doc_rows[:, 1]) != np.append(
            doc_rows[1:, 0], n)).any())
    ):
        checks.fail(rel, "documents' rows do not tile the passages")
        return
    if segment.dense.size != n or segment.dense.dim != dim:
        checks.fail(rel, f"{segment.dense.size} vectors of dim {segment.dense.dim}, expected "
                         f"{n} of dim {dim}")
    if segment.sentence_vectors.shape != (s, dim) or segment.sentence_scales.shape != (s,):
        checks.fail(rel, f"sentence vectors {segment.sentence_vectors.shape}, expected {(s, dim)}")
    if segment.sentence_links.shape != (s, 3):
        checks.fail(rel, f"sentence links {segment.sentence_links.shape}, expected {(s, 3)}")
    spans = np.asarray(segment.passage_sentences, np.int64)
    if len(spans) and (spans[0, 0] != 0 or spans[-1, 1] != s or
                       (spans[1:, 0] != spans[:-1, 1]).any() or (spans[:, 1] < spans[:, 0]).any()):
        checks.fail(rel, "passages' sentence ranges do not tile the sentences")
        return
    postings = segment.postings
    indptr = np.asarray(postings.indptr, np.int64)
    rows = np.asarray(postings.rows, np.int64)
    if (np.diff(indptr) < 0).any() or len(postings.lengths) != n or (rows >= n).any() or (
        rows < 0).any():
        checks.fail(rel, "postings are inconsistent with the passages")
    elif not np.array_equal(np.bincount(rows, weights=postings.tfs, minlength=n).astype(np.int64),
                            np.asarray(postings.lengths, np.int64)):
        checks.fail(rel, "postings' term counts differ from the passages' lengths")
    ptr = np.asarray(segment.sentence_term_ptr, np.int64)
    if len(ptr) != s + 1 or (np.diff(ptr) < 0).any() or (
        len(segment.sentence_term_ids) and int(np.max(segment.sentence_term_ids)) >=
        len(postings.vocab)):
        checks.fail(rel, "sentence terms are inconsistent")
    for doc in range(segment.n_docs):
        _check_document(checks, rel, segment, doc)


def _check_document(checks: _Checks, rel: str, segment: Segment, doc: int) -> None:
    where = f"{rel} {segment.doc_ids[doc]}"
    try:
        document = segment.document(doc)
    except (UnicodeDecodeError, ValueError, IndexError) as exc:
        checks.fail(rel, f"{segment.doc_ids[doc]}: text unreadable ({exc})")
        return
    if not isinstance(document, Document) or document.lang not in LANGS:
        checks.fail(rel, f"{where}: not a document")
    if segment.content_hash(doc) != document.content_hash:
        checks.fail(rel, f"{segment.doc_ids[doc]}: text and metadata do not match its hash")
    rows = segment.rows_of(doc)
    spans = np.asarray(segment.passages[rows.start:rows.stop], np.int64)
    if len(spans) and not ((spans[:, 0] >= 0).all() and (spans[:, 0] < spans[:, 1]).all()
                           and int(spans[:, 1].max()) <= len(document.text)):
        checks.fail(rel, f"{segment.doc_ids[doc]}: a passage span lies outside its text")
        return
    for row, (start, end) in zip(rows, spans.tolist(), strict=True):
        first, stop = (int(x) for x in segment.passage_sentences[row])
        sentences = np.asarray(segment.sentences[first:stop], np.int64)
        if len(sentences) and not ((sentences[:, 0] >= start).all() and
                                   (sentences[:, 1] <= end).all() and
                                   (sentences[:, 0] < sentences[:, 1]).all()):
            checks.fail(rel, f"{segment.doc_ids[doc]}: a sentence lies outside its passage")
            return


def _overlays(checks: _Checks, manifest: Manifest, opened: dict[str, tuple[Segment, Any]]
              ) -> dict[tuple[str, int], Any]:
    links: dict[tuple[str, int], Any] = {}
    for overlay in manifest.overlays:
        rel = f"{LINKS}/{overlay.file}"
        if not checks.checksum(rel, manifest.checksums.get(rel)):
            continue
        found = checks.attempt(rel, functools.partial(read_overlay, checks.root / rel))
        if found is None:
            continue
        for (seg, doc), value in found.items():
            if seg not in overlay.segments:
                checks.fail(rel, f"relinks a document of {seg}, which it does not name")
            elif seg in opened:
                segment = opened[seg][0]
                if not 0 <= doc < segment.n_docs or len(value.ranges) != len(
                    segment.rows_of(doc)
                ):
                    checks.fail(rel, f"entry for {seg} document {doc} does not fit it")
                    continue
            links[(seg, doc)] = value
    return links


def _check_links(
    checks: _Checks, opened: dict[str, tuple[Segment, Any]],
    overlays: dict[tuple[str, int], Any],
) -> None:
    passages_of, sentences_of = {}, {}
    for segment, deleted in opened.values():
        for doc, doc_id in enumerate(segment.doc_ids):
            if deleted is None or not deleted[doc]:
                passages_of[doc_id] = int(segment.doc_rows[doc, 1])
                sentences_of[doc_id] = len(segment.sentences_of(doc))
    for name, (segment, deleted) in opened.items():
        for doc in range(segment.n_docs):
            if deleted is not None and deleted[doc]:
                continue
            links = overlays.get((name, doc)) or segment.links_of(doc)
            if links.counterpart_doc is None:
                continue
            size = passages_of.get(links.counterpart_doc)
            ranges = np.asarray(links.ranges)
            used = ranges[ranges[:, 0] >= 0]
            if size is None:
                checks.fail(f"{SEGMENTS}/{name}", f"{segment.doc_ids[doc]}: counterpart "
                            f"{links.counterpart_doc} is not in the index")
            elif len(used) and not ((used[:, 0] < used[:, 1]).all() and used[:, 1].max() <= size):
                checks.fail(f"{SEGMENTS}/{name}", f"{segment.doc_ids[doc]}: a link points "
                            f"past {links.counterpart_doc}'s passages")
            sentence_links = np.asarray(links.sentences)
            aligned = sentence_links[sentence_links[:, 0] >= 0] if len(sentence_links) else (
                sentence_links)
            other = sentences_of.get(links.counterpart_doc)
            if other is not None and len(aligned) and not (
                    (aligned[:, 0] < aligned[:, 1]).all() and aligned[:, 1].max() <= other):
                checks.fail(f"{SEGMENTS}/{name}", f"{segment.doc_ids[doc]}: a sentence link "
                            f"points past {links.counterpart_doc}'s sentences")
