"""`verify_data_dir` and `qiao verify`: every invariant of a data directory, one line each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from index.retriever import Retriever
from index.store.generation import CURRENT
from index.store.verify import verify_data_dir
from qiao import cli
from tests.reliability.conftest import generation_folder, rehash


def problems(data_dir: Path) -> list[str]:
    return [str(v) for v in verify_data_dir(data_dir).violations]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_committed_index_has_no_violation(committed: Retriever) -> None:
    report = verify_data_dir(committed.data_dir)
    assert report.violations == []
    assert report.generation == committed.generation
    assert (report.documents, report.passages) == (
        committed.stats()["documents"],
        committed.stats()["passages"],
    )


def test_truncated_faiss_file_is_reported_even_with_matching_checksums(
    committed: Retriever,
) -> None:
    folder = generation_folder(committed)
    truncate(folder / "dense.faiss")
    assert any("dense.faiss: checksum differs" in p for p in problems(committed.data_dir))
    rehash(folder)
    assert any("dense.faiss: unreadable" in p for p in problems(committed.data_dir))


@pytest.mark.parametrize("name", ["data.csc.index.npy", "vocab.index.json"])
def test_truncated_lexical_file_is_reported(committed: Retriever, name: str) -> None:
    folder = generation_folder(committed)
    truncate(folder / "lexical" / "bm25s" / name)
    rehash(folder)
    found = problems(committed.data_dir)
    assert any("lexical: unreadable" in p for p in found), found


def test_passage_row_without_vector_is_reported(committed: Retriever) -> None:
    folder = generation_folder(committed)
    vectors = np.load(folder / "vectors.npy")
    np.save(folder / "vectors.npy", vectors[:-1])
    rehash(folder)
    found = problems(committed.data_dir)
    assert any("vectors.npy" in p and "rows" in p for p in found), found


def test_faiss_and_bm25_disagreeing_on_the_passage_set_is_reported(committed: Retriever) -> None:
    folder = generation_folder(committed)
    rows = np.load(folder / "lexical" / "rows.npy")
    np.save(folder / "lexical" / "rows.npy", rows[::-1].copy())  # same count, other rows
    rehash(folder)
    found = problems(committed.data_dir)
    assert any("BM25 rows are not exactly the passage rows" in p for p in found), found


def test_partial_document_is_reported(committed: Retriever) -> None:
    folder = generation_folder(committed)
    lines = (folder / "documents.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    record["text"] = record["text"][: len(record["text"]) // 2]  # cut short, hash unchanged
    lines[0] = json.dumps(record, ensure_ascii=False)
    (folder / "documents.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rehash(folder)
    found = problems(committed.data_dir)
    assert any("do not match its content hash" in p for p in found), found
    assert any("ends past the text" in p for p in found), found


def test_span_outside_the_text_is_reported(committed: Retriever) -> None:
    folder = generation_folder(committed)
    spans = np.load(folder / "passages.npy")
    spans[0] = [5, 3]
    np.save(folder / "passages.npy", spans)
    rehash(folder)
    assert any("empty or negative" in p for p in problems(committed.data_dir))


def test_current_naming_a_missing_generation_is_reported(committed: Retriever) -> None:
    (committed.data_dir / CURRENT).write_text("gen-000099\n")
    assert any("manifest.json is missing" in p for p in problems(committed.data_dir))


def test_corrupt_current_and_empty_directory_are_reported(
    committed: Retriever, tmp_path: Path
) -> None:
    (committed.data_dir / CURRENT).write_text("\x00garbage")
    assert any("CURRENT is corrupt" in p for p in problems(committed.data_dir))
    (tmp_path / "empty").mkdir()
    assert any("no committed index" in p for p in problems(tmp_path / "empty"))
    assert any("is not a directory" in p for p in problems(tmp_path / "absent"))


def test_cli_verify_lists_each_violation_on_one_line_and_exits_1(committed: Retriever) -> None:
    runner = CliRunner()
    result = runner.invoke(cli.app, ["verify", str(committed.data_dir)])
    assert result.exit_code == 0, result.output
    assert f"ok: {committed.data_dir} {committed.generation}" in result.output
    folder = generation_folder(committed)
    truncate(folder / "dense.faiss")
    truncate(folder / "lexical" / "rows.npy")
    result = runner.invoke(cli.app, ["verify", str(committed.data_dir)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    violations = [line for line in lines if line.startswith("violation: ")]
    assert len(violations) == len(verify_data_dir(committed.data_dir).violations) >= 4
    assert lines[-1].startswith(f"{len(violations)} violation(s)")
    assert "Traceback" not in result.output
