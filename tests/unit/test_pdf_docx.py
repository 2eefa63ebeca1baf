"""PDF and DOCX releases: text as published (pages, paragraphs, tables), pages on every hit."""

from __future__ import annotations

import re
from pathlib import Path

import docx
import pytest
from fpdf import FPDF

from index.ingest.read import read_paths
from index.retriever import Retriever
from tests.conftest import REPO

FACT = ("The new bridge over Dianshan Lake will open to traffic on 18 May 2024, the district "
        "transport office said.")
TOPICS = ["roads", "schools", "parks", "water", "housing", "libraries", "clinics", "markets",
          "buses", "ferries", "sports", "museums", "farms", "rivers", "jobs"]
HEADER = "Qingpu District Government - Weekly Notice"


class _Notice(FPDF):
    def header(self) -> None:
        self.set_font("Helvetica", size=9)
        self.cell(0, 8, HEADER, new_x="LMARGIN", new_y="NEXT")

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", size=9)
        self.cell(0, 8, f"Page {self.page_no()} of 5", align="C")


def notice_pdf(path: Path) -> Path:
    """Five pages with a running header and page-number footer, three paragraphs a page; the
    fact is on page 4."""
    pdf = _Notice()
    pdf.set_title("Qingpu Weekly Notice")
    for page in range(1, 6):
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        for k in range(3):
            topic = TOPICS[(page - 1) * 3 + k]
            body = (f"The district reviewed its work on {topic} this week. Officials met "
                    f"residents who use the {topic} to hear their views, and a plan for the "
                    f"{topic} will be published when the review ends next month.")
            pdf.multi_cell(0, 6, f"{FACT} {body}" if (page, k) == (4, 1) else body)
            pdf.ln(4)
    pdf.output(str(path))
    return path


def test_a_pdf_is_read_page_by_page_without_headers_footers_or_page_numbers(
    tmp_path: Path,
) -> None:
    [doc], problems = read_paths([notice_pdf(tmp_path / "notice.en.pdf")])
    assert problems == []
    assert doc.title == "Qingpu Weekly Notice" and doc.lang == "en"
    assert doc.pages is not None and len(doc.pages) == 4
    assert HEADER not in doc.text and "Page 4 of 5" not in doc.text
    # Three paragraphs a page, pages apart by a blank line too.
    assert doc.text.count("\n\n") == 5 * 3 - 1
    start = doc.text.index("The new bridge")
    assert doc.page_at(start) == 4
    assert doc.text[doc.pages[2]:].startswith("The district reviewed its work on ferries")


def test_a_pdf_hit_says_its_page_and_keeps_it_after_reopening_and_merging(
    tmp_path: Path, retriever: Retriever,
) -> None:
    docs, _ = read_paths([notice_pdf(tmp_path / "notice.en.pdf")])
    retriever.upsert(docs)
    question = "When will the new bridge over Dianshan Lake open to traffic?"
    [top] = retriever.search(question, k=1).hits
    assert FACT[:40] in top.text and top.page == 4
    document = retriever.document(top.doc_id)
    assert document is not None and document.text[top.start:top.end] == top.text
    retriever.merge()  # the page starts survive a merge and a reopen
    reopened = Retriever.open(retriever.data_dir, settings=retriever.settings,
                              embedder=retriever.embedder, analyzer=retriever.analyzer)
    assert reopened.search(question, k=1).hits[0].page == 4
    assert reopened.document(top.doc_id) == document


def test_a_broken_pdf_or_docx_is_one_line_and_the_rest_is_read(tmp_path: Path) -> None:
    (tmp_path / "good.en.txt").write_text("The ferry runs every ten minutes.\n")
    (tmp_path / "broken.en.pdf").write_bytes(b"%PDF-1.7 this is not really a PDF")
    (tmp_path / "broken.en.docx").write_bytes(b"PK\x03\x04 not a real zip")
    docs, problems = read_paths([tmp_path])
    assert [d.doc_id for d in docs] == ["good.en"]
    messages = {Path(p.path).name: p.message for p in problems}
    assert "could not open the PDF" in messages["broken.en.pdf"]
    assert "could not open the Word file" in messages["broken.en.docx"]
    assert all("\n" not in m for m in messages.values())


def test_a_docx_keeps_headings_paragraphs_and_tables_in_order(tmp_path: Path) -> None:
    document = docx.Document()
    document.core_properties.title = "Metro fares"
    document.add_heading("New fares for Line 17", level=1)
    document.add_paragraph("Fares change on 1 July.")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("Rider", "Fare"), ("Students", "half price")],
                          strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    document.add_paragraph("Tickets are sold at every station.")
    document.save(str(tmp_path / "fares.en.docx"))
    [doc], problems = read_paths([tmp_path / "fares.en.docx"])
    assert problems == []
    assert doc.title == "Metro fares" and doc.pages is None
    assert doc.text == ("New fares for Line 17\n\nFares change on 1 July.\n\n"
                        "Rider | Fare\nStudents | half price\n\nTickets are sold at every station.")


CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")  # scripts/browser_deps.sh


def test_a_chinese_pdf_joins_its_wrapped_lines_and_keeps_every_character(tmp_path: Path) -> None:
    if not CJK_FONT.exists():
        pytest.skip(f"{CJK_FONT} (fonts-wqy-microhei) is not installed")
    source = (REPO / "corpus" / "qingpu-briefing-2023-09-05.zh.txt").read_text(encoding="utf-8")

    class Release(FPDF):
        def header(self) -> None:
            self.set_font("wqy", size=9)
            self.cell(0, 8, "上海市人民政府新闻办公室", new_x="LMARGIN", new_y="NEXT")

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("wqy", size=9)
            self.cell(0, 8, f"第 {self.page_no()} 页", align="C")

    pdf = Release()
    pdf.add_font("wqy", fname=str(CJK_FONT))
    pdf.add_page()
    pdf.set_font("wqy", size=11)
    for paragraph in source.split("\n\n"):
        pdf.multi_cell(0, 7, paragraph.strip())
        pdf.ln(4)
    pdf.output(str(tmp_path / "release.zh.pdf"))
    [doc], problems = read_paths([tmp_path / "release.zh.pdf"])
    assert problems == [] and doc.lang == "zh"
    assert doc.pages is not None and len(doc.pages) >= 1
    assert "新闻办公室" not in doc.text and "第 1 页" not in doc.text
    assert re.sub(r"\s", "", doc.text) == re.sub(r"\s", "", source)
    # A number wrapped across two lines ("26" | "9家") is one number again.
    assert "269家" in doc.text and "\n" not in doc.text.split("\n\n")[1]
    assert doc.text.count("\n\n") >= source.strip().count("\n\n")
