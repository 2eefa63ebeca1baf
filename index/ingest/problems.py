"""What reading reports instead of raising: one `Problem` per file, line or record not used."""

from __future__ import annotations

from dataclasses import dataclass

from index.errors import DocumentError


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that was not read: `message` says what is wrong and what to do, in one line.

    `path` is the source label: a file path, an uploaded file's name, or `documents[i]`.
    """

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


class Rejected(DocumentError):
    """One file, line or document is unusable; carries the 1-based line when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def show(value: str) -> str:
    """`value` quoted for a one-line message: repr() escapes control characters; long values
    are cut."""
    return repr(value if len(value) <= 60 else value[:60] + "…")


def size_text(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n:,} bytes"
