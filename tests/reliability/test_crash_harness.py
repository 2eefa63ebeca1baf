"""The crash harness in CI: ≥ 100 SIGKILLs during ingest, at every write step and at random
moments, each followed by a check that the index shows exactly the last completed commit."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from index.store.generation import WRITE_STEPS
from index.store.snapshot import Snapshot

HARNESS = Path(__file__).resolve().parents[2] / "scripts" / "crash_harness.py"


def load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_harness", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crash_harness"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A scratch directory in memory when there is one: every commit fsyncs, and on a busy
    disk the fsyncs, not the code under test, would set the runtime. A SIGKILL leaves the page
    cache intact either way, so what is checked is the same."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(dir=shm, prefix="qiao-crash-") as tmp:
            yield Path(tmp)
    else:
        yield tmp_path


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="the harness forks its ingest children")
def test_sigkill_at_every_write_step_and_random_moments_loses_no_commit(fast_dir: Path) -> None:
    harness = load_harness()
    report = harness.run_harness(fast_dir / "data", step_rounds=4, random_kills=40, n_docs=240)
    assert report.violations == []
    assert report.kills >= 100
    assert set(report.step_kills) == set(WRITE_STEPS)
    assert min(report.step_kills.values()) >= 4
    # Kills before the CURRENT switch keep the last commit, a kill at cleanup shows the new one.
    assert report.outcomes["last done"] > 0 and report.outcomes["in flight"] >= 4
    assert report.max_leftover_dirs >= 1  # killed writers did leave temp dirs behind …
    assert report.disk_full_steps == list(WRITE_STEPS[: WRITE_STEPS.index("switch") + 1])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the harness forks its ingest children")
def test_harness_catches_a_commit_that_names_its_generation_too_early(
    fast_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness can fail: CURRENT written before the files is caught at the first kill."""
    import index.retriever
    import index.store.generation as store

    def current_first(data_dir: Path, snapshot: Snapshot, info: store.BuildInfo) -> str:
        previous = store.current_generation(data_dir)
        name = f"gen-{int(previous[4:]) + 1 if previous else 1:06d}"
        (data_dir / name).mkdir()
        (data_dir / store.CURRENT).write_text(name + "\n")  # wrong: before the files exist
        store._write_generation(data_dir / name, snapshot, info)
        return name

    monkeypatch.setattr(index.retriever, "save_snapshot", current_first)
    report = load_harness().run_harness(fast_dir / "data", step_rounds=1, random_kills=0, n_docs=60)
    assert any("manifest.json is missing" in v for v in report.violations), report.violations
