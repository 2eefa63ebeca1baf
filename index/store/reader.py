"""Opening the committed state: the pinned manifest's segments (memory-mapped), their deletion
marks and the link overlays, as a Snapshot.

Segments already open in the previous snapshot are reused, so picking up a commit costs the
new segment and the small files, not the archive. Nothing is parsed per passage.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from index.errors import DataDirError
from index.files import load_array
from index.store.commit import read_overlay
from index.store.datadir import check_data_dir, pinned_manifest
from index.store.manifest import DELETIONS, LINKS, SEGMENTS, Manifest
from index.store.segment import DocLinks, Segment, open_segment
from index.store.snapshot import Mask, Snapshot

# One load at a time per process: numpy reads .npy headers with ast.literal_eval, and CPython
# 3.11's AST conversion is not thread-safe (concurrent loads raised "AST constructor recursion
# depth mismatch"). Loads are rare (start-up, reload), so serialising them costs nothing.
_LOAD_LOCK = threading.Lock()


def open_snapshot(
    data_dir: Path, reuse: Mapping[str, Segment] | None = None
) -> tuple[Snapshot, Manifest] | None:
    """The committed state of `data_dir` (None for a new data directory). `reuse` maps segment
    names to segments already open."""
    check_data_dir(data_dir)
    with pinned_manifest(data_dir) as manifest:
        if manifest is None:
            return None
        try:
            snapshot = snapshot_of(data_dir, manifest, reuse or {})
        except (OSError, ValueError, KeyError, IndexError, RuntimeError) as exc:
            # RuntimeError: FAISS's reader on a damaged file.
            raise DataDirError(
                f"cannot load {manifest.name} of {data_dir} ({exc}): run "
                f"`qiao verify {data_dir}` or restore a snapshot"
            ) from exc
    return snapshot, manifest


def snapshot_of(data_dir: Path, manifest: Manifest, reuse: Mapping[str, Segment]) -> Snapshot:
    """The manifest's state, opening the segments `reuse` does not hold."""
    with _LOAD_LOCK:
        return _snapshot_of(data_dir, manifest, reuse)


def _snapshot_of(data_dir: Path, manifest: Manifest, reuse: Mapping[str, Segment]) -> Snapshot:
    segments: list[Segment] = []
    deleted: list[Mask | None] = []
    for entry in manifest.segments:
        segment = reuse.get(entry.name) or open_segment(data_dir / SEGMENTS / entry.name)
        segments.append(segment)
        if entry.deletions is None:
            deleted.append(None)
            continue
        mask = load_array(data_dir / DELETIONS / entry.deletions)
        if mask.dtype != np.bool_ or mask.shape != (segment.n_docs,):
            raise ValueError(f"{entry.deletions} does not mark {segment.n_docs} documents")
        deleted.append(mask)
    overlays: dict[tuple[str, int], DocLinks] = {}
    for overlay in manifest.overlays:  # oldest first: a later overlay wins
        overlays.update(read_overlay(data_dir / LINKS / overlay.file))
    return Snapshot(tuple(segments), tuple(deleted), overlays, manifest.info,
                    manifest.generation)
