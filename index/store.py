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
under a temporary name, fsynced, renamed, and only then named in CURRENT. No pickle anywhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from index.dense import FaissIndex
from index.errors import DataDirError, IndexMismatch
from index.lexical import Bm25Index
from index.records import Document
from index.snapshot import DocSegment, Snapshot

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
CURRENT = "CURRENT"
LOCK = ".lock"


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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _library_versions() -> dict[str, str]:
    return {name: version(name) for name in ("faiss-cpu", "bm25s", "jieba", "numpy")}


@contextlib.contextmanager
def write_lock(data_dir: Path) -> Iterator[None]:
    """Serialise writers across processes (an advisory lock on DATA_DIR/.lock)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / LOCK).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def current_generation(data_dir: Path) -> str | None:
    """Name of the committed generation folder, or None for a new data directory."""
    pointer = data_dir / CURRENT
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DataDirError(f"cannot read {pointer}: {exc.strerror}; check permissions") from exc
    if not name.startswith("gen-") or "/" in name:
        raise DataDirError(f"{pointer} is corrupt; restore the data directory from a snapshot")
    return name


def check_data_dir(data_dir: Path) -> None:
    """Refuse a data dir path that is a file or cannot be read."""
    if data_dir.exists() and not data_dir.is_dir():
        raise DataDirError(f"{data_dir} is not a directory: point QIAO_DATA_DIR at a directory")
    if data_dir.exists() and not os.access(data_dir, os.R_OK | os.X_OK):
        raise DataDirError(f"cannot read data directory {data_dir}: check its permissions")


def _document_record(seg: DocSegment, row: int, sentence: int) -> dict[str, Any]:
    return {
        **asdict(seg.document),
        "content_hash": seg.content_hash,
        "rows": [row, len(seg.spans)],
        "sentences": [sentence, len(seg.sentence_spans)],
        "counterpart_doc": seg.counterpart_doc,
    }


def save_snapshot(data_dir: Path, snapshot: Snapshot, info: BuildInfo) -> str:
    """Write `snapshot` as a new generation and make it current. Returns its folder name."""
    check_data_dir(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    previous = current_generation(data_dir)
    number = int(previous.split("-")[1]) + 1 if previous else 1
    name = f"gen-{number:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=data_dir))
    try:
        _write_generation(tmp, snapshot, info)
        final = data_dir / name
        if final.exists():  # left over from a crash after rename, before CURRENT moved
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(data_dir)
        _write_atomic_text(data_dir / CURRENT, name + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_stale(data_dir, keep=name)
    return name


def _write_generation(folder: Path, snapshot: Snapshot, info: BuildInfo) -> None:
    segs = [snapshot.segments[d] for d in snapshot.doc_order]
    with (folder / "documents.jsonl").open("w", encoding="utf-8") as f:
        for seg in segs:
            record = _document_record(
                seg, snapshot.row_offset[seg.doc_id], snapshot.sentence_offset[seg.doc_id]
            )
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    dim = snapshot.dim
    np.save(folder / "passages.npy", snapshot.spans)
    np.save(
        folder / "counterparts.npy",
        np.concatenate([s.counterparts for s in segs]) if segs else np.zeros((0, 3)),
    )
    np.save(
        folder / "vectors.npy",
        np.concatenate([s.vectors for s in segs]) if segs else np.zeros((0, dim), np.float32),
    )
    snapshot.dense.save(folder / "dense.faiss")
    with (folder / "terms.jsonl").open("w", encoding="utf-8") as f:
        for seg in segs:
            for terms in seg.terms:
                f.write(json.dumps(terms, ensure_ascii=False) + "\n")
    (folder / "lexical").mkdir()
    snapshot.lexical.save(folder / "lexical")
    local_sentences = (
        np.concatenate([s.sentence_spans for s in segs]) if segs else np.zeros((0, 3), np.int64)
    )
    np.save(folder / "sentences.npy", local_sentences)
    np.save(folder / "sentence_vectors.npy", snapshot.sentence_vectors)
    with (folder / "sentence_terms.jsonl").open("w", encoding="utf-8") as f:
        for seg in segs:
            for terms in seg.sentence_terms:
                f.write(json.dumps(terms, ensure_ascii=False) + "\n")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    manifest = {
        "format": FORMAT_VERSION,
        **asdict(info),
        "versions": _library_versions(),
        "counts": {
            "documents": len(segs),
            "passages": snapshot.n_rows,
            "sentences": len(local_sentences),
        },
        "files": {str(p.relative_to(folder)): _sha256(p) for p in files},
    }
    (folder / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    for path in [*files, folder / "manifest.json"]:
        with path.open("rb") as f:
            os.fsync(f.fileno())
    _fsync_dir(folder / "lexical")
    _fsync_dir(folder)


def _remove_stale(data_dir: Path, keep: str) -> None:
    for child in data_dir.iterdir():
        stale_gen = child.name.startswith("gen-") and child.name != keep
        if (stale_gen or child.name.startswith(".gen-")) and child.is_dir():
            shutil.rmtree(child, ignore_errors=True)


def read_manifest(data_dir: Path) -> dict[str, Any] | None:
    """The live generation's manifest, or None for a new data directory."""
    check_data_dir(data_dir)
    name = current_generation(data_dir)
    if name is None:
        return None
    path = data_dir / name / "manifest.json"
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataDirError(
            f"{path} is missing or corrupt: restore the data directory from a snapshot"
        ) from exc
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

    With `verify`, every file's checksum is compared with the manifest first.
    """
    manifest = read_manifest(data_dir)
    if manifest is None:
        return None
    name = current_generation(data_dir)
    assert name is not None
    folder = data_dir / name
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexMismatch(
            f"{data_dir} uses index format {manifest.get('format')}, this Qiao reads "
            f"{FORMAT_VERSION}: rebuild with `qiao ingest --rebuild PATH...`"
        )
    if verify:
        for rel, digest in manifest["files"].items():
            path = folder / rel
            if not path.is_file() or _sha256(path) != digest:
                raise DataDirError(f"{path} is missing or damaged: restore from a snapshot")
    info = build_info_of(manifest)
    try:
        snapshot = _read_generation(folder, info, int(name.split("-")[1]))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise DataDirError(
            f"cannot load {folder} ({exc}): run `qiao verify {data_dir}` or restore a snapshot"
        ) from exc
    return snapshot, info


def _read_generation(folder: Path, info: BuildInfo, generation: int) -> Snapshot:
    spans = np.load(folder / "passages.npy", allow_pickle=False)
    counterparts = np.load(folder / "counterparts.npy", allow_pickle=False)
    vectors = np.load(folder / "vectors.npy", allow_pickle=False)
    sentences = np.load(folder / "sentences.npy", allow_pickle=False)
    sentence_vectors = np.load(folder / "sentence_vectors.npy", allow_pickle=False)
    with (folder / "terms.jsonl").open(encoding="utf-8") as f:
        terms = [tuple(json.loads(line)) for line in f]
    with (folder / "sentence_terms.jsonl").open(encoding="utf-8") as f:
        sentence_terms = [tuple(json.loads(line)) for line in f]
    segments: dict[str, DocSegment] = {}
    with (folder / "documents.jsonl").open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            row, count = rec.pop("rows")
            s_row, s_count = rec.pop("sentences")
            content_hash = rec.pop("content_hash")
            counterpart_doc = rec.pop("counterpart_doc")
            doc = Document(**rec)
            segments[doc.doc_id] = DocSegment(
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
    dense = FaissIndex.load(folder / "dense.faiss", info.dense_factory)
    lexical = Bm25Index.load(folder / "lexical")
    if dense.size != len(spans) or len(terms) != len(spans):
        raise ValueError("passage, vector and term counts disagree")
    return Snapshot(segments, info.dim, dense, lexical, generation)
