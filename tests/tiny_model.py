"""A tiny random sentence-transformers model (2-layer BERT, word-level tokens) for fast tests of
the model loading and export code without the real model."""

from __future__ import annotations

import shutil
from pathlib import Path

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "query", "passage", ":", "a", "b", "c", "d", "e"]


def build_tiny_model(root: Path, *, normalize: bool) -> Path:
    """Save the model under `root / "st"` as sentence-transformers does; mean pooling, the
    `query : `/`passage : ` prompts, and a Normalize module when `normalize`."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.normalize import Normalize
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules.pooling import Pooling
    from tokenizers import Tokenizer, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    hf_dir = root / "hf"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(WORDS),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        pad_token_id=0,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(hf_dir)
    backend = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=16,
    ).save_pretrained(hf_dir)
    modules = [Transformer(str(hf_dir), max_seq_length=16), Pooling(16, pooling_mode="mean")]
    if normalize:
        modules.append(Normalize())
    model = SentenceTransformer(
        modules=modules,
        prompts={"query": "query : ", "passage": "passage : "},
        device="cpu",
    )
    out = root / "st"
    model.save(str(out))
    shutil.rmtree(hf_dir)
    return out
