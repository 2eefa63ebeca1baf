"""The answer sentence of a hit and its counterpart span: turning rows into `Hit` records."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from index.align import LINK_CONFIDENT
from index.embed import Matrix
from index.records import LANGS, Counterpart, Document, Hit, Lang, SearchResults, Span
from index.search.answer_sentence import (
    SIMILARITY_SCALE,
    AnswerModel,
    Features,
    QuestionInfo,
    default_answer_model,
    is_body,
    sentence_features,
)
from index.search.answerable import Evidence, default_answerable_model
from index.search.lexicon import default_lexicon, translated_terms
from index.store.segment import sized_sentence_links
from index.store.snapshot import Snapshot

F32Row = npt.NDArray[np.float32]


def question_info(snapshot: Snapshot, text: str, lang: str, terms: Sequence[str],
                  idf: Mapping[str, float] | None = None) -> QuestionInfo:
    """What answer-sentence scoring needs of a query: its language, kind and its terms' IDF
    weights (the snapshot's own, unless the whole index's are given)."""
    return QuestionInfo.of(text, lang, terms, snapshot.idf(terms) if idf is None else idf)


@dataclass(frozen=True, slots=True)
class SentenceBlock:
    """The sentences of consecutive passages of one document, scored for one question."""

    spans: list[tuple[int, int]]  # document offsets
    texts: list[str]
    vectors: Matrix
    features: Features
    cross: bool  # the passages are in another language than the question


def sentence_block(
    snapshot: Snapshot, rows: range, query_vector: Matrix, question: QuestionInfo,
) -> SentenceBlock:
    """The sentences of `rows` (consecutive rows of one document) with their answer features."""
    (seg, doc), _ = snapshot.key_of_row(rows.start)
    segment = snapshot.segments[seg]
    local = rows.start - int(snapshot.base[seg])
    first = int(segment.passage_sentences[local, 0])
    end = int(segment.passage_sentences[local + len(rows) - 1, 1])
    text = segment.texts.text(doc)
    spans = [(int(a), int(b)) for a, b in segment.sentences[first:end].tolist()]
    texts = [text[a:b] for a, b in spans]
    vectors = segment.sentence_matrix(slice(first, end))
    wanted = {i: t for t in question.weights if (i := segment.postings.term_id(t)) is not None}
    held = [{wanted[i] for i in segment.sentence_terms(s).tolist() if i in wanted}
            for s in range(first, end)]
    lang = LANGS[int(segment.langs[doc])]
    cross = lang != question.lang
    if cross:  # the question's words in translation count as held too
        lexicon = default_lexicon()
        held = [h | translated_terms(lexicon, question.weights, t, lang)
                for h, t in zip(held, texts, strict=True)]
    features = sentence_features(question, texts, (vectors @ query_vector).tolist(), held)
    return SentenceBlock(spans, texts, vectors, features, cross)


def passage_sentences(
    snapshot: Snapshot, row: int, query_vector: Matrix, question: QuestionInfo,
) -> SentenceBlock:
    """The sentences of passage `row` with their answer features."""
    return sentence_block(snapshot, range(row, row + 1), query_vector, question)


@dataclass(frozen=True, slots=True)
class AnswerChoice:
    """A hit's answer sentence and the evidence that it answers."""

    span: Span
    evidence: Evidence


def answer_span(
    snapshot: Snapshot, row: int, query_vector: Matrix, question: QuestionInfo,
    model: AnswerModel | None = None,
) -> Span | None:
    """The sentence of passage `row` that best answers the question (document offsets)."""
    choice = choose_answer(snapshot, row, query_vector, question, model)
    return None if choice is None else choice.span


