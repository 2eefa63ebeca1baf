"""The data directory: immutable generation folders and an atomically swapped CURRENT pointer.

Layout::

    DATA_DIR/CURRENT            name of the live generation (replaced by rename, after fsync)
    DATA_DIR/gen-000042/        one committed state, never modified after its rename
        manifest.json           model id, dim, chunker and analyzer settings, versions, counts,
                                sha256 of every file below
        documents.jsonl         one document per line: metadata, text, hash, row/sentence ranges
        passages.npy            (rows, 2) int64 start, end  — row number = vector id = BM25 id
        counterparts.npy        (rows, 3) float64 first, end, score into the counterpart doc
        vectors.npy             (rows, dim) float32
        dense.faiss             FAISS index over vectors.npy
        terms.jsonl             analysed terms per row (the lexical index is rebuilt from them)
        lexical/                bm25s arrays
        sentences.npy           (sentences, 3) int64 passage ordinal, start, end
        sentence_vectors.npy    (sentences, dim) float32
        sentence_terms.jsonl    analysed terms per sentence (answer-sentence overlap)

A crash at any moment leaves CURRENT pointing at a complete generation: the new one is written
under a temporary name (`.gen-000043.XXXX/`), fsynced, renamed, and only then named in CURRENT
(the commit point). No pickle anywhere.

Readers pin the generation they load and writers keep the previous one and any pinned one, so
a reader or `qiao snapshot` never loses the files under it (see `generations.py`).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from index.codec import document_from_record, document_record
from index.errors import DataDirError, IndexMismatch, QiaoError
from index.files import fsync_path, sha256_of, write_atomic
from index.indexes.backends import (
    DEFAULT_DENSE,
    DEFAULT_LEXICAL,
    DENSE_FILE,
    open_dense_index,
    open_lexical_index,
)
from index.records import PreparedDocument
from index.store.current import (
    CURRENT,
    LOCK,
    MANIFEST,
    TEMP_PREFIX,
    check_data_dir,
    current_generation,
    generation_number,
    pinned_generation,
    remove_leftovers,
    remove_superseded,
    write_lock,
)
from index.store.snapshot import Snapshot

log = logging.getLogger(__name__)

# Re-exported: callers open, lock and inspect a data directory through this module.
__all__ = [
    "CURRENT",
    "LOCK",
    "MANIFEST",
    "BuildInfo",
    "CommitFailed",
    "check_data_dir",
    "current_generation",
    "load_snapshot",
    "pinned_generation",
    "read_manifest",
    "save_snapshot",
    "sha256_of",
    "write_lock",
]

# One load at a time per process: numpy reads .npy headers with ast.literal_eval, and CPython
# 3.11's AST conversion is not thread-safe (concurrent loads raised "AST constructor recursion
# depth mismatch"). Loads are rare (start-up, reload), so serialising them costs nothing.
_LOAD_LOCK = threading.Lock()
FORMAT_VERSION = 2

# The steps of a commit, in order. Everything before "switch" leaves the old state; "switch" is
# the atomic replacement of CURRENT; "cleanup" removes superseded generations afterwards.
WRITE_STEPS = (
    *("documents", "passages", "counterparts", "vectors", "dense", "terms", "lexical"),
    *("sentences", "sentence_vectors", "sentence_terms", "manifest", "fsync"),
    *("rename", "switch", "cleanup"),
)

# Test hook: called with each step name of WRITE_STEPS just before the step runs. The crash
# harness kills the process or raises OSError(ENOSPC) here; None (always, outside tests) costs
# one comparison per step.
_on_write_step: Callable[[str], None] | None = None


class CommitFailed(DataDirError, OSError):
    """A commit could not be written (disk full, permissions); the previous state is intact.

    Also an OSError, so callers that handled the raw OS error keep working.
    """


def set_write_step_hook(hook: Callable[[str], None] | None) -> None:
    """For crash and disk-full tests: call `hook(step)` before each step of WRITE_STEPS in every
    commit of this process (it may kill the process or raise OSError); None removes it."""
    global _on_write_step
    _on_write_step = hook


def _step(name: str) -> None:
    if _on_write_step is not None:
        _on_write_step(name)


@dataclass(frozen=True, slots=True)
class BuildInfo:
    """How an index was built; an index opens only with the same model and analysis."""

    model_id: str
    dim: int
    chunker: dict[str, Any]
    analyzer: str
    dense_factory: str

    def check_compatible(self, other: BuildInfo, data_dir: Path) -> None:
        if (self.model_id, self.dim) != (other.model_id, other.dim):
            raise IndexMismatch(
                f"{data_dir} was built with model {other.model_id!r} (dim {other.dim}) but the "
                f"configured model is {self.model_id!r} (dim {self.dim}): set QIAO_MODEL="
                f"{other.model_id!r}, or rebuild with `qiao ingest --rebuild PATH...`"
            )
        if self.analyzer != other.analyzer:
            raise IndexMismatch(
                f"{data_dir} was built with another lexical analyser ({other.analyzer}): "
                "rebuild with `qiao ingest --rebuild PATH...` or restore the user dictionary"
            )


def _library_versions() -> dict[str, str]:
    return {name: version(name) for name in ("faiss-cpu", "bm25s", "jieba", "numpy")}


def _document_record(seg: PreparedDocument, row: int, sentence: int) -> dict[str, Any]:
    return {
        **document_record(seg.document),
        "content_hash": seg.content_hash,
        "rows": [row, len(seg.spans)],
        "sentences": [sentence, len(seg.sentence_spans)],
        "counterpart_doc": seg.counterpart_doc,
    }


def save_snapshot(data_dir: Path, snapshot: Snapshot, info: BuildInfo) -> str:
    """Write `snapshot` as a new generation and make it current. Returns its folder name.

    The caller holds `write_lock(data_dir)`. On any failure before CURRENT is replaced the old
    state stays current and nothing of the attempt is left; an OSError (disk full, permission)
    is raised as CommitFailed with a one-line message.
    """
    check_data_dir(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    previous = current_generation(data_dir)
    number = generation_number(previous) + 1 if previous else 1
    name = f"gen-{number:06d}"
    final = data_dir / name
    tmp: Path | None = None
    switched = False
    try:
        remove_leftovers(data_dir, previous)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{number:06d}.", dir=data_dir))
        _write_generation(tmp, snapshot, info)
        _step("rename")
        if final.exists():  # left over from a crash after rename, before CURRENT moved
            shutil.rmtree(final)
        os.rename(tmp, final)
        tmp = None
        fsync_path(data_dir)
        _step("switch")
        write_atomic(data_dir / CURRENT, name + "\n", durable=False)  # the commit point
        switched = True
    except BaseException as exc:
        reason = _reason(exc, data_dir) if isinstance(exc, OSError) else ""
        if not switched:
            for leftover in (tmp, final):
                if leftover is not None:
                    shutil.rmtree(leftover, ignore_errors=True)
            (data_dir / f".{CURRENT}.tmp").unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, QiaoError):
            raise CommitFailed(
                f"cannot write to {data_dir}: {reason}; nothing was changed — "
                "free disk space or fix permissions and run again"
            ) from exc
        raise
    try:
        fsync_path(data_dir)
    except OSError as exc:  # committed and visible; only durability across power loss is at risk
        log.error("committed %s but could not fsync %s: %s", name, data_dir, exc)
    _step("cleanup")
    remove_superseded(data_dir, keep={name, previous or name})
    return name


def _reason(exc: OSError, data_dir: Path) -> str:
    """The OS's words for a failed write. numpy reports a short write without an errno; on a
    disk with no free space left (checked before cleanup frees some), that is a full disk."""
    if exc.strerror:
        return exc.strerror
    try:
        full = shutil.disk_usage(data_dir).free < 1 << 20
    except OSError:
        full = False
    return os.strerror(errno.ENOSPC) if full else str(exc)


def _write_generation(folder: Path, snapshot: Snapshot, info: BuildInfo) -> None:
    segs = [snapshot.segments[d] for d in snapshot.doc_order]
    _step("documents")
    with (folder / "documents.jsonl").open("w", encoding="utf-8") as f:
        for seg in segs:
            record = _document_record(
                seg, snapshot.row_offset[seg.doc_id], snapshot.sentence_offset[seg.doc_id]
            )
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    dim = snapshot.dim
    _step("passages")
    np.save(folder / "passages.npy", snapshot.spans)
    _step("counterparts")
    np.save(
        folder / "counterparts.npy",
        np.concatenate([s.counterparts for s in segs]) if segs else np.zeros((0, 3)),
    )
    _step("vectors")
    np.save(
        folder / "vectors.npy",
        np.concatenate([s.vectors for s in segs]) if segs else np.zeros((0, dim), np.float32),
    )
    _step("dense")
    snapshot.dense.save(folder / DENSE_FILE[DEFAULT_DENSE])
    _step("terms")
    with (folder / "terms.jsonl").open("w", encoding="utf-8") as f:
        for seg in segs:
            for terms in seg.terms:
                f.write(json.dumps(terms, ensure_ascii=False) + "\n")
    _step("lexical")
    (folder / "lexical").mkdir()
    snapshot.lexical.save(folder / "lexical")
    local_sentences = (
        np.concatenate([s.sentence_spans for s in segs]) if segs else np.zeros((0, 3), np.int64)
    )
    _step("sentences")
    np.save(folder / "sentences.npy", local_sentences)
    _step("sentence_vectors")
    np.save(folder / "sentence_vectors.npy", snapshot.sentence_vectors)
    _step("sentence_terms")
    with (folder / "sentence_terms.jsonl").open("w", encoding="utf-8") as f:
        for seg in segs:
            for terms in seg.sentence_terms:
                f.write(json.dumps(terms, ensure_ascii=False) + "\n")
    _step("manifest")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    manifest = {
        "format": FORMAT_VERSION,
        **asdict(info),
        "versions": _library_versions(),
        "backends": {"dense": DEFAULT_DENSE, "lexical": DEFAULT_LEXICAL},
        "counts": {
            "documents": len(segs),
            "passages": snapshot.n_rows,
            "sentences": len(local_sentences),
        },
        "files": {str(p.relative_to(folder)): sha256_of(p) for p in files},
    }
    (folder / MANIFEST).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    _step("fsync")
    for path in [*files, folder / MANIFEST]:
        with path.open("rb") as f:
            os.fsync(f.fileno())
    fsync_path(folder / "lexical")
    fsync_path(folder)


def read_manifest(data_dir: Path) -> dict[str, Any] | None:
    """The live generation's manifest, or None for a new data directory."""
    check_data_dir(data_dir)
    with pinned_generation(data_dir) as name:
        return None if name is None else _read_manifest_file(data_dir / name / MANIFEST)


