"""Backups: a consistent, verified copy of a data directory, taken while it may be written.

The copy holds only what the committed manifest names: its segments, deletion marks and link
overlays, and the manifest itself. The manifest is pinned for the whole copy (see
`datadir.py`), so a concurrent commit cannot remove what is being copied; the copy is verified
against the manifest's checksums and invariants, and only then named in the destination's
CURRENT. A copy interrupted at any point has no CURRENT, which `qiao verify` reports, and is
never mistaken for a backup.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from index.errors import DataDirError
from index.files import fsync_tree, write_atomic
from index.store.datadir import CURRENT, check_data_dir, pinned_manifest, referenced_files
from index.store.verify import verify_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SnapshotReport:
    """What a snapshot copied: the generation, its size and what it holds."""

    generation: str
    destination: Path
    files: int
    bytes: int
    documents: int
    passages: int


def snapshot_data_dir(source: Path, dest: Path) -> SnapshotReport:
    """Copy the committed state of data directory `source` into `dest` (absent or empty), which
    then opens as a data directory of its own. Safe while a service or ingest writes `source`.

    Raises DataDirError when there is nothing to copy, `dest` is unusable, the disk fills up, or
    the copy fails verification (nothing is left in `dest` that looks like a backup then).
    """
    check_data_dir(source)
    _check_destination(source, dest)
    with pinned_manifest(source) as manifest:
        if manifest is None:
            raise DataDirError(f"{source} holds no committed index: nothing to snapshot")
        try:
            dest.mkdir(parents=True, exist_ok=True)
            for rel in sorted(referenced_files(manifest)):
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if (source / rel).is_dir():
                    shutil.copytree(source / rel, target)
                else:
                    shutil.copy2(source / rel, target)
            fsync_tree(dest)
        except OSError as exc:
            _empty(dest)
            raise DataDirError(
                f"cannot copy {manifest.name} of {source} to {dest}: {exc.strerror or exc}; "
                "free space or choose another destination"
            ) from exc
    report = verify_manifest(dest, manifest)
    if not report.ok:
        _empty(dest)
        raise DataDirError(
            f"the copy of {manifest.name} fails verification ({report.violations[0]}): "
            f"run `qiao verify {source}`"
        )
    try:
        write_atomic(dest / CURRENT, manifest.name + "\n")  # last: only a whole copy is named
    except OSError as exc:
        raise DataDirError(f"cannot finish the snapshot in {dest}: {exc.strerror or exc}") from exc
    files = [p for p in dest.rglob("*") if p.is_file() and p.name != CURRENT]
    log.info("snapshot of %s written to %s", manifest.name, dest)
    return SnapshotReport(
        manifest.name, dest, len(files), sum(p.stat().st_size for p in files),
        report.documents, report.passages,
    )


def _empty(dest: Path) -> None:
    for child in dest.iterdir() if dest.is_dir() else []:
        shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()


def _check_destination(source: Path, dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise DataDirError(f"{dest} is a file: give a new or empty directory for the snapshot")
    if dest.is_dir() and any(dest.iterdir()):
        raise DataDirError(f"{dest} is not empty: give a new or empty directory for the snapshot")
    resolved_source, resolved_dest = source.resolve(), dest.resolve()
    if resolved_dest == resolved_source or resolved_source in resolved_dest.parents:
        raise DataDirError(f"{dest} is inside {source}: put the snapshot somewhere else")
