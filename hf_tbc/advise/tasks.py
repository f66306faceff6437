"""The tasks the advisor can compare sizes for: how to train one size, which recipe continues a probe, and what its
loss is called. Each task's probes and runs write the same curve (``curve.jsonl``) and stop records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..cli import peek_flag
from ..errors import UsageError
from ..tasks.mlm.arguments import DataTrainingArguments, ModelArguments, PretrainingArguments
from ..tasks.mlm.train import pretrain
from ..tasks.translation.arguments import (
    TranslationDataArguments,
    TranslationModelArguments,
    TranslationTrainingArguments,
)
from ..tasks.translation.train import train_translation


@dataclass(frozen=True)
class AdvisedTask:
    """``train(model_args, data_args, training_args)`` trains one size (``model_args.model_size``) and returns its
    record; ``arguments`` are its recipe's argument dataclasses; ``recipe`` continues a probe; ``loss`` names the
    validation loss that is forecast."""

    name: str
    train: Callable[..., dict]
    arguments: tuple[type, type, type]
    recipe: str
    loss: str


ADVISED_TASKS = {
    "mlm": AdvisedTask(
        "mlm", pretrain, (ModelArguments, DataTrainingArguments, PretrainingArguments), "run_mlm.py", "MLM loss"
    ),
    "translation": AdvisedTask(
        "translation",
        train_translation,
        (TranslationModelArguments, TranslationDataArguments, TranslationTrainingArguments),
        "run_translation.py",
        "validation cross-entropy (label-smoothed)",
    ),
}


def advised_task(argv: list[str]) -> AdvisedTask:
    """The task a command line asks for (``--task NAME``, or ``task:`` in the one YAML/JSON file of flags; default
    ``mlm``), read before the flags are parsed: the task decides which recipe's flags the advisor accepts."""
    name = peek_flag("task", argv) or "mlm"
    if name not in ADVISED_TASKS:
        raise UsageError(f"--task {name}: the advisor compares sizes for {' or '.join(ADVISED_TASKS)}")
    return ADVISED_TASKS[name]
