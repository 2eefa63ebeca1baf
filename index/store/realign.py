"""Counterpart links of a release: its two language versions aligned, written onto both.

Sentences are aligned (see `index.align`), then projected onto passages; passage-level beads
land a passage off where the versions break paragraphs differently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from index.align import (
    align_passages,
    counterpart_ranges,
    link_confidences,
    project_sentence_beads,
)
from index.records import LANGS, PreparedDocument

FloatArray = npt.NDArray[np.float64]


def without_counterparts(doc: PreparedDocument) -> PreparedDocument:
    return doc.without_counterparts()


def realign_releases(
    docs: Mapping[str, PreparedDocument], release_ids: set[str]
) -> dict[str, PreparedDocument]:
    """`docs` with the counterpart links of every document of the given releases recomputed:
    a release with one version in each language gets them aligned, any other gets none."""
    out = dict(docs)
    by_release: dict[str, dict[str, list[PreparedDocument]]] = {}
    for doc in docs.values():
        if doc.document.release_id in release_ids:
            langs = by_release.setdefault(doc.document.release_id, {})
            langs.setdefault(doc.document.lang, []).append(doc)
    for langs in by_release.values():
        for versions in langs.values():
            for doc in versions:
                out[doc.doc_id] = without_counterparts(doc)
        if not all(lang in langs for lang in LANGS):
            continue
        # One version per language is the norm; with several, the first by doc_id is aligned.
        en = min(langs["en"], key=lambda d: d.doc_id)
        zh = min(langs["zh"], key=lambda d: d.doc_id)
        links = counterparts(en, zh)
        out[en.doc_id] = replace(en, counterparts=links.en, counterpart_doc=zh.doc_id,
                                 sentence_counterparts=links.en_sentences)
        out[zh.doc_id] = replace(zh, counterparts=links.zh, counterpart_doc=en.doc_id,
                                 sentence_counterparts=links.zh_sentences)
    return out


@dataclass(frozen=True, slots=True)
class ReleaseLinks:
    """Both versions' counterpart ranges: per passage ([first, end, bead cosine]) and per
    sentence ([first, end, confidence]; (0, 3) when the sentences were not aligned)."""

    en: FloatArray
    zh: FloatArray
    en_sentences: FloatArray
    zh_sentences: FloatArray


def counterparts(en: PreparedDocument, zh: PreparedDocument) -> ReleaseLinks:
    """Counterpart ranges for both versions: sentences are aligned, then projected onto
    passages; the sentence beads are kept too."""
    one_each = len(en.spans) == len(zh.spans) == 1  # nothing to choose between
    no_sentences = np.zeros((0, 3))
    if not len(en.sentence_spans) or not len(zh.sentence_spans):
        beads = align_passages(en.vectors, zh.vectors)
        cp_en, cp_zh = counterpart_ranges(beads, len(en.spans), len(zh.spans))
        return ReleaseLinks(cp_en, cp_zh, no_sentences, no_sentences)
    sent_beads = align_passages(en.sentence_vectors, zh.sentence_vectors)
    en_s, zh_s = en.sentence_spans, zh.sentence_spans
    s_en, s_zh = counterpart_ranges(sent_beads, len(en_s), len(zh_s))
    if one_each:
        cp_en, cp_zh = counterpart_ranges(align_passages(en.vectors, zh.vectors), 1, 1)
    else:
        cp_en, cp_zh = project_sentence_beads(
            sent_beads, en_s[:, 0], zh_s[:, 0], en_s[:, 2] - en_s[:, 1],
            zh_s[:, 2] - zh_s[:, 1], len(en.spans), len(zh.spans),
        )
    # Sentence links carry their confidence (not the bead's cosine): a sentence whose
    # translation is missing is merged into a neighbour's bead at a high cosine.
    return ReleaseLinks(
        cp_en, cp_zh,
        link_confidences(en.sentence_vectors, zh.sentence_vectors, s_en),
        link_confidences(zh.sentence_vectors, en.sentence_vectors, s_zh),
    )
