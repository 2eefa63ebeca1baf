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
    first, end = (int(x) for x in snapshot.passage_sentences[row])
    if end <= first:
        return None
    text = snapshot.segment_at(row).document.text
    spans = snapshot.sentence_spans[first:end]
    scores = snapshot.sentence_vectors[first:end] @ query_vector
    if query_terms:
        overlap = np.array(
            [
                len(query_terms & snapshot.sentence_terms[i]) / len(query_terms)
                for i in range(first, end)
            ]
        )
        scores = scores + LEXICAL_WEIGHT * overlap
    best = int(np.argmax(scores))
    _, start, stop = (int(x) for x in spans[best])
    return Span(start, stop, text[start:stop])


def counterpart_of(snapshot: Snapshot, row: int) -> Counterpart | None:
    """The aligned span of the other language version (offsets into that document's text)."""
    seg = snapshot.segment_at(row)
    first, end, score = seg.counterparts[snapshot.ordinal_of(row)]
    other = snapshot.segments.get(seg.counterpart_doc or "")
    if first < 0 or other is None:
        return None
    start = int(other.spans[int(first)][0])
    stop = int(other.spans[int(end) - 1][1])
    doc = other.document
    return Counterpart(
        doc.doc_id, doc.lang, start, stop, doc.text[start:stop], float(score), doc.title, doc.url
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
        seg = snapshot.segment_at(row)
        doc = seg.document
        ordinal = snapshot.ordinal_of(row)
        start, end = (int(x) for x in seg.spans[ordinal])
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