def choose_answer(
    snapshot: Snapshot, row: int, query_vector: Matrix, question: QuestionInfo,
    model: AnswerModel | None = None,
) -> AnswerChoice | None:
    """The answer sentence of passage `row`, by the answer model over each sentence's
    features (see `answer_sentence`), with its evidence.

    A passage in the other language than the question is read through its aligned passage in
    the question's language when there is one: the answer is chosen there (term overlap works
    within a language) and its closest sentence in this passage is returned."""
    block = passage_sentences(snapshot, row, query_vector, question)
    if not block.spans:
        return None
    model = model or default_answer_model()
    read = block
    best: int | None = None
    source = _aligned_source(snapshot, row, block, query_vector, question)
    if source is not None:
        read = source
        chosen = source.vectors[model.best(source.features, source.texts)]
        closeness = block.vectors @ chosen
        body = np.array([is_body(t) for t in block.texts])
        if body.any():
            closeness = np.where(body, closeness, -np.inf)
        best = int(np.argmax(closeness))
    else:
        best = model.best(block.features, block.texts, block.cross)
    start, stop = block.spans[best]
    evidence = Evidence(similarity=float(read.features[:, 0].max()) / SIMILARITY_SCALE,
                        overlap=float(read.features[:, 2].max()), cross=read.cross)
    return AnswerChoice(Span(start, stop, block.texts[best]), evidence)


def _aligned_source(
    snapshot: Snapshot, row: int, block: SentenceBlock, query_vector: Matrix,
    question: QuestionInfo,
) -> SentenceBlock | None:
    """The sentences of the passages aligned to `row` when they are in the question's language
    and `row` is not."""
    if not block.cross:
        return None
    key, ordinal = snapshot.key_of_row(row)
    links = snapshot.links(key)
    first, end, _ = (float(x) for x in links.ranges[ordinal])
    other = snapshot.key_of(links.counterpart_doc or "")
    if first < 0 or other is None:
        return None
    rows = snapshot.rows_of(other)
    source = sentence_block(snapshot, range(rows.start + int(first), rows.start + int(end)),
                            query_vector, question)
    return None if source.cross or not source.spans else source


def counterpart_of(snapshot: Snapshot, row: int, answer: Span | None = None
                   ) -> Counterpart | None:
    """The aligned span of the other language version (offsets into that document's text),
    and there the translation of `answer` (a sentence of this passage) when it is aligned.

    The span covers the translations of the passage's own sentences (their alignment beads),
    not whole paragraphs; a passage none of whose sentences has a partner gets no counterpart
    (the versions are not parallel there). `confidence` is the length-weighted share of the
    passage whose translation the span holds (each sentence by its link's confidence).
    Documents aligned before sentence links were kept fall back to the passage links."""
    key, ordinal = snapshot.key_of_row(row)
    links = snapshot.links(key)
    other = snapshot.key_of(links.counterpart_doc or "")
    if other is None:
        return None
    seg, doc = key
    segment = snapshot.segments[seg]
    own_sentences = segment.sentences_of(doc)
    sentence_links = sized_sentence_links(links, len(own_sentences))
    other_segment = snapshot.segments[other[0]]
    other_doc = other_segment.document(other[1])
    if not (sentence_links[:, 0] >= 0).any():
        return _passage_counterpart(snapshot, other, links.ranges[ordinal], other_doc)
    local = row - int(snapshot.base[seg])
    first, end = (int(x) - own_sentences.start for x in segment.passage_sentences[local])
    mine = np.asarray(sentence_links[first:end], np.float64)
    aligned = mine[:, 0] >= 0
    if not aligned.any():
        return None
    lengths = np.diff(np.asarray(segment.sentences[own_sentences.start + first:
                                                   own_sentences.start + end], np.int64),
                      axis=1)[:, 0].astype(np.float64)
    confident = aligned & (mine[:, 2] >= LINK_CONFIDENT)
    # The span holds the confident links' translations; a passage with none still shows what
    # it aligned with, at the low confidence that says so.
    shown = confident if confident.any() else aligned
    other_sentences = other_segment.sentences_of(other[1])
    spans = np.asarray(other_segment.sentences[other_sentences.start:other_sentences.stop],
                       np.int64)
    lo, hi = int(mine[shown, 0].min()), int(mine[shown, 1].max())
    start, stop = int(spans[lo, 0]), int(spans[hi - 1, 1])
    # Unaligned sentences (a heading with no partner, a sentence the other version lacks)
    # count as unconfirmed, by length.
    confidence = float((mine[aligned, 2] * lengths[aligned]).sum() / max(lengths.sum(), 1.0))
    passage_link = links.ranges[ordinal]
    score = float(passage_link[2]) if passage_link[0] >= 0 else 0.0
    translated = None
    if answer is not None:
        for i in range(first, end):
            a, b = (int(x) for x in segment.sentences[own_sentences.start + i])
            if (a, b) == (answer.start, answer.end) and confident[i - first]:
                t0 = int(spans[int(sentence_links[i, 0]), 0])
                t1 = int(spans[int(sentence_links[i, 1]) - 1, 1])
                translated = Span(t0, t1, other_doc.text[t0:t1])
    return Counterpart(
        other_doc.doc_id, other_doc.lang, start, stop, other_doc.text[start:stop], score,
        other_doc.title, other_doc.url, answer=translated, confidence=round(confidence, 4),
        page=other_doc.page_at(start),
    )


