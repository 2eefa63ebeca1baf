"""A segment: documents committed together, with everything search needs about them, written
once and never changed. Deleting or replacing a document later marks it deleted (see
`manifest.py`); merging segments writes a new one.

Files of `segments/seg-000007/` (all plain NumPy, JSON and FAISS files; no pickle):

    docs.json               columns: doc_id, release_id, lang, title, date, url, counterpart_doc,
                            pages
    hashes.npy              (docs,) content hash of each document (ASCII hex)
    texts.bin, text_offsets.npy   the documents' UTF-8 texts, concatenated; byte offsets (docs+1)
    doc_rows.npy            (docs, 2) int32: first passage row, passage count
    passages.npy            (rows, 2) int32: start, end (code-point offsets into the text)
    passage_sentences.npy   (rows, 2) int32: first sentence, end
    sentences.npy           (sentences, 2) int32: start, end (code-point offsets)
    sentence_vectors.npy, sentence_scales.npy   (sentences, dim) int8 and (sentences,) float32
                            (see index.vectors)
    sentence_term_ptr.npy, sentence_term_ids.npy   each sentence's distinct terms (CSR, vocab ids)
    links.npy               (rows, 3) float32: counterpart passages [first, end) and score
    sentence_links.npy      (sentences, 3) float32: counterpart sentences [first, end) and score
                            (sentence numbers within the counterpart document; -1: none)
    dense.faiss             the passage vectors (exact, or IVF for large segments)
    vocab.json, indptr.npy, post_rows.npy, post_tfs.npy, lengths.npy   BM25 postings
    segment.json            counts, settings, and the sha256 of every file above (written last)

Rows are the segment's passage rows: a document's passages are consecutive, documents in order.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import mmap
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from index.files import load_array, sha256_of
from index.indexes.dense import DENSE_FILE, DenseIndex, FaissDense
from index.indexes.lexical import Postings
from index.records import LANGS, Document, Lang, Passage, PreparedDocument
from index.vectors import dequantize, quantize

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]

SEGMENT_FILE = "segment.json"
SEGMENT_FORMAT = 1
_ARRAYS = ("hashes", "text_offsets", "doc_rows", "passages", "passage_sentences", "sentences",
           "sentence_vectors", "sentence_scales", "sentence_term_ptr", "sentence_term_ids",
           "links", "sentence_links")
# Segments written before sentence links existed lack the file: their sentences read as
# unaligned (counterparts then come from the passage links).
_OPTIONAL = ("sentence_links",)


@dataclass(frozen=True, slots=True)
class DocLinks:
    """A document's counterpart links: `ranges[i] = [first, end, score]` says passage i aligns
    with passages [first, end) of document `counterpart_doc` (-1 where nothing aligns);
    `sentences[j]` the same for its sentence j, in sentences of `counterpart_doc`."""

    counterpart_doc: str | None
    ranges: F32
    sentences: F32


def sized_sentence_links(links: DocLinks, sentences: int) -> F32:
    """`links.sentences` when it covers the document's `sentences`, else none aligned (links
    written before sentence alignment, or a document not aligned by sentence)."""
    if len(links.sentences) == sentences:
        return links.sentences
    return np.full((sentences, 3), -1.0, np.float32)


def date_ordinal(date: str | None) -> int:
    if not date:
        return -1
    try:
        return dt.date.fromisoformat(date).toordinal()
    except ValueError:
        return -1


class Texts:
    """The documents' texts: one UTF-8 blob and byte offsets, decoded one document at a time."""

    def __init__(self, blob: bytes | mmap.mmap, offsets: I64) -> None:
        self._blob = blob
        self._offsets = offsets
        self.text = functools.lru_cache(maxsize=256)(self._decode)

    def _decode(self, i: int) -> str:
        return bytes(self._blob[int(self._offsets[i]) : int(self._offsets[i + 1])]).decode("utf-8")


