"""The flags of ``recipes/run_classification.py``: the checkpoint, the task's data, and finetuning's defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ...budget.arguments import BudgetTrainingArguments, native_bf16_field

# GLUE classification tasks: (first text column, second text column or None)
GLUE_TASKS = {
    "cola": ("sentence", None),
    "sst2": ("sentence", None),
    "mrpc": ("sentence1", "sentence2"),
    "qqp": ("question1", "question2"),
    "mnli": ("premise", "hypothesis"),
    "qnli": ("question", "sentence"),
    "rte": ("sentence1", "sentence2"),
    "wnli": ("sentence1", "sentence2"),
}
GLUE_VALIDATION_SPLITS = {"mnli": ("validation_matched", "validation_mismatched")}


FINETUNING_MAX_SEQ_LENGTH = 128  # tokens per input when --max_seq_length is unset


@dataclass
class ClassificationModelArguments:
    """The checkpoint to finetune."""

    model_name_or_path: str = field(
        metadata={"help": "A checkpoint folder or Hub id, e.g. runs/L12-H768 or roberta-base."}
    )
    tokenizer_name: Optional[str] = field(default=None, metadata={"help": "Tokenizer, if not the checkpoint's."})
    dropout: Optional[float] = field(
        default=0.1,
        metadata={
            "help": "Hidden and attention dropout while finetuning (hf-tbc pretrains without dropout, so the "
            "checkpoint's config says 0). Unset: keep the checkpoint's."
        },
    )
    random_init: bool = field(
        default=False,
        metadata={
            "help": "Use only the checkpoint's config and tokenizer, with freshly initialised weights: the "
            "control run that shows what pretraining adds."
        },
    )


@dataclass
class ClassificationDataArguments:
    """A GLUE task from the Hub, or local files with one or two text columns and a label column."""

    task_name: Optional[str] = field(default=None, metadata={"help": f"GLUE task: {', '.join(GLUE_TASKS)}."})
    dataset_name: str = field(default="nyu-mll/glue", metadata={"help": "Hub dataset holding --task_name."})
    train_file: Optional[str] = field(
        default=None,
        metadata={
            "help": "Local training data: .csv, .tsv, .json or .jsonl (several: comma-separated, all of one kind)."
        },
    )
    validation_file: Optional[str] = field(default=None, metadata={"help": "Local validation data, same format."})
    text_column: Optional[str] = field(
        default=None, metadata={"help": "Column of the (first) text; default 'sentence' or 'text'."}
    )
    text_pair_column: Optional[str] = field(
        default=None, metadata={"help": "Column of the second text, for pair tasks (NLI)."}
    )
    label_column: str = field(default="label", metadata={"help": "Column of the label."})
    max_seq_length: Optional[int] = field(
        default=None,
        metadata={
            "help": "Longer inputs are truncated to this many tokens (finetuning: 128; compression: the value "
            "the model was finetuned with, from its eval_results.json)."
        },
    )
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Use at most this many training rows."})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "Use at most this many validation rows."})


@dataclass
class FinetuningArguments(BudgetTrainingArguments):
    """``BudgetTrainingArguments`` with finetuning defaults; ``--time_budget`` is optional here."""

    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate (AdamW)."})
    warmup_ratio: float = field(default=0.06, metadata={"help": "Warmup, as a fraction of the budget or of the steps."})
    num_train_epochs: float = field(
        default=3.0, metadata={"help": "Epochs, when no --time_budget ends training first."}
    )
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Examples per device per step."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Examples per device per evaluation step."})
    eval_strategy: str = field(
        default="auto",
        metadata={
            "help": "When to evaluate: auto (on the budget clock, every --eval_every, with a --time_budget; every "
            "epoch without one), no, steps, epoch."
        },
    )
    save_strategy: str = field(default="no", metadata={"help": "When to checkpoint: no, steps, epoch."})
    load_best_model_at_end: bool = field(
        default=True,
        metadata={
            "help": "Keep the checkpoint with the best --metric_for_best_model among the evaluations and load it at "
            "the end, so that training past the best point (overfitting) costs nothing; under a --time_budget every "
            "evaluation that sets a new best saves it. false: keep the last step."
        },
    )
    metric_for_best_model: Optional[str] = field(
        default="accuracy", metadata={"help": "Validation metric that picks the best checkpoint (accuracy, loss)."}
    )
    ddp_find_unused_parameters: Optional[bool] = field(default=False, metadata={"help": "See TrainingArguments."})
    bf16: Optional[bool] = native_bf16_field()

    def __post_init__(self):
        if self.eval_strategy == "auto":
            self.eval_strategy = "no" if self.time_budget is not None else "epoch"
        super().__post_init__()
