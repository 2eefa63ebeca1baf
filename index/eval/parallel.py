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
from itertools import pairwise
from pathlib import Path

import numpy as np
import numpy.typing as npt

from index.align import LINK_FEATURES, link_features
from index.embed import Embedder
from index.errors import QiaoError
from index.indexes.analyze import Analyzer
from index.ingest.langdetect import detect_lang
from index.records import Document, Lang, PreparedDocument
from index.search.hits import counterpart_of
from index.search.lookup import MarginModel, lookup_rows
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
    """See the module docstring. With sentences dropped from one version: the mean confidence
    of counterparts of passages all of whose sentences keep their partner (`intact`), of those
    that lost some, and of those that lost all (None counts 0), and how many passages that lost
    all their partners were still shown at confidence ≥ 0.5."""

    passages: int
    with_counterpart: int
    recall: float
    precision: float
    confidence_intact: float = float("nan")
    confidence_partly_lost: float = float("nan")
    confidence_all_lost: float = float("nan")
    all_lost: int = 0
    all_lost_confident: int = 0


def counterpart_quality(snapshot: Snapshot, pairs: Sequence[GoldPair],
                        lost: Sequence[GoldPair] = ()) -> CounterpartQuality:
    """See the module docstring and `CounterpartQuality`; `lost` are pairs whose Chinese
    sentence was dropped (their English spans index the English documents)."""
    lost_en: dict[str, list[Span]] = {}
    for p in lost:
        lost_en.setdefault(f"{p.release_id}.en", []).append(p.en)
    confidences: dict[str, list[float]] = {"intact": [], "partly": [], "all": []}
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
            orphans = [s for s in lost_en.get(doc_id, []) if _overlap(s, (start, end)) > 0]
            counterpart = counterpart_of(snapshot, row)
            confidence = 0.0 if counterpart is None else counterpart.confidence or 0.0
            if orphans:
                confidences["partly" if partners else "all"].append(confidence)
            elif partners:
                confidences["intact"].append(confidence)
            if not partners:
                continue
            passages += 1
            partners_total += len(partners)
            if counterpart is None:
                continue
            with_counterpart += 1
            span = (counterpart.start, counterpart.end)
            partners_covered += sum(1 for p in partners if 2 * _overlap(p, span) >= p[1] - p[0])
            chars_total += span[1] - span[0]
            chars_gold += sum(_overlap(p, span) for p in partners)
    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else float("nan")

    return CounterpartQuality(passages, with_counterpart,
                              partners_covered / max(1, partners_total),
                              chars_gold / max(1, chars_total),
                              mean(confidences["intact"]), mean(confidences["partly"]),
                              mean(confidences["all"]), len(confidences["all"]),
                              sum(c >= 0.5 for c in confidences["all"]))


@dataclass(frozen=True, slots=True)
class LookupOutcome:
    """One looked-up sentence: how it was found (None: nothing returned), the confidence
    given, and whether the translation returned is the gold one."""

    method: str | None
    confidence: float
    right: bool


def lookup_quality(
    snapshot: Snapshot, embedder: Embedder, analyzer: Analyzer, data: ParallelSet,
    directions: Sequence[tuple[Lang, Lang]] = (("en", "zh"), ("zh", "en")),
    params: SearchParams | None = None, margin_model: MarginModel | None = None,
) -> dict[str, list[LookupOutcome]]:
    """Every gold sentence looked up, per direction ("en→zh", "zh→en"): see the module
    docstring; lookup@1 is the share of outcomes that are right."""
    texts = {d.doc_id: d.text for d in data.documents}
    out: dict[str, list[LookupOutcome]] = {}
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
        outcomes = []
        for i, query in enumerate(queries):
            found = lookup_rows(snapshot, query, [query], vectors[i:i + 1], terms[i],
                                langs[i], target, params or SearchParams(), margin_model)
            if found is None:
                outcomes.append(LookupOutcome(None, 0.0, False))
                continue
            span = (found.translation.start, found.translation.end)
            gold_doc, gold = golds[i]
            longer = max(span[1] - span[0], gold[1] - gold[0])
            right = found.doc_id == gold_doc and 2 * _overlap(span, gold) >= longer
            outcomes.append(LookupOutcome(found.method, found.confidence, right))
        out[f"{source}→{target}"] = outcomes
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


def lost_pairs(data: ParallelSet, dropped: ParallelSet) -> list[GoldPair]:
    """The pairs of `data` whose Chinese sentence `with_dropped_sentences` dropped."""
    kept = {(p.release_id, p.en) for p in dropped.pairs}
    return [p for p in data.pairs if (p.release_id, p.en) not in kept]


