"""The flags of ``recipes/run_mlm.py``: the model (size, architecture, the short-budget recipe's switches), the
corpus, and pretraining's defaults; and the checks that need no data."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

from ...budget.arguments import BudgetTrainingArguments, native_bf16_field, wsd_schedule_field
from ...errors import UsageError
from ..model_config import check_dropout
from .data import TOKENIZER_SAMPLE_TEXTS
from .model import ARCHITECTURES, get_model_size


@dataclass
class ModelArguments:
    """Which model to pretrain: a size preset, or an existing checkpoint to continue."""

    model_size: Optional[str] = field(
        default="L2-H128",
        metadata={
            "help": "Model size L{layers}-H{hidden}, e.g. L12-H768 or L1-H192 (RoBERTa shapes: heads = hidden/64, "
            "at least 2, FFN = 4 x hidden). hf_tbc.tasks.mlm.model.MODEL_SIZES lists the paper's grids."
        },
    )
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "Continue pretraining this checkpoint instead of a fresh --model_size."}
    )
    config_overrides: Optional[str] = field(
        default=None, metadata={"help": "Override config values, e.g. 'hidden_dropout_prob=0.0,num_attention_heads=4'."}
    )
    tokenizer_name: Optional[str] = field(
        default=None,
        metadata={"help": "Tokenizer to use; by default a byte-level BPE is trained on the training text."},
    )
    vocab_size: int = field(default=8192, metadata={"help": "Vocabulary size of the trained tokenizer."})
    architecture: str = field(
        default="roberta-prelayernorm",
        metadata={
            "help": "Model class of a fresh --model_size: 'roberta-prelayernorm' (LayerNorm before each sublayer: "
            "stable at the high learning rates of short budgets) or 'roberta' (post-LayerNorm, as released).",
            "choices": list(ARCHITECTURES),
        },
    )
    dropout: Optional[float] = field(
        default=0.0,
        metadata={
            "help": "Hidden and attention dropout of a fresh model while pretraining (0: a budget too short to "
            "overfit gains nothing from it). Finetuning sets its own. Unset: the config's 0.1."
        },
    )
    sparse_prediction: bool = field(
        default=True,
        metadata={
            "help": "Run the MLM head (the vocabulary projection) on the masked positions only, not on every "
            "position: the same loss, and at small sizes most of the step's cost saved."
        },
    )
    attn_implementation: Optional[str] = field(
        default=None,
        metadata={
            "help": "Attention kernel while training, as transformers names them ('eager', 'sdpa', "
            "'flash_attention_2'). Default: 'eager' on a CPU under bf16, 'sdpa' elsewhere (why: docs/pretraining.md). "
            "Not saved with the model."
        },
    )
    position_init: str = field(
        default="sinusoidal",
        metadata={
            "help": "Initial values of a fresh model's learned position embeddings: 'sinusoidal' (the "
            "Transformer's sine and cosine waves, scaled to the word embeddings' size) or 'random' (noise, as "
            "transformers initializes them). The embeddings stay trainable and the saved class is unchanged.",
            "choices": ["random", "sinusoidal"],
        },
    )

    def __post_init__(self):
        if self.model_name_or_path is None:
            get_model_size(self.model_size)
        if self.dropout is not None:
            check_dropout(self.dropout)
        if self.vocab_size < 300:
            raise UsageError(f"--vocab_size {self.vocab_size} is below the 256 bytes + special tokens: use >= 300")


# The peak LR the recipe was tuned at (L4-H256, 10 CPU minutes), and the width it was tuned at: wider models get it
# scaled by BASE_WIDTH / hidden (Adam's update size per weight does not shrink with width, so the step in function
# space grows with it, the reason muP scales hidden LRs as 1 / width); narrower ones keep it (measured: L2-H128 at
# 2e-3 is no better than at 1e-3).
BASE_LEARNING_RATE, BASE_WIDTH = 1e-3, 256


def width_scaled_learning_rate(hidden_size: int) -> float:
    """The default peak LR for a model ``hidden_size`` wide: ``1e-3 * min(1, 256 / hidden_size)``."""
    return BASE_LEARNING_RATE * min(1.0, BASE_WIDTH / hidden_size)


MLM_PROBABILITY = 0.15  # BERT's; 0.4 helps L4-H256 but hurts L2-H128 badly (README, "Masking more")


@dataclass
class DataTrainingArguments:
    """What text to pretrain on. With no dataset and no file, the built-in corpus is used."""

    dataset_name: Optional[str] = field(default=None, metadata={"help": "Hub dataset, e.g. 'wikitext'."})
    dataset_config_name: Optional[str] = field(
        default=None, metadata={"help": "Its config, e.g. 'wikitext-103-raw-v1'."}
    )
    train_file: Optional[str] = field(
        default=None, metadata={"help": "Training text: .txt, .csv, .tsv, .json or .jsonl."}
    )
    validation_file: Optional[str] = field(default=None, metadata={"help": "Validation text, same format."})
    text_column: Optional[str] = field(
        default=None,
        metadata={
            "help": "Column holding the text (default: 'text', else 'sentence' or 'content'). Several, separated "
            "by commas (e.g. 'sentence,premise,hypothesis'): every listed column a file has is used, each a text, "
            "row by row (a pair's two sides stay next to each other), so files with different columns mix."
        },
    )
    validation_split_percentage: float = field(
        default=5.0, metadata={"help": "Percent of train held out for validation when there is no validation split."}
    )
    block_size: int = field(default=128, metadata={"help": "Tokens per packed training block."})
    mlm_probability: float = field(
        default=MLM_PROBABILITY,
        metadata={
            "help": "Fraction of tokens masked in training blocks (default 0.15, as BERT). Validation blocks keep "
            "--eval_mlm_probability; docs/pretraining.md measures 0.4 against 0.15 by size."
        },
    )
    eval_mlm_probability: float = field(
        default=0.15,
        metadata={
            "help": "Fraction masked in the fixed validation blocks, apart from --mlm_probability so that "
            "validation losses of runs that mask differently compare (0.15, as BERT)."
        },
    )
    max_eval_samples: Optional[int] = field(
        default=2000, metadata={"help": "Evaluate on at most this many blocks (keeps evaluations short)."}
    )
    preprocessing_num_workers: Optional[int] = field(
        default=None,
        metadata={
            "help": "Processes that tokenize and pack the corpus. Default: every core this process may use, but no "
            "more than one per 20,000 texts (a worker costs more than it saves on a small corpus)."
        },
    )
    streaming: bool = field(
        default=False,
        metadata={
            "help": "Read the training text as training consumes it (datasets' streaming), tokenizing and packing on "
            "the fly through a shuffle buffer of 10,000 texts: a corpus of any size starts training at once, in "
            "little memory. Validation is the source's validation split, else the stream's first texts (enough for "
            "--max_eval_samples blocks), which training then skips. For a --dataset_name or --train_file."
        },
    )
    tokenizer_train_texts: Optional[int] = field(
        default=TOKENIZER_SAMPLE_TEXTS,
        metadata={
            "help": "Train the tokenizer on at most this many texts of the training split (a seeded sample; the "
            "stream's first ones with --streaming). A BPE vocabulary settles long before a gigabyte of text. "
            "0: every text."
        },
    )

    def __post_init__(self):
        if self.streaming and self.dataset_name is None and self.train_file is None:
            raise UsageError("--streaming reads a --dataset_name or a --train_file: give one, or leave --streaming out")
        if self.tokenizer_train_texts is not None and self.tokenizer_train_texts < 0:
            raise UsageError(f"--tokenizer_train_texts {self.tokenizer_train_texts} must be 0 (every text) or more")
        if self.block_size < 8:
            raise UsageError(f"--block_size {self.block_size} is too small: use at least 8 tokens")
        for flag in ("mlm_probability", "eval_mlm_probability"):
            if not 0 < getattr(self, flag) < 1:
                raise UsageError(f"--{flag} {getattr(self, flag)} must be in (0, 1)")


@dataclass
class PretrainingArguments(BudgetTrainingArguments):
    """``BudgetTrainingArguments`` with defaults for pretraining from scratch under a short budget: a peak LR of 1e-3
    (scaled down for models wider than 256) with a short warmup (2 % of the budget, at least 50 steps), held until the
    last fifth of the budget and decaying to zero at the deadline (warmup_stable_decay), AdamW betas
    (0.9, 0.98) as in RoBERTa, and gradient clipping at 0.5."""

    lr_scheduler_type: str = wsd_schedule_field()
    learning_rate: Optional[float] = field(
        default=None,
        metadata={
            "help": "Peak learning rate (AdamW). Default: 1e-3 up to hidden size 256, scaled by 256 / hidden beyond "
            "it (L6-H384: 6.7e-4, L12-H768: 3.3e-4)."
        },
    )
    warmup_ratio: float = field(
        default=0.02, metadata={"help": "Warmup, as a fraction of the budget (or of max_steps)."}
    )
    warmup_steps: float = field(
        default=50,
        metadata={
            "help": "Warm up over at least this many optimizer steps, however few the budget allows (the longer of "
            "this and --warmup_ratio): a large size on a short budget otherwise meets the peak LR within a few steps."
        },
    )
    adam_beta2: float = field(default=0.98, metadata={"help": "AdamW beta2 (RoBERTa's 0.98: steadier with large LRs)."})
    max_grad_norm: float = field(default=0.5, metadata={"help": "Clip the gradient norm to this value."})
    bf16: Optional[bool] = native_bf16_field()
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Blocks per device per step."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Blocks per device per evaluation step."})
    ddp_find_unused_parameters: Optional[bool] = field(
        default=False, metadata={"help": "RoBERTa's MLM uses every parameter, so DDP need not search for unused ones."}
    )
    count_tokens_by_shape: bool = field(
        default=True,
        metadata={"help": "Count input tokens from each batch's shape (packed blocks have no padding): no gather."},
    )

    def for_width(self, hidden_size: int) -> "PretrainingArguments":
        """These arguments for a model ``hidden_size`` wide: the same object where ``--learning_rate`` was given,
        else a copy whose peak LR is the flag's default, scaled to that width (the parsed arguments stay as parsed)."""
        if self.learning_rate is not None:
            return self
        return replace(self, learning_rate=width_scaled_learning_rate(hidden_size))