def _read_manifest_file(path: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataDirError(
            f"{path} is missing or corrupt: restore the data directory from a snapshot"
        ) from exc
    if not isinstance(manifest, dict):
        raise DataDirError(f"{path} is corrupt: restore the data directory from a snapshot")
    return manifest


def build_info_of(manifest: dict[str, Any]) -> BuildInfo:
    return BuildInfo(
        model_id=manifest["model_id"],
        dim=int(manifest["dim"]),
        chunker=manifest["chunker"],
        analyzer=manifest["analyzer"],
        dense_factory=manifest["dense_factory"],
    )


def load_snapshot(data_dir: Path, verify: bool = False) -> tuple[Snapshot, BuildInfo] | None:
    """Open the live generation; None for a new data directory.

    The generation is pinned while it loads, so a concurrent commit cannot remove it. With
    `verify`, every file's checksum is compared with the manifest first.
    """
    check_data_dir(data_dir)
    with pinned_generation(data_dir) as name:
        if name is None:
            return None
        folder = data_dir / name
        manifest = _read_manifest_file(folder / MANIFEST)
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexMismatch(
                f"{data_dir} uses index format {manifest.get('format')}, this Qiao reads "
                f"{FORMAT_VERSION}: rebuild with `qiao ingest --rebuild PATH...`"
            )
        if verify:
            for rel, digest in manifest["files"].items():
                path = folder / rel
                if not path.is_file() or sha256_of(path) != digest:
                    raise DataDirError(f"{path} is missing or damaged: restore from a snapshot")
        info = build_info_of(manifest)
        try:
            with _LOAD_LOCK:
                snapshot = _read_generation(
                    folder, info, generation_number(name), backends_of(manifest)
                )
        except (OSError, ValueError, KeyError, IndexError, RuntimeError) as exc:
            # RuntimeError: FAISS's reader on a damaged file.
            raise DataDirError(
                f"cannot load {folder} ({exc}): run `qiao verify {data_dir}` or restore a snapshot"
            ) from exc
    return snapshot, info


def backends_of(manifest: dict[str, Any]) -> dict[str, str]:
    """The dense and lexical backends a manifest names (older manifests: the defaults)."""
    named = manifest.get("backends") or {}
    return {"dense": str(named.get("dense", DEFAULT_DENSE)),
            "lexical": str(named.get("lexical", DEFAULT_LEXICAL))}


def _read_generation(
    folder: Path, info: BuildInfo, generation: int, backends: dict[str, str]
) -> Snapshot:
    spans = np.load(folder / "passages.npy", allow_pickle=False)
    counterparts = np.load(folder / "counterparts.npy", allow_pickle=False)
    vectors = np.load(folder / "vectors.npy", allow_pickle=False)
    sentences = np.load(folder / "sentences.npy", allow_pickle=False)
    sentence_vectors = np.load(folder / "sentence_vectors.npy", allow_pickle=False)
    with (folder / "terms.jsonl").open(encoding="utf-8") as f:
        terms = [tuple(json.loads(line)) for line in f]
    with (folder / "sentence_terms.jsonl").open(encoding="utf-8") as f:
        sentence_terms = [tuple(json.loads(line)) for line in f]
    segments: dict[str, PreparedDocument] = {}
    with (folder / "documents.jsonl").open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            row, count = rec.pop("rows")
            s_row, s_count = rec.pop("sentences")
            content_hash = rec.pop("content_hash")
            counterpart_doc = rec.pop("counterpart_doc")
            doc = document_from_record(rec)
            segments[doc.doc_id] = PreparedDocument(
                document=doc,
                content_hash=content_hash,
                spans=spans[row : row + count],
                vectors=vectors[row : row + count],
                terms=tuple(terms[row : row + count]),
                sentence_spans=sentences[s_row : s_row + s_count],
                sentence_vectors=sentence_vectors[s_row : s_row + s_count],
                sentence_terms=tuple(sentence_terms[s_row : s_row + s_count]),
                counterparts=counterparts[row : row + count],
                counterpart_doc=counterpart_doc,
            )
    dense = open_dense_index(folder, info.dense_factory, backends["dense"])
    lexical = open_lexical_index(folder / "lexical", backends["lexical"])
    if dense.size != len(spans) or len(terms) != len(spans):
        raise ValueError("passage, vector and term counts disagree")
    return Snapshot(segments, info.dim, dense, lexical, generation)
