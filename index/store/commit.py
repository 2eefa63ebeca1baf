"""Writing a commit: new segments, deletion marks and link overlays, then the manifest, then
`CURRENT` (the commit point). Nothing already written is ever changed: cost follows the change.

A crash at any moment leaves `CURRENT` naming a complete manifest: everything is written and
fsynced before the manifest, and the manifest before `CURRENT` is replaced. What a killed
commit wrote is named by no manifest, and the next writer removes it.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path

import numpy as np

from index.errors import DataDirError, QiaoError
from index.files import fsync_path, fsync_tree, sha256_of, write_atomic
from index.store.datadir import CURRENT, check_data_dir, collect_garbage, latest_generation
from index.store.manifest import (
    DELETIONS,
    LINKS,
    MANIFESTS,
    SEGMENTS,
    BuildInfo,
    Manifest,
    Overlay,
    SegmentEntry,
    manifest_path,
)
from index.store.segment import SEGMENT_FILE, DocLinks, Segment, write_segment
from index.store.snapshot import Mask

log = logging.getLogger(__name__)

# The steps of a commit, in order. Everything before "switch" leaves the old state; "switch" is
# the atomic replacement of CURRENT; "cleanup" removes what no kept manifest names.
WRITE_STEPS = ("segment", "segment_rename", "deletions", "overlay", "manifest", "switch",
               "cleanup")

# Test hook: called with each step name just before the step runs (see set_write_step_hook).
_on_write_step: Callable[[str], None] | None = None


def set_write_step_hook(hook: Callable[[str], None] | None) -> None:
    """For crash and disk-full tests: call `hook(step)` before each step of WRITE_STEPS in every
    commit of this process (it may kill the process or raise OSError); None removes it."""
    global _on_write_step
    _on_write_step = hook


def _step(name: str) -> None:
    if _on_write_step is not None:
        _on_write_step(name)


class CommitFailed(DataDirError, OSError):
    """A commit could not be written (disk full, permissions); the previous state is intact.

    Also an OSError, so callers that handled the raw OS error keep working.
    """


@dataclass(frozen=True, slots=True)
class Change:
    """What one commit changes: segments to add (in memory, written by the commit), segments
    to drop (merged away), documents to mark deleted (segment name → ordinals) and newer links
    for documents of older segments."""

    add: Sequence[Segment] = ()
    drop: frozenset[str] = frozenset()
    delete: Mapping[str, Sequence[int]] = field(default_factory=dict)
    links: Mapping[tuple[str, int], DocLinks] = field(default_factory=dict)


def _library_versions() -> dict[str, str]:
    return {name: version(name) for name in ("faiss-cpu", "jieba", "numpy")}


def next_segment_number(data_dir: Path) -> int:
    """Above every segment folder on disk, finished or not."""
    root = data_dir / SEGMENTS
    numbers = [int(p.name.split("-")[1].split(".")[0]) for p in root.iterdir()
               if p.name.lstrip(".").startswith("seg-")] if root.is_dir() else []
    return max(numbers, default=0) + 1


def commit(
    data_dir: Path,
    base: Manifest | None,
    opened: Mapping[str, tuple[Segment, Mask | None]],
    change: Change,
    info: BuildInfo,
    *,
    switch: bool = True,
) -> tuple[Manifest, list[str]]:
    """Write `change` on top of `base` (None: a new index) as a new manifest, and make it
    current when `switch`. `opened` holds each base segment with its current deletion marks.
    Returns the manifest and the names given to the added segments.

    The caller holds `write_lock(data_dir)`. On any failure before CURRENT is replaced, nothing
    is changed; an OSError (disk full, permission) is raised as CommitFailed (one line).
    """
    check_data_dir(data_dir)
    for folder in (SEGMENTS, DELETIONS, LINKS, MANIFESTS):
        (data_dir / folder).mkdir(parents=True, exist_ok=True)
    generation = max(base.generation if base else 0, latest_generation(data_dir)) + 1
    written: list[Path] = []  # what this commit wrote, removed if it fails before the switch
    try:
        return _commit(data_dir, base, opened, change, info, generation, switch, written)
    except BaseException as exc:
        if not (data_dir / CURRENT).exists() or _current_is_not(data_dir, generation):
            for path in reversed(written):
                _discard(path)
        if not isinstance(exc, OSError) or isinstance(exc, QiaoError):
            raise
        raise CommitFailed(
            f"cannot write to {data_dir}: {_reason(exc, data_dir)}; nothing was changed — "
            "free disk space or fix permissions and run again"
        ) from exc


def _current_is_not(data_dir: Path, generation: int) -> bool:
    try:
        named = (data_dir / CURRENT).read_text(encoding="utf-8").strip()
    except OSError:
        return True
    return named != f"manifest-{generation:06d}"


def _discard(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _commit(
    data_dir: Path, base: Manifest | None, opened: Mapping[str, tuple[Segment, Mask | None]],
    change: Change, info: BuildInfo, generation: int, switch: bool, written: list[Path],
) -> tuple[Manifest, list[str]]:
    checksums = dict(base.checksums) if base else {}
    before = list(base.segments if base else ())
    added: list[str] = []
    new_entries = []
    for segment in change.add:
        name = f"seg-{next_segment_number(data_dir):06d}"
        written.append(data_dir / SEGMENTS / name)
        new_entries.append(_write_segment(data_dir, name, segment))
        added.append(name)
    # Segments replace merged ones where the first of them was (documents keep their order
    # roughly); others go last.
    first = next((i for i, e in enumerate(before) if e.name in change.drop), len(before))
    kept = [e for e in before if e.name not in change.drop]
    at = sum(1 for e in before[:first] if e.name not in change.drop)
    entries = kept[:at] + new_entries + kept[at:]
    _step("deletions")
    for i, entry in enumerate(entries):
        marks = change.delete.get(entry.name)
        if not marks:
            continue
        segment, previous = opened[entry.name]
        mask = np.zeros(entry.docs, bool) if previous is None else previous.copy()
        mask[np.asarray(marks, np.int64)] = True
        file = f"{entry.name}.del-{generation:06d}.npy"
        written.append(data_dir / DELETIONS / file)
        checksums[f"{DELETIONS}/{file}"] = _write_array(data_dir / DELETIONS / file, mask)
        entries[i] = replace(entry, deletions=file, deleted_docs=int(mask.sum()),
                             deleted_passages=int(np.asarray(segment.doc_rows[:, 1])[mask].sum()))
    # A segment whose every document is deleted leaves the manifest at once.
    entries = [e for e in entries if e.deleted_docs < e.docs or (e.docs == 0 and e.name in added)]
    names = {e.name for e in entries}
    # An overlay stays while a segment it relinks is live (merges fold links into segments).
    overlays = [o for o in (base.overlays if base else ()) if names.intersection(o.segments)]
    _step("overlay")
    if change.links:
        file = f"links-{generation:06d}.json"
        path = data_dir / LINKS / file
        written.append(path)
        write_atomic(path, json.dumps(_overlay_json(change.links)))
        checksums[f"{LINKS}/{file}"] = sha256_of(path)
        overlays.append(Overlay(file, tuple(sorted({seg for seg, _ in change.links}))))
    live = {f"{DELETIONS}/{e.deletions}" for e in entries if e.deletions}
    live |= {f"{LINKS}/{o.file}" for o in overlays}
    manifest = Manifest(
        generation=generation, info=info, segments=tuple(entries), overlays=tuple(overlays),
        checksums={k: v for k, v in checksums.items() if k in live},
        versions=_library_versions(),
    )
    _step("manifest")
    written.append(manifest_path(data_dir, manifest.name))
    write_atomic(manifest_path(data_dir, manifest.name),
                 json.dumps(manifest.to_json(), indent=1, ensure_ascii=False))
    if switch:
        make_current(data_dir, manifest.name, keep=base.name if base else None)
    return manifest, added


def make_current(data_dir: Path, name: str, keep: str | None) -> None:
    """Replace CURRENT with `name` (the commit point), then remove what neither it nor `keep`
    (the previous manifest) nor a pinned manifest names."""
    _step("switch")
    write_atomic(data_dir / CURRENT, name + "\n")
    _step("cleanup")
    collect_garbage(data_dir, keep={name, *((keep,) if keep else ())})


def _write_segment(data_dir: Path, name: str, segment: Segment) -> SegmentEntry:
    _step("segment")
    tmp = data_dir / SEGMENTS / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        write_segment(tmp, segment)
        fsync_tree(tmp)
        _step("segment_rename")
        final = data_dir / SEGMENTS / name
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_path(data_dir / SEGMENTS)
    return SegmentEntry(name=name, docs=segment.n_docs, passages=segment.n_rows,
                        sentences=len(segment.sentences),
                        record_sha256=sha256_of(final / SEGMENT_FILE))


def _write_array(path: Path, array: Mask) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    write_atomic(path, buffer.getvalue())
    return sha256_of(path)


def _overlay_json(links: Mapping[tuple[str, int], DocLinks]) -> dict[str, object]:
    return {"entries": [
        {"segment": seg, "doc": doc, "counterpart_doc": value.counterpart_doc,
         "ranges": np.asarray(value.ranges, np.float64).tolist(),
         "sentences": np.asarray(value.sentences, np.float64).tolist()}
        for (seg, doc), value in sorted(links.items())
    ]}


def read_overlay(path: Path) -> dict[tuple[str, int], DocLinks]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {
        (str(e["segment"]), int(e["doc"])): DocLinks(
            e["counterpart_doc"], np.asarray(e["ranges"], np.float32).reshape(-1, 3),
            np.asarray(e.get("sentences", []), np.float32).reshape(-1, 3),
        )
        for e in raw["entries"]
    }


def _reason(exc: OSError, data_dir: Path) -> str:
    """The OS's words for a failed write. numpy reports a short write without an errno; on a
    disk with no free space left, that is a full disk."""
    if exc.strerror:
        return exc.strerror
    try:
        full = shutil.disk_usage(data_dir).free < 1 << 20
    except OSError:
        full = False
    return os.strerror(errno.ENOSPC) if full else str(exc)
