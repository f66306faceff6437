"""Finetuning a checkpoint on a text classification task: the library behind ``recipes/run_classification.py``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, load_dataset
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    set_seed,
)
from transformers.utils import logging

from .data import check_utf8, data_files
from .errors import UsageError
from .metrics import load_accuracy
from .sizes import set_dropout
from .training import (
    BudgetTrainer,
    BudgetTrainingArguments,
    hardware_summary,
    load_model_config,
    prepare_output_dir,
    record_preemption,
    write_json,
)

logger = logging.get_logger(__name__)

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


@dataclass
class ClassificationModelArguments:
    """The checkpoint to finetune."""

    model_name_or_path: str = field(metadata={"help": "A checkpoint folder or Hub id, e.g. runs/L12-H768 or roberta-base."})
    tokenizer_name: Optional[str] = field(default=None, metadata={"help": "Tokenizer, if not the checkpoint's."})
    dropout: Optional[float] = field(
        default=0.1,
        metadata={"help": "Hidden and attention dropout while finetuning (hf-tbc pretrains without dropout, so the "
                  "checkpoint's config says 0). Unset: keep the checkpoint's."},
    )
    random_init: bool = field(
        default=False,
        metadata={"help": "Use only the checkpoint's config and tokenizer, with freshly initialised weights: the "
                  "control run that shows what pretraining adds."},
    )


@dataclass
class ClassificationDataArguments:
    """A GLUE task from the Hub, or local files with one or two text columns and a label column."""

    task_name: Optional[str] = field(default=None, metadata={"help": f"GLUE task: {', '.join(GLUE_TASKS)}."})
    dataset_name: str = field(default="nyu-mll/glue", metadata={"help": "Hub dataset holding --task_name."})
    train_file: Optional[str] = field(default=None, metadata={
        "help": "Local training data: .csv, .tsv, .json or .jsonl (several: comma-separated, all of one kind)."})
    validation_file: Optional[str] = field(default=None, metadata={"help": "Local validation data, same format."})
    text_column: Optional[str] = field(default=None, metadata={"help": "Column of the (first) text; default 'sentence' or 'text'."})
    text_pair_column: Optional[str] = field(default=None, metadata={"help": "Column of the second text, for pair tasks (NLI)."})
    label_column: str = field(default="label", metadata={"help": "Column of the label."})
    max_seq_length: Optional[int] = field(
        default=None,
        metadata={"help": "Longer inputs are truncated to this many tokens (finetuning: 128; compression: the value "
                  "the model was finetuned with, from its eval_results.json)."},
    )
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Use at most this many training rows."})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "Use at most this many validation rows."})


@dataclass
class FinetuningArguments(BudgetTrainingArguments):
    """``BudgetTrainingArguments`` with finetuning defaults; ``--time_budget`` is optional here."""

    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate (AdamW)."})
    warmup_ratio: float = field(default=0.06, metadata={"help": "Warmup, as a fraction of the budget or of the steps."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Epochs, when no --time_budget ends training first."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Examples per device per step."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Examples per device per evaluation step."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate without a budget: no, steps, epoch."})
    save_strategy: str = field(default="no", metadata={"help": "When to checkpoint: no, steps, epoch."})
    ddp_find_unused_parameters: Optional[bool] = field(default=False, metadata={"help": "See TrainingArguments."})


def _read_files(data_args: ClassificationDataArguments) -> DatasetDict:
    files = {split: data_files(paths) for split, paths in (("train", data_args.train_file),
                                                          ("validation", data_args.validation_file)) if paths}
    for split, paths in files.items():
        for path in paths:
            if not Path(path).is_file():
                raise UsageError(f"--{split}_file {path} does not exist: give .csv, .tsv, .json or .jsonl files "
                                 "(several: comma-separated)")
            check_utf8(path, f"--{split}_file")
            with open(path, encoding="utf-8") as handle:
                header_lines = 0 if Path(path).suffix.lower() in (".json", ".jsonl") else 1
                if sum(1 for line, _ in zip(handle, range(header_lines + 1)) if line.strip()) <= header_lines:
                    raise UsageError(f"--{split}_file {path} has no rows: give a file with a header and at least one example")
    every = [path for paths in files.values() for path in paths]
    suffixes = {Path(path).suffix.lower() for path in every}
    builder = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}.get(suffixes.pop() if len(suffixes) == 1 else "")
    if builder is None:
        raise UsageError(f"data files {', '.join(every)}: use .csv, .tsv, .json or .jsonl files, all of one kind")
    tsv = Path(every[0]).suffix.lower() == ".tsv"
    return load_dataset(builder, data_files=files, **({"delimiter": "\t"} if tsv else {}))


def load_classification_data(
    data_args: ClassificationDataArguments, seed: int = 42, label_names: Optional[list[str]] = None
) -> tuple[DatasetDict, list[str]]:
    """Splits with columns ``text``, optional ``text_pair`` and integer ``label``, plus the label names.

    ``train`` (when given) and one or more validation splits (MNLI: ``validation_matched`` and
    ``validation_mismatched``); without a validation split, 10 % of train is held out. Labels are
    numbered by ``label_names`` (a finetuned model's ``id2label``) when given, else by sorted value.
    """
    if data_args.task_name is not None:
        task = data_args.task_name.lower()
        if task not in GLUE_TASKS:
            raise UsageError(f"--task_name {data_args.task_name} is not a GLUE classification task: choose one of {', '.join(GLUE_TASKS)}")
        raw = load_dataset(data_args.dataset_name, task)
        text_column, pair_column = GLUE_TASKS[task]
        validation_splits = GLUE_VALIDATION_SPLITS.get(task, ("validation",))
        where = f"GLUE {task}"
    elif data_args.train_file is not None or data_args.validation_file is not None:
        raw = _read_files(data_args)
        columns = next(iter(raw.values())).column_names
        text_column = data_args.text_column or next((c for c in ("sentence", "text", "sentence1", "premise") if c in columns), None)
        pair_column = data_args.text_pair_column
        validation_splits = ("validation",)
        where = ", ".join(f"--{split}_file {getattr(data_args, split + '_file')}" for split in raw)
    else:
        raise UsageError("no data: pass --task_name (e.g. sst2, mnli) or --train_file/--validation_file")

    if "validation" not in raw and data_args.task_name is None:
        held_out = raw["train"].train_test_split(test_size=0.1, seed=seed)
        raw = DatasetDict({"train": held_out["train"], "validation": held_out["test"]})
    first = next(iter(raw.values()))
    columns = first.column_names
    for name, flag in ((text_column, "--text_column"), (pair_column, "--text_pair_column"), (data_args.label_column, "--label_column")):
        if name is not None and name not in columns:
            raise UsageError(f"column {name!r} is not in {where} (columns: {', '.join(columns)}): set {flag}")
    if text_column is None:
        raise UsageError(f"cannot tell which column of {where} holds the text (columns: {', '.join(columns)}): set --text_column")

    label_feature = first.features[data_args.label_column]
    if isinstance(label_feature, ClassLabel):
        label_names = label_names or list(label_feature.names)
        to_id = None
        if len(label_feature.names) != len(label_names):
            raise UsageError(f"{where} has {len(label_feature.names)} labels but the model has {len(label_names)}: use the matching model")
    else:
        if label_names is None:
            if "train" not in raw:
                raise UsageError(f"{where}: pass --train_file, or a finetuned model, to know the labels")
            label_names = sorted({str(value) for value in raw["train"][data_args.label_column]})
        to_id = {name: index for index, name in enumerate(label_names)}

    def standardize(split: Dataset, split_name: str) -> Dataset:
        if len(split) == 0:
            raise UsageError(f"the {split_name} split of {where} has no rows: check the file")
        if to_id is not None:
            unknown = sorted({str(v) for v in split[data_args.label_column]} - set(to_id))
            if unknown:
                raise UsageError(
                    f"labels {unknown} in the {split_name} split of {where} are not among the {len(to_id)} known labels "
                    f"({', '.join(to_id)}): fix the labels or --label_column"
                )
        keep = {text_column: "text", data_args.label_column: "label", **({pair_column: "text_pair"} if pair_column else {})}
        split = split.select_columns(list(keep)).rename_columns({k: v for k, v in keep.items() if k != v})
        if to_id is not None:
            split = split.map(lambda row: {"label_id": to_id[str(row["label"])]}, remove_columns=["label"])
            return split.rename_column("label_id", "label")
        return split.filter(lambda row: row["label"] >= 0)  # GLUE test rows carry label -1

    splits = {}
    if "train" in raw:
        splits["train"] = standardize(raw["train"], "train")
        if data_args.max_train_samples:
            splits["train"] = splits["train"].select(range(min(data_args.max_train_samples, len(splits["train"]))))
    for name in validation_splits:
        if name not in raw:
            raise UsageError(f"{where} has no {name} split: pass --validation_file")
        split = standardize(raw[name], name)
        if data_args.max_eval_samples:
            split = split.select(range(min(data_args.max_eval_samples, len(split))))
        splits[name] = split
    return DatasetDict(splits), label_names


def tokenize(dataset: Dataset, tokenizer, max_seq_length: int) -> Dataset:
    """Adds ``input_ids`` and ``attention_mask`` (truncated, unpadded: the collator pads per batch)."""
    pair = "text_pair" in dataset.column_names

    def encode(batch):
        return tokenizer(batch["text"], batch["text_pair"] if pair else None, truncation=True, max_length=max_seq_length)

    return dataset.map(encode, batched=True, remove_columns=[c for c in ("text", "text_pair") if c in dataset.column_names])


def majority_accuracy(train_labels, validation_labels) -> float:
    """The accuracy of always predicting the training set's most frequent label: the floor a classifier must beat."""
    train_labels, validation_labels = list(train_labels), list(validation_labels)
    if not train_labels or not validation_labels:
        return 0.0
    majority = max(set(train_labels), key=train_labels.count)
    return round(sum(label == majority for label in validation_labels) / len(validation_labels), 4)


def compute_accuracy(prediction) -> dict:
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    return load_accuracy().compute(predictions=np.argmax(logits, axis=-1), references=prediction.label_ids)


def finetune(
    model_args: ClassificationModelArguments, data_args: ClassificationDataArguments, training_args: FinetuningArguments
) -> dict:
    """Finetunes ``model_name_or_path`` and writes a loadable classifier plus ``eval_results.json``."""
    resume_from = prepare_output_dir(training_args)
    config = load_model_config(model_args.model_name_or_path)
    set_seed(training_args.seed)
    with training_args.main_process_first(desc="loading the classification data"):
        splits, label_names = load_classification_data(data_args, training_args.seed)
    if "train" not in splits:
        raise UsageError("finetuning needs training data: pass --train_file or --task_name")
    head = any(name.endswith("ForSequenceClassification") for name in (config.architectures or []))
    if head and config.num_labels != len(label_names):
        raise UsageError(
            f"{model_args.model_name_or_path} classifies into {config.num_labels} labels but the data has "
            f"{len(label_names)} ({', '.join(label_names)}): pick the matching model or --label_column"
        )
    if model_args.dropout is not None:
        set_dropout(config, model_args.dropout)
    config.num_labels = len(label_names)
    config.id2label = dict(enumerate(label_names))
    config.label2id = {name: index for index, name in enumerate(label_names)}
    tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or model_args.model_name_or_path)
    if model_args.random_init:
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(model_args.model_name_or_path, config=config)
    validation_names = [name for name in splits if name != "train"]
    with training_args.main_process_first(desc="tokenizing"):
        data_args.max_seq_length = data_args.max_seq_length or 128
        encoded = {name: tokenize(split, tokenizer, data_args.max_seq_length) for name, split in splits.items()}

    trainer = BudgetTrainer(
        model=model,
        args=training_args,
        train_dataset=encoded["train"],
        eval_dataset=encoded[validation_names[0]],
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=compute_accuracy,
    )
    started = time.monotonic()
    trainer.train(resume_from_checkpoint=resume_from)
    if trainer.budget is not None and trainer.budget.stop_reason == "preempted":
        return record_preemption(trainer, "eval_results.json", model_name_or_path=model_args.model_name_or_path)
    results = {}
    for name in validation_names:
        metrics = trainer.evaluate(encoded[name], metric_key_prefix="eval")
        results[name] = {"accuracy": metrics["eval_accuracy"], "loss": metrics["eval_loss"], "examples": len(encoded[name]),
                         "majority_accuracy": majority_accuracy(encoded["train"]["label"], encoded[name]["label"])}
    trainer.save_model()
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
        "steps": trainer.state.global_step,
        "train_s": round(trainer.budget.train_seconds() if trainer.budget else time.monotonic() - started, 3),
        "time_budget_s": trainer.budget.time_budget if trainer.budget else None,
        "stop_reason": trainer.budget.stop_reason if trainer.budget else "epochs",
        "deadline_overshoot_s": (round(trainer.budget.overshoot, 3)
                                 if trainer.budget and trainer.budget.overshoot is not None else None),
        "model_saved": True,
        "max_seq_length": data_args.max_seq_length,
        "text_pair": "text_pair" in splits["train"].column_names,
        "hardware": hardware_summary(),
    }
    if trainer.is_world_process_zero():
        write_json(Path(training_args.output_dir) / "eval_results.json", record)
        summary = ", ".join(f"{name} {value['accuracy']:.4f} (majority class {value['majority_accuracy']:.4f})"
                            for name, value in results.items())
        logger.warning(f"Finetuned {trainer.state.global_step} steps; accuracy: {summary}; model in {training_args.output_dir}")
    return record
