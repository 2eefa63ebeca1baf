"""The parallel-news evaluation's own parts: reading the set, dropping sentences, counting."""

from __future__ import annotations

from pathlib import Path

import pytest

from index import GoldPair, load_parallel, with_dropped_sentences
from tests.conftest import SHARED

PARALLEL = SHARED / "parallel-dev"


@pytest.fixture(scope="module")
def parallel_dir() -> Path:
    if not (PARALLEL / "docs.zh-cn.jsonl").exists():
        pytest.skip(f"{PARALLEL} is not here")
    return PARALLEL


def _texts(pair: GoldPair, docs: dict[str, str]) -> tuple[str, str]:
    en = docs[f"{pair.release_id}.en"][pair.en[0]:pair.en[1]]
    zh = docs[f"{pair.release_id}.zh"][pair.zh[0]:pair.zh[1]]
    return en, zh


def test_gold_offsets_index_the_documents(parallel_dir: Path) -> None:
    data = load_parallel(parallel_dir, "zh-cn")
    docs = {d.doc_id: d.text for d in data.documents}
    assert len(data.pairs) > 500
    assert all(all(t.strip() for t in _texts(p, docs)) for p in data.pairs)


def test_dropped_copies_miss_a_run_of_chinese_sentences_and_keep_the_other_pairs(
    parallel_dir: Path,
) -> None:
    data = load_parallel(parallel_dir, "zh-cn")
    dropped = with_dropped_sentences(data, share=0.2, seed=1)
    before = {d.doc_id: d.text for d in data.documents}
    after = {d.doc_id: d.text for d in dropped.documents}
    kept = {_texts(p, after) for p in dropped.pairs}
    # Every kept pair reads the same text as before, at its new offsets.
    assert kept <= {_texts(p, before) for p in data.pairs}
    missing = len(data.pairs) - len(dropped.pairs)
    assert 0.1 * len(data.pairs) < missing < 0.3 * len(data.pairs)
    for doc_id, text in after.items():
        if doc_id.endswith(".en"):
            assert text == before[doc_id]
        else:
            assert len(text) <= len(before[doc_id])
