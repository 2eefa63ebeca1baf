"""Which manifest of a data directory is committed, who may remove what, and the write lock.

- Writers serialise on an advisory lock (`DATA_DIR/.lock`). A commit writes new files (segment
  folders under temporary names, renamed when complete; deletion marks; link overlays), then
  its manifest, then replaces `CURRENT` (the commit point).
- Readers pin the manifest they open: a shared `flock` on it while they open its files. Files
  opened stay usable after removal (POSIX), so the pin only covers the opening.
- After a commit the writer removes every file no kept manifest names: kept are the current and
  the previous manifest and any a reader has pinned. Whatever a killed writer left (temporary
  folders, unnamed segments, a manifest that never became current) is removed the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from index.errors import DataDirError, IndexMismatch
from index.store.manifest import (
    DELETIONS,
    LINKS,
    MANIFESTS,
    SEGMENTS,
    Manifest,
    generation_of,
    manifest_path,
    read_manifest_file,
)

log = logging.getLogger(__name__)

CURRENT = "CURRENT"
LOCK = ".lock"
TEMP_PREFIX = "."  # a folder or file being written: never named by a manifest
_PIN_ATTEMPTS = 20
_OLD_FORMAT = "gen-"  # format 2 kept whole generation folders named gen-NNNNNN


def check_data_dir(data_dir: Path) -> None:
    """Refuse a data dir path that is a file or cannot be read."""
    if data_dir.exists() and not data_dir.is_dir():
        raise DataDirError(f"{data_dir} is not a directory: point QIAO_DATA_DIR at a directory")
    if data_dir.exists() and not os.access(data_dir, os.R_OK | os.X_OK):
        raise DataDirError(f"cannot read data directory {data_dir}: check its permissions")


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


def current_name(data_dir: Path, *, old_format: bool = False) -> str | None:
    """The committed manifest's name, or None for a new data directory. An index in the old
    format (one folder per generation) is refused with a one-line IndexMismatch, unless
    `old_format` (a rebuild replaces it): then its generation's name is returned."""
    pointer = data_dir / CURRENT
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DataDirError(f"cannot read {pointer}: {exc.strerror}; check permissions") from exc
    if name.startswith(_OLD_FORMAT):
        if old_format:
            return name
        raise IndexMismatch(
            f"{data_dir} holds an index in the format of an older Qiao (format 2, {name}): "
            "rebuild it with `qiao ingest --rebuild PATH...`"
        )
    if not name.startswith("manifest-") or "/" in name or not name[9:].isdigit():
        raise DataDirError(f"{pointer} is corrupt; restore the data directory from a snapshot")
    return name


def has_index(data_dir: Path) -> bool:
    """Whether `data_dir` holds a committed index."""
    check_data_dir(data_dir)
    return data_dir.is_dir() and current_name(data_dir) is not None


@contextlib.contextmanager
def pinned_manifest(data_dir: Path) -> Iterator[Manifest | None]:
    """The committed manifest (None for a new data directory), kept from removal by writers
    until the block ends: a shared lock on its file, which removal must take exclusively."""
    for _ in range(_PIN_ATTEMPTS):
        name = current_name(data_dir)
        if name is None:
            yield None
            return
        path = manifest_path(data_dir, name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            if current_name(data_dir) == name:
                raise DataDirError(
                    f"{path} is missing: run `qiao verify {data_dir}` or restore a snapshot"
                ) from None
            continue  # removed after we read CURRENT, which has moved on since: read it again
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            try:
                still_there = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                still_there = False
            if not still_there:
                continue  # removed while we waited for the lock
            yield read_manifest_file(path, data_dir)
            return
        finally:
            os.close(fd)  # releases the lock
    raise DataDirError(
        f"{data_dir} changed {_PIN_ATTEMPTS} times while opening it: try again when writes settle"
    )


def referenced_files(manifest: Manifest) -> set[str]:
    """Paths (relative to the data directory) a manifest needs: itself, its segment folders,
    their deletion files and its overlays."""
    names = {f"{MANIFESTS}/{manifest.name}.json"}
    for seg in manifest.segments:
        names.add(f"{SEGMENTS}/{seg.name}")
        if seg.deletions:
            names.add(f"{DELETIONS}/{seg.deletions}")
    names.update(f"{LINKS}/{overlay.file}" for overlay in manifest.overlays)
    return names


def _pinned(path: Path) -> bool:
    """Whether a reader holds a pin on the manifest at `path`."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def collect_garbage(data_dir: Path, keep: Iterable[str]) -> None:
    """Remove every file no kept manifest names. Kept are the manifests named in `keep` and any
    a reader has pinned. Only a writer holding the write lock calls this."""
    manifests = data_dir / MANIFESTS
    kept: set[str] = set()
    wanted = set(keep)
    for path in sorted(manifests.glob("manifest-*.json")) if manifests.is_dir() else []:
        name = path.stem
        if name in wanted or _pinned(path):
            try:
                kept |= referenced_files(read_manifest_file(path, data_dir))
            except (DataDirError, IndexMismatch) as exc:
                log.warning("keeping %s, which cannot be read: %s", path, exc)
                kept.add(f"{MANIFESTS}/{path.name}")
        else:
            _remove(path)
    for folder in (SEGMENTS, DELETIONS, LINKS):
        root = data_dir / folder
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir()):
            if f"{folder}/{child.name}" not in kept:
                _remove(child)
    for child in data_dir.iterdir():
        # Left by the old format after a rebuild, or by a killed pointer update.
        if child.name.startswith((_OLD_FORMAT, f".{CURRENT}.tmp", ".gen-", ".trash-")):
            _remove(child)
    if manifests.is_dir():
        for leftover in manifests.glob(".*"):
            _remove(leftover)


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:  # the commit has succeeded; a later one retries the removal
        log.warning("could not remove %s: %s", path, exc)


def latest_generation(data_dir: Path) -> int:
    """The highest generation any manifest file on disk has (0 if none): a new commit numbers
    itself above it, so it never reuses the name of a manifest a killed writer left."""
    manifests = data_dir / MANIFESTS
    if not manifests.is_dir():
        return 0
    numbers = [generation_of(p.stem) for p in manifests.glob("manifest-*.json")
               if p.stem[9:].isdigit()]
    return max(numbers, default=0)