@dataclass(eq=False)
class Segment:
    """One segment's data; arrays are in memory (just built) or memory-mapped (opened)."""

    name: str
    doc_ids: list[str]
    release_ids: list[str]
    langs: npt.NDArray[np.int8]  # index into LANGS
    dates: list[str | None]
    titles: list[str]
    urls: list[str | None]
    counterpart_docs: list[str | None]
    pages: list[tuple[int, ...] | None]
    hashes: npt.NDArray[np.bytes_]
    texts: Texts
    text_offsets: I64
    doc_rows: I32
    passages: I32
    passage_sentences: I32
    sentences: I32
    sentence_vectors: npt.NDArray[np.int8]
    sentence_scales: F32
    sentence_term_ptr: I64
    sentence_term_ids: I32
    links: F32
    sentence_links: F32
    dense: DenseIndex
    postings: Postings

    @property
    def n_docs(self) -> int:
        return len(self.doc_ids)

    @property
    def n_rows(self) -> int:
        return len(self.passages)

    @property
    def dim(self) -> int:
        return int(self.sentence_vectors.shape[1])

    @functools.cached_property
    def passage_doc(self) -> I64:
        """The document (ordinal) of each row."""
        return np.repeat(np.arange(self.n_docs, dtype=np.int64), self.doc_rows[:, 1])

    @functools.cached_property
    def doc_ordinals(self) -> dict[str, int]:
        """doc_id → its ordinal here. Built once per segment (segments outlive snapshots), so a
        commit builds only its new segment's."""
        return {doc_id: i for i, doc_id in enumerate(self.doc_ids)}

    @functools.cached_property
    def release_ordinals(self) -> dict[str, list[int]]:
        """release_id → ordinals of its documents here."""
        out: dict[str, list[int]] = {}
        for i, release_id in enumerate(self.release_ids):
            out.setdefault(release_id, []).append(i)
        return out

    @functools.cached_property
    def date_ordinals(self) -> I64:
        return np.array([date_ordinal(d) for d in self.dates], np.int64)

    def content_hash(self, i: int) -> str:
        return bytes(self.hashes[i]).decode("ascii")

    def document(self, i: int) -> Document:
        lang: Lang = LANGS[int(self.langs[i])]
        return Document(self.doc_ids[i], self.release_ids[i], lang, self.titles[i],
                        self.texts.text(i), self.dates[i], self.urls[i], self.pages[i])

    def page_at(self, i: int, offset: int) -> int | None:
        """The 1-based page of document `i` that holds `offset` (None: not paginated)."""
        pages = self.pages[i]
        return None if pages is None else bisect_right(pages, offset) + 1

    def rows_of(self, i: int) -> range:
        first, n = (int(x) for x in self.doc_rows[i])
        return range(first, first + n)

    def passages_of(self, i: int) -> list[Passage]:
        text = self.texts.text(i)
        first = int(self.doc_rows[i, 0])
        return [Passage(self.doc_ids[i], row - first, s, e, text[s:e])
                for row, (s, e) in zip(self.rows_of(i), self.passages[self.rows_of(i)].tolist(),
                                       strict=True)]

    def sentences_of(self, i: int) -> range:
        """Document i's sentences (segment sentence numbers)."""
        rows = self.rows_of(i)
        if not len(rows):
            return range(0)
        return range(int(self.passage_sentences[rows.start, 0]),
                     int(self.passage_sentences[rows.stop - 1, 1]))

    def links_of(self, i: int) -> DocLinks:
        rows, sentences = self.rows_of(i), self.sentences_of(i)
        return DocLinks(self.counterpart_docs[i], np.asarray(self.links[rows.start:rows.stop]),
                        np.asarray(self.sentence_links[sentences.start:sentences.stop]))

    def sentence_matrix(self, index: I64 | slice) -> F32:
        """The sentence vectors at `index` (rows or a slice), as float32."""
        return dequantize(np.asarray(self.sentence_vectors[index]),
                          np.asarray(self.sentence_scales[index]))

    def sentence_terms(self, sentence: int) -> I32:
        return self.sentence_term_ids[self.sentence_term_ptr[sentence]:
                                      self.sentence_term_ptr[sentence + 1]]

    def prepared(self, i: int, links: DocLinks | None = None) -> PreparedDocument:
        """Document `i` as ingest prepared it (vectors as stored; term lists are not kept)."""
        rows = self.rows_of(i)
        first_s = int(self.passage_sentences[rows.start, 0]) if len(rows) else 0
        end_s = int(self.passage_sentences[rows.stop - 1, 1]) if len(rows) else 0
        spans = np.asarray(self.passage_sentences[rows.start:rows.stop], np.int64)
        sentence_rows = np.repeat(np.arange(len(rows)), spans[:, 1] - spans[:, 0])
        own = links or self.links_of(i)
        return PreparedDocument(
            document=self.document(i),
            content_hash=self.content_hash(i),
            spans=np.asarray(self.passages[rows.start:rows.stop], np.int64),
            vectors=self.dense.vectors(np.arange(rows.start, rows.stop, dtype=np.int64)),
            terms=(),
            sentence_spans=np.column_stack(
                [sentence_rows, np.asarray(self.sentences[first_s:end_s], np.int64)]
            ).astype(np.int64).reshape(-1, 3),
            sentence_vectors=self.sentence_matrix(slice(first_s, end_s)),
            sentence_terms=(),
            counterparts=own.ranges.astype(np.float64),
            counterpart_doc=own.counterpart_doc,
            sentence_counterparts=own.sentences.astype(np.float64),
        )


