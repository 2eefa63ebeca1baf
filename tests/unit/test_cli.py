"""The `qiao` command end to end with the fake embedder: bad input, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import index.model.load
from qiao import cli
from tests.fakes import FakeEmbedder


@pytest.fixture(autouse=True)
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index.model.load, "load_embedder", lambda settings=None: FakeEmbedder())


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_ingest_reports_each_bad_file_and_keeps_the_good_ones(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.en.txt").write_text("The harbour ferry now runs every ten minutes.\n")
    (docs / "binary.txt").write_bytes(b"\x00\x01\x02\x00garbage\x00")
    (docs / "empty.txt").write_text("")
    (docs / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (docs / "notes.xyz").write_text("unknown extension")
    good_line = {"release_id": "r1", "lang": "zh", "title": "渡轮", "text": "渡轮每十分钟一班。"}
    (docs / "batch.jsonl").write_text(
        json.dumps(good_line, ensure_ascii=False) + "\n" + '{"release_id": "r2", "title": "x"}\n'
    )
    data = tmp_path / "data"
    code, output = run("ingest", str(docs), "--data-dir", str(data))
    assert code == 1
    for name in ("binary.txt", "empty.txt", "latin1.txt", "notes.xyz", "batch.jsonl:2"):
        assert name in output, output
    assert "2 added" in output
    code, output = run("search", "ferry minutes", "--data-dir", str(data), "--json")
    assert code == 0
    found = json.loads(output)
    assert found["query_lang"] == "en"
    assert (found["results"][0]["rank"], found["results"][0]["doc_id"]) == (1, "good.en")
    code, output = run("search", "渡轮", "--data-dir", str(data), "--json", "--lang", "zh")
    found = json.loads(output)
    assert found["query_lang"] == "zh" and found["results"][0]["doc_id"] == "r1.zh"


@pytest.mark.parametrize("command", [("search", "ferry"), ("answer", "Who runs the ferry?"),
                                     ("lookup", "The ferry runs.")])
def test_reading_a_missing_or_empty_data_dir_is_an_error_not_no_results(
    tmp_path: Path, command: tuple[str, str]
) -> None:
    missing = tmp_path / "typo"
    code, output = run(*command, "--data-dir", str(missing))
    assert code == 1
    assert output.count("\n") == 1 and "does not exist" in output and "qiao ingest" in output
    missing.mkdir()
    code, output = run(*command, "--data-dir", str(missing))
    assert code == 1 and "holds no index" in output


def test_answer_quotes_the_answer_sentence_with_its_citation(tmp_path: Path) -> None:
    doc = tmp_path / "ferry.en.txt"
    doc.write_text(
        "Harbour news.\n\nThe harbour ferry now runs every ten minutes. Tickets cost two yuan.\n"
    )
    data = str(tmp_path / "data")
    assert run("ingest", str(doc), "--data-dir", data)[0] == 0
    code, output = run("answer", "How often does the harbour ferry run?", "--data-dir", data)
    assert code == 0, output
    assert "The harbour ferry now runs every ten minutes. [1]" in output
    assert "[1] " in output and "ferry.en" in output
    code, output = run("answer", "How often does the harbour ferry run?", "--data-dir", data,
                       "--json")
    answer = json.loads(output)
    [citation] = answer["citations"]
    text = doc.read_text()
    assert text[citation["start"] : citation["end"]] == citation["text"]


def test_lookup_prints_the_aligned_translation_or_says_it_is_only_a_search(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    # The fake embedder has no cross-lingual signal: shared names and numbers align the
    # versions.
    (docs / "ferry.en.txt").write_text("Ferry M5 now runs every 10 minutes.\n\n"
                                       "Tickets on route K7 cost 2 yuan.\n")
    (docs / "ferry.zh.txt").write_text("M5渡轮现在每10分钟一班。\n\nK7线票价2元。\n")
    data = str(tmp_path / "data")
    assert run("ingest", str(docs), "--data-dir", data)[0] == 0
    code, output = run("lookup", "Tickets on route K7 cost 2 yuan.", "--data-dir", data,
                       "--json")
    assert code == 0, output
    found = json.loads(output)
    assert found["method"] == "alignment" and found["doc_id"] == "ferry.zh"
    text = (docs / "ferry.zh.txt").read_text()
    span = found["translation"]
    assert text[span["start"]:span["end"]] == span["text"] == "K7线票价2元。"
    code, output = run("lookup", "Tickets on route K7 cost 2 yuan.", "--data-dir", data)
    assert code == 0 and "Published translation" in output and span["text"] in output
    code, output = run("lookup", "Buses are free on Sundays.", "--data-dir", data)
    assert code == 0 and "Not found in the index" in output
    code, output = run("lookup", "K7线票价2元。", "--lang", "zh", "--data-dir", data)
    assert code == 1 and output.count("\n") == 1 and "already in zh" in output


def test_ingest_reads_gb18030_gbk_and_big5_files_and_names_their_encodings(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    simplified = "青浦区推动经济社会高质量发展。\n"
    (docs / "a.zh.txt").write_bytes(simplified.encode("gb18030"))
    (docs / "b.zh.txt").write_bytes(("示范区城际线已开工建设。" + simplified).encode("gbk"))
    (docs / "c.zh.txt").write_bytes("青浦區推動經濟社會高質量發展。\n".encode("big5"))
    data = str(tmp_path / "data")
    code, output = run("ingest", str(docs), "--data-dir", data)
    assert code == 0, output
    assert "3 added" in output and "0 skipped" in output
    assert output.count("GB18030/GBK") == 2 and output.count("Big5") == 1
    code, output = run("search", "城际线", "--data-dir", data, "--json")
    assert json.loads(output)["results"][0]["doc_id"] == "b.zh"


def test_eval_questions_scores_the_expected_answers_and_fails_below_min(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "ferry.en.txt"
    doc.write_text("Harbour news.\n\nThe harbour ferry now runs every ten minutes. "
                   "Tickets cost two yuan.\n\nThe old pier closes in May for repairs.\n")
    data = str(tmp_path / "data")
    assert run("ingest", str(doc), "--data-dir", data)[0] == 0
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"question": "How often does the harbour ferry run?", "expect": "every +ten"}\n'
        '{"question": "When does the old pier close?", "expect": "closes in May",'
        ' "doc_id": "ferry.en"}\n'
        '{"question": "Where is the airport?", "expect": "airport"}\n')
    code, output = run("eval", "questions", str(questions), "--data-dir", data, "--json")
    assert code == 0, output
    report = json.loads(output)
    assert [q["hit1"] for q in report["questions"]] == [True, True, False]
    assert report["overall"]["hit1"] == pytest.approx(2 / 3)
    assert report["questions"][0]["answer_hit"] is True
    code, output = run("eval", "questions", str(questions), "--data-dir", data, "--min", "0.9")
    assert code == 1 and "below --min 0.9" in output
    questions.write_text('{"question": "no expectation"}\n')
    code, output = run("eval", "questions", str(questions), "--data-dir", data)
    assert code == 1 and output.count("\n") == 1 and "q.jsonl:1" in output


def test_piped_search_output_marks_the_answer_sentence(tmp_path: Path) -> None:
    doc = tmp_path / "ferry.en.txt"
    doc.write_text("Harbour news.\n\nThe harbour ferry now runs every ten minutes. "
                   "Tickets cost two yuan.\n")
    data = str(tmp_path / "data")
    assert run("ingest", str(doc), "--data-dir", data)[0] == 0
    code, output = run("search", "How often does the harbour ferry run?", "--data-dir", data)
    assert code == 0 and "»The harbour ferry now runs every ten minutes.«" in output


def test_reingest_is_idempotent_and_delete_removes(tmp_path: Path) -> None:
    doc = tmp_path / "note.en.txt"
    doc.write_text("Bridges connect the two banks of the river.\n")
    data = str(tmp_path / "data")
    assert run("ingest", str(doc), "--data-dir", data)[0] == 0
    code, output = run("ingest", str(doc), "--data-dir", data)
    assert code == 0 and "1 unchanged" in output
    assert run("delete", "note.en", "--data-dir", data)[0] == 0
    code, output = run("search", "bridges", "--data-dir", data, "--json")
    assert json.loads(output)["results"] == []
    code, output = run("delete", "note.en", "--data-dir", data)
    assert code == 1 and "not found" in output


def test_unusable_data_dir_gives_one_line_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    code, output = run("search", "anything", "--data-dir", str(not_a_dir))
    assert code == 1
    assert "not a directory" in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1


def test_bad_search_option_is_a_clear_error(tmp_path: Path) -> None:
    code, output = run("search", "x", "--lang", "fr", "--data-dir", str(tmp_path / "d"))
    assert code == 1 and "lang must be" in output


def test_rebuild_replaces_an_index_built_by_another_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = tmp_path / "old.en.txt", tmp_path / "new.en.txt"
    old.write_text("The old pier was closed for repairs.\n")
    new.write_text("The new bridge opens in spring.\n")
    data = str(tmp_path / "data")
    assert run("ingest", str(old), "--data-dir", data)[0] == 0
    # Another model: a plain ingest is refused, --rebuild starts over without reading the old.
    monkeypatch.setattr(
        index.model.load, "load_embedder", lambda settings=None: FakeEmbedder(dim=24)
    )
    code, output = run("ingest", str(new), "--data-dir", data)
    assert code == 1 and "--rebuild" in output, output
    code, output = run("ingest", str(new), "--data-dir", data, "--rebuild")
    assert code == 0 and "1 added" in output, output
    code, output = run("search", "bridge", "--data-dir", data, "--json")
    assert [hit["doc_id"] for hit in json.loads(output)["results"]] == ["new.en"]
    assert run("verify", data)[0] == 0


def test_a_bad_setting_is_one_line_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QIAO_EMBED_BACKEND", "bogus")
    code, output = run("search", "bridge", "--data-dir", str(tmp_path / "data"))
    assert code == 1
    assert output.strip().splitlines() == [
        "error: invalid setting QIAO_EMBED_BACKEND: Input should be 'torch' or 'onnx'"
    ]


def test_ingest_notes_an_index_built_with_other_chunking_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "note.en.txt"
    doc.write_text("Bridges connect the two banks of the river. Ferries cross it too.\n")
    data = str(tmp_path / "data")
    monkeypatch.setenv("QIAO_EMBED_UNITS", "passages+sentences")
    code, output = run("ingest", str(doc), "--data-dir", data)
    assert code == 0 and "note:" not in output
    monkeypatch.setenv("QIAO_EMBED_UNITS", "sentences")
    code, output = run("ingest", str(doc), "--data-dir", data)
    assert code == 0 and "1 unchanged" in output
    assert "embed_units: passages+sentences → sentences" in output
    code, output = run("ingest", str(doc), "--data-dir", data, "--rebuild")
    assert code == 0 and "note:" not in output
    code, output = run("ingest", str(doc), "--data-dir", data)
    assert code == 0 and "note:" not in output


def test_an_index_of_the_old_format_is_refused_in_one_line_then_rebuilt(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "gen-000004").mkdir(parents=True)
    (data / "gen-000004" / "manifest.json").write_text('{"format": 2}')
    (data / "CURRENT").write_text("gen-000004\n")
    code, output = run("search", "ferry", "--data-dir", str(data))
    assert code == 1 and output.count("\n") == 1
    assert "older Qiao" in output and "qiao ingest --rebuild" in output
    note = tmp_path / "note.en.txt"
    note.write_text("Bridges connect the two banks of the river.\n")
    code, output = run("ingest", str(note), "--data-dir", str(data), "--rebuild")
    assert code == 0, output
    assert not (data / "gen-000004").exists()
    code, output = run("search", "bridges", "--data-dir", str(data), "--json")
    assert json.loads(output)["results"][0]["doc_id"] == "note.en"


def test_a_document_over_the_passage_limit_is_refused_in_one_line_and_the_rest_ingested(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QIAO_MAX_DOCUMENT_PASSAGES", "5")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.en.txt").write_text("The harbour ferry now runs every ten minutes.\n")
    paragraph = "The archive holds the minutes of every meeting held since the harbour opened. "
    (docs / "archive.en.txt").write_text("\n\n".join([paragraph * 12] * 40))
    data = tmp_path / "data"
    code, output = run("ingest", str(docs), "--data-dir", str(data))
    assert code == 1
    [line] = [x for x in output.splitlines() if "archive.en" in x]
    assert "more than the 5 allowed per document" in line and "QIAO_MAX_DOCUMENT_PASSAGES" in line
    assert "1 added" in output and "1 skipped" in output
    monkeypatch.setenv("QIAO_MAX_DOCUMENT_PASSAGES", "500")
    code, output = run("ingest", str(docs), "--data-dir", str(data))
    assert code == 0 and "1 added, 0 replaced, 1 unchanged" in output


def test_the_commands_work_on_the_qdrant_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import index.backend

    monkeypatch.setattr(index.backend, "_model_dim", lambda settings: FakeEmbedder().dim)
    monkeypatch.setenv("QIAO_BACKEND", "qdrant")
    data = str(tmp_path / "data")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.en.txt").write_text("The harbour ferry now runs every ten minutes.\n")
    (docs / "ferry.zh.txt").write_text("港口渡轮现在每十分钟一班。\n")
    code, output = run("ingest", str(docs), "--data-dir", data)
    assert code == 1 and "qiao qdrant init" in output  # no collection yet: says how
    monkeypatch.setenv("QIAO_DATA_DIR", data)
    code, output = run("qdrant", "init")
    assert code == 0 and "created" in output
    code, output = run("ingest", str(docs))
    assert code == 0 and "2 added" in output and "Qdrant qiao" in output
    code, output = run("search", "ferry minutes", "--json")
    found = json.loads(output)
    assert found["results"][0]["doc_id"] == "ferry.en"
    assert found["results"][0]["counterpart"]["doc_id"] == "ferry.zh"
    code, output = run("verify")
    assert code == 0 and "2 documents" in output
    code, output = run("delete", "ferry.zh")
    assert code == 0 and "1 deleted" in output
    code, output = run("qdrant", "status")
    assert code == 0 and "1 documents" in output


def test_qdrant_import_copies_an_embedded_index_without_embedding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import index.backend
    from index import ModelInfo

    dim = FakeEmbedder().dim
    monkeypatch.setattr(index.backend, "_model_dim", lambda settings: dim)
    info = ModelInfo(FakeEmbedder().model_id, dim, 512, tmp_path, 0)
    import index as library

    monkeypatch.setattr(library, "model_info", lambda settings: info)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.en.txt").write_text("The harbour ferry now runs every ten minutes.\n")
    (docs / "ferry.zh.txt").write_text("港口渡轮现在每十分钟一班。\n")
    embedded = str(tmp_path / "embedded")
    assert run("ingest", str(docs), "--data-dir", embedded)[0] == 0
    monkeypatch.setenv("QIAO_BACKEND", "qdrant")
    monkeypatch.setenv("QIAO_DATA_DIR", str(tmp_path / "q"))
    assert run("qdrant", "init")[0] == 0

    def no_embedding(*args: object, **kwargs: object) -> None:
        raise AssertionError("import must not embed")

    embed_passages = FakeEmbedder.embed_passages
    monkeypatch.setattr(FakeEmbedder, "embed_passages", no_embedding)
    code, output = run("qdrant", "import", embedded)
    assert code == 0 and "2 documents (2 passages) copied" in output, output
    code, output = run("qdrant", "import", embedded)
    assert code == 0 and "0 documents" in output and "2 unchanged" in output
    monkeypatch.setattr(FakeEmbedder, "embed_passages", embed_passages)
    code, output = run("search", "ferry minutes", "--json")
    found = json.loads(output)
    assert found["results"][0]["doc_id"] == "ferry.en"
    assert found["results"][0]["counterpart"]["doc_id"] == "ferry.zh"
