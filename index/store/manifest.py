"""The manifest: what one commit made the index. It lists the live segments (each with the file of
its deletion marks), the counterpart-link overlays in force, how the index was built, and a
checksum of every small file it names; segments carry their own checksums.

    DATA_DIR/CURRENT                       "manifest-000042": the committed manifest's name
    DATA_DIR/manifests/manifest-000042.json
    DATA_DIR/segments/seg-000007/          a segment (see segment.py), never changed
    DATA_DIR/deletions/seg-000007.del-000042.npy   its deleted documents as of commit 42
    DATA_DIR/links/links-000042.json       links of older documents realigned by commit 42

A commit writes new files only, then the new manifest, then replaces CURRENT (the commit point).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from index.errors import DataDirError, IndexMismatch

FORMAT_VERSION = 3
MANIFESTS = "manifests"
SEGMENTS = "segments"
DELETIONS = "deletions"
LINKS = "links"


@dataclass(frozen=True, slots=True)
class BuildInfo:
    """How an index was built; an index opens only with the same model and analysis."""

    model_id: str
    dim: int
    chunker: dict[str, Any]
    analyzer: str

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


@dataclass(frozen=True, slots=True)
class SegmentEntry:
    """A live segment: its counts when written, the sha256 of its segment.json, and the file of
    its deletion marks (None: nothing deleted) with how many documents that marks."""

    name: str
    docs: int
    passages: int
    sentences: int
    record_sha256: str
    deletions: str | None = None
    deleted_docs: int = 0
    deleted_passages: int = 0

    @property
    def live_passages(self) -> int:
        return self.passages - self.deleted_passages


@dataclass(frozen=True, slots=True)
class Overlay:
    """A file of newer counterpart links, and the segments whose documents it relinks."""

    file: str
    segments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    """One committed state of the index."""

    generation: int
    info: BuildInfo
    segments: tuple[SegmentEntry, ...] = ()
    overlays: tuple[Overlay, ...] = ()
    checksums: dict[str, str] = field(default_factory=dict)  # deletion and overlay files
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return manifest_name(self.generation)

    @property
    def documents(self) -> int:
        return sum(s.docs - s.deleted_docs for s in self.segments)

    @property
    def passages(self) -> int:
        return sum(s.live_passages for s in self.segments)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "generation": self.generation,
            **asdict(self.info),
            "segments": [asdict(s) for s in self.segments],
            "overlays": [asdict(o) for o in self.overlays],
            "checksums": self.checksums,
            "versions": self.versions,
            "counts": {"documents": self.documents, "passages": self.passages,
                       "segments": len(self.segments)},
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Manifest:
        return cls(
            generation=int(raw["generation"]),
            info=BuildInfo(raw["model_id"], int(raw["dim"]), raw["chunker"], raw["analyzer"]),
            segments=tuple(SegmentEntry(**s) for s in raw["segments"]),
            overlays=tuple(Overlay(o["file"], tuple(o["segments"]))
                           for o in raw.get("overlays", ())),
            checksums=dict(raw.get("checksums", {})),
            versions=dict(raw.get("versions", {})),
        )

    def with_(self, **changes: Any) -> Manifest:
        return replace(self, **changes)


def manifest_name(generation: int) -> str:
    return f"manifest-{generation:06d}"


def generation_of(name: str) -> int:
    """42 for "manifest-000042"."""
    return int(name.rsplit("-", 1)[1])


def manifest_path(data_dir: Path, name: str) -> Path:
    return data_dir / MANIFESTS / f"{name}.json"


def read_manifest_file(path: Path, data_dir: Path) -> Manifest:
    """The manifest at `path`; a one-line DataDirError or IndexMismatch when unusable."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataDirError(
            f"{path} is missing or corrupt: run `qiao verify {data_dir}` or restore a snapshot"
        ) from exc
    if not isinstance(raw, dict):
        raise DataDirError(f"{path} is corrupt: restore the data directory from a snapshot")
    if raw.get("format") != FORMAT_VERSION:
        raise IndexMismatch(
            f"{data_dir} uses index format {raw.get('format')}, this Qiao reads "
            f"{FORMAT_VERSION}: rebuild it with `qiao ingest --rebuild PATH...`"
        )
    try:
        return Manifest.from_json(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataDirError(f"{path} is corrupt ({exc}): restore a snapshot") from exc
