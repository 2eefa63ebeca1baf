"""Translation lookup: the published translation of a sentence or passage.

The alignment first: the text's sentences are found in their own language (an exact match of
the text, else the nearest sentence vector among the best passages of a search for the whole
text), and each found sentence's alignment bead leads to its translation in the other version.
Only when that fails (no such sentence, or it has no partner) does a cross-lingual search
answer, with the best sentence of its top passage.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

import numpy as np

from index.align import LINK_CONFIDENT, MARGIN_NEIGHBOURS
from index.embed import Matrix
from index.indexes.analyze import english_terms
from index.records import LANGS, Lang, Span
from index.search.lexicon import Lexicon, default_lexicon
from index.search.rank import Filters, SearchParams, search_rows
from index.store.segment import sized_sentence_links
from index.store.snapshot import Snapshot

Method = Literal["alignment", "search"]
SOURCE_PASSAGES = 5  # passages of the text's own language whose sentences are matched
SEARCH_PASSAGES = 10  # passages of a cross-lingual search whose sentences are compared
_SPACE = re.compile(r"\s+")
# The cosine (query vector of a sentence against the stored vector of a sentence) above which
# two sentences are taken as the same text, for multilingual-e5-small: the same sentence scores
# ≥ 0.907 (en) / 0.963 (zh) in 99% of cases, the nearest other sentence of the same news
# ≤ 0.901 / 0.950 (parallel-dev, 300 sentences each).
SAME_SENTENCE: dict[str, float] = {"en": 0.905, "zh": 0.955}
# ...and the share of characters they have in common (difflib's ratio): a sentence with a word
# or two changed keeps ~0.9, another sentence of the same news ~0.3.
SAME_CHARACTERS = 0.6


@dataclass(frozen=True, slots=True)
class MarginModel:
    """P(the nearest sentence of a cross-lingual search is the translation | its margin over
    the next best), a logistic curve (`scripts/eval_parallel.py --fit-margin` fits it)."""

    slope: float
    midpoint: float

    def probability(self, margin: float) -> float:
        z = max(-50.0, min(50.0, self.slope * (margin - self.midpoint)))
        return 1.0 / (1.0 + math.exp(-z))


# Characters of a Chinese translation per character of English (the median over the gold
# sentence pairs of parallel-dev: 0.34 zh-CN, 0.35 zh-TW), and how much a length that is off
# by a factor e costs against the cosine (chosen on zh-CN: lookup@1 0.910 → 0.935 en→zh,
# 0.932 → 0.952 zh→en; on zh-TW 0.907 → 0.926 and 0.977 → 0.981).
ZH_CHARS_PER_EN_CHAR = 0.34
LENGTH_WEIGHT = 0.02
# How much full dictionary agreement (index.search.lexicon) adds to the cosine. Lookup@1
# through search alone on parallel-dev, en→zh / zh→en, without → with (0.15): zh-CN 0.935 →
# 0.960 / 0.952 → 0.971, zh-TW 0.925 → 0.960 / 0.981 → 0.981; in a prototype any weight from
# 0.1 to 0.2 was within 0.002 of the best.
LEXICON_WEIGHT = 0.15
# Fitted on zh-CN lookups through search, both directions (`scripts/eval_parallel.py
# --fit-margin`); on zh-TW its Brier score is 0.028 / 0.012 (en→zh / zh→en), the curve of the
# cosine-only scores had 0.034 / 0.016.
SEARCH_MODEL = MarginModel(slope=76.2, midpoint=0.018)


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
    margin_model: MarginModel | None = None,
) -> Translation | None:
    """The translation of `text` (split into `sentences`, whose query vectors are `vectors`;
    row 0 is the whole text's) into `target`. `margin_model` turns a search's margin into its
    confidence (SEARCH_MODEL unless fitting a new one)."""
    found = _through_alignment(snapshot, sentences, vectors, terms, source_lang, params)
    if found is not None:
        return found
    return _through_search(snapshot, text, vectors[0], terms, source_lang, target, params,
                           margin_model or SEARCH_MODEL)


def _through_alignment(
    snapshot: Snapshot, sentences: Sequence[str], vectors: Matrix,
    terms: Sequence[str], source_lang: Lang, params: SearchParams,
) -> Translation | None:
    ranked = search_rows(snapshot, vectors[:1], [terms], [source_lang], SOURCE_PASSAGES,
                         source_lang, "hybrid", Filters(), params)[0]
    queries = vectors[1:] if len(sentences) > 1 else vectors[:1]
    wanted = [_plain(s) for s in sentences]
    # The document (of the best passages) whose sentences match the text's best.
    matched = {key: _matches(snapshot, key, queries, wanted, source_lang)
               for key in dict.fromkeys(snapshot.key_of_row(row)[0] for row, _ in ranked)}
    found = {key: m for key, m in matched.items() if m is not None}
    if not found:
        return None  # the text is not in the archive in its own language
    key = max(found, key=lambda k: found[k][1])
    chosen = found[key][0]
    seg, doc = key
    segment = snapshot.segments[seg]
    own = segment.sentences_of(doc)
    links = snapshot.links(key)
    other = snapshot.key_of(links.counterpart_doc or "")
    if other is None:
        return None
    sentence_links = sized_sentence_links(links, len(own))
    mine = np.asarray([sentence_links[s - own.start] for s in chosen], np.float64)
    linked = mine[:, 0] >= 0
    if not linked.any():
        return None
    confident = linked & (mine[:, 2] >= LINK_CONFIDENT)
    shown = confident if confident.any() else linked
    other_segment = snapshot.segments[other[0]]
    other_doc = other_segment.document(other[1])
    theirs = other_segment.sentences_of(other[1])
    spans = np.asarray(other_segment.sentences[theirs.start:theirs.stop], np.int64)
    t0 = int(spans[int(mine[shown, 0].min()), 0])
    t1 = int(spans[int(mine[shown, 1].max()) - 1, 1])
    confidence = float(np.where(linked, mine[:, 2], 0.0).mean())
    own_text = segment.texts.text(doc)
    s0 = int(segment.sentences[min(chosen), 0])
    s1 = int(segment.sentences[max(chosen), 1])
    return Translation(
        other_doc.doc_id, other_doc.lang, Span(t0, t1, other_doc.text[t0:t1]), "alignment",
        round(confidence, 4), segment.doc_ids[doc], Span(s0, s1, own_text[s0:s1]),
    )


def _matches(snapshot: Snapshot, key: tuple[int, int], queries: Matrix,
             wanted: Sequence[str], lang: Lang) -> tuple[list[int], float] | None:
    """For each text sentence, the sentence of document `key` that is the same text (equal up
    to spacing, else a vector within `SAME_SENTENCE[lang]`): their segment numbers and the summed
    match score (an exact match counts 2, above any cosine); None when one is missing."""
    seg, doc = key
    segment = snapshot.segments[seg]
    own = segment.sentences_of(doc)
    if not len(own):
        return None
    sims = segment.sentence_matrix(slice(own.start, own.stop)) @ queries.T
    doc_text = segment.texts.text(doc)
    plain = [_plain(doc_text[int(a):int(b)]) for a, b in segment.sentences[own.start:own.stop]]
    chosen, total = [], 0.0
    for q, target in enumerate(wanted):
        exact = [i for i, p in enumerate(plain) if p == target]
        best = exact[0] if exact else int(np.argmax(sims[:, q]))
        if not exact and not _same_sentence(float(sims[best, q]), target, plain[best], lang):
            return None
        chosen.append(own.start + best)
        total += 2.0 if exact else float(sims[best, q])
    return sorted(set(chosen)), total


def _same_sentence(cosine: float, text: str, sentence: str, lang: Lang) -> bool:
    """Whether `sentence` is `text` with small edits (spacing, punctuation, a word or two):
    close in meaning and in characters. A short text is close in meaning to many sentences;
    the characters tell them apart."""
    if cosine < SAME_SENTENCE[lang]:
        return False
    return SequenceMatcher(None, text, sentence, autojunk=False).ratio() >= SAME_CHARACTERS


def _through_search(
    snapshot: Snapshot, text: str, vector: Matrix, terms: Sequence[str], source_lang: Lang,
    target: Lang, params: SearchParams, margin_model: MarginModel,
) -> Translation | None:
    """The sentence nearest to the text (cosine of sentence vectors, less a little for a length
    unlike a translation's) among the sentences of the best passages of a cross-lingual
    search. Its confidence comes from how far it stands above the next best sentences
    (`SEARCH_MODEL`): a translation stands out, a sentence on the same topic does not."""
    ranked = search_rows(snapshot, vector[None, :], [terms], [source_lang], SEARCH_PASSAGES,
                         target, "hybrid", Filters(), params)[0]
    scores: list[float] = []
    where: list[tuple[int, int]] = []  # (row, sentence)
    wanted = len(text.strip()) * (ZH_CHARS_PER_EN_CHAR if target == "zh"
                                  else 1.0 / ZH_CHARS_PER_EN_CHAR)
    agreement = _dictionary_agreement(default_lexicon(), text, target)
    for row, _ in ranked:
        (seg, doc), _ = snapshot.key_of_row(row)
        segment = snapshot.segments[seg]
        local = row - int(snapshot.base[seg])
        first, end = (int(x) for x in segment.passage_sentences[local])
        if end <= first:
            continue
        cosines = segment.sentence_matrix(slice(first, end)) @ vector
        lengths = np.diff(np.asarray(segment.sentences[first:end], np.float64), axis=1)[:, 0]
        # A translation is about as long as its source (Chinese takes ~a third of the
        # characters): of two close cosines, the sentence of the right length wins.
        misfit = np.abs(np.log(np.maximum(lengths, 1.0) / max(wanted, 1.0)))
        # ...and of two sentences on one topic, the one whose words translate the text's.
        text_of = segment.texts.text(doc)
        agree = np.array([agreement(text_of[int(a):int(b)])
                          for a, b in segment.sentences[first:end].tolist()], np.float64)
        scores.extend((cosines - LENGTH_WEIGHT * misfit + LEXICON_WEIGHT * agree).tolist())
        where.extend((row, first + j) for j in range(end - first))
    if not scores:
        return None
    order = np.argsort(scores)[::-1]
    best = int(order[0])
    runners = [scores[int(i)] for i in order[1:1 + MARGIN_NEIGHBOURS]] or [0.0]
    margin = scores[best] - float(np.mean(runners))
    row, sentence = where[best]
    (seg, doc), _ = snapshot.key_of_row(row)
    segment = snapshot.segments[seg]
    a, b = (int(x) for x in segment.sentences[sentence])
    lang: Lang = LANGS[int(segment.langs[doc])]
    return Translation(segment.doc_ids[doc], lang, Span(a, b, segment.texts.text(doc)[a:b]),
                       "search", round(margin_model.probability(margin), 4))


def _dictionary_agreement(lexicon: Lexicon, text: str, target: Lang) -> Callable[[str], float]:
    """Scores a sentence in `target` by its dictionary agreement with `text` (the other
    language): the text's side is analysed once."""
    if target == "zh":
        english = frozenset(english_terms(text))
        return lambda sentence: lexicon.agreement(english, lexicon.chinese_words(sentence))
    chinese = lexicon.chinese_words(text)
    return lambda sentence: lexicon.agreement(frozenset(english_terms(sentence)), chinese)
