"""Files → Documents: exact text, metadata defaults, and a clear Problem for every bad input."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.errors import DocumentError
from index.ingest.langdetect import detect_lang, ideograph_share
from index.ingest.metadata import title_from_text
from index.ingest.read import DEFAULT_MAX_BYTES, PathReader, Problem, read_paths, validate_id
from index.records import Document
from index.retriever import Retriever
from tests.conftest import REPO

DATA = Path(__file__).resolve().parents[1] / "data" / "readers"
SEED = Path(
    os.environ.get("QIAO_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"),
    "seed",
    "qingpu-briefing-2023-09-05.en.txt",
)


def read_one(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    docs, problems = read_paths([path], max_bytes=max_bytes)
    assert problems == []
    assert len(docs) == 1
    return docs[0]


def problems_of(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Problem]:
    docs, problems = read_paths([path], max_bytes=max_bytes)
    assert docs == []
    return problems


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- plain text: exactness and decoding ------------------------------------------------------


def test_txt_text_is_the_file_content_exactly() -> None:
    path = DATA / "pair" / "harbour-tour.en.txt"
    assert read_one(path).text == path.read_bytes().decode("utf-8")


def test_crlf_and_lone_cr_become_lf_and_nothing_else_changes(tmp_path: Path) -> None:
    raw = b"Title line\r\n\r\n  indented\tline  \rlast line\r\n"
    doc = read_one(write(tmp_path, "note.txt", raw))
    assert doc.text == "Title line\n\n  indented\tline  \nlast line\n"


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    doc = read_one(write(tmp_path, "bom.txt", b"\xef\xbb\xbfHello world\n"))
    assert doc.text == "Hello world\n"
    assert doc.title == "Hello world"


def test_undecodable_bytes_name_the_byte_and_line(tmp_path: Path) -> None:
    # "ab\ncd" then a GBK-encoded "中" (0xD6 0xD0), which is not UTF-8.
    [problem] = problems_of(write(tmp_path, "gbk.txt", b"ab\ncd\xd6\xd0\n"))
    assert problem.line == 2
    assert "not UTF-8" in problem.message
    assert "byte 5" in problem.message
    assert "convert it to UTF-8" in problem.message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty file"),
        (b" \n\t\r\n  ", "only whitespace"),
        (b"\xef\xbb\xbf", "only whitespace"),
        (b"%PDF-1.7\x00\x01\x02binary", "binary"),
        (bytes(range(1, 9)) * 20 + b"some text", "binary"),
        (b"\xff\xfe\x00\xd8", "broken UTF-16"),
    ],
    ids=["empty", "whitespace", "bom-only", "nul-bytes", "control-chars", "broken-utf16"],
)
def test_unusable_text_files_are_problems(tmp_path: Path, data: bytes, expected: str) -> None:
    [problem] = problems_of(write(tmp_path, "bad.txt", data))
    assert expected in problem.message
    assert problem.path == str(tmp_path / "bad.txt")


ZH_SIMPLIFIED = ("青浦区推动经济社会高质量发展。\n\n"
                 "示范区城际线已开工建设，串联东部、中部和西部地区。\n")
ZH_TRADITIONAL = ("青浦區推動經濟社會高質量發展。\n\n"
                  "示範區城際線已開工建設，串聯東部、中部和西部地區。\n")


@pytest.mark.parametrize(
    ("text", "encoding", "named"),
    [
        (ZH_SIMPLIFIED, "gb18030", "GB18030/GBK"),
        (ZH_SIMPLIFIED, "gbk", "GB18030/GBK"),
        (ZH_SIMPLIFIED, "gb2312", "GB18030/GBK"),
        (ZH_TRADITIONAL, "big5", "Big5"),
        (ZH_SIMPLIFIED, "utf-16", "UTF-16"),
        ("Mixed: Qingpu 青浦区 grew 5% in 2023.\r\n", "gbk", "GB18030/GBK"),
    ],
)
def test_chinese_files_in_legacy_encodings_are_read_and_named(
    tmp_path: Path, text: str, encoding: str, named: str,
) -> None:
    path = write(tmp_path, "release.zh.txt", text.encode(encoding))
    reader = PathReader.open([path])
    [doc] = list(reader.documents())
    assert doc.text == text.replace("\r\n", "\n") and reader.problems == []
    [note] = reader.notes
    assert note.path == str(path) and named in note.message


def test_latin1_accents_are_not_taken_for_chinese(tmp_path: Path) -> None:
    # "è" + "m" is a valid GBK pair: it must not turn French into lone ideographs.
    text = "La crème brûlée du café est très appréciée à Paris, même en hiver. " * 4
    [problem] = problems_of(write(tmp_path, "fr.txt", text.encode("latin-1")))
    assert "not UTF-8" in problem.message and "iconv" in problem.message


def test_too_large_file_names_size_and_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "large.txt", b"words " * 500)
    [problem] = problems_of(path, max_bytes=2 * 2**10)
    assert "too large (3,000 bytes; the limit is 2,048 bytes)" in problem.message
    assert read_one(path, max_bytes=3000).text == "words " * 500  # the limit is inclusive


def test_fifty_megabyte_file_is_refused_at_the_default_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as f:
        f.truncate(50 * 2**20)  # sparse: costs no disk and would be "binary" if it were read
    [problem] = problems_of(path)
    assert "too large (50.0 MB; the limit is 20.0 MB)" in problem.message


# --- walking directories -------------------------------------------------------------------


def test_directory_walk_reads_good_files_and_reports_the_rest(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    write(tmp_path, "b.en.txt", b"Second release\n")
    write(tmp_path / "sub", "a.txt", b"First release\n")
    write(tmp_path, "report.pdf", b"%PDF-1.7")
    write(tmp_path, "data.json", b"{}")
    write(tmp_path, "README", b"no extension")
    write(tmp_path, "empty.md", b"")
    write(tmp_path, ".hidden.txt", b"hidden file\n")
    write(tmp_path / ".git", "HEAD.txt", b"hidden directory\n")

    docs, problems = read_paths([tmp_path])

    assert [d.doc_id for d in docs] == ["b.en", "a.en"]  # a directory's files before its subdirs
    reported = {Path(p.path).name: p.message for p in problems}
    assert set(reported) == {"report.pdf", "data.json", "README", "empty.md"}
    assert reported["report.pdf"].startswith("could not open the PDF")
    assert "(no extension)" in reported["README"]
    assert "empty file" in reported["empty.md"]


def test_missing_path_and_empty_directory_are_problems(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    docs, problems = read_paths([tmp_path / "nope.txt", tmp_path / "empty"])
    assert docs == []
    assert [Path(p.path).name for p in problems] == ["nope.txt", "empty"]
    assert "no such file" in problems[0].message
    assert "no files found" in problems[1].message


def test_a_file_given_twice_is_read_once(tmp_path: Path) -> None:
    path = write(tmp_path, "once.txt", b"Only once\n")
    docs, problems = read_paths([path, tmp_path, Path(str(tmp_path) + "/./once.txt")])
    assert [d.doc_id for d in docs] == ["once.en"]
    assert problems == []


def test_duplicate_doc_id_keeps_the_later_and_reports_the_earlier(tmp_path: Path) -> None:
    first = write(tmp_path, "x.en.txt", b"First version\n")
    second = write(tmp_path, "x.en.md", b"Second version\n")
    docs, problems = read_paths([first, second])
    assert [d.text for d in docs] == ["Second version\n"]
    [problem] = problems
    assert problem.path == str(first)
    assert "duplicate doc_id 'x.en'" in problem.message
    assert str(second) in problem.message


# --- pairing and sidecar metadata ----------------------------------------------------------


def test_file_name_convention_and_sidecar_pair_the_two_languages() -> None:
    docs, problems = read_paths([DATA / "pair"])
    assert problems == []
    en, zh = sorted(docs, key=lambda d: d.lang)
    assert (en.lang, zh.lang) == ("en", "zh")
    assert en.release_id == zh.release_id == "harbour-tour-2024"  # the sidecar's release_id
    assert (en.doc_id, zh.doc_id) == ("harbour-tour-2024.en", "harbour-tour-2024.zh")
    assert en.date == zh.date == "2024-04-02"
    # English: no title in the sidecar, so the first real line (after "| 中文版 |").
    assert en.title == "Harbour Tour Boats Return to the Huangpu River"
    assert en.url == "https://example.org/en/harbour-tour"
    # Chinese: the "zh" block overrides the top-level fields.
    assert zh.title == "黄浦江游船恢复夜游"
    assert zh.url == "https://example.org/zh/harbour-tour"


def test_without_sidecar_the_file_name_gives_release_and_lang(tmp_path: Path) -> None:
    write(tmp_path, "tour.en.txt", b"Tour\n")
    write(tmp_path, "tour.zh.txt", b"Tour\n")  # no Chinese letters: lang comes from the name
    docs, problems = read_paths([tmp_path])
    assert problems == []
    assert {(d.doc_id, d.release_id, d.lang) for d in docs} == {
        ("tour.en", "tour", "en"),
        ("tour.zh", "tour", "zh"),
    }


def test_invalid_sidecar_skips_its_documents_with_the_reason(tmp_path: Path) -> None:
    write(tmp_path, "tour.meta.json", b'{"title": "Tour", "dat": "2024-01-01"}')
    write(tmp_path, "tour.en.txt", b"Tour\n")
    write(tmp_path, "other.txt", b"Other\n")
    docs, problems = read_paths([tmp_path])
    assert [d.doc_id for d in docs] == ["other.en"]
    [problem] = problems
    assert problem.path == str(tmp_path / "tour.meta.json")
    assert "unknown field 'dat'" in problem.message
    assert "tour.en.txt was not read" in problem.message


def test_sidecar_with_bad_json_reports_its_line(tmp_path: Path) -> None:
    write(tmp_path, "tour.meta.json", b'{\n  "title": "Tour",\n  "date": \n}')
    write(tmp_path, "tour.zh.txt", "旅游\n".encode())
    [problem] = problems_of(tmp_path)
    assert problem.line == 4
    assert "invalid JSON" in problem.message


def test_sidecar_without_a_document_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "tuor.meta.json", b'{"title": "Tour"}')
    write(tmp_path, "tour.en.txt", b"Tour\n")
    docs, problems = read_paths([tmp_path])
    assert [d.doc_id for d in docs] == ["tour.en"]
    [problem] = problems
    assert problem.path == str(tmp_path / "tuor.meta.json")
    assert "no document beside it" in problem.message


# --- Markdown front matter -------------------------------------------------------------------


def test_front_matter_sets_metadata_and_the_body_is_kept_exactly() -> None:
    path = DATA / "budget-notes.md"
    raw = path.read_bytes().decode("utf-8")
    body = raw.split("---\n", 2)[2]  # the file starts with "---\n…---\n"
    doc = read_one(path)
    assert doc.text == body
    assert doc.text.startswith("\n# District Budget Notes\n")  # leading blank line kept
    assert "4.5 percent.  \n" in doc.text  # trailing spaces kept
    assert (doc.doc_id, doc.release_id, doc.lang) == ("budget-2024-en-v2", "budget-2024", "en")
    assert (doc.date, doc.url) == ("2024-01-15", "https://example.org/budget")
    assert doc.title == "District Budget Notes"  # from the heading, without '#'


def test_front_matter_overrides_the_file_name(tmp_path: Path) -> None:
    data = "---\nrelease_id: rel-1\nlang: zh\ntitle: 标题\n---\nEnglish words only.\n".encode()
    doc = read_one(write(tmp_path, "name.en.md", data))
    assert (doc.release_id, doc.lang, doc.doc_id, doc.title) == ("rel-1", "zh", "rel-1.zh", "标题")
    assert doc.text == "English words only.\n"


def test_markdown_without_front_matter_is_the_whole_file(tmp_path: Path) -> None:
    data = b"# Heading\n\n---\n\nAfter a rule.\n"
    doc = read_one(write(tmp_path, "plain.markdown", data))
    assert doc.text == data.decode()
    assert doc.title == "Heading"


@pytest.mark.parametrize(
    ("front_matter", "line", "expected"),
    [
        ("title: [unclosed\ndate: 2024-01-01\n", 3, "bad YAML front matter"),
        ("title: a: b\n", 2, "bad YAML front matter"),
        ("- just\n- a list\n", None, "key: value"),
        ("release_id: 2024\n", None, "must be a string, not a number"),
        ("date: 15.01.2024\n", None, "not a valid date YYYY-MM-DD"),
        ("url: javascript:alert(1)\n", None, "not an http(s) address"),
        ("title: ''\n", None, "title is empty"),
    ],
    ids=[
        "unclosed",
        "mapping-in-value",
        "not-a-mapping",
        "number-id",
        "bad-date",
        "js-url",
        "blank-title",
    ],
)
def test_bad_front_matter_is_a_problem(
    tmp_path: Path, front_matter: str, line: int | None, expected: str
) -> None:
    path = write(tmp_path, "bad.md", f"---\n{front_matter}---\nBody text.\n".encode())
    [problem] = problems_of(path)
    assert expected in problem.message
    assert problem.line == line


def test_front_matter_without_body_is_a_problem(tmp_path: Path) -> None:
    [problem] = problems_of(write(tmp_path, "nobody.md", b"---\ntitle: T\n---\n\n  \n"))
    assert "no text after the front matter" in problem.message


# --- HTML ------------------------------------------------------------------------------------


def test_html_keeps_the_article_text_and_drops_scripts_and_styles() -> None:
    doc = read_one(DATA / "article.html")
    assert "MUST_NOT_APPEAR" not in doc.text
    assert "font-family" not in doc.text
    assert "区委书记徐建介绍" in doc.text
    assert "今年上半年，全区数字经济核心产业营业收入同比增长百分之十二。" in doc.text
    assert doc.lang == "zh"  # from <html lang="zh-CN">
    assert doc.date == "2023-09-05"  # from <meta name="date">
    assert "青浦区推进数字创新高地建设" in doc.title
    assert (doc.release_id, doc.doc_id) == ("article", "article.zh")


def test_html_lang_attribute_beats_detection(tmp_path: Path) -> None:
    paragraph = "<p>" + "青浦区位于上海西部，毗邻江苏和浙江两省。" * 10 + "</p>"
    data = f'<html lang="en"><body><article>{paragraph}</article></body></html>'.encode()
    assert read_one(write(tmp_path, "page.htm", data)).lang == "en"
    data = data.replace(b' lang="en"', b"")
    assert read_one(write(tmp_path, "page.htm", data)).lang == "zh"


def test_html_without_main_text_is_a_problem(tmp_path: Path) -> None:
    data = b"<html><head><script>var x = 1;</script></head><body></body></html>"
    [problem] = problems_of(write(tmp_path, "empty.html", data))
    assert "no main text found" in problem.message


# --- JSONL -----------------------------------------------------------------------------------


def test_jsonl_reads_good_lines_and_reports_each_bad_line() -> None:
    docs, problems = read_paths([DATA / "batch.jsonl"])

    assert [(d.doc_id, d.release_id, d.lang) for d in docs] == [
        ("rain-2024.en", "rain-2024", "en"),
        ("Rain Warning:ZH #1", "rain-2024", "zh"),  # doc_id kept exactly as given
        ("heat-2024.zh", "heat-2024", "zh"),  # lang detected
    ]
    assert docs[0].date == "2024-06-20"
    assert docs[1].text == "气象局发布暴雨黄色预警。\n市民应避免前往江边。"  # "\r\n" → "\n"
    by_line = {p.line: p.message for p in problems}
    assert set(by_line) == {4, 5, 6, 7, 8, 9}  # line 2 is blank and skipped
    assert all(p.path == str(DATA / "batch.jsonl") for p in problems)
    assert by_line[4].startswith("missing field title")
    assert by_line[5].startswith("invalid JSON")
    assert "'title' must be a string, not a number" in by_line[6]
    assert "lang 'fr' is not supported" in by_line[7]
    assert "doc_id '../../etc/passwd'" in by_line[8]
    assert "date '2024-02-30' is not a valid date" in by_line[9]


def test_jsonl_text_is_the_json_string_exactly(tmp_path: Path) -> None:
    text = "  Leading spaces,\ttabs,\n\nblank lines, “quotes” and 中文.  \n"
    line = json.dumps({"release_id": "r", "title": "T", "text": text}, ensure_ascii=False)
    assert read_one(write(tmp_path, "one.jsonl", line.encode())).text == text


# --- ids, titles, language -------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["", ".", "..", "../x", "a/b", "a\\b", "x" * 201, "a\nb", "a\x00b", "a\u202eb", " a", "a "],
    ids=repr,
)
def test_path_tricks_and_control_characters_are_refused_as_ids(bad: str) -> None:
    with pytest.raises(DocumentError):
        validate_id(bad)


@pytest.mark.parametrize("good", ["qingpu-briefing-2023-09-05.en", "新闻.zh", "a b:c#1", "x" * 200])
def test_ordinary_ids_are_accepted(good: str) -> None:
    assert validate_id(good) == good


def test_path_trick_release_id_from_front_matter_is_a_problem(tmp_path: Path) -> None:
    [problem] = problems_of(write(tmp_path, "t.md", b"---\nrelease_id: ..\n---\nText.\n"))
    assert "release_id '..'" in problem.message


def test_title_skips_navigation_and_rules_and_strips_heading_marks() -> None:
    assert title_from_text("| 中文版 |\n\n---\n## Real Title ##\nbody") == "Real Title"
    assert title_from_text("| Home | About us |\n|---|---|\nStory\n") == "Story"
    assert title_from_text("\n\n   \n| x |\n") is None


def test_long_first_line_is_cut_to_200_characters() -> None:
    title = title_from_text("word " * 100)
    assert title is not None
    assert len(title) == 200
    assert title.endswith("…")
    assert ("word " * 100).startswith(title[:-1])


def test_text_without_a_title_line_falls_back_to_the_release_id(tmp_path: Path) -> None:
    doc = read_one(write(tmp_path, "nav-only.txt", b"| a |\n| b |\n"))
    assert doc.title == "nav-only"


ENGLISH = "The district government announced a river cleanup campaign on Monday."
CHINESE = "区政府周一宣布启动河道清洁行动。志愿者将在每个周末清理淀山湖沿岸的塑料垃圾。"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        (ENGLISH, "en"),
        (CHINESE, "zh"),
        # Chinese with English names and acronyms is still Chinese.
        ("青浦区与Microsoft、SAP和Siemens签署协议，推动AI与IoT产业在长三角地区落地发展。", "zh"),
        # English quoting a few Chinese names is still English.
        (ENGLISH + " Xu Jian (徐建) and Qingpu (青浦) were named.", "en"),
        ("2023-09-05 12:00 | 3.5%", "en"),
        ("", "en"),
    ],
    ids=["english", "chinese", "zh-with-english", "en-with-chinese", "no-letters", "empty"],
)
def test_detect_lang(text: str, lang: str) -> None:
    assert detect_lang(text) == lang


def test_detect_lang_samples_the_whole_of_a_long_text() -> None:
    # An English preface longer than one sampling window must not decide a Chinese book.
    text = ENGLISH * 200 + CHINESE * 30_000
    assert len(text) > 1_000_000
    assert detect_lang(text) == "zh"
    assert 0.8 < ideograph_share(text) <= 1.0


# --- properties and the real seed file -----------------------------------------------------

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff")
    | st.sampled_from("\n\t "),
    min_size=1,
    max_size=200,
).filter(lambda s: not s.isspace())


@settings(max_examples=150, deadline=None)
@given(text=_TEXT, suffix=st.sampled_from([".txt", ".md"]))
def test_document_text_equals_any_written_text(text: str, suffix: str) -> None:
    if suffix == ".md" and text.startswith("---"):
        text = "x" + text  # keep it from being read as front matter
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "prop" + suffix)
        path.write_bytes(text.encode("utf-8"))
        assert read_one(path).text == text


@pytest.mark.skipif(not SEED.is_file(), reason=f"seed release not found at {SEED}")
def test_seed_release_is_read_exactly_with_its_title() -> None:
    doc = read_one(SEED)
    assert doc.text == SEED.read_bytes().decode("utf-8")
    assert doc.title == (
        "Press Release for Media Briefing of the Shanghai Municipal Government on September 5, 2023"
    )
    assert (doc.release_id, doc.lang, doc.doc_id) == (
        "qingpu-briefing-2023-09-05",
        "en",
        "qingpu-briefing-2023-09-05.en",
    )


def _as_web_page(text: str, lang: str) -> str:
    """A release as a government site would publish it: each paragraph a <p> (hard-wrapped
    lines joined), inside navigation and a footer."""
    from html import escape

    paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    body = "\n".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (f'<!DOCTYPE html><html lang="{lang}"><head><title>Release</title></head><body>'
            f'<nav><a href="/">Home</a></nav><article>{body}</article>'
            "<footer>Copyright</footer></body></html>")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_release_as_html_keeps_its_paragraphs_and_passage_count(
    tmp_path: Path, lang: str, retriever: Retriever,
) -> None:
    source = REPO / "corpus" / f"qingpu-briefing-2023-09-05.{lang}.txt"
    text = source.read_text(encoding="utf-8")
    write(tmp_path, f"as-text.{lang}.txt", text.encode())
    write(tmp_path, f"as-html.{lang}.html", _as_web_page(text, lang).encode())
    docs, problems = read_paths([tmp_path])
    assert problems == []
    retriever.upsert(docs)
    html_doc = next(d for d in docs if d.release_id == "as-html")
    assert html_doc.text.count("\n\n") >= text.count("\n\n") // 2  # paragraphs kept
    counts = {d.release_id: len(retriever.passages(d.doc_id)) for d in docs}
    assert abs(counts["as-html"] - counts["as-text"]) <= 1, counts


def test_a_long_run_without_spaces_or_punctuation_is_refused_and_the_rest_read(
    tmp_path: Path,
) -> None:
    write(tmp_path, "good.en.txt", b"The ferry runs every ten minutes.\n")
    blob = b"Attachment:\n\n" + b"QUJD" * 2000 + b"\n"  # base64 pasted into a release
    write(tmp_path, "blob.en.txt", blob)
    # Chinese prose has no spaces but punctuation every few dozen characters: accepted.
    prose = "青浦区推动经济社会高质量发展，示范区城际线已开工建设。" * 400
    write(tmp_path, "long.zh.txt", prose.encode())
    docs, problems = read_paths([tmp_path])
    assert sorted(d.doc_id for d in docs) == ["good.en", "long.zh"]
    [problem] = problems
    assert problem.path.endswith("blob.en.txt") and problem.line == 3
    assert "8000 characters with no space or punctuation" in problem.message
