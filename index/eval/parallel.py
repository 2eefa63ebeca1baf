"""Counterparts and translation lookup measured on parallel news with gold sentence alignment.

`../shared/parallel-dev` holds articles in English and Chinese (one sentence per line) with a
gold 1:1 sentence alignment given as exact offsets. Two measures:

- counterparts: for every passage, its counterpart span in the other version against the gold
  partners of the passage's sentences. Recall: share of gold partners of which the counterpart
  covers at least half; precision: share of the counterpart's characters inside gold partners
  of the passage's sentences (both summed over all passages).
- lookup: each gold sentence is looked up in the other language (`index.search.lookup`); a
  hit when the returned translation and the gold partner overlap by at least half of the
  longer of the two.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.embed import Embedder
from index.errors import QiaoError
from index.indexes.analyze import Analyzer
from index.ingest.langdetect import detect_lang
from index.records import Document, Lang, PreparedDocument
from index.search.hits import counterpart_of
from index.search.lookup import lookup_rows
from index.search.rank import SearchParams
from index.store.manifest import BuildInfo
from index.store.realign import realign_releases, without_counterparts
from index.store.snapshot import Snapshot

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class GoldPair:
    """One sentence and its translation: spans in the English and Chinese documents."""

    release_id: str
    en: Span
    zh: Span


@dataclass(frozen=True, slots=True)
class ParallelSet:
    documents: list[Document]
    pairs: list[GoldPair]


def _release_id(raw: str) -> str:
    return raw.replace(":", "-")  # ids are path-safe in Qiao


def load_parallel(directory: Path, variant: str = "zh-cn") -> ParallelSet:
    """Read docs.{variant}.jsonl and gold.{variant}.jsonl."""
    try:
        doc_lines = (directory / f"docs.{variant}.jsonl").read_text(encoding="utf-8").splitlines()
        gold_lines = (directory / f"gold.{variant}.jsonl").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise QiaoError(f"{exc.filename} not found: pass the parallel-dev folder") from None
    documents = []
    for line in doc_lines:
        record = json.loads(line)
        release = _release_id(record["release_id"])
        documents.append(Document(f"{release}.{record['lang']}", release, record["lang"],
                                  record["title"], record["text"]))
    pairs = []
    for line in gold_lines:
        g = json.loads(line)
        pairs.append(GoldPair(_release_id(g["release_id"]), (g["en_start"], g["en_end"]),
                              (g["zh_start"], g["zh_end"])))
    return ParallelSet(documents, pairs)


def _overlap(a: Span, b: Span) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


@dataclass(frozen=True, slots=True)
class CounterpartQuality:
    passages: int
    with_counterpart: int
    recall: float
    precision: float


def counterpart_quality(snapshot: Snapshot, pairs: Sequence[GoldPair]) -> CounterpartQuality:
    """See the module docstring."""
    by_doc: dict[str, list[tuple[Span, Span]]] = {}
    for p in pairs:
        by_doc.setdefault(f"{p.release_id}.en", []).append((p.en, p.zh))
        by_doc.setdefault(f"{p.release_id}.zh", []).append((p.zh, p.en))
    partners_total = partners_covered = 0
    chars_total = chars_gold = 0
    passages = with_counterpart = 0
    for doc_id, links in by_doc.items():
        key = snapshot.key_of(doc_id)
        if key is None:
            continue
        for row in snapshot.rows_of(key):
            seg, local = (int(x[0]) for x in snapshot.locate(np.array([row])))
            start, end = (int(x) for x in snapshot.segments[seg].passages[local])
            partners = [other for own, other in links if _overlap(own, (start, end)) > 0]
            if not partners:
                continue
            passages += 1
            counterpart = counterpart_of(snapshot, row)
            partners_total += len(partners)
            if counterpart is None:
                continue
            with_counterpart += 1
            span = (counterpart.start, counterpart.end)
            partners_covered += sum(1 for p in partners if 2 * _overlap(p, span) >= p[1] - p[0])
            chars_total += span[1] - span[0]
            chars_gold += sum(_overlap(p, span) for p in partners)
    return CounterpartQuality(passages, with_counterpart,
                              partners_covered / max(1, partners_total),
                              chars_gold / max(1, chars_total))


def lookup_quality(
    snapshot: Snapshot, embedder: Embedder, analyzer: Analyzer, data: ParallelSet,
    directions: Sequence[tuple[Lang, Lang]] = (("en", "zh"), ("zh", "en")),
    params: SearchParams | None = None,
) -> dict[str, float]:
    """lookup@1 per direction ("en→zh", "zh→en"): see the module docstring."""
    texts = {d.doc_id: d.text for d in data.documents}
    out: dict[str, float] = {}
    for source, target in directions:
        queries, golds = [], []
        for p in data.pairs:
            own = p.en if source == "en" else p.zh
            other = p.zh if source == "en" else p.en
            queries.append(texts[f"{p.release_id}.{source}"][own[0]:own[1]])
            golds.append((f"{p.release_id}.{target}", other))
        vectors = embedder.embed_queries(queries)
        terms = analyzer.terms_batch(queries)
        langs: list[Lang] = [detect_lang(q) for q in queries]
        hits = 0
        for i, query in enumerate(queries):
            found = lookup_rows(snapshot, query, [query], vectors[i:i + 1], terms[i],
                                langs[i], target, params or SearchParams())
            if found is None:
                continue
            span = (found.translation.start, found.translation.end)
            gold_doc, gold = golds[i]
            longer = max(span[1] - span[0], gold[1] - gold[0])
            hits += found.doc_id == gold_doc and 2 * _overlap(span, gold) >= longer
        out[f"{source}→{target}"] = hits / max(1, len(queries))
    return out


def prepared_parallel(
    data: ParallelSet, prepare: Callable[[Sequence[Document]], list[PreparedDocument]],
) -> dict[str, PreparedDocument]:
    """Every document prepared, both versions of each article aligned."""
    prepared = {p.doc_id: p for p in prepare(data.documents)}
    return realign_releases(prepared, {d.release_id for d in data.documents})


def parallel_build_info(embedder: Embedder, analyzer: Analyzer) -> BuildInfo:
    return BuildInfo(embedder.model_id, embedder.dim, {}, analyzer.fingerprint)


def snapshot_of(docs: Sequence[PreparedDocument], info: BuildInfo, lang: Lang | None = None
                ) -> Snapshot:
    """An in-memory index of `docs` (only `lang`, without counterparts, when given)."""
    if lang is not None:
        docs = [without_counterparts(d) for d in docs if d.document.lang == lang]
    return Snapshot.from_prepared(list(docs), info, ann_min_rows=1 << 30)
