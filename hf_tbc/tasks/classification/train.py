"""Finetuning a checkpoint on a text classification task: the library behind ``recipes/run_classification.py``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import numpy as np
from transformers import AutoTokenizer, DataCollatorWithPadding, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

from ...budget.curves import CurveCallback
from ...budget.runs import budget_fields, prepare_output_dir, train_under_budget, write_json
from ...budget.trainer import BudgetTrainer
from ...data.files import data_files
from ...distributed import prepare_on_main_process
from ...errors import UsageError
from ...hardware import hardware_summary
from ...metrics import load_accuracy
from .arguments import (
    FINETUNING_MAX_SEQ_LENGTH,
    ClassificationDataArguments,
    ClassificationModelArguments,
    FinetuningArguments,
)
from .data import load_classification_data, majority_accuracy, tokenize
from .model import build_model, model_config, with_labels

logger = logging.get_logger(__name__)


def compute_accuracy(prediction) -> dict:
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    return load_accuracy().compute(predictions=np.argmax(logits, axis=-1), references=prediction.label_ids)


def checkpoint_selection(trainer) -> Optional[dict]:
    """Which evaluation's checkpoint the saved model is, under ``load_best_model_at_end``: its step and metric next to
    the last evaluation's (read before anything else is evaluated), and how many there were to choose from; ``None``
    when the last step is kept."""
    args = trainer.args
    if not args.load_best_model_at_end:
        return None
    metric = args.metric_for_best_model
    key = metric if metric.startswith("eval_") else f"eval_{metric}"
    evaluations = [row for row in trainer.state.log_history if key in row]
    last = evaluations[-1] if evaluations else {}
    return {
        "metric": key,
        "greater_is_better": args.greater_is_better,
        "best_step": trainer.state.best_global_step,
        "best": trainer.state.best_metric,
        "last_step": last.get("step"),
        "last": last.get(key),
        "evaluations": len(evaluations),
    }


def _score(trainer, encoded: dict, name: str) -> dict:
    """Accuracy and loss of the finished model on the validation split ``name``, with the majority class's."""
    metrics = trainer.evaluate(encoded[name], metric_key_prefix="eval")
    return {
        "accuracy": metrics["eval_accuracy"],
        "loss": metrics["eval_loss"],
        "examples": len(encoded[name]),
        "majority_accuracy": majority_accuracy(encoded["train"]["label"], encoded[name]["label"]),
    }


def finetune(
    model_args: ClassificationModelArguments, data_args: ClassificationDataArguments, training_args: FinetuningArguments
) -> dict:
    """Finetunes ``model_name_or_path`` and writes a loadable classifier plus ``eval_results.json``."""
    resume_from = prepare_output_dir(training_args)
    config = model_config(model_args)  # a bad checkpoint stops before the data is read
    set_seed(training_args.seed)
    with prepare_on_main_process(training_args, desc="loading the classification data"):
        splits, label_names = load_classification_data(data_args, training_args.seed)
    if "train" not in splits:
        raise UsageError("finetuning needs training data: pass --train_file or --task_name")
    config = with_labels(config, label_names, model_args.model_name_or_path)
    model = build_model(config, None if model_args.random_init else model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or model_args.model_name_or_path)
    validation_names = [name for name in splits if name != "train"]
    max_seq_length = data_args.max_seq_length or FINETUNING_MAX_SEQ_LENGTH
    with prepare_on_main_process(training_args, desc="tokenizing"):
        encoded = {name: tokenize(split, tokenizer, max_seq_length) for name, split in splits.items()}

    trainer = BudgetTrainer(
        model=model,
        args=training_args,
        train_dataset=encoded["train"],
        eval_dataset=encoded[validation_names[0]],
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=compute_accuracy,
        curve_metrics=("eval_accuracy",),
    )
    outcome = train_under_budget(
        trainer, resume_from, "eval_results.json", final_metric=None, model_name_or_path=model_args.model_name_or_path
    )
    if outcome.unfinished is not None:
        return outcome.unfinished
    selection = checkpoint_selection(trainer)
    # the curve ends with training's own evaluations: scoring the chosen model is not a point of it
    trainer.remove_callback(CurveCallback)
    results = {name: _score(trainer, encoded, name) for name in validation_names}
    trainer.save_model()
    if selection is not None and trainer.is_world_process_zero():
        # the chosen checkpoint is now the saved model: a finished run leaves no checkpoint to resume
        for checkpoint in Path(training_args.output_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
    record = {
        "model_name_or_path": model_args.model_name_or_path,
        "random_init": model_args.random_init,
        "task": data_args.task_name or Path(data_files(data_args.train_file)[0]).resolve().parent.name,
        "task_name": data_args.task_name,
        "dataset": (f"{data_args.dataset_name}/{data_args.task_name}" if data_args.task_name else data_args.train_file),
        "validation": data_args.validation_file if not data_args.task_name else validation_names,
        "labels": label_names,
        "accuracy": results[validation_names[0]]["accuracy"],
        "majority_accuracy": results[validation_names[0]]["majority_accuracy"],
        "splits": results,
        "train_examples": len(encoded["train"]),
        **budget_fields(trainer, outcome, unbudgeted_stop="epochs"),
        "checkpoint_selection": selection,
        "max_seq_length": max_seq_length,
        "text_pair": "text_pair" in splits["train"].column_names,
        "hardware": hardware_summary(),
    }
    if trainer.is_world_process_zero():
        write_json(Path(training_args.output_dir) / "eval_results.json", record)
        summary = ", ".join(
            f"{name} {value['accuracy']:.4f} (majority class {value['majority_accuracy']:.4f})"
            for name, value in results.items()
        )
        chosen = ""
        if selection is not None:
            chosen = (
                f" (the best of {selection['evaluations']} evaluations by {selection['metric']}: step "
                f"{selection['best_step']}, {selection['best']:.4f}, against {selection['last']:.4f} at the last, "
                f"step {selection['last_step']})"
            )
        logger.warning(
            f"Finetuned {trainer.state.global_step} steps; accuracy: {summary}{chosen}; model in "
            f"{training_args.output_dir}"
        )
    return record
