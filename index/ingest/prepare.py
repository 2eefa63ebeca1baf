"""Documents → PreparedDocuments: chunk, embed, analyse (the expensive half of ingest)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import numpy as np

from index.config import ChunkPlan
from index.embed import Embedder, Matrix
from index.indexes.analyze import Analyzer
from index.ingest.chunk import chunk_document, embedding_text, title_context
from index.ingest.problems import Problem
from index.ingest.sentences import sentence_spans
from index.ingest.textview import clean_view
from index.records import Document, Passage, PreparedDocument
from index.vectors import round_trip

Progress = Callable[[int, int], None]  # (done, total) in texts embedded: passages or sentences


def passages_for(doc: Document, embedder: Embedder, plan: ChunkPlan) -> list[Passage]:
    target, maximum = plan.for_lang(doc.lang)
    return chunk_document(
        doc,
        count_tokens=lambda texts: embedder.count_tokens(texts),
        max_tokens=embedder.max_tokens,
        target_chars=target,
        max_chars=maximum,
    )


# Below this many characters per allowed passage a document cannot exceed the passage limit in
# practice (passages are hundreds of characters), so it is not chunked twice to count them.
_MIN_CHARS_PER_PASSAGE = 20


def over_passage_limit(doc: Document, embedder: Embedder, plan: ChunkPlan,
                       limit: int) -> Problem | None:
    """Why `doc` is refused when it would make more than `limit` passages, or None."""
    if len(doc.text) < limit * _MIN_CHARS_PER_PASSAGE:
        return None
    count = len(passages_for(doc, embedder, plan))
    if count <= limit:
        return None
    return Problem(doc.doc_id, None,
                   f"{count} passages, more than the {limit} allowed per document: split it "
                   "into smaller documents, or raise QIAO_MAX_DOCUMENT_PASSAGES")


def screen_documents(documents: Iterable[Document], embedder: Embedder, plan: ChunkPlan,
                     limit: int) -> tuple[list[Document], list[Problem]]:
    """The documents within `limit` passages each, and a one-line problem for each other."""
    kept: list[Document] = []
    refused: list[Problem] = []
    for doc in documents:
        problem = over_passage_limit(doc, embedder, plan, limit)
        if problem is None:
            kept.append(doc)
        else:
            refused.append(problem)
    return kept, refused


def _sentences_of(doc: Document, passages: Sequence[Passage]) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    for p in passages:
        out.extend((p.ordinal, s, e) for s, e in sentence_spans(doc.text, p.start, p.end))
    return out


def _embed_in_batches(
    embedder: Embedder,
    texts: list[str],
    spans: list[list[tuple[int, int]]],
    progress: Progress | None,
    batch: int = 128,
) -> tuple[Matrix, list[Matrix]]:
    vectors: list[Matrix] = []
    pooled: list[Matrix] = []
    for i in range(0, len(texts), batch):
        v, p = embedder.embed_passages_with_spans(texts[i : i + batch], spans[i : i + batch])
        vectors.append(v)
        pooled.extend(p)
        if progress:
            progress(min(i + batch, len(texts)), len(texts))
    if not vectors:
        return np.zeros((0, embedder.dim), np.float32), []
    return np.concatenate(vectors), pooled


def _embed_plain(
    embedder: Embedder, texts: list[str], progress: Progress | None, batch: int = 128
) -> Matrix:
    # 128 texts between progress reports: about 0.9 s of news sentences on two cores (256
    # took 1.7 s, past the 2 s a progress display may wait on longer sentences); measured
    # 3% slower overall than 256, 64 was 18% slower (less even batches).
    parts: list[Matrix] = []
    for i in range(0, len(texts), batch):
        parts.append(embedder.embed_passages(texts[i : i + batch]))
        if progress:
            progress(min(i + batch, len(texts)), len(texts))
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)


def _embedding_input(
    doc: Document, passage: Passage, sentences: list[tuple[int, int, int]]
) -> tuple[str, list[tuple[int, int]]]:
    """The passage's embedding text and its sentences' spans inside that text."""
    text = embedding_text(doc, passage)
    view = clean_view(doc.text, passage.start, passage.end)
    prefix = len(text) - len(view.text)  # the title context in front of the view
    spans = [
        (prefix + view.view_index(s), prefix + view.view_index(e))
        for ordinal, s, e in sentences
        if ordinal == passage.ordinal
    ]
    return text, spans


# How much a document title counts in its passages' vectors, in multiples of its token count.
# When the passage is embedded whole, the title is read with it; here its vector is added. Chosen
# on XQuAD: hit@1 moved by at most 1.1 points between weights 2 and 5; with no title vector the
# cross-lingual settings lost 2-4 points.
TITLE_WEIGHT = 3.0


def _passage_vectors_from_sentences(
    chunked: Sequence[tuple[Document, list[Passage]]],
    sentences: Sequence[list[tuple[int, int, int]]],
    sentence_texts: list[str],
    sentence_vectors: Matrix,
    embedder: Embedder,
) -> Matrix:
    """Each passage's vector as the normalised sum of its sentences' vectors, each weighted by
    its token count, plus its document title's vector weighted by TITLE_WEIGHT × its tokens (at
    most half the passage's tokens).

    One pass of the model over the text gives both the sentence and the passage vectors. A
    passage without sentences (only possible for blank text, which the chunker never makes) is
    embedded whole.
    """
    weights = np.asarray(embedder.count_tokens(sentence_texts), np.float32)
    # Passage ordinals run 0..n-1 in each document, so a passage's row is its document's first
    # row plus its ordinal.
    first = np.cumsum([0, *(len(ps) for _, ps in chunked)])
    rows = np.asarray(
        [first[d] + ordinal for d, sents in enumerate(sentences) for ordinal, _, _ in sents],
        np.int64,
    )
    sums = np.zeros((int(first[-1]), embedder.dim), np.float32)
    np.add.at(sums, rows, sentence_vectors * weights[:, None])
    passage_tokens = np.bincount(rows, weights=weights, minlength=len(sums)).astype(np.float32)
    titles = sorted({title_context(doc.title) for doc, _ in chunked} - {""})
    if titles:
        title_vectors = dict(zip(titles, embedder.embed_passages(titles), strict=True))
        title_tokens = dict(zip(titles, embedder.count_tokens(titles), strict=True))
        for d, (doc, _) in enumerate(chunked):
            title, own = title_context(doc.title), slice(first[d], first[d + 1])
            if title:
                # A long title over a short passage must not outweigh the passage itself.
                weight = np.minimum(TITLE_WEIGHT * title_tokens[title], passage_tokens[own] / 2)
                sums[own] += weight[:, None] * title_vectors[title]
    bare = np.flatnonzero(passage_tokens == 0)
    if bare.size:
        flat = [(doc, p) for doc, ps in chunked for p in ps]
        sums[bare] = embedder.embed_passages([embedding_text(*flat[i]) for i in bare])
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    vectors: Matrix = (sums / np.maximum(norms, 1e-12)).astype(np.float32)
    return vectors


def prepare_segments(
    docs: Sequence[Document],
    embedder: Embedder,
    analyzer: Analyzer,
    plan: ChunkPlan,
    progress: Progress | None = None,
) -> list[PreparedDocument]:
    """Chunk, embed and analyse `docs`; counterparts are left empty (set by realignment).

    Sentence vectors rank passages by their best sentence and pick the answer sentence. What the
    model reads depends on `plan.embed_units` (see `IndexSettings.embed_units`): each sentence's
    cleaned view ("sentences", passage vectors derived from them); the title plus cleaned view of
    each passage as well ("passages+sentences"); or passages only, sentence vectors pooled from
    their forward pass ("passages"). Texts are sorted by length inside the embedder.
    """
    chunked = [(doc, passages_for(doc, embedder, plan)) for doc in docs]
    sentences = [_sentences_of(doc, ps) for doc, ps in chunked]
    # The texts the model reads for sentences; "passages" pools them from passage passes instead.
    sentence_texts = (
        []
        if plan.embed_units == "passages"
        else [
            clean_view(doc.text, s, e).text
            for (doc, _), sents in zip(chunked, sentences, strict=True)
            for _, s, e in sents
        ]
    )
    if plan.embed_units == "sentences":
        sentence_vectors = _embed_plain(embedder, sentence_texts, progress)
        vectors = _passage_vectors_from_sentences(
            chunked, sentences, sentence_texts, sentence_vectors, embedder
        )
    else:
        inputs = [
            _embedding_input(doc, p, sents)
            for (doc, ps), sents in zip(chunked, sentences, strict=True)
            for p in ps
        ]
        texts = [t for t, _ in inputs]
        if plan.embed_units == "passages":
            vectors, pooled = _embed_in_batches(embedder, texts, [s for _, s in inputs], progress)
            sentence_vectors = (
                np.concatenate(pooled) if pooled else np.zeros((0, embedder.dim), np.float32)
            )
        else:
            everything = _embed_plain(embedder, texts + sentence_texts, progress)
            vectors, sentence_vectors = everything[: len(texts)], everything[len(texts) :]
    terms = analyzer.terms_batch([p.text for _, ps in chunked for p in ps])
    sentence_terms = analyzer.terms_batch(
        [
            doc.text[s:e]
            for (doc, _), sents in zip(chunked, sentences, strict=True)
            for _, s, e in sents
        ]
    )

    # Sentence vectors are stored in 8 bits (see index.vectors); rounding them here makes a
    # fresh document score exactly as it will once read back from its segment.
    sentence_vectors = round_trip(sentence_vectors)
    segments: list[PreparedDocument] = []
    row = srow = 0
    for (doc, ps), sents in zip(chunked, sentences, strict=True):
        n, s = len(ps), len(sents)
        segments.append(
            PreparedDocument(
                document=doc,
                content_hash=doc.content_hash,
                spans=np.array([(p.start, p.end) for p in ps], dtype=np.int64).reshape(n, 2),
                vectors=vectors[row : row + n],
                terms=tuple(tuple(t) for t in terms[row : row + n]),
                sentence_spans=np.array(sents, dtype=np.int64).reshape(s, 3),
                sentence_vectors=sentence_vectors[srow : srow + s],
                sentence_terms=tuple(tuple(t) for t in sentence_terms[srow : srow + s]),
                counterparts=np.full((n, 3), -1.0),
            )
        )
        row += n
        srow += s
    return segments


def with_terms(doc: PreparedDocument, analyzer: Analyzer) -> PreparedDocument:
    """`doc` with its passage and sentence terms analysed from its text, as ingest does."""
    text = doc.document.text
    terms = analyzer.terms_batch([text[s:e] for s, e in doc.spans.tolist()])
    sentence_terms = analyzer.terms_batch([text[s:e] for _, s, e in doc.sentence_spans.tolist()])
    return replace(doc, terms=tuple(tuple(t) for t in terms),
                   sentence_terms=tuple(tuple(t) for t in sentence_terms))
