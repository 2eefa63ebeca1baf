"""The answer sentence of a hit and its counterpart span: turning rows into `Hit` records."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from index.embed import Matrix
from index.records import Counterpart, Hit, Span
from index.store.snapshot import Snapshot

LEXICAL_WEIGHT = 0.3  # share of the answer score from query-term overlap


def answer_span(
    snapshot: Snapshot, row: int, query_vector: Matrix, query_terms: set[str]
) -> Span | None:
    """The sentence of passage `row` that best answers the query (document offsets).

    Score = cosine(query, sentence vector) + LEXICAL_WEIGHT * share of query terms it contains.
    """
    (seg, doc), _ = snapshot.key_of_row(row)
    segment = snapshot.segments[seg]
    local = row - int(snapshot.base[seg])
    first, end = (int(x) for x in segment.passage_sentences[local])
    if end <= first:
        return None
    scores = segment.sentence_matrix(slice(first, end)) @ query_vector
    if query_terms:
        ids = {i for t in query_terms if (i := segment.postings.term_id(t)) is not None}
        overlap = np.array([
            len(ids.intersection(segment.sentence_terms(s).tolist())) / len(query_terms)
            for s in range(first, end)
        ])
        scores = scores + LEXICAL_WEIGHT * overlap
    best = first + int(np.argmax(scores))
    start, stop = (int(x) for x in segment.sentences[best])
    text = segment.texts.text(doc)
    return Span(start, stop, text[start:stop])


def counterpart_of(snapshot: Snapshot, row: int) -> Counterpart | None:
    """The aligned span of the other language version (offsets into that document's text)."""
    key, ordinal = snapshot.key_of_row(row)
    links = snapshot.links(key)
    first, end, score = (float(x) for x in links.ranges[ordinal])
    other = snapshot.key_of(links.counterpart_doc or "")
    if first < 0 or other is None:
        return None
    seg, doc_ordinal = other
    segment = snapshot.segments[seg]
    rows = segment.rows_of(doc_ordinal)
    start = int(segment.passages[rows.start + int(first), 0])
    stop = int(segment.passages[rows.start + int(end) - 1, 1])
    doc = segment.document(doc_ordinal)
    return Counterpart(
        doc.doc_id, doc.lang, start, stop, doc.text[start:stop], score, doc.title, doc.url
    )


def hits_for(
    snapshot: Snapshot,
    ranked: Sequence[tuple[int, float]],
    query_vector: Matrix | None,
    query_terms: Sequence[str],
    with_counterpart: bool = True,
) -> list[Hit]:
    """Materialise ranked rows as Hits; `query_vector` None (lexical mode) skips answers."""
    hits: list[Hit] = []
    terms = set(query_terms)
    for row, score in ranked:
        key, ordinal = snapshot.key_of_row(row)
        doc = snapshot.document(key)
        seg, _ = key
        local = row - int(snapshot.base[seg])
        start, end = (int(x) for x in snapshot.segments[seg].passages[local])
        answer = (
            answer_span(snapshot, row, query_vector, terms) if query_vector is not None else None
        )
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
                answer=answer,
                counterpart=counterpart_of(snapshot, row) if with_counterpart else None,
            )
        )
    return hits
