"""Backups: a consistent, verified copy of a data directory, taken while it may be written.

The copy holds only the committed generation. It is pinned for the whole copy (see
`generations.py`), so a concurrent commit can neither change nor remove it; the copy is written
under a temporary name, verified against its manifest's checksums and invariants, and only then
named in the destination's CURRENT. A copy interrupted at any point has no CURRENT, which
`qiao verify` reports, and is never mistaken for a backup.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from index.errors import DataDirError
from index.files import fsync_path, fsync_tree, write_atomic
from index.store.current import CURRENT, TEMP_PREFIX, check_data_dir, pinned_generation
from index.store.verify import verify_generation

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
    with pinned_generation(source) as name:
        if name is None:
            raise DataDirError(f"{source} holds no committed index: nothing to snapshot")
        copy = dest / f"{TEMP_PREFIX}{name[4:]}.copy"
        try:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copytree(source / name, copy)
            fsync_tree(copy)
        except OSError as exc:
            shutil.rmtree(copy, ignore_errors=True)
            raise DataDirError(
                f"cannot copy {source / name} to {dest}: {exc.strerror or exc}; "
                "free space or choose another destination"
            ) from exc
    final = dest / name
    report = verify_generation(copy)
    if not report.ok:
        shutil.rmtree(copy, ignore_errors=True)
        raise DataDirError(
            f"the copy of {name} fails verification ({report.violations[0]}): "
            f"run `qiao verify {source}`"
        )
    try:
        os.rename(copy, final)
        fsync_path(dest)
        write_atomic(dest / CURRENT, name + "\n")  # last: only a complete copy is ever named
    except OSError as exc:
        raise DataDirError(f"cannot finish the snapshot in {dest}: {exc.strerror or exc}") from exc
    files = [p for p in final.rglob("*") if p.is_file()]
    log.info("snapshot of %s written to %s", name, dest)
    return SnapshotReport(
        name,
        dest,
        len(files),
        sum(p.stat().st_size for p in files),
        report.documents,
        report.passages,
    )


def _check_destination(source: Path, dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise DataDirError(f"{dest} is a file: give a new or empty directory for the snapshot")
    if dest.is_dir() and any(dest.iterdir()):
        raise DataDirError(f"{dest} is not empty: give a new or empty directory for the snapshot")
    resolved_source, resolved_dest = source.resolve(), dest.resolve()
    if resolved_dest == resolved_source or resolved_source in resolved_dest.parents:
        raise DataDirError(f"{dest} is inside {source}: put the snapshot somewhere else")
