"""File mechanics shared by everything that writes atomically: checksums, fsync, whole-or-nothing
writes, and checked reads of model files. One home for each, so every writer is crash-safe the
same way."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from index.errors import ModelError


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes (what the manifests record)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# np.load parses each .npy header with ast.literal_eval, and CPython 3.11 can fail with
# "SystemError: AST constructor recursion depth mismatch" when two threads compile at once
# (a writer opening its new segment while a backup or a reader opens another): seen in CI.
_NPY_LOCK = threading.Lock()


def load_array(path: Path, *, mmap: bool = False) -> npt.NDArray[Any]:
    """An .npy file as an array (memory-mapped read-only with `mmap`), never a pickle; one
    header is parsed at a time."""
    with _NPY_LOCK:
        array: npt.NDArray[Any] = np.load(path, mmap_mode="r" if mmap else None,
                                          allow_pickle=False)
    return array


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory's entry list: so a rename survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """fsync every file and folder under `folder`, then `folder` itself."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() or path.is_dir():
            fsync_path(path)
    fsync_path(folder)


def write_atomic(path: Path, data: str | bytes, *, durable: bool = True) -> None:
    """Replace `path` with `data` whole or not at all: written under a temporary name beside it,
    then renamed over it. `durable` also fsyncs the file before the rename and the folder after,
    so the new content survives a power cut once this returns."""
    tmp = path.with_name(f".{path.name}.tmp")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with tmp.open("wb") as out:
        out.write(payload)
        if durable:
            out.flush()
            os.fsync(out.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_path(path.parent)


def _stamp_of(file: Path) -> Path:
    return file.with_name(f".{file.name}.verified")


def _identity(file: Path, sha256: str) -> str:
    info = file.stat()
    return f"{info.st_size} {info.st_mtime_ns} {info.st_ino} {sha256}"


def check_model_file(file: Path, size: int, sha256: str, *, what: str, hint: str) -> None:
    """Raise a one-line ModelError when `file` is missing, truncated or not the recorded bytes.

    `what` names the file for the user ("model file", "ONNX file"); `hint` says how to fix it.
    A file is hashed once: a stamp beside it remembers its size, modification time and inode
    when it matched, and while those are unchanged the 450 MB are not read again (a model then
    loads in a second). Any write changes the modification time, so the file is hashed again.
    """
    try:
        actual = file.stat().st_size
        if actual != size:
            raise ModelError(
                f"{what} {file} is truncated or altered ({actual} bytes, expected {size}); {hint}"
            )
        stamp = _stamp_of(file)
        try:
            if stamp.read_text(encoding="utf-8") == _identity(file, sha256):
                return
        except OSError:
            pass  # no stamp yet
        if sha256_of(file) != sha256:
            raise ModelError(f"{what} {file} is corrupt (checksum mismatch); {hint}")
        # A read-only model directory keeps no stamp: it is hashed at every load.
        with contextlib.suppress(OSError):
            stamp.write_text(_identity(file, sha256), encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"{what} {file} is missing; {hint}") from None
    except OSError as exc:
        raise ModelError(f"cannot read {what} {file}: {exc.strerror}; {hint}") from None
