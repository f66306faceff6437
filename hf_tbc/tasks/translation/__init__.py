"""Translation under a wall-clock budget: the paper's second task (encoder-decoders of varied width and depth)."""

from .bleu import TranslationMetrics, copy_source_scores, corpus_scores
from .data import load_pairs, tokenize_pairs, train_pair_tokenizer
from .sizes import SEQ2SEQ_ARCHITECTURES, TranslationSize, get_translation_size, seq2seq_config
from .training import (
    TranslationDataArguments,
    TranslationModelArguments,
    TranslationTrainingArguments,
    train_translation,
)

__all__ = [
    "SEQ2SEQ_ARCHITECTURES",
    "TranslationDataArguments",
    "TranslationMetrics",
    "TranslationModelArguments",
    "TranslationSize",
    "TranslationTrainingArguments",
    "copy_source_scores",
    "corpus_scores",
    "get_translation_size",
    "load_pairs",
    "seq2seq_config",
    "tokenize_pairs",
    "train_pair_tokenizer",
    "train_translation",
]
