"""hf-tbc: Train Large, Then Compress with the 🤗 Trainer.

Train the largest model a wall-clock budget allows, stop early, then compress it.
"""

import importlib
import importlib.abc
import importlib.util
import sys

from .budget import TimeBasedLRScheduler, WallClockBudgetCallback, format_duration, lr_multiplier, parse_duration
from .budget.arguments import BudgetTrainingArguments
from .budget.curves import CurveCallback, plot_curves, plot_run, read_curve
from .budget.trainer import BudgetMixin, BudgetProgressCallback, BudgetSeq2SeqTrainer, BudgetTrainer
from .compress.onnx_model import OnnxModelForSequenceClassification
from .compress.onnx_seq2seq import OnnxModelForSeq2SeqLM
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

# Modules that moved into the packages by concern, importable by their former paths (code written against them, and
# docs of earlier versions, keep working): the former name is the same module object as the new one.
MOVED_MODULES = {
    "hf_tbc.ranks": "hf_tbc.distributed",
    "hf_tbc.advise.probes": "hf_tbc.advise.probing",
    "hf_tbc.tasks.mlm.questions": "hf_tbc.tasks.mlm.findings",
    "hf_tbc.tasks.translation.questions": "hf_tbc.tasks.translation.findings",
    "hf_tbc.arguments": "hf_tbc.budget.arguments",
    "hf_tbc.trainer": "hf_tbc.budget.trainer",
    "hf_tbc.curves": "hf_tbc.budget.curves",
    "hf_tbc.runs": "hf_tbc.budget.runs",
    "hf_tbc.datafiles": "hf_tbc.data.files",
    "hf_tbc.tokenizer": "hf_tbc.data.tokenizer",
    "hf_tbc.model_config": "hf_tbc.tasks.model_config",
    "hf_tbc.records": "hf_tbc.compress.records",
    "hf_tbc.evaluation": "hf_tbc.compress.evaluation",
    "hf_tbc.variants": "hf_tbc.compress.variants",
    "hf_tbc.onnx_model": "hf_tbc.compress.onnx_model",
    "hf_tbc.onnx_seq2seq": "hf_tbc.compress.onnx_seq2seq",
    "hf_tbc.onnx_decoding": "hf_tbc.compress.onnx_decoding",
    "hf_tbc.selection": "hf_tbc.release.selection",
    "hf_tbc.public": "hf_tbc.release.leaks",
    "hf_tbc.hub": "hf_tbc.release.hub",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED_MODULES else None

    def create_module(self, spec):
        return importlib.import_module(MOVED_MODULES[spec.name])

    def exec_module(self, module):
        pass


sys.meta_path.append(_MovedModules())

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
