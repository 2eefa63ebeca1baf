"""Which generation of a data directory is live, and who may remove one.

Protocol (the file formats live in `store.py`):

- Writers serialise on an advisory lock (`DATA_DIR/.lock`), write a new generation under a
  temporary name (`.gen-000043.XXXX/`), rename it to `gen-000043/` and replace `CURRENT`.
- Readers pin the generation they read: a shared `flock` on its `manifest.json`.
- After a commit, the writer removes superseded generations except the previous one, and only
  those it can lock exclusively (nobody pinned); a pinned one goes at a later commit.
- A killed writer may leave a temporary folder, a half-removed `.trash-*` folder or a renamed
  generation that `CURRENT` never named. Readers never look at them; the next writer removes
  them before it writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from index.errors import DataDirError

log = logging.getLogger(__name__)

CURRENT = "CURRENT"
LOCK = ".lock"
MANIFEST = "manifest.json"
TEMP_PREFIX = ".gen-"  # a generation being written
TRASH_PREFIX = ".trash-"  # a superseded generation being removed
_PIN_ATTEMPTS = 20



def generation_number(name: str) -> int:
    """42 for "gen-000042"."""
    return int(name.split("-")[1])


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


def current_generation(data_dir: Path) -> str | None:
    """Name of the committed generation folder, or None for a new data directory."""
    pointer = data_dir / CURRENT
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DataDirError(f"cannot read {pointer}: {exc.strerror}; check permissions") from exc
    if not name.startswith("gen-") or "/" in name or not name[4:].isdigit():
        raise DataDirError(f"{pointer} is corrupt; restore the data directory from a snapshot")
    return name


@contextlib.contextmanager
def pinned_generation(data_dir: Path) -> Iterator[str | None]:
    """The committed generation's name (None for a new data directory), kept from removal by
    writers until the block ends: a shared lock on its manifest, which removal must take
    exclusively first."""
    for _ in range(_PIN_ATTEMPTS):
        name = current_generation(data_dir)
        if name is None:
            yield None
            return
        manifest = data_dir / name / MANIFEST
        try:
            fd = os.open(manifest, os.O_RDONLY)
        except FileNotFoundError:
            if current_generation(data_dir) == name:
                raise DataDirError(
                    f"{manifest} is missing: run `qiao verify {data_dir}` or restore a snapshot"
                ) from None
            continue  # removed after we read CURRENT, which has moved on since: read it again
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            try:
                still_there = os.path.samestat(os.fstat(fd), os.stat(manifest))
            except FileNotFoundError:
                still_there = False
            if not still_there:
                continue  # removed while we waited for the lock
            yield name
            return
        finally:
            os.close(fd)  # releases the lock
    raise DataDirError(
        f"{data_dir} changed {_PIN_ATTEMPTS} times while opening it: try again when writes settle"
    )


def remove_leftovers(data_dir: Path, current: str | None) -> None:
    """Remove what killed writers left: temporary and half-removed folders, and generations
    renamed into place whose commit never reached CURRENT. Only a writer holding the write lock
    calls this, so none of them can be in use."""
    current_number = generation_number(current) if current else None
    for child in data_dir.iterdir():
        orphan = (
            current_number is not None
            and child.name.startswith("gen-")
            and child.name[4:].isdigit()
            and generation_number(child.name) > current_number
        )
        if child.is_dir() and (orphan or child.name.startswith((TEMP_PREFIX, TRASH_PREFIX))):
            log.info("removing %s, left by an interrupted write", child)
            shutil.rmtree(child, ignore_errors=True)
    (data_dir / f".{CURRENT}.tmp").unlink(missing_ok=True)


def remove_superseded(data_dir: Path, keep: set[str]) -> None:
    """Remove generations other than `keep` that no reader has pinned (a pinned one is removed
    by a later commit)."""
    for child in sorted(data_dir.iterdir()):
        if child.name.startswith("gen-") and child.name not in keep and child.is_dir():
            _remove_unpinned(child)


def _remove_unpinned(folder: Path) -> None:
    try:
        fd: int | None = os.open(folder / MANIFEST, os.O_RDONLY)
    except FileNotFoundError:
        fd = None  # no manifest: never a loadable generation, so no reader can hold it
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("keeping %s for now: a reader is using it", folder)
                return
        # Renamed first, so a crash mid-removal never leaves half a generation under its name.
        trash = Path(tempfile.mkdtemp(prefix=f"{TRASH_PREFIX}{folder.name}.", dir=folder.parent))
        os.rename(folder, trash / folder.name)
        shutil.rmtree(trash, ignore_errors=True)
    except OSError as exc:  # the commit has succeeded; a later one retries the removal
        log.warning("could not remove superseded %s: %s", folder, exc)
    finally:
        if fd is not None:
            os.close(fd)


def has_index(data_dir: Path) -> bool:
    """Whether `data_dir` holds a committed index (a directory with a CURRENT pointer)."""
    check_data_dir(data_dir)
    return data_dir.is_dir() and current_generation(data_dir) is not None
