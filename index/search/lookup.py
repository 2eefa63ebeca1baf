"""Translation lookup: the published translation of a sentence or passage.

The alignment first: the text's sentences are found in their own language (an exact match of
the text, else the nearest sentence vector among the best passages of a search for the whole
text), and each found sentence's alignment bead leads to its translation in the other version.
Only when that fails (no such sentence, or it has no partner) does a cross-lingual search
answer, with the best sentence of its top passage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from index.align import alignment_confidence
from index.embed import Matrix
from index.records import LANGS, Lang, Span
from index.search.rank import Filters, SearchParams, search_rows
from index.store.segment import sized_sentence_links
from index.store.snapshot import Snapshot

Method = Literal["alignment", "search"]
SOURCE_PASSAGES = 5  # passages of the text's own language whose sentences are matched
SEARCH_PASSAGES = 10  # passages of a cross-lingual search whose sentences are compared
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Translation:
    """`source` in document `source_doc` (the text as found in its own language; None when it
    was not found) and its translation `translation` in document `doc_id`. `method` says how
    it was found; `confidence` how likely it is the published translation."""

    doc_id: str
    lang: Lang
    translation: Span
    method: Method
    confidence: float
    source_doc: str | None = None
    source: Span | None = None


def _plain(text: str) -> str:
    return _SPACE.sub("", text)


def lookup_rows(
    snapshot: Snapshot, text: str, sentences: Sequence[str], vectors: Matrix,
    terms: Sequence[str], source_lang: Lang, target: Lang, params: SearchParams,
) -> Translation | None:
    """The translation of `text` (split into `sentences`, whose query vectors are `vectors`;
    row 0 is the whole text's) into `target`."""
    found = _through_alignment(snapshot, text, sentences, vectors, terms, source_lang, params)
    if found is not None:
        return found
    return _through_search(snapshot, text, vectors[0], terms, source_lang, target, params)


def _through_alignment(
    snapshot: Snapshot, text: str, sentences: Sequence[str], vectors: Matrix,
    terms: Sequence[str], source_lang: Lang, params: SearchParams,
) -> Translation | None:
    ranked = search_rows(snapshot, vectors[:1], [terms], [source_lang], SOURCE_PASSAGES,
                         source_lang, "hybrid", Filters(), params)[0]
    queries = vectors[1:] if len(sentences) > 1 else vectors[:1]
    wanted = [_plain(s) for s in sentences]
    # The document (of the best passages) whose sentences match the text's best.
    matched = {key: _matches(snapshot, key, queries, wanted)
               for key in dict.fromkeys(snapshot.key_of_row(row)[0] for row, _ in ranked)}
    if not matched:
        return None
    key = max(matched, key=lambda k: matched[k][1])
    chosen = matched[key][0]
    seg, doc = key
    segment = snapshot.segments[seg]
    own = segment.sentences_of(doc)
    links = snapshot.links(key)
    other = snapshot.key_of(links.counterpart_doc or "")
    if other is None:
        return None
    sentence_links = sized_sentence_links(links, len(own))
    rel = [s - own.start for s in chosen]
    linked = [r for r in rel if sentence_links[r, 0] >= 0]
    if not linked:
        return None
    other_segment = snapshot.segments[other[0]]
    other_doc = other_segment.document(other[1])
    spans = np.asarray(other_segment.sentences[other_segment.sentences_of(other[1]).start:
                                               other_segment.sentences_of(other[1]).stop],
                       np.int64)
    lo = int(min(sentence_links[r, 0] for r in linked))
    hi = int(max(sentence_links[r, 1] for r in linked))
    t0, t1 = int(spans[lo, 0]), int(spans[hi - 1, 1])
    score = float(np.mean([sentence_links[r, 2] for r in linked]))
    own_text = segment.texts.text(doc)
    s0 = int(segment.sentences[min(chosen), 0])
    s1 = int(segment.sentences[max(chosen), 1])
    return Translation(
        other_doc.doc_id, other_doc.lang, Span(t0, t1, other_doc.text[t0:t1]), "alignment",
        round(alignment_confidence(score, len(linked) / len(rel)), 4),
        segment.doc_ids[doc], Span(s0, s1, own_text[s0:s1]),
    )


def _matches(snapshot: Snapshot, key: tuple[int, int], queries: Matrix,
             wanted: Sequence[str]) -> tuple[list[int], float]:
    """For each text sentence, the best-matching sentence of document `key` (an exact match of
    the text, else the nearest vector): their segment numbers, and the summed match score
    (an exact match counts 2, above any cosine)."""
    seg, doc = key
    segment = snapshot.segments[seg]
    own = segment.sentences_of(doc)
    if not len(own):
        return [], -np.inf
    sims = segment.sentence_matrix(slice(own.start, own.stop)) @ queries.T
    doc_text = segment.texts.text(doc)
    plain = [_plain(doc_text[int(a):int(b)]) for a, b in segment.sentences[own.start:own.stop]]
    chosen, total = [], 0.0
    for q, target in enumerate(wanted):
        exact = [i for i, p in enumerate(plain) if p == target]
        best = exact[0] if exact else int(np.argmax(sims[:, q]))
        chosen.append(own.start + best)
        total += 2.0 if exact else float(sims[best, q])
    return sorted(set(chosen)), total


def _through_search(
    snapshot: Snapshot, text: str, vector: Matrix, terms: Sequence[str], source_lang: Lang,
    target: Lang, params: SearchParams,
) -> Translation | None:
    """The sentence nearest to the text (cosine of sentence vectors) among the sentences of the
    best passages of a cross-lingual search."""
    ranked = search_rows(snapshot, vector[None, :], [terms], [source_lang], SEARCH_PASSAGES,
                         target, "hybrid", Filters(), params)[0]
    best: tuple[float, int, int] | None = None  # (cosine, row, sentence)
    for row, _ in ranked:
        (seg, _doc), _ = snapshot.key_of_row(row)
        segment = snapshot.segments[seg]
        local = row - int(snapshot.base[seg])
        first, end = (int(x) for x in segment.passage_sentences[local])
        if end <= first:
            continue
        sims = segment.sentence_matrix(slice(first, end)) @ vector
        j = int(np.argmax(sims))
        if best is None or float(sims[j]) > best[0]:
            best = (float(sims[j]), row, first + j)
    if best is None:
        return None
    similarity, row, sentence = best
    (seg, doc), _ = snapshot.key_of_row(row)
    segment = snapshot.segments[seg]
    a, b = (int(x) for x in segment.sentences[sentence])
    lang: Lang = LANGS[int(segment.langs[doc])]
    # A cosine across languages is no alignment score; the confidence here is the same curve
    # over it, without a bead's evidence behind it.
    return Translation(segment.doc_ids[doc], lang, Span(a, b, segment.texts.text(doc)[a:b]),
                       "search", round(alignment_confidence(similarity, 1.0), 4))
