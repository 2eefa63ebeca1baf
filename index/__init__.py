"""Qiao's retrieval library: ingest → chunk → embed → index → search → fuse.

This module is the one public surface: front ends (`service/`, `qiao/`, `scripts/`) import only
`from index import …` (a test checks it). The stages live in folders (see ARCHITECTURE.md):
`ingest/`, `model/`, `indexes/`, `search/`, `store/`, `eval/`; `retriever.py`, `view.py`,
`compose.py` and `answering.py` sit on top.

Names load on first use, so `import index` stays light: FAISS, jieba and the model are imported
only by what needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from index.align import LINK_MODEL, LinkModel, link_features
    from index.answering import (
        Answer,
        AnswerDraft,
        AnswerMode,
        LanguageModel,
        Message,
        answer_question,
        draft_answer,
        finish_answer,
    )
    from index.backend import (
        QdrantOpener,
        QdrantRetriever,
        connect,
        init_qdrant,
        open_index,
        qdrant_target,
        verify_backend,
    )
    from index.backends.qdrant import QdrantStore, QdrantTarget
    from index.backends.qdrant_index import QdrantIndex
    from index.codec import document_from_record, document_record
    from index.compose import (
        Citation,
        CitationStreamFilter,
        ComposedAnswer,
        Source,
        display_text,
        generated_answer,
    )
    from index.config import ChunkPlan, IndexSettings, load_index_settings, settings_error
    from index.embed import Embedder, Matrix, TextTooLong
    from index.errors import (
        BackendUnavailable,
        DataDirError,
        DocumentError,
        EmptyInput,
        IndexMismatch,
        LlmError,
        LlmTimeout,
        LlmUpstreamError,
        ModelError,
        QiaoError,
    )
    from index.eval.abstention import (
        AbstentionExample,
        abstention_examples,
        evidence_of_queries,
    )
    from index.eval.answers import AnswerExample, answer_examples, answer_hit_rate
    from index.eval.backend import hit_gaps, run_qdrant
    from index.eval.parallel import (
        CounterpartQuality,
        GoldPair,
        LinkExamples,
        LookupOutcome,
        ParallelSet,
        counterpart_quality,
        link_examples,
        load_parallel,
        lookup_quality,
        lost_pairs,
        parallel_build_info,
        prepared_parallel,
        snapshot_of,
        with_dropped_sentences,
        with_merged_sentences,
    )
    from index.eval.questions import Question, QuestionResult, check_questions, load_questions
    from index.eval.retrieval import (
        SETTINGS,
        SYSTEMS,
        EvalReport,
        evaluate_xquad,
        prepare_bench,
        run_bench,
    )
    from index.eval.xquad import load_xquad
    from index.files import fsync_path, write_atomic
    from index.indexes.analyze import Analyzer
    from index.indexes.lexical import Postings, SegmentTerms, bm25_top_k
    from index.ingest.chunk import embedding_text
    from index.ingest.langdetect import detect_lang
    from index.ingest.prepare import passages_for, prepare_segments
    from index.ingest.read import (
        SUPPORTED_SUFFIXES,
        PathReader,
        Problem,
        documents_from_files,
        documents_from_records,
        read_paths,
        validate_id,
    )
    from index.ingest.textview import markup_ranges
    from index.model.export import OUTPUT_NAME, export_onnx, onnx_dir_for
    from index.model.install import prepare_model
    from index.model.load import ModelInfo, load_embedder, model_info, prepare_model_files
    from index.model.sentence_transformer import (
        BATCH_TOKENS,
        MAX_BATCH,
        SentenceTransformerEmbedder,
        batch_slices,
    )
    from index.records import (
        LANGS,
        Counterpart,
        Document,
        Hit,
        Lang,
        Passage,
        PreparedDocument,
        SearchResults,
        Span,
    )
    from index.retriever import Retriever, UpsertReport
    from index.search.answer_sentence import (
        ANSWER_FEATURES,
        ANSWER_MODEL_FILE,
        AnswerModel,
        default_answer_model,
        question_kind,
    )
    from index.search.answerable import (
        ANSWERABLE_MODEL_FILE,
        EVIDENCE_FEATURES,
        AnswerableModel,
        Evidence,
        default_answerable_model,
    )
    from index.search.lexicon import default_lexicon
    from index.search.lookup import SEARCH_MODEL, MarginModel, Translation
    from index.search.rank import Filters, Mode, SearchParams
    from index.store.backup import SnapshotReport, snapshot_data_dir
    from index.store.commit import WRITE_STEPS, CommitFailed, set_write_step_hook
    from index.store.datadir import check_data_dir, current_name, has_index
    from index.store.verify import VerifyReport, Violation, verify_data_dir
    from index.view import (
        MAX_K,
        MAX_LOOKUP_CHARS,
        DocumentWindow,
        IndexSummary,
        IndexView,
        Release,
    )

# Public name → the module that defines it.
_HOMES: dict[str, str] = {
    # records
    **dict.fromkeys(
        ("LANGS", "Counterpart", "Document", "Hit", "Lang", "Passage", "PreparedDocument",
         "SearchResults", "Span"),
        "index.records",
    ),
    # errors
    **dict.fromkeys(
        ("QiaoError", "BackendUnavailable", "DataDirError", "DocumentError", "EmptyInput",
         "IndexMismatch", "LlmError", "LlmTimeout", "LlmUpstreamError", "ModelError"),
        "index.errors",
    ),
    # settings
    **dict.fromkeys(
        ("ChunkPlan", "IndexSettings", "load_index_settings", "settings_error"), "index.config"
    ),
    # the front door and its views
    "Retriever": "index.retriever",
    "UpsertReport": "index.retriever",
    **dict.fromkeys(("MAX_K", "DocumentWindow", "IndexView", "Release"), "index.view"),
    **dict.fromkeys(("Filters", "Mode", "SearchParams"), "index.search.rank"),
    **dict.fromkeys(("ANSWER_FEATURES", "ANSWER_MODEL_FILE", "AnswerModel",
                     "default_answer_model", "question_kind"), "index.search.answer_sentence"),
    # answers
    **dict.fromkeys(
        ("Answer", "AnswerDraft", "AnswerMode", "LanguageModel", "Message", "answer_question",
         "draft_answer", "finish_answer"),
        "index.answering",
    ),
    **dict.fromkeys(
        ("Citation", "CitationStreamFilter", "ComposedAnswer", "Source", "display_text",
         "generated_answer"),
        "index.compose",
    ),
    # reading documents
    **dict.fromkeys(
        ("SUPPORTED_SUFFIXES", "PathReader", "Problem", "documents_from_files",
         "documents_from_records",
         "read_paths", "validate_id"),
        "index.ingest.read",
    ),
    "detect_lang": "index.ingest.langdetect",
    "embedding_text": "index.ingest.chunk",
    "markup_ranges": "index.ingest.textview",
    "passages_for": "index.ingest.prepare",
    "prepare_segments": "index.ingest.prepare",
    "document_record": "index.codec",
    "document_from_record": "index.codec",
    "Analyzer": "index.indexes.analyze",
    **dict.fromkeys(("Postings", "SegmentTerms", "bm25_top_k"), "index.indexes.lexical"),
    # the data directory
    **dict.fromkeys(("check_data_dir", "current_name", "has_index"), "index.store.datadir"),
    **dict.fromkeys(("SnapshotReport", "snapshot_data_dir"), "index.store.backup"),
    **dict.fromkeys(("VerifyReport", "Violation", "verify_data_dir"), "index.store.verify"),
    **dict.fromkeys(("WRITE_STEPS", "CommitFailed", "set_write_step_hook"),
                    "index.store.commit"),
    "fsync_path": "index.files",
    # the Qdrant backend
    **dict.fromkeys(("QdrantOpener", "QdrantRetriever", "connect", "init_qdrant", "open_index",
                     "qdrant_target", "verify_backend"), "index.backend"),
    **dict.fromkeys(("QdrantStore", "QdrantTarget"), "index.backends.qdrant"),
    "QdrantIndex": "index.backends.qdrant_index",
    **dict.fromkeys(("hit_gaps", "run_qdrant"), "index.eval.backend"),
    "write_atomic": "index.files",
    # the model
    **dict.fromkeys(("Embedder", "Matrix", "TextTooLong"), "index.embed"),
    **dict.fromkeys(("ModelInfo", "load_embedder", "model_info", "prepare_model_files"),
                    "index.model.load"),
    "prepare_model": "index.model.install",
    **dict.fromkeys(("OUTPUT_NAME", "export_onnx", "onnx_dir_for"), "index.model.export"),
    **dict.fromkeys(("BATCH_TOKENS", "MAX_BATCH", "SentenceTransformerEmbedder", "batch_slices"),
                    "index.model.sentence_transformer"),
    # evaluation
    **dict.fromkeys(("SETTINGS", "SYSTEMS", "EvalReport", "evaluate_xquad", "prepare_bench",
                     "run_bench"),
                    "index.eval.retrieval"),
    "load_xquad": "index.eval.xquad",
    **dict.fromkeys(("Question", "QuestionResult", "check_questions", "load_questions"),
                    "index.eval.questions"),
    **dict.fromkeys(("AnswerExample", "answer_examples", "answer_hit_rate"), "index.eval.answers"),
    **dict.fromkeys(("AbstentionExample", "abstention_examples", "evidence_of_queries"),
                    "index.eval.abstention"),
    **dict.fromkeys(("CounterpartQuality", "GoldPair", "ParallelSet", "counterpart_quality",
                     "load_parallel", "lookup_quality", "LookupOutcome", "parallel_build_info",
                     "prepared_parallel", "snapshot_of", "LinkExamples", "link_examples",
                     "with_dropped_sentences", "with_merged_sentences", "lost_pairs"),
                    "index.eval.parallel"),
    **dict.fromkeys(("LINK_MODEL", "LinkModel", "link_features"), "index.align"),
    "MAX_LOOKUP_CHARS": "index.view",
    "IndexSummary": "index.view",
    **dict.fromkeys(("Translation", "MarginModel", "SEARCH_MODEL"), "index.search.lookup"),
    "default_lexicon": "index.search.lexicon",
    **dict.fromkeys(("ANSWERABLE_MODEL_FILE", "EVIDENCE_FEATURES", "AnswerableModel",
                     "Evidence", "default_answerable_model"), "index.search.answerable"),
}

__all__ = [
    "ANSWERABLE_MODEL_FILE",
    "ANSWER_FEATURES",
    "ANSWER_MODEL_FILE",
    "BATCH_TOKENS",
    "EVIDENCE_FEATURES",
    "LANGS",
    "LINK_MODEL",
    "MAX_BATCH",
    "MAX_K",
    "MAX_LOOKUP_CHARS",
    "OUTPUT_NAME",
    "SEARCH_MODEL",
    "SETTINGS",
    "SUPPORTED_SUFFIXES",
    "SYSTEMS",
    "WRITE_STEPS",
    "AbstentionExample",
    "Analyzer",
    "Answer",
    "AnswerDraft",
    "AnswerExample",
    "AnswerMode",
    "AnswerModel",
    "AnswerableModel",
    "BackendUnavailable",
    "ChunkPlan",
    "Citation",
    "CitationStreamFilter",
    "CommitFailed",
    "ComposedAnswer",
    "Counterpart",
    "CounterpartQuality",
    "DataDirError",
    "Document",
    "DocumentError",
    "DocumentWindow",
    "Embedder",
    "EmptyInput",
    "EvalReport",
    "Evidence",
    "Filters",
    "GoldPair",
    "Hit",
    "IndexMismatch",
    "IndexSettings",
    "IndexSummary",
    "IndexView",
    "Lang",
    "LanguageModel",
    "LinkExamples",
    "LinkModel",
    "LlmError",
    "LlmTimeout",
    "LlmUpstreamError",
    "LookupOutcome",
    "MarginModel",
    "Matrix",
    "Message",
    "Mode",
    "ModelError",
    "ModelInfo",
    "ParallelSet",
    "Passage",
    "PathReader",
    "Postings",
    "PreparedDocument",
    "Problem",
    "QdrantIndex",
    "QdrantOpener",
    "QdrantRetriever",
    "QdrantStore",
    "QdrantTarget",
    "QiaoError",
    "Question",
    "QuestionResult",
    "Release",
    "Retriever",
    "SearchParams",
    "SearchResults",
    "SegmentTerms",
    "SentenceTransformerEmbedder",
    "SnapshotReport",
    "Source",
    "Span",
    "TextTooLong",
    "Translation",
    "UpsertReport",
    "VerifyReport",
    "Violation",
    "abstention_examples",
    "answer_examples",
    "answer_hit_rate",
    "answer_question",
    "batch_slices",
    "bm25_top_k",
    "check_data_dir",
    "check_questions",
    "connect",
    "counterpart_quality",
    "current_name",
    "default_answer_model",
    "default_answerable_model",
    "default_lexicon",
    "detect_lang",
    "display_text",
    "document_from_record",
    "document_record",
    "documents_from_files",
    "documents_from_records",
    "draft_answer",
    "embedding_text",
    "evaluate_xquad",
    "evidence_of_queries",
    "export_onnx",
    "finish_answer",
    "fsync_path",
    "generated_answer",
    "has_index",
    "hit_gaps",
    "init_qdrant",
    "link_examples",
    "link_features",
    "load_embedder",
    "load_index_settings",
    "load_parallel",
    "load_questions",
    "load_xquad",
    "lookup_quality",
    "lost_pairs",
    "markup_ranges",
    "model_info",
    "onnx_dir_for",
    "open_index",
    "parallel_build_info",
    "passages_for",
    "prepare_bench",
    "prepare_model",
    "prepare_model_files",
    "prepare_segments",
    "prepared_parallel",
    "qdrant_target",
    "question_kind",
    "read_paths",
    "run_bench",
    "run_qdrant",
    "set_write_step_hook",
    "settings_error",
    "snapshot_data_dir",
    "snapshot_of",
    "validate_id",
    "verify_backend",
    "verify_data_dir",
    "with_dropped_sentences",
    "with_merged_sentences",
    "write_atomic",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'index' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
