"""BM25 over passage rows: Chinese segmentation end to end, tombstones, filters, persistence,
and scores against a brute-force NumPy BM25 (the Lucene variant bm25s implements)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import bm25s
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.indexes.analyze import Analyzer
from index.indexes.lexical import Postings, SegmentTerms, bm25_top_k

TEXTS = [
    "青浦区召开数字经济发展大会，推进长三角一体化。",  # 0
    "浦东新区发布新一轮产业政策，支持集成电路企业。",  # 1
    "虹桥国际中央商务区建设加快，交通枢纽功能提升。",  # 2
    "上海市青浦区委书记徐建出席会议并讲话。",  # 3
    "The Qingpu District is developing a digital innovation highland.",  # 4
    "Development of the Hongqiao hub continues; it develops new transport links.",  # 5
    "Pudong New Area released an industrial policy for chip makers.",  # 6
    "Hongqiao 虹桥 business district: 虹桥 connects with Qingpu 青浦.",  # 7
]


class Segmented:
    """The lexical index as search uses it: rows cut into segments of `per_segment`, each with
    its own postings, `live` rows as left by deletions; a search combines the statistics of all
    segments. Same answers whatever the cut: that is the exactness the store relies on."""

    def __init__(self, docs: Sequence[Sequence[str]], live: np.ndarray | None = None,
                 per_segment: int = 3, k1: float = 1.5, b: float = 0.75) -> None:
        self.n = len(docs)
        self.live = np.ones(self.n, bool) if live is None else np.asarray(live, bool)
        self.cuts = [*range(0, self.n, per_segment), self.n]
        self.parts = [Postings.build(docs[a:z]) for a, z in pairwise(self.cuts)]
        self.k1, self.b = k1, b
        self.length = sum(len(d) for d, alive in zip(docs, self.live, strict=True) if alive)

    def search(self, queries: Sequence[Sequence[str]], k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        rows = np.full((len(queries), k), -1, np.int64)
        scores = np.zeros((len(queries), k), np.float32)
        segments = [
            SegmentTerms(p, self.live[a:z], None if allowed is None else allowed[a:z] &
                         self.live[a:z])
            for p, (a, z) in zip(self.parts, pairwise(self.cuts), strict=True)
        ]
        for q, query in enumerate(queries):
            found: dict[int, float] = {}
            for (a, _), (r, s) in zip(pairwise(self.cuts), bm25_top_k(
                segments, query, k, int(self.live.sum()), self.length, k1=self.k1, b=self.b,
            ), strict=True):
                found.update(zip((a + r).tolist(), s.tolist(), strict=True))
            best = sorted(found.items(), key=lambda item: (-item[1], item[0]))[:k]
            rows[q, : len(best)] = [r for r, _ in best]
            scores[q, : len(best)] = [s for _, s in best]
        return rows, scores


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


@pytest.fixture(scope="module")
def doc_terms(analyzer: Analyzer) -> list[list[str]]:
    return analyzer.terms_batch(TEXTS)


@pytest.fixture(scope="module")
def index(doc_terms: list[list[str]]) -> Segmented:
    return Segmented(doc_terms)


def returned(rows: np.ndarray) -> list[int]:
    return [int(r) for r in rows if r >= 0]


def reference_scores(
    docs: Sequence[Sequence[str]],
    live: np.ndarray,
    query: Sequence[str],
    k1: float = 1.5,
    b: float = 0.75,
) -> np.ndarray:
    """Lucene BM25 by brute force: sum over query terms (with repetition) of
    log(1 + (N - df + .5) / (df + .5)) * tf / (tf + k1 * (1 - b + b * dl / avgdl)),
    with N, df and avgdl taken over live documents only."""
    live_docs = [d for d, alive in zip(docs, live, strict=True) if alive]
    n = len(live_docs)
    avgdl = np.mean([len(d) for d in live_docs])
    scores = np.zeros(len(docs))
    for term in query:
        df = sum(term in d for d in live_docs)
        if df == 0:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, doc in enumerate(docs):
            tf = Counter(doc)[term]
            if live[i] and tf:
                scores[i] += idf * tf / (tf + k1 * (1 - b + b * len(doc) / avgdl))
    return scores


def test_chinese_term_matches_exactly_the_documents_containing_it(
    index: Segmented, analyzer: Analyzer
) -> None:
    for word in ["虹桥", "青浦", "浦东", "书记", "新区", "会议"]:
        assert analyzer.terms(word) == [word]  # one term, so no sub-word can match elsewhere
        rows, scores = index.search([analyzer.terms(word)], k=len(TEXTS))
        expected = {i for i, text in enumerate(TEXTS) if word in text}
        assert set(returned(rows[0])) == expected, word
        assert (scores[0][rows[0] >= 0] > 0).all()


def test_documents_with_the_whole_compound_outrank_those_with_a_part(
    index: Segmented, analyzer: Analyzer
) -> None:
    # Search mode indexes 青浦区 as 青浦 + 青浦区, so a 青浦-only document still matches, lower.
    # Doc 3's "青浦区委书记" segments as 青浦 / 区委书记: it too has only the part.
    rows, _ = index.search([analyzer.terms("青浦区")], k=len(TEXTS))
    assert returned(rows[0])[0] == 0 and set(returned(rows[0])[1:]) == {3, 7}


def test_a_name_missing_from_the_dictionary_still_finds_its_document(
    index: Segmented, analyzer: Analyzer
) -> None:
    # Without jieba's HMM guesser an unknown name falls apart into characters, which still match.
    rows, _ = index.search([analyzer.terms("徐建")], k=len(TEXTS))
    assert returned(rows[0]) == [3]


def test_query_qingpu_does_not_match_a_document_about_pudong_only(
    index: Segmented, analyzer: Analyzer
) -> None:
    rows, _ = index.search([analyzer.terms("青浦")], k=len(TEXTS))
    assert 1 not in returned(rows[0])
    rows, _ = index.search([analyzer.terms("虹桥")], k=len(TEXTS))
    assert returned(rows[0]) == [7, 2]  # two mentions outrank one


def test_english_query_matches_other_inflections(index: Segmented, analyzer: Analyzer) -> None:
    rows, _ = index.search([analyzer.terms("developing")], k=len(TEXTS))
    assert set(returned(rows[0])) == {4, 5}  # "developing", "Development ... develops"


def test_stop_words_neither_match_nor_change_scores(index: Segmented, analyzer: Analyzer) -> None:
    rows, scores = index.search(
        [analyzer.terms("the of and it is"), analyzer.terms("the Pudong"), ["pudong"]], k=3
    )
    assert (rows[0] == -1).all() and (scores[0] == 0).all()
    np.testing.assert_array_equal(rows[1], rows[2])
    np.testing.assert_array_equal(scores[1], scores[2])


def test_mixed_language_query_ranks_the_document_matching_both_first(
    index: Segmented, analyzer: Analyzer
) -> None:
    rows, _ = index.search([analyzer.terms("Hongqiao 虹桥 hub")], k=len(TEXTS))
    assert returned(rows[0])[0] in {5, 7}
    assert set(returned(rows[0])) == {2, 5, 7}


def test_results_are_padded_and_never_include_zero_scores(index: Segmented) -> None:
    rows, scores = index.search([["pudong"], ["no-such-term"], []], k=5)
    assert rows.shape == scores.shape == (3, 5)
    assert rows.dtype == np.int64 and scores.dtype == np.float32
    assert returned(rows[0]) == [6] and (rows[0, 1:] == -1).all() and (scores[0, 1:] == 0).all()
    assert (rows[1:] == -1).all() and (scores[1:] == 0).all()


def test_k_larger_than_the_corpus_is_padded(index: Segmented) -> None:
    rows, _ = index.search([["虹桥"]], k=50)
    assert returned(rows[0]) == [7, 2] and (rows[0, 2:] == -1).all()


def test_batch_search_equals_searching_one_query_at_a_time(
    index: Segmented, analyzer: Analyzer
) -> None:
    queries = [analyzer.terms(q) for q in ["青浦 digital", "虹桥", "", "policy 政策", "zzz"] * 30]
    rows, scores = index.search(queries, k=4)
    for i, query in enumerate(queries):
        one_rows, one_scores = index.search([query], k=4)
        np.testing.assert_array_equal(rows[i], one_rows[0])
        np.testing.assert_array_equal(scores[i], one_scores[0])


def test_tombstoned_rows_are_never_returned_nor_counted(doc_terms: list[list[str]]) -> None:
    live = np.ones(len(doc_terms), dtype=bool)
    live[[2, 7]] = False  # both 虹桥 documents
    tombstoned = Segmented(doc_terms, live)
    queries = [terms for terms in doc_terms] + [["虹桥"], ["hongqiao"]]
    rows, _ = tombstoned.search(queries, k=len(doc_terms))
    assert not set(rows.ravel().tolist()) & {2, 7}
    assert (rows[-2] == -1).all()
    # Statistics are those of a corpus without the tombstones: same scores as an index that
    # never had them (whose rows are renumbered).
    kept = np.flatnonzero(live)
    compact = Segmented([doc_terms[i] for i in kept], per_segment=len(doc_terms))
    compact_rows, compact_scores = compact.search(queries, k=len(doc_terms))
    _, scores = tombstoned.search(queries, k=len(doc_terms))
    np.testing.assert_array_equal(
        rows, np.where(compact_rows >= 0, kept[np.maximum(compact_rows, 0)], -1)
    )
    np.testing.assert_allclose(scores, compact_scores, rtol=1e-6)


def test_allowed_mask_restricts_results_without_changing_scores(
    index: Segmented, analyzer: Analyzer
) -> None:
    query = [analyzer.terms("青浦 Qingpu 虹桥 Hongqiao")]
    all_rows, all_scores = index.search(query, k=len(TEXTS))
    allowed = np.zeros(len(TEXTS), dtype=bool)
    allowed[[0, 2, 5, 6]] = True
    rows, scores = index.search(query, k=len(TEXTS), allowed=allowed)
    full = dict(zip(returned(all_rows[0]), all_scores[0].tolist(), strict=False))
    assert set(returned(rows[0])) == {r for r in full if allowed[r]}
    for row, score in zip(returned(rows[0]), scores[0].tolist(), strict=False):
        assert score == full[row]
    nothing, _ = index.search(query, k=3, allowed=np.zeros(len(TEXTS), dtype=bool))
    assert (nothing == -1).all()


def test_scores_match_a_brute_force_bm25(index: Segmented, doc_terms: list[list[str]]) -> None:
    queries = [["青浦", "虹桥", "虹桥"], ["develop", "qingpu"], ["政策", "polici", "浦东新区"]]
    rows, scores = index.search(queries, k=len(doc_terms))
    live = np.ones(len(doc_terms), dtype=bool)
    for q, query in enumerate(queries):
        expected = reference_scores(doc_terms, live, query)
        got = np.zeros(len(doc_terms))
        got[rows[q][rows[q] >= 0]] = scores[q][rows[q] >= 0]
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        assert set(returned(rows[q])) == set(np.flatnonzero(expected > 0).tolist())
        assert (np.diff(scores[q]) <= 0).all()


token_lists = st.lists(st.lists(st.sampled_from("abcdefgh"), max_size=12), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(
    docs=token_lists,
    data=st.data(),
    k1=st.sampled_from([1.2, 1.5]),
    b=st.sampled_from([0.5, 0.75, 1.0]),
)
def test_search_equals_brute_force_bm25_for_any_corpus_and_masks(
    docs: list[list[str]], data: st.DataObject, k1: float, b: float
) -> None:
    n = len(docs)
    live = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    allowed = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    query = data.draw(st.lists(st.sampled_from("abcdefghz"), max_size=5))
    k = data.draw(st.integers(min_value=1, max_value=n + 2))
    per_segment = data.draw(st.integers(min_value=1, max_value=n))
    idx = Segmented(docs, live, per_segment=per_segment, k1=k1, b=b)
    rows, scores = idx.search([query], k=k, allowed=allowed)

    expected = np.zeros(n)
    has_terms = any(docs[i] for i in range(n) if live[i])
    if has_terms:
        expected = np.where(allowed, reference_scores(docs, live, query, k1, b), 0.0)
    eligible = np.flatnonzero(expected > 0)
    got = returned(rows[0])
    assert len(got) == min(k, len(eligible))
    assert set(got) <= set(eligible.tolist())
    # Top-k by value (robust to float ties): the returned scores are the k largest expected.
    np.testing.assert_allclose(
        scores[0][: len(got)], np.sort(expected[eligible])[::-1][: len(got)], rtol=1e-5
    )
    np.testing.assert_allclose(scores[0][: len(got)], expected[got], rtol=1e-5)
    assert (rows[0][len(got) :] == -1).all() and (scores[0][len(got) :] == 0).all()


def test_scores_equal_bm25s_own_index() -> None:
    docs = [["a", "b", "a"], ["b", "c"], ["c", "c", "c", "d"], ["a"], ["e", "b", "d", "d"]]
    ours = Segmented(docs, per_segment=2, k1=1.2, b=0.6)
    theirs = bm25s.BM25(k1=1.2, b=0.6, method="lucene")
    theirs.index(docs, show_progress=False)
    for query in [["a"], ["b", "d"], ["c", "a", "e"], ["d", "d"]]:
        rows, scores = ours.search([query], k=len(docs))
        got = np.zeros(len(docs), dtype=np.float32)
        got[rows[0][rows[0] >= 0]] = scores[0][rows[0] >= 0]
        np.testing.assert_allclose(got, theirs.get_scores(query), rtol=1e-6)


def test_ties_are_broken_by_lower_row() -> None:
    docs = [["x"], ["y"], ["x"], ["x"], ["y"], ["x"]]
    rows, scores = Segmented(docs, per_segment=4).search([["x"]], k=3)
    assert returned(rows[0]) == [0, 2, 3]
    assert scores[0][0] == scores[0][1] == scores[0][2] > 0


def test_postings_round_trip_through_plain_files(doc_terms: list[list[str]], tmp_path: Path
                                                 ) -> None:
    built = Postings.build(doc_terms, extra_terms=["仅句子"])
    built.save(tmp_path)
    loaded = Postings.load(tmp_path)
    assert list(loaded.vocab) == list(built.vocab) and loaded.term_id("仅句子") is not None
    for name in ("indptr", "rows", "tfs", "lengths"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(built, name))
    assert loaded.lengths.tolist() == [len(t) for t in doc_terms]
    # Plain files only: every array opens without pickle, the rest is JSON.
    for path in tmp_path.rglob("*"):
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)
        else:
            assert path.suffix == ".json", path


def test_merged_postings_equal_postings_built_from_the_kept_rows(
    doc_terms: list[list[str]]
) -> None:
    first, second = doc_terms[:5], doc_terms[5:]
    drop = {1, 6}  # one row of each part is gone
    maps, row = [], 0
    for offset, part in ((0, first), (5, second)):
        new = np.full(len(part), -1, np.int64)
        for i in range(len(part)):
            if offset + i not in drop:
                new[i] = row
                row += 1
        maps.append(new)
    merged = Postings.merge([(Postings.build(first), maps[0]), (Postings.build(second),
                                                                maps[1])])
    kept = [t for i, t in enumerate(doc_terms) if i not in drop]
    direct = Postings.build(kept)
    assert merged.lengths.tolist() == direct.lengths.tolist()
    for term in direct.vocab:
        got = merged.postings(merged.term_id(term))  # type: ignore[arg-type]
        want = direct.postings(direct.term_id(term))  # type: ignore[arg-type]
        assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist()


def test_load_refuses_inconsistent_postings(doc_terms: list[list[str]], tmp_path: Path) -> None:
    Postings.build(doc_terms).save(tmp_path)
    (tmp_path / "vocab.json").write_text('["only"]', encoding="utf-8")
    with pytest.raises(ValueError, match="inconsistent"):
        Postings.load(tmp_path)


def test_nothing_to_search_finds_nothing() -> None:
    for docs in ([["a"], ["b"]], [[], []]):
        rows, _ = Segmented(docs, np.zeros(len(docs), bool)).search([["a"], ["b"]], k=2)
        assert (rows == -1).all()