def with_dropped_sentences(data: ParallelSet, share: float = 0.2, seed: int = 0) -> ParallelSet:
    """A copy of `data` whose Chinese versions miss a run of consecutive sentences (about
    `share` of each article, at a random place): versions that are not parallel there. The gold
    pairs of the dropped sentences are left out; the others are moved to the new offsets."""
    rng = np.random.default_rng(seed)
    by_release: dict[str, list[GoldPair]] = {}
    for p in data.pairs:
        by_release.setdefault(p.release_id, []).append(p)
    documents, pairs = [], []
    for doc in data.documents:
        own = sorted(by_release.get(doc.release_id, []), key=lambda p: p.zh)
        if doc.lang != "zh" or len(own) < 4:
            documents.append(doc)
            if doc.lang == "zh":
                pairs.extend(own)
            continue
        run = max(1, round(share * len(own)))
        first = int(rng.integers(0, len(own) - run + 1))
        cut = (own[first].zh[0], own[first + run - 1].zh[1])
        removed = cut[1] - cut[0]
        documents.append(Document(doc.doc_id, doc.release_id, doc.lang, doc.title,
                                  doc.text[:cut[0]] + doc.text[cut[1]:]))
        for i, p in enumerate(own):
            if first <= i < first + run:
                continue
            shift = removed if p.zh[0] >= cut[1] else 0
            pairs.append(GoldPair(p.release_id, p.en, (p.zh[0] - shift, p.zh[1] - shift)))
    return ParallelSet(documents, pairs)


@dataclass(frozen=True, slots=True)
class LinkExamples:
    """Sentence links of English sentences: their features (`index.align.link_features`) and
    whether the link is right (it covers at least half of the sentence's gold partner, which
    exists)."""

    features: npt.NDArray[np.float64]
    correct: npt.NDArray[np.bool_]


def link_examples(docs: dict[str, PreparedDocument], data: ParallelSet) -> LinkExamples:
    """Every aligned English sentence of `docs`, judged against the gold pairs of `data`
    (a sentence whose partner was dropped is wrong wherever it links)."""
    gold: dict[str, list[GoldPair]] = {}
    for p in data.pairs:
        gold.setdefault(p.release_id, []).append(p)
    features, correct = [], []
    for release, pairs in gold.items():
        en, zh = docs.get(f"{release}.en"), docs.get(f"{release}.zh")
        if en is None or zh is None or not len(en.sentence_counterparts):
            continue
        links = en.sentence_counterparts
        rows = link_features(en.sentence_vectors, zh.sentence_vectors, links)
        for (_, a, b), (first, end, _), row in zip(en.sentence_spans.tolist(), links.tolist(),
                                                   rows, strict=True):
            if first < 0:
                continue
            linked = (int(zh.sentence_spans[int(first), 1]),
                      int(zh.sentence_spans[int(end) - 1, 2]))
            partners = [p.zh for p in pairs
                        if 2 * _overlap(p.en, (a, b)) >= min(b - a, p.en[1] - p.en[0])]
            features.append(row)
            correct.append(any(2 * _overlap(q, linked) >= q[1] - q[0] for q in partners))
    return LinkExamples(np.array(features, np.float64).reshape(-1, len(LINK_FEATURES)),
                        np.array(correct, bool))


_ENDS = "。！？；.!?"


def with_merged_sentences(data: ParallelSet, share: float = 0.2, seed: int = 0) -> ParallelSet:
    """A copy of `data` in which about `share` of the Chinese sentences are joined to the next
    one (the full stop becomes a comma, the line break a space: offsets do not move), as a
    translator joining two sentences into one would: two English sentences then translate one
    Chinese sentence. Gold pairs are unchanged."""
    rng = np.random.default_rng(seed)
    by_release: dict[str, list[GoldPair]] = {}
    for p in data.pairs:
        by_release.setdefault(p.release_id, []).append(p)
    documents = []
    for doc in data.documents:
        own = sorted(by_release.get(doc.release_id, []), key=lambda p: p.zh)
        if doc.lang != "zh":
            documents.append(doc)
            continue
        chars = list(doc.text)
        for p, following in pairwise(own):
            end = p.zh[1]
            between = doc.text[end:following.zh[0]]
            if rng.random() >= share or not between.isspace() or doc.text[end - 1] not in _ENDS:
                continue
            chars[end - 1] = "，"
            for i in range(end, following.zh[0]):
                chars[i] = " "
        documents.append(Document(doc.doc_id, doc.release_id, doc.lang, doc.title,
                                  "".join(chars)))
    return ParallelSet(documents, list(data.pairs))
