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

from index.store.commit import WRITE_STEPS

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
    report = harness.run_harness(fast_dir / "data", step_rounds=6, random_kills=70, n_docs=240)
    assert report.violations == []
    assert report.kills >= 100
    assert set(report.step_kills) == set(WRITE_STEPS)
    assert min(report.step_kills.values()) >= 6
    # Kills before the CURRENT switch keep the last commit, a kill at cleanup shows the new one.
    assert report.outcomes["last done"] > 0 and report.outcomes["in flight"] >= 4
    # Kills landed in every kind of commit: upserts (bulk batches among them), deletes, merges.
    assert {"upsert", "delete", "merge"} <= set(report.op_kills)
    assert report.op_kills["merge"] >= 5
    assert report.max_leftover_dirs >= 1  # killed writers did leave temp files behind …
    assert report.disk_full_steps == list(WRITE_STEPS[: WRITE_STEPS.index("switch") + 1])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the harness forks its ingest children")
def test_harness_catches_a_commit_that_names_its_manifest_too_early(
    fast_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness can fail: CURRENT switched before the files are written is caught."""
    import index.store.commit as commit

    original = commit._commit

    def current_first(data_dir: Path, base, opened, change, info, generation, switch,  # type: ignore[no-untyped-def]
                      written):
        (data_dir / commit.CURRENT).write_text(f"manifest-{generation:06d}\n")  # too early
        return original(data_dir, base, opened, change, info, generation, switch, written)

    monkeypatch.setattr(commit, "_commit", current_first)
    report = load_harness().run_harness(fast_dir / "data", step_rounds=1, random_kills=0, n_docs=60)
    assert any("is missing" in v or "before CURRENT" in v for v in report.violations), (
        report.violations)
