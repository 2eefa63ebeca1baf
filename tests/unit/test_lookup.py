"""Translation lookup through a view: found by the alignment, else by search; spans exact."""

from __future__ import annotations

import pytest

from index import EmptyInput, QiaoError, Retriever

SENTENCE = "Trains run every four minutes during peak hours."


def _exact(retriever: Retriever, doc_id: str, start: int, end: int, text: str) -> None:
    document = retriever.document(doc_id)
    assert document is not None and document.text[start:end] == text


def test_a_sentence_of_the_archive_is_found_and_followed_to_its_aligned_version(
    tiny_retriever: Retriever,
) -> None:
    # Spacing differs from the document: still the same sentence.
    found = tiny_retriever.view().lookup("  Trains run every four   minutes during peak hours. ")
    assert found is not None and found.method == "alignment"
    assert found.source_doc == "metro-line.en" and found.source is not None
    assert found.source.text == SENTENCE
    _exact(tiny_retriever, "metro-line.en", found.source.start, found.source.end, SENTENCE)
    assert found.doc_id == "metro-line.zh" and found.lang == "zh"
    _exact(tiny_retriever, found.doc_id, found.translation.start, found.translation.end,
           found.translation.text)
    assert 0.0 <= found.confidence <= 1.0


def test_two_sentences_are_looked_up_together(tiny_retriever: Retriever) -> None:
    text = ("The new metro line connecting Hongqiao Airport with the exhibition centre opened "
            "today. " + SENTENCE)
    found = tiny_retriever.view().lookup(text)
    assert found is not None and found.method == "alignment" and found.source is not None
    assert found.source.text.startswith("The new metro line")
    assert found.source.text.endswith(SENTENCE)


def test_text_not_in_the_archive_falls_back_to_search(tiny_retriever: Retriever) -> None:
    found = tiny_retriever.view().lookup("The committee approved a budget for new bicycles.")
    assert found is not None and found.method == "search"
    assert found.source is None and found.lang == "zh"
    _exact(tiny_retriever, found.doc_id, found.translation.start, found.translation.end,
           found.translation.text)


def test_a_document_without_another_version_falls_back_to_search(
    tiny_retriever: Retriever,
) -> None:
    library = tiny_retriever.document("library.en")
    assert library is not None
    first_line = next(line for line in library.text.splitlines() if line.strip().endswith("."))
    found = tiny_retriever.view().lookup(first_line)
    assert found is not None and found.method == "search" and found.lang == "zh"


@pytest.mark.parametrize(
    ("text", "lang", "error", "message"),
    [
        ("  ", None, EmptyInput, "empty"),
        (SENTENCE, "en", QiaoError, "already in en"),
        (SENTENCE, "fr", QiaoError, "lang must be"),
        ("word " * 500, None, QiaoError, "at most"),
    ],
)
def test_bad_lookups_say_what_to_do(
    tiny_retriever: Retriever, text: str, lang: str | None, error: type[Exception], message: str,
) -> None:
    with pytest.raises(error, match=message):
        tiny_retriever.view().lookup(text, lang)


def test_lookup_in_an_empty_index_finds_nothing(retriever: Retriever) -> None:
    assert retriever.view().lookup(SENTENCE) is None
