"""hf-tbc: Train Large, Then Compress with the 🤗 Trainer.

Train the largest model a wall-clock budget allows, stop early, then compress it.
"""

from .arguments import BudgetTrainingArguments
from .budget import TimeBasedLRScheduler, WallClockBudgetCallback, format_duration, lr_multiplier, parse_duration
from .curves import CurveCallback, plot_curves, plot_run, read_curve
from .onnx_model import OnnxModelForSequenceClassification
from .onnx_seq2seq import OnnxModelForSeq2SeqLM
from .tasks.mlm.masking import MaskedLMCollator, mask_once
from .tasks.mlm.model import (
    MODEL_SIZES,
    ModelSize,
    SparsePrediction,
    count_parameters,
    get_model_size,
    roberta_config,
    training_flops_per_token,
)
from .trainer import BudgetMixin, BudgetProgressCallback, BudgetSeq2SeqTrainer, BudgetTrainer

__version__ = "0.1.0"


def __getattr__(name: str):
    # the int8 translation model pulls in the compression stack: imported on first use, not with the package
    if name == "QuantizedModelForSeq2SeqLM":
        from .compress.seq2seq import QuantizedModelForSeq2SeqLM

        return QuantizedModelForSeq2SeqLM
    raise AttributeError(f"module 'hf_tbc' has no attribute {name!r}")


__all__ = [
    "MODEL_SIZES",
    "BudgetMixin",
    "BudgetProgressCallback",
    "BudgetSeq2SeqTrainer",
    "BudgetTrainer",
    "BudgetTrainingArguments",
    "CurveCallback",
    "MaskedLMCollator",
    "ModelSize",
    "OnnxModelForSeq2SeqLM",
    "OnnxModelForSequenceClassification",
    "QuantizedModelForSeq2SeqLM",
    "SparsePrediction",
    "TimeBasedLRScheduler",
    "WallClockBudgetCallback",
    "count_parameters",
    "format_duration",
    "get_model_size",
    "lr_multiplier",
    "mask_once",
    "parse_duration",
    "plot_curves",
    "plot_run",
    "read_curve",
    "roberta_config",
    "training_flops_per_token",
]
