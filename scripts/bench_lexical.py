"""Keyword search options for a segmented archive, on the same terms and queries, in one run:

  qiao      per-segment postings with the whole index's statistics (what Qiao uses)
  bm25s     one bm25s index over everything (what Qiao used before segments): a commit of any
            size rebuilds it
  tantivy   one tantivy index (Rust, block-max WAND), fed Qiao's own terms pre-tokenized

Quality: BM25-only hit@1 on the XQuAD dev split (en→en, zh→zh), same passages and terms.
Speed: an archive of `--passages` synthetic passages (copies of the XQuAD passages' term lists,
numbers permuted per copy) cut into segments as merges would leave it; build time, the cost of
one one-document commit, and query latency p50/p99 (single thread) for XQuAD questions.

    .venv/bin/python scripts/bench_lexical.py [--passages 200000] [--json reports/lexical.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import bm25s
import numpy as np
import tantivy

from index import (
    Analyzer,
    ChunkPlan,
    IndexSettings,
    Postings,
    SegmentTerms,
    bm25_top_k,
    load_xquad,
    passages_for,
)

REPO = Path(__file__).resolve().parents[1]
K = 10
SEGMENT_ROWS = 250_000  # the largest segment a merge makes


class NoModel:
    """Token counting for the chunker only (a character estimate): no model needed here."""

    max_tokens = 512

    def count_tokens(self, texts: list[str], *, query: bool = False) -> list[int]:
        return [len(t) // 2 + 8 for t in texts]


def xquad_passages(shared: Path, analyzer: Analyzer) -> tuple[list[tuple[str, int, int]],
                                                             list[list[str]], object]:
    data = load_xquad(shared / "xquad")
    plan = ChunkPlan.from_settings(IndexSettings())
    spans, terms = [], []
    for doc in data.documents:
        for p in passages_for(doc, NoModel(), plan):  # type: ignore[arg-type]
            spans.append((doc.doc_id, p.start, p.end))
            terms.append(analyzer.terms(p.text))
    return spans, terms, data


class Qiao:
    name = "qiao"

    def __init__(self, docs: Sequence[Sequence[str]]) -> None:
        self.parts = [Postings.build(docs[i:i + SEGMENT_ROWS])
                      for i in range(0, len(docs), SEGMENT_ROWS)]
        self.cuts = list(range(0, len(docs), SEGMENT_ROWS))
        self.n = len(docs)
        self.length = sum(len(d) for d in docs)

    def add_one(self, doc: Sequence[str]) -> None:
        Postings.build([doc])  # a one-document commit writes a one-document segment

    def top(self, query: Sequence[str]) -> list[int]:
        found: dict[int, float] = {}
        segments = [SegmentTerms(p, None, None) for p in self.parts]
        for cut, (rows, scores) in zip(self.cuts, bm25_top_k(segments, query, K, self.n,
                                                             self.length), strict=True):
            found.update(zip((cut + rows).tolist(), scores.tolist(), strict=True))
        return [r for r, _ in sorted(found.items(), key=lambda x: (-x[1], x[0]))[:K]]


class Bm25s:
    name = "bm25s"

    def __init__(self, docs: Sequence[Sequence[str]]) -> None:
        self.docs = docs
        self.index = bm25s.BM25(method="lucene")
        self.index.index([list(d) for d in docs], show_progress=False)

    def add_one(self, doc: Sequence[str]) -> None:
        Bm25s([*self.docs, doc])  # bm25s has no update: the whole index is built again

    def top(self, query: Sequence[str]) -> list[int]:
        known = [t for t in query if t in self.index.vocab_dict]
        if not known:
            return []
        scores = self.index.get_scores(known)
        top = np.argsort(-scores, kind="stable")[:K]
        return [int(r) for r in top if scores[r] > 0]


class Tantivy:
    name = "tantivy"

    def __init__(self, docs: Sequence[Sequence[str]]) -> None:
        self.dir = tempfile.mkdtemp(prefix="qiao-tantivy-")
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("terms", stored=False, tokenizer_name="qiao")
        builder.add_unsigned_field("row", stored=True, fast=True)
        self.schema = builder.build()
        self.index = tantivy.Index(self.schema, path=self.dir)
        self.index.register_tokenizer(
            "qiao", tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build())
        writer = self.index.writer(heap_size=256_000_000, num_threads=1)
        for row, terms in enumerate(docs):
            writer.add_document(self._document(terms, row))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()
        self.n = len(docs)

    def add_one(self, doc: Sequence[str]) -> None:
        writer = self.index.writer(heap_size=50_000_000, num_threads=1)
        writer.add_document(self._document(doc, self.n))
        writer.commit()
        writer.wait_merging_threads()

    @staticmethod
    def _document(terms: Sequence[str], row: int) -> tantivy.Document:
        document = tantivy.Document()
        document.add_text("terms", " ".join(terms))
        document.add_unsigned("row", row)  # a plain int would be taken for a signed one
        return document

    def top(self, query: Sequence[str]) -> list[int]:
        clauses = [(tantivy.Occur.Should, tantivy.Query.term_query(self.schema, "terms", t))
                   for t in query]
        if not clauses:
            return []
        hits = self.searcher.search(tantivy.Query.boolean_query(clauses), K).hits
        return [self.searcher.doc(address)["row"][0] for _, address in hits]


def hit_at_1(system: Callable[[Sequence[Sequence[str]]], object],
             spans: list[tuple[str, int, int]], terms: list[list[str]], data: object,
             analyzer: Analyzer) -> dict[str, float]:
    out = {}
    for lang in ("en", "zh"):
        own = [i for i, (doc_id, _, _) in enumerate(spans) if doc_id.endswith(f".{lang}")]
        index = system([terms[i] for i in own])
        hits = 0
        questions = data.questions[lang]  # type: ignore[attr-defined]
        for q in questions:
            top = index.top(analyzer.terms(q.text))  # type: ignore[attr-defined]
            if top:
                doc_id, start, end = spans[own[top[0]]]
                hits += doc_id == q.doc_id and start <= q.start and q.end <= end
        out[f"{lang}→{lang}"] = round(hits / len(questions), 3)
    return out


def archive(terms: list[list[str]], n: int, seed: int) -> list[list[str]]:
    out: list[list[str]] = []
    copy = 0
    while len(out) < n:
        digits = list("0123456789")
        random.Random(seed * 1_000_003 + copy).shuffle(digits)
        table = str.maketrans("0123456789", "".join(digits))
        out += [[t.translate(table) for t in doc] for doc in terms]
        copy += 1
    return out[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=200_000)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    analyzer = Analyzer()
    spans, terms, data = xquad_passages(args.shared, analyzer)
    docs = archive(terms, args.passages, 7)
    questions = [q.text for pair in zip(data.questions["en"], data.questions["zh"],  # type: ignore[attr-defined]
                                        strict=True) for q in pair][: args.queries]
    queries = [analyzer.terms(q) for q in questions]
    report = {}
    for system in (Qiao, Bm25s, Tantivy):
        quality = hit_at_1(system, spans, terms, data, analyzer)
        t0 = time.perf_counter()
        index = system(docs)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        index.add_one(terms[0])
        one = time.perf_counter() - t0
        times = []
        for query in queries:
            t0 = time.perf_counter()
            index.top(query)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        report[system.name] = {
            **quality, "build_s": round(built, 1), "one_doc_commit_s": round(one, 3),
            "query_p50_ms": round(statistics.median(times), 2),
            "query_p99_ms": round(times[int(len(times) * 0.99)], 2),
        }
        print(system.name, report[system.name], flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"passages": args.passages, **report}, indent=2))


if __name__ == "__main__":
    main()
