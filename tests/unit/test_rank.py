"""The ranking core without a model: `search_rows` over a hand-built snapshot.

Two aligned documents of one release (English and Chinese, three passages each), every passage
with its own orthogonal unit vector, so each expected score can be worked out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from index.records import Document, PreparedDocument
from index.search.rank import Filters, SearchParams, search_rows
from index.store.manifest import BuildInfo
from index.store.snapshot import Snapshot

DIM = 8
EN_TEXT = "Ferry timetable.\n\nBridge opening.\n\nPark hours."
ZH_TEXT = "渡轮时刻表。\n\n大桥通车。\n\n公园开放时间。"


def unit(i: int) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    v[i] = 1.0
    return v


def prepared(
    doc: Document, first_axis: int, terms: list[list[str]], partner: str
) -> PreparedDocument:
    spans = []
    pos = 0
    for piece in doc.text.split("\n\n"):
        start = doc.text.index(piece, pos)
        spans.append((start, start + len(piece)))
        pos = start + len(piece)
    n = len(spans)
    vectors = np.stack([unit(first_axis + i) for i in range(n)])
    # Passage i aligns with passage i of the other version, with score 0.9.
    counterparts = np.array([[i, i + 1, 0.9] for i in range(n)], dtype=np.float64)
    return PreparedDocument(
        document=doc,
        content_hash=doc.content_hash,
        spans=np.array(spans, np.int64),
        vectors=vectors,
        terms=tuple(tuple(t) for t in terms),
        sentence_spans=np.array([(i, s, e) for i, (s, e) in enumerate(spans)], np.int64),
        sentence_vectors=vectors.copy(),
        sentence_terms=tuple(tuple(t) for t in terms),
        counterparts=counterparts,
        counterpart_doc=partner,
    )


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    en = Document("r.en", "r", "en", "Release", EN_TEXT, "2024-01-02")
    zh = Document("r.zh", "r", "zh", "发布", ZH_TEXT, "2024-01-02")
    docs = {
        "r.en": prepared(en, 0, [["ferri", "timet"], ["bridg", "open"], ["park", "hour"]], "r.zh"),
        "r.zh": prepared(zh, 3, [["渡轮", "时刻表"], ["大桥", "通车"], ["公园", "开放"]], "r.en"),
    }
    return Snapshot.from_prepared(list(docs.values()), BuildInfo("test", DIM, {}, ""), 1 << 30)


def rank(snapshot: Snapshot, vector: np.ndarray, terms: list[str], query_lang: str,
         lang: str | None, mode: str = "hybrid", params: SearchParams | None = None,
         k: int = 6) -> list[tuple[int, float]]:
    return search_rows(
        snapshot, vector[None, :], [terms], [query_lang], k, lang, mode,  # type: ignore[arg-type]
        Filters(), params or SearchParams(),
    )[0]


def test_dense_ranks_the_passage_with_the_query_vector_first(snapshot: Snapshot) -> None:
    ranked = rank(snapshot, unit(1), [], "en", None, mode="dense")
    assert ranked[0] == (1, pytest.approx(1.0))
    # Every other passage is orthogonal: min-max puts them all at 0.
    assert all(score == pytest.approx(0.0) for _, score in ranked[1:])


def test_lexical_ranks_by_shared_terms_and_skips_passages_without_any(snapshot: Snapshot) -> None:
    ranked = rank(snapshot, unit(7), ["bridg"], "en", None, mode="lexical")
    assert [row for row, _ in ranked] == [1]


def test_hybrid_adds_weighted_min_max_scores(snapshot: Snapshot) -> None:
    params = SearchParams(lexical_weight=0.3, sentence_weight=0.5)
    # The vector points at the ferry passage, the terms at the park passage.
    ranked = dict(rank(snapshot, unit(0), ["park"], "en", "en", params=params))
    dense_share = (1 - 0.3) * (1 - 0.5) + (1 - 0.3) * 0.5  # passage and best sentence
    assert ranked[0] == pytest.approx(dense_share)
    assert ranked[2] == pytest.approx(0.3)  # BM25 alone, its list's best
    assert ranked[1] == pytest.approx(0.0)


def test_pivot_finds_the_chinese_passage_through_the_english_one(snapshot: Snapshot) -> None:
    # An English question whose vector matches English passage 1 only: the Chinese passages are
    # orthogonal to it, so only the alignment can bring Chinese passage 1 (row 4) to the top.
    with_pivot = rank(snapshot, unit(1), ["bridg"], "en", "zh")
    assert with_pivot[0][0] == 4
    without = rank(snapshot, unit(1), ["bridg"], "en", "zh",
                   params=SearchParams(pivot=False))
    assert without[0][0] == 3  # without it, a tie among orthogonal passages: the lowest row
    assert {row for row, _ in with_pivot} <= {3, 4, 5}


def test_filters_restrict_rows(snapshot: Snapshot) -> None:
    only_en = rank(snapshot, unit(4), [], "zh", "en", mode="dense")
    assert {row for row, _ in only_en} <= {0, 1, 2}
    none = search_rows(snapshot, unit(0)[None, :], [[]], ["en"], 5, None, "dense",
                       Filters(release_id="other"), SearchParams())[0]
    assert none == []
