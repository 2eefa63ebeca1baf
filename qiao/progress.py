"""What `qiao ingest` shows while it works: files read, texts embedded (a moving count), the
rate, commits so far and an ETA; a live bar on a terminal, a plain line every few seconds when
the output is piped or logged."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

PLAIN_EVERY_SECONDS = 5.0
REFRESH_SECONDS = 1.0


def _clock(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class IngestProgress:
    """Progress of an ingest. `files_read(done)` as files are read, `embedded(done, total)`
    from each commit's embedding (its count restarts per commit), `committed()` after each."""

    def __init__(self, console: Console, total_files: int) -> None:
        self._console = console
        self._total_files = total_files
        self._files = 0
        self._texts_before = 0  # texts embedded by the commits already made
        self._texts = 0
        self._batch_left = 0  # texts of the current commit not embedded yet
        self._commits = 0
        self._started = time.monotonic()
        self._last_plain = self._started
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> IngestProgress:
        if self._console.is_terminal:
            self._bar = Progress(
                TextColumn("ingest"), BarColumn(), TaskProgressColumn(),
                TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                console=self._console, transient=True, refresh_per_second=1 / REFRESH_SECONDS,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("ingest", total=max(self._total_files, 1),
                                            detail="reading files, loading the model…")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)

    def files_read(self, done: int) -> None:
        self._files = done
        self._show()

    def embedded(self, done: int, total: int) -> None:
        self._texts = self._texts_before + done
        self._batch_left = max(0, total - done)
        self._show()

    def committed(self) -> None:
        self._texts_before = self._texts
        self._batch_left = 0
        self._commits += 1
        self._show()

    def detail(self) -> str:
        elapsed = time.monotonic() - self._started
        rate = self._texts / elapsed if elapsed > 0 else 0.0
        share = self._files / self._total_files if self._total_files else 1.0
        # Files are read ahead of their embedding (a commit's files first, then its texts):
        # what is left is this commit's texts at the current rate, then the unread files.
        eta = self._batch_left / rate if rate > 0 else None
        if 0 < share < 1:
            eta = (eta or 0.0) + elapsed * (1 - share) / share
        parts = [f"{self._files:,}/{self._total_files:,} files",
                 f"{self._texts:,} texts embedded ({rate:,.0f}/s)",
                 f"{self._commits} commit{'s' if self._commits != 1 else ''}"]
        if eta:
            parts.append(f"ETA {_clock(eta)}")
        return ", ".join(parts)

    def _show(self) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self._files, detail=self.detail())
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_EVERY_SECONDS:
            self._last_plain = now
            self._console.print(f"ingest: {self.detail()}", highlight=False, soft_wrap=True)
