"""The flags of ``recipes/run_translation.py``: the model (size, architecture), the pairs, and training's defaults
made for short budgets; and the checks that need no data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from transformers import Seq2SeqTrainingArguments

from ...budget.arguments import BudgetTrainingArguments, native_bf16_field, wsd_schedule_field
from ...errors import UsageError
from ..model_config import check_dropout, load_model_config
from .model import SEQ2SEQ_ARCHITECTURES, get_model_size

DEFAULT_TRANSLATION_SIZE = "E3-D3-H256"
CURVE_METRICS = ("eval_bleu", "eval_chrf")


@dataclass
class TranslationModelArguments:
    """Which encoder-decoder to train: a size preset, or a checkpoint to continue."""

    model_size: Optional[str] = field(
        default=DEFAULT_TRANSLATION_SIZE,
        metadata={
            "help": "Size E{encoder layers}-D{decoder layers}-H{hidden} (heads = hidden/64, FFN = 4 x hidden), e.g. "
            "E6-D6-H512 (the base Transformer). The default learns within minutes on a laptop CPU."
        },
    )
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "Continue training this checkpoint (a run_translation.py folder or Hub model)."}
    )
    tokenizer_name: Optional[str] = field(
        default=None,
        metadata={"help": "Tokenizer to use; by default one byte-level BPE is trained on both sides of the pairs."},
    )
    vocab_size: int = field(
        default=4000,
        metadata={
            "help": "Size of the vocabulary trained on both sides of the pairs (the output layer over "
            "it is a large share of a small model's step: 4000 halves the step of 8000 at H256)."
        },
    )
    architecture: str = field(
        default="m2m100",
        metadata={
            "help": "Model class of a fresh --model_size: 'm2m100' (LayerNorm before each sublayer, fixed "
            "sinusoidal positions: stable at high learning rates, positions known from the first step), 'mbart' "
            "(LayerNorm before each sublayer, learned positions) or 'marian' (LayerNorm after each sublayer, as "
            "in the original Transformer).",
            "choices": list(SEQ2SEQ_ARCHITECTURES),
        },
    )
    dropout: float = field(default=0.1, metadata={"help": "Dropout of a fresh model (hidden states)."})
    config_overrides: Optional[str] = field(
        default=None, metadata={"help": "Override config values of a fresh model, e.g. 'attention_dropout=0.1'."}
    )

    def __post_init__(self):
        if self.model_name_or_path is None:
            get_model_size(self.model_size)
            if self.architecture not in SEQ2SEQ_ARCHITECTURES:
                raise UsageError(
                    f"--architecture {self.architecture}: choose one of {', '.join(SEQ2SEQ_ARCHITECTURES)}"
                )
        check_dropout(self.dropout)
        if self.vocab_size < 300:
            raise UsageError(f"--vocab_size {self.vocab_size} is below the 256 bytes + special tokens: use >= 300")


@dataclass
class TranslationDataArguments:
    """Which pairs to train on: a Hub dataset, or local files with one column per language."""

    dataset_name: Optional[str] = field(default=None, metadata={"help": "Hub dataset, e.g. 'wmt14'."})
    dataset_config_name: Optional[str] = field(default=None, metadata={"help": "Its config, e.g. 'fr-en'."})
    train_file: Optional[str] = field(default=None, metadata={"help": "Training pairs: .tsv, .csv, .json or .jsonl."})
    validation_file: Optional[str] = field(default=None, metadata={"help": "Validation pairs, same format."})
    test_file: Optional[str] = field(default=None, metadata={"help": "Test pairs, scored once at the end."})
    source_lang: str = field(
        default="en", metadata={"help": "Source language code (a column name or a key of 'translation')."}
    )
    target_lang: str = field(default="fr", metadata={"help": "Target language code."})
    source_column: Optional[str] = field(
        default=None, metadata={"help": "Column of the source text (default: --source_lang)."}
    )
    target_column: Optional[str] = field(
        default=None, metadata={"help": "Column of the target text (default: --target_lang)."}
    )
    validation_split_percentage: float = field(
        default=5.0, metadata={"help": "Percent of train held out for validation when there is no validation split."}
    )
    max_source_length: int = field(default=128, metadata={"help": "Cut source sentences to this many tokens."})
    max_target_length: int = field(
        default=128, metadata={"help": "Cut target sentences (and generations) to this many tokens."}
    )
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Train on the first N pairs only."})
    max_eval_samples: Optional[int] = field(
        default=500,
        metadata={
            "help": "Pairs of the fixed validation subset decoded at every evaluation (BLEU on the "
            "curve); the full validation and test splits are scored once at the end."
        },
    )
    preprocessing_num_workers: Optional[int] = field(default=None, metadata={"help": "Processes for tokenization."})
    num_beams: int = field(
        default=5,
        metadata={
            "help": "Beams of the final evaluation and of the generation config saved with the model (what "
            "generate() and the card use); the curve during training decodes with --generation_num_beams "
            "(default greedy, off the budget). 1: greedy."
        },
    )
    no_repeat_ngram_size: int = field(
        default=3,
        metadata={
            "help": "Final decoding and saved config: never write an n-gram of this size twice (0: off). 3 removed "
            "every looping output ('tetetete') of a 10-minute E3-D3-H256 at the same BLEU "
            "(docs/translation.md#decoding)."
        },
    )

    def __post_init__(self):
        if self.num_beams < 1 or self.no_repeat_ngram_size < 0:
            raise UsageError(
                f"--num_beams {self.num_beams} / --no_repeat_ngram_size {self.no_repeat_ngram_size}: beams are at "
                "least 1 (greedy), the n-gram size at least 0 (off)"
            )
        for name in ("max_source_length", "max_target_length"):
            if getattr(self, name) < 4:
                raise UsageError(f"--{name} {getattr(self, name)} is too small: use at least 4 tokens")


@dataclass
class TranslationTrainingArguments(BudgetTrainingArguments, Seq2SeqTrainingArguments):
    """``BudgetTrainingArguments`` for ``Seq2SeqTrainer``, with defaults for training a translation model from scratch
    under a short budget: AdamW betas (0.9, 0.98) and label smoothing 0.1 (Vaswani et al. 2017), a high peak LR after
    a short warmup (2 % of the budget, at least 30 steps), held until the last fifth of the budget and decaying to zero
    at the deadline, clipping at 1.0, batches of similar lengths, greedy decoding."""

    lr_scheduler_type: str = wsd_schedule_field()
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate (AdamW)."})
    warmup_ratio: float = field(
        default=0.02, metadata={"help": "Warmup, as a fraction of the budget (or of max_steps)."}
    )
    warmup_steps: float = field(
        default=30,
        metadata={
            "help": "Warm up over at least this many optimizer steps (the longer of this and --warmup_ratio): a short "
            "warmup in time that still gives a slow size a ramp."
        },
    )
    adam_beta2: float = field(default=0.98, metadata={"help": "AdamW beta2 (0.98, as in the Transformer)."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Clip the gradient norm to this value."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    label_smoothing_factor: float = field(default=0.1, metadata={"help": "Label smoothing of the training loss."})
    per_device_train_batch_size: int = field(default=64, metadata={"help": "Sentence pairs per device per step."})
    per_device_eval_batch_size: int = field(default=100, metadata={"help": "Pairs per device per decoding batch."})
    group_by_length: bool = field(
        default=True, metadata={"help": "Batch pairs of similar length together: far less padding for the same pairs."}
    )
    predict_with_generate: bool = field(default=True, metadata={"help": "Decode at evaluation, for BLEU and chrF."})
    save_strategy: str = field(
        default="no",
        metadata={
            "help": "When to checkpoint: no (the default; --save_every "
            "saves on the budget clock, and a preempted run always saves), steps, epoch."
        },
    )
    generation_num_beams: Optional[int] = field(
        default=1, metadata={"help": "Beams of the curve's decoding during training (1: greedy); see --num_beams."}
    )
    bf16: Optional[bool] = native_bf16_field()


def validate(model_args: TranslationModelArguments, data_args: TranslationDataArguments) -> None:
    """Checks what one dataclass cannot see alone (each checks its own flags in ``__post_init__``): that a checkpoint
    to continue is an encoder-decoder. Needs no data, so bad input fails before anything loads or is written."""
    if model_args.model_name_or_path is not None:
        config = load_model_config(model_args.model_name_or_path)
        if not getattr(config, "is_encoder_decoder", False):
            raise UsageError(
                f"--model_name_or_path {model_args.model_name_or_path} is a {config.model_type} model, not an "
                "encoder-decoder: continue a run_translation.py output, or train a fresh --model_size"
            )
