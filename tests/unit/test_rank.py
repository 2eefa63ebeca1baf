"""The ranking core without a model: `search_rows` over a hand-built snapshot.

Two aligned documents of one release (English and Chinese, three passages each), every passage
with its own orthogonal unit vector, so each expected score can be worked out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.records import LANGS, Document, PreparedDocument
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


def test_a_chinese_query_matches_english_passages_through_dictionary_glosses(
    snapshot: Snapshot,
) -> None:
    # 公园 is "park" in the dictionary, so BM25 finds the English park passage (row 2).
    glossed = rank(snapshot, unit(7), ["公园"], "zh", "en", mode="lexical")
    assert [row for row, _ in glossed] == [2]
    assert rank(snapshot, unit(7), ["公园"], "zh", "en", mode="lexical",
                params=SearchParams(gloss=False)) == []
    # In hybrid search it weighs glossed_lexical_weight (the vector points at the ferry).
    params = SearchParams(pivot=False, glossed_lexical_weight=0.2)
    hybrid = dict(rank(snapshot, unit(0), ["公园"], "zh", "en", params=params))
    assert hybrid[0] == pytest.approx(0.8) and hybrid[2] == pytest.approx(0.2)
    # An English query over Chinese passages is not glossed: nothing matches 'park'.
    assert rank(snapshot, unit(7), ["park"], "en", "zh", mode="lexical") == []


def test_filters_restrict_rows(snapshot: Snapshot) -> None:
    only_en = rank(snapshot, unit(4), [], "zh", "en", mode="dense")
    assert {row for row, _ in only_en} <= {0, 1, 2}
    none = search_rows(snapshot, unit(0)[None, :], [[]], ["en"], 5, None, "dense",
                       Filters(release_id="other"), SearchParams())[0]
    assert none == []


# -- restricting to the query's own language keeps the order -------------------------------------

WORDS = {"en": ["ferri", "bridg", "park", "metro", "fare", "school", "port", "tax"],
         "zh": ["渡轮", "大桥", "公园", "地铁", "票价", "学校", "港口", "税收"]}


def random_archive(seed: int, docs: int) -> Snapshot:
    """`docs` releases, each in English and Chinese, 2–4 passages per version, random unit
    vectors (partners close to each other) and random terms: the two languages compete for
    the unrestricted candidate lists."""
    rng = np.random.default_rng(seed)
    out = []
    for d in range(docs):
        n = int(rng.integers(2, 5))
        base = rng.standard_normal((n, DIM)).astype(np.float32)
        for lang in ("en", "zh"):
            pieces = [f"{lang} passage {d}.{i}." for i in range(n)]
            text = "\n\n".join(pieces)
            doc = Document(f"r{d}.{lang}", f"r{d}", lang, f"R{d}", text)  # type: ignore[arg-type]
            spans, pos = [], 0
            for piece in pieces:
                start = text.index(piece, pos)
                spans.append((start, start + len(piece)))
                pos = start + len(piece)
            noisy = base + 0.5 * rng.standard_normal(base.shape).astype(np.float32)
            vectors = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
            terms = [tuple(rng.choice(WORDS[lang], size=int(rng.integers(1, 4))).tolist())
                     for _ in range(n)]
            partner = f"r{d}.{'zh' if lang == 'en' else 'en'}"
            out.append(PreparedDocument(
                document=doc, content_hash=doc.content_hash, spans=np.array(spans, np.int64),
                vectors=vectors, terms=tuple(terms),
                sentence_spans=np.array([(i, s, e) for i, (s, e) in enumerate(spans)],
                                        np.int64),
                sentence_vectors=vectors.copy(), sentence_terms=tuple(terms),
                counterparts=np.array([[i, i + 1, 0.9] for i in range(n)], np.float64),
                counterpart_doc=partner,
            ))
    return Snapshot.from_prepared(out, BuildInfo("test", DIM, {}, ""), 1 << 30)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), docs=st.integers(3, 30), k=st.integers(1, 10),
       lang=st.sampled_from(["en", "zh"]), mode=st.sampled_from(["hybrid", "dense", "lexical"]),
       candidates=st.integers(2, 20))
def test_restricting_to_the_query_language_keeps_the_unrestricted_order(
    seed: int, docs: int, k: int, lang: str, mode: str, candidates: int,
) -> None:
    snap = random_archive(seed, docs)
    rng = np.random.default_rng(seed + 1)
    vector = rng.standard_normal(DIM).astype(np.float32)
    vector /= np.linalg.norm(vector)
    terms = rng.choice(WORDS[lang], size=2).tolist()
    params = SearchParams(candidates=candidates)
    restricted = [row for row, _ in rank(snap, vector, terms, lang, lang, mode, params, k)]
    everything = rank(snap, vector, terms, lang, None, mode, params, k=snap.n_rows)
    wanted = int(LANGS.index(lang))
    unrestricted = [row for row, _ in everything if int(snap.row_lang[row]) == wanted]
    assert all(int(snap.row_lang[row]) == wanted for row in restricted)
    shared = [row for row in restricted if row in set(unrestricted)]
    # The restricted results start with the unrestricted ones of that language, in order.
    assert restricted[:len(shared)] == shared == unrestricted[:len(shared)]
