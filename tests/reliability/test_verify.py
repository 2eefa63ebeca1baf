"""`verify_data_dir` and `qiao verify`: every invariant of a data directory, one line each."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from index.records import Document
from index.retriever import Retriever
from index.store.datadir import CURRENT
from index.store.manifest import DELETIONS
from index.store.verify import verify_data_dir
from qiao import cli
from tests.reliability.conftest import manifest_file, rehash, segment_folder


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
    folder = segment_folder(committed)
    truncate(folder / "dense.faiss")
    assert any("dense.faiss: checksum differs" in p for p in problems(committed.data_dir))
    rehash(folder)
    found = problems(committed.data_dir)
    assert any("unreadable" in p for p in found), found


@pytest.mark.parametrize("name", ["post_rows.npy", "vocab.json", "sentence_vectors.npy"])
def test_truncated_segment_file_is_reported(committed: Retriever, name: str) -> None:
    folder = segment_folder(committed)
    truncate(folder / name)
    rehash(folder)
    found = problems(committed.data_dir)
    assert any("unreadable" in p or "inconsistent" in p for p in found), found


def test_postings_disagreeing_with_the_passages_are_reported(committed: Retriever) -> None:
    folder = segment_folder(committed)
    lengths = np.load(folder / "lengths.npy")
    lengths[0] += 1  # a passage claims one term more than its postings hold
    np.save(folder / "lengths.npy", lengths)
    rehash(folder)
    found = problems(committed.data_dir)
    assert any("term counts differ" in p for p in found), found


def test_partial_document_is_reported(committed: Retriever) -> None:
    folder = segment_folder(committed)
    offsets = np.load(folder / "text_offsets.npy")
    blob = (folder / "texts.bin").read_bytes()
    # The first document's text loses its second half: hash and spans no longer fit it.
    cut = int(offsets[0] + (offsets[1] - offsets[0]) // 2)
    (folder / "texts.bin").write_bytes(blob[:cut] + b" " * (int(offsets[1]) - cut) + blob[
        int(offsets[1]):])
    rehash(folder)
    found = problems(committed.data_dir)
    assert any("do not match its hash" in p for p in found), found


def test_span_outside_the_text_is_reported(committed: Retriever) -> None:
    folder = segment_folder(committed)
    spans = np.load(folder / "passages.npy")
    spans[0] = [5, 3]
    np.save(folder / "passages.npy", spans)
    rehash(folder)
    assert any("outside its text" in p for p in problems(committed.data_dir))


def test_a_document_live_twice_is_reported(committed: Retriever, tiny_docs: list[Document]
                                           ) -> None:
    committed.upsert([replace(tiny_docs[0], text="A second version.")])
    path = manifest_file(committed)
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for entry in manifest["segments"]:  # forget the deletion of the first version
        entry["deletions"], entry["deleted_docs"], entry["deleted_passages"] = None, 0, 0
    path.write_text(json.dumps(manifest), encoding="utf-8")
    found = problems(committed.data_dir)
    assert any("is live here and in" in p for p in found), found


def test_damaged_deletion_marks_are_reported(committed: Retriever, tiny_docs: list[Document]
                                             ) -> None:
    committed.delete([tiny_docs[0].doc_id])
    [marks] = list((committed.data_dir / DELETIONS).iterdir())
    np.save(marks, np.zeros(2, bool))
    found = problems(committed.data_dir)
    assert any("checksum differs" in p for p in found), found


def test_current_naming_a_missing_manifest_is_reported(committed: Retriever) -> None:
    (committed.data_dir / CURRENT).write_text("manifest-000099\n")
    assert any("manifest-000099.json is missing" in p for p in problems(committed.data_dir))


def test_an_index_of_the_old_format_is_refused_with_the_rebuild_command(
    committed: Retriever,
) -> None:
    (committed.data_dir / CURRENT).write_text("gen-000003\n")
    [problem] = problems(committed.data_dir)
    assert "qiao ingest --rebuild" in problem and "\n" not in problem


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
    folder = segment_folder(committed)
    truncate(folder / "dense.faiss")
    truncate(folder / "post_tfs.npy")
    result = runner.invoke(cli.app, ["verify", str(committed.data_dir)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    violations = [line for line in lines if line.startswith("violation: ")]
    assert len(violations) == len(verify_data_dir(committed.data_dir).violations) >= 2
    assert lines[-1].startswith(f"{len(violations)} violation(s)")
    assert "Traceback" not in result.output