# -- building --------------------------------------------------------------------------------------


def build_segment(name: str, docs: Sequence[PreparedDocument], dim: int,
                  ann_min_rows: int) -> Segment:
    """A segment (in memory) of prepared documents, in order, with their counterpart links."""
    texts = [d.document.text.encode("utf-8") for d in docs]
    offsets = np.zeros(len(docs) + 1, np.int64)
    np.cumsum([len(t) for t in texts], out=offsets[1:])
    counts = [len(d.spans) for d in docs]
    doc_rows = np.column_stack([np.cumsum([0, *counts[:-1]]), counts]).astype(np.int32) \
        if docs else np.zeros((0, 2), np.int32)
    passages = _stack([d.spans for d in docs], (0, 2), np.int32)
    sentence_counts = np.concatenate(
        [np.bincount(d.sentence_spans[:, 0].astype(np.int64), minlength=len(d.spans))
         for d in docs]
    ) if docs else np.zeros(0, np.int64)
    ends = np.cumsum(sentence_counts)
    passage_sentences = np.column_stack([ends - sentence_counts, ends]).astype(np.int32) \
        if len(ends) else np.zeros((0, 2), np.int32)
    sentences = _stack([d.sentence_spans[:, 1:] for d in docs], (0, 2), np.int32)
    vectors = _stack([d.vectors for d in docs], (0, dim), np.float32)
    codes, scales = quantize(_stack([d.sentence_vectors for d in docs], (0, dim), np.float32))
    term_lists = [t for d in docs for t in d.terms]
    sentence_term_lists = [t for d in docs for t in d.sentence_terms]
    postings = Postings.build(term_lists, extra_terms=[t for ts in sentence_term_lists for t in ts])
    ptr, ids = _term_csr(sentence_term_lists, postings)
    return Segment(
        name=name,
        doc_ids=[d.doc_id for d in docs],
        release_ids=[d.document.release_id for d in docs],
        langs=np.array([LANGS.index(d.document.lang) for d in docs], np.int8),
        dates=[d.document.date for d in docs],
        titles=[d.document.title for d in docs],
        urls=[d.document.url for d in docs],
        counterpart_docs=[d.counterpart_doc for d in docs],
        pages=[d.document.pages for d in docs],
        hashes=np.array([d.content_hash.encode("ascii") for d in docs], dtype="S64"),
        texts=Texts(b"".join(texts), offsets),
        text_offsets=offsets,
        doc_rows=doc_rows,
        passages=passages,
        passage_sentences=passage_sentences,
        sentences=sentences,
        sentence_vectors=codes,
        sentence_scales=scales,
        sentence_term_ptr=ptr,
        sentence_term_ids=ids,
        links=_stack([d.counterparts for d in docs], (0, 3), np.float32),
        sentence_links=_stack([_sentence_links(d) for d in docs], (0, 3), np.float32),
        dense=FaissDense.build(vectors, ann_min_rows),
        postings=postings,
    )


def _sentence_links(doc: PreparedDocument) -> npt.NDArray[np.float64]:
    """The document's sentence links, or none aligned when it was not aligned by sentence."""
    links = doc.sentence_counterparts
    if len(links) == len(doc.sentence_spans):
        return links
    return np.full((len(doc.sentence_spans), 3), -1.0)


def _stack(parts: Sequence[npt.NDArray[Any]], empty: tuple[int, int], dtype: Any
           ) -> npt.NDArray[Any]:
    if not parts:
        return np.zeros(empty, dtype)
    return np.concatenate(parts).astype(dtype, copy=False).reshape(-1, empty[1])