def _passage_counterpart(snapshot: Snapshot, other: tuple[int, int], link: F32Row,
                         other_doc: Document) -> Counterpart | None:
    first, end, score = (float(x) for x in link)
    if first < 0:
        return None
    segment = snapshot.segments[other[0]]
    rows = segment.rows_of(other[1])
    start = int(segment.passages[rows.start + int(first), 0])
    stop = int(segment.passages[rows.start + int(end) - 1, 1])
    return Counterpart(other_doc.doc_id, other_doc.lang, start, stop,
                       other_doc.text[start:stop], score, other_doc.title, other_doc.url,
                       page=other_doc.page_at(start))


def hits_for(
    snapshot: Snapshot,
    ranked: Sequence[tuple[int, float]],
    query_vector: Matrix | None,
    question: QuestionInfo,
    with_counterpart: bool = True,
) -> tuple[list[Hit], Evidence | None]:
    """Materialise ranked rows as Hits, with the top hit's answer evidence; `query_vector`
    None (lexical mode) skips answers."""
    hits: list[Hit] = []
    evidence: Evidence | None = None
    for row, score in ranked:
        key, ordinal = snapshot.key_of_row(row)
        doc = snapshot.document(key)
        seg, _ = key
        local = row - int(snapshot.base[seg])
        start, end = (int(x) for x in snapshot.segments[seg].passages[local])
        choice = (choose_answer(snapshot, row, query_vector, question)
                  if query_vector is not None else None)
        if choice is not None and not hits:
            evidence = choice.evidence
        hits.append(
            Hit(
                passage_id=f"{doc.doc_id}#{ordinal}",
                doc_id=doc.doc_id,
                release_id=doc.release_id,
                lang=doc.lang,
                title=doc.title,
                date=doc.date,
                url=doc.url,
                start=start,
                end=end,
                text=doc.text[start:end],
                score=float(score),
                answer=None if choice is None else choice.span,
                counterpart=counterpart_of(snapshot, row, None if choice is None else choice.span)
                if with_counterpart else None,
                page=doc.page_at(start),
            )
        )
    return hits, evidence


def results_for(
    snapshot: Snapshot,
    ranked: Sequence[Sequence[tuple[int, float]]],
    queries: Sequence[str],
    query_langs: Sequence[Lang],
    terms: Sequence[Sequence[str]],
    vectors: Matrix,
    judge: bool,
    counterpart: bool,
    idf: Callable[[Sequence[str]], Mapping[str, float]] | None = None,
) -> list[SearchResults]:
    """Each query's ranked rows of `snapshot` as SearchResults: hits with answer sentences and
    counterparts, and (`judge`) whether the top one answers. `idf` gives the whole index's
    term weights when `snapshot` holds only the documents of the hits."""
    results = []
    for i, rows in enumerate(ranked):
        question = question_info(snapshot, queries[i], query_langs[i], terms[i],
                                 None if idf is None else idf(terms[i]))
        hits, evidence = hits_for(snapshot, rows, vectors[i], question, counterpart)
        answerable: bool | None = None
        confidence: float | None = None
        if judge:
            answerable, confidence = default_answerable_model().judge(
                evidence, snapshot.info.model_id)
        results.append(SearchResults(tuple(hits), query_langs[i], answerable,
                                     None if confidence is None else round(confidence, 4)))
    return results
