"""What `qiao ingest` prints while it works when its output is piped: counts, rate, ETA."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import qiao.progress
from qiao.progress import PLAIN_EVERY_SECONDS, IngestProgress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_piped_progress_prints_plain_lines_with_counts_rate_and_eta(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(qiao.progress.time, "monotonic", clock)
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=40)
    with IngestProgress(console, total_files=4) as progress:
        progress.files_read(2)
        progress.embedded(100, 400)
        assert out.getvalue() == ""  # nothing before the first period
        clock.now += PLAIN_EVERY_SECONDS
        progress.embedded(200, 400)
        clock.now += 1
        progress.embedded(300, 400)  # within the period: no line
    lines = out.getvalue().splitlines()
    # One unwrapped line despite the narrow console.
    assert lines == ["ingest: 2/4 files, 200 texts embedded (40/s), 0 commits, ETA 0:00:10"]


def test_a_single_large_file_still_gets_an_eta_from_its_texts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(qiao.progress.time, "monotonic", clock)
    progress = IngestProgress(Console(file=io.StringIO(), force_terminal=False), total_files=1)
    progress.files_read(1)
    clock.now += 10
    progress.embedded(500, 2000)  # 50 texts/s, 1,500 left
    assert progress.detail().endswith("ETA 0:00:30")
    progress.embedded(2000, 2000)
    progress.committed()
    assert "ETA" not in progress.detail() and "1 commit" in progress.detail()