def _term_csr(term_lists: Sequence[Sequence[str]], postings: Postings) -> tuple[I64, I32]:
    """Each list's distinct terms as vocabulary ids (sorted), in CSR form."""
    rows = [sorted({i for t in terms if (i := postings.term_id(t)) is not None})
            for terms in term_lists]
    ptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum([len(r) for r in rows], out=ptr[1:])
    ids = np.fromiter((i for r in rows for i in r), np.int32, count=int(ptr[-1]))
    return ptr, ids


# -- writing and opening ---------------------------------------------------------------------------


def write_segment(folder: Path, segment: Segment) -> dict[str, Any]:
    """Write `segment`'s files into the (new, empty) `folder`, `segment.json` last. Returns the
    segment record. The caller fsyncs and renames the folder into place."""
    docs = {
        "doc_id": segment.doc_ids, "release_id": segment.release_ids,
        "lang": [LANGS[int(x)] for x in segment.langs], "title": segment.titles,
        "date": segment.dates, "url": segment.urls, "counterpart_doc": segment.counterpart_docs,
        "pages": [None if p is None else list(p) for p in segment.pages],
    }
    (folder / "docs.json").write_text(json.dumps(docs, ensure_ascii=False), encoding="utf-8")
    blob = segment.texts._blob
    with (folder / "texts.bin").open("wb") as f:
        f.write(bytes(blob[: int(segment.text_offsets[-1])]))
    for name in _ARRAYS:
        np.save(folder / f"{name}.npy", np.asarray(getattr(segment, name)), allow_pickle=False)
    segment.dense.save(folder / DENSE_FILE)
    names = ["docs.json", "texts.bin", *(f"{n}.npy" for n in _ARRAYS), DENSE_FILE,
             *segment.postings.save(folder)]
    record = {
        "format": SEGMENT_FORMAT,
        "name": segment.name,
        "docs": segment.n_docs,
        "passages": segment.n_rows,
        "sentences": len(segment.sentences),
        "dim": segment.dim,
        "dense": "exact" if segment.dense.exact else "ivf",
        "files": {name: sha256_of(folder / name) for name in sorted(names)},
    }
    (folder / SEGMENT_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record


def read_segment_record(folder: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((folder / SEGMENT_FILE).read_text(encoding="utf-8"))
    if record.get("format") != SEGMENT_FORMAT:
        raise ValueError(f"segment format {record.get('format')!r}, expected {SEGMENT_FORMAT}")
    return record


def mapped(path: Path) -> npt.NDArray[Any]:
    """A saved array, memory-mapped, as a plain ndarray (numpy's memmap subclass costs a Python
    call on every slice: a millisecond per search over many small slices)."""
    array: npt.NDArray[Any] = load_array(path, mmap=True).view(np.ndarray)
    return array


def open_segment(folder: Path) -> Segment:
    """Open a written segment: metadata read, arrays and vectors memory-mapped."""
    record = read_segment_record(folder)
    docs = json.loads((folder / "docs.json").read_text(encoding="utf-8"))
    arrays = {name: mapped(folder / f"{name}.npy") for name in _ARRAYS
              if name not in _OPTIONAL or (folder / f"{name}.npy").exists()}
    if "sentence_links" not in arrays:
        arrays["sentence_links"] = np.full((int(record["sentences"]), 3), -1.0, np.float32)
    with (folder / "texts.bin").open("rb") as f:
        size = (folder / "texts.bin").stat().st_size
        blob: bytes | mmap.mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size \
            else b""
    segment = Segment(
        name=folder.name,
        doc_ids=docs["doc_id"], release_ids=docs["release_id"],
        langs=np.array([LANGS.index(x) for x in docs["lang"]], np.int8),
        dates=docs["date"], titles=docs["title"], urls=docs["url"],
        counterpart_docs=docs["counterpart_doc"],
        # Segments written before pages were kept have none.
        pages=[None if p is None else tuple(p)
               for p in docs.get("pages", [None] * len(docs["doc_id"]))],
        texts=Texts(blob, arrays["text_offsets"]),
        dense=FaissDense.load(folder / DENSE_FILE, record["dense"] == "exact"),
        postings=Postings.load(folder),
        **arrays,
    )
    if (segment.n_docs, segment.n_rows, len(segment.sentences)) != (
        record["docs"], record["passages"], record["sentences"]
    ) or segment.dense.size != segment.n_rows:
        raise ValueError(f"segment {folder} holds other counts than its segment.json says")
    return segment
