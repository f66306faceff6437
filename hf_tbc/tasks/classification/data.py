"""Classification data: a GLUE task from the Hub or local files with one or two text columns and a label, tokenized."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from datasets import ClassLabel, Dataset, DatasetDict, load_dataset

from ...data.files import check_utf8, data_files
from ...errors import UsageError
from .arguments import GLUE_TASKS, GLUE_VALIDATION_SPLITS, ClassificationDataArguments


def _read_files(data_args: ClassificationDataArguments) -> DatasetDict:
    files = {
        split: data_files(paths)
        for split, paths in (("train", data_args.train_file), ("validation", data_args.validation_file))
        if paths
    }
    for split, paths in files.items():
        for path in paths:
            if not Path(path).is_file():
                raise UsageError(
                    f"--{split}_file {path} does not exist: give .csv, .tsv, .json or .jsonl files "
                    "(several: comma-separated)"
                )
            check_utf8(path, f"--{split}_file")
            with open(path, encoding="utf-8") as handle:
                header_lines = 0 if Path(path).suffix.lower() in (".json", ".jsonl") else 1
                if sum(1 for line, _ in zip(handle, range(header_lines + 1)) if line.strip()) <= header_lines:
                    raise UsageError(
                        f"--{split}_file {path} has no rows: give a file with a header and at least one example"
                    )
    every = [path for paths in files.values() for path in paths]
    suffixes = {Path(path).suffix.lower() for path in every}
    builder = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}.get(
        suffixes.pop() if len(suffixes) == 1 else ""
    )
    if builder is None:
        raise UsageError(f"data files {', '.join(every)}: use .csv, .tsv, .json or .jsonl files, all of one kind")
    tsv = Path(every[0]).suffix.lower() == ".tsv"
    return load_dataset(builder, data_files=files, **({"delimiter": "\t"} if tsv else {}))


def _raw_splits(data_args: ClassificationDataArguments) -> tuple[DatasetDict, Optional[str], Optional[str], tuple, str]:
    """The data as loaded (a GLUE task or local files), its text and pair columns, its validation splits, and how
    an error message names it."""
    if data_args.task_name is not None:
        task = data_args.task_name.lower()
        if task not in GLUE_TASKS:
            raise UsageError(
                f"--task_name {data_args.task_name} is not a GLUE classification task: "
                f"choose one of {', '.join(GLUE_TASKS)}"
            )
        raw = load_dataset(data_args.dataset_name, task)
        text_column, pair_column = GLUE_TASKS[task]
        validation_splits = GLUE_VALIDATION_SPLITS.get(task, ("validation",))
        where = f"GLUE {task}"
    elif data_args.train_file is not None or data_args.validation_file is not None:
        raw = _read_files(data_args)
        columns = next(iter(raw.values())).column_names
        text_column = data_args.text_column or next(
            (c for c in ("sentence", "text", "sentence1", "premise") if c in columns), None
        )
        pair_column = data_args.text_pair_column
        validation_splits = ("validation",)
        where = ", ".join(f"--{split}_file {getattr(data_args, split + '_file')}" for split in raw)
    else:
        raise UsageError("no data: pass --task_name (e.g. sst2, mnli) or --train_file/--validation_file")

    return raw, text_column, pair_column, validation_splits, where


def load_classification_data(
    data_args: ClassificationDataArguments, seed: int = 42, label_names: Optional[list[str]] = None
) -> tuple[DatasetDict, list[str]]:
    """Splits with columns ``text``, optional ``text_pair`` and integer ``label``, plus the label names.

    ``train`` (when given) and one or more validation splits (MNLI: ``validation_matched`` and
    ``validation_mismatched``); without a validation split, 10 % of train is held out. Labels are
    numbered by ``label_names`` (a finetuned model's ``id2label``) when given, else by sorted value.
    """
    raw, text_column, pair_column, validation_splits, where = _raw_splits(data_args)
    if "validation" not in raw and data_args.task_name is None:
        held_out = raw["train"].train_test_split(test_size=0.1, seed=seed)
        raw = DatasetDict({"train": held_out["train"], "validation": held_out["test"]})
    first = next(iter(raw.values()))
    columns = first.column_names
    for name, flag in (
        (text_column, "--text_column"),
        (pair_column, "--text_pair_column"),
        (data_args.label_column, "--label_column"),
    ):
        if name is not None and name not in columns:
            raise UsageError(f"column {name!r} is not in {where} (columns: {', '.join(columns)}): set {flag}")
    if text_column is None:
        raise UsageError(
            f"cannot tell which column of {where} holds the text (columns: {', '.join(columns)}): set --text_column"
        )

    label_feature = first.features[data_args.label_column]
    if isinstance(label_feature, ClassLabel):
        label_names = label_names or list(label_feature.names)
        to_id = None
        if len(label_feature.names) != len(label_names):
            raise UsageError(
                f"{where} has {len(label_feature.names)} labels but the model has {len(label_names)}: use the "
                "matching model"
            )
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
                    f"labels {unknown} in the {split_name} split of {where} are not among the {len(to_id)} known "
                    f"labels ({', '.join(to_id)}): fix the labels or --label_column"
                )
        keep = {
            text_column: "text",
            data_args.label_column: "label",
            **({pair_column: "text_pair"} if pair_column else {}),
        }
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
        return tokenizer(
            batch["text"], batch["text_pair"] if pair else None, truncation=True, max_length=max_seq_length
        )

    return dataset.map(
        encode, batched=True, remove_columns=[c for c in ("text", "text_pair") if c in dataset.column_names]
    )


def majority_accuracy(train_labels, validation_labels) -> float:
    """The accuracy of always predicting the training set's most frequent label: the floor a classifier must beat."""
    train_labels, validation_labels = list(train_labels), list(validation_labels)
    if not train_labels or not validation_labels:
        return 0.0
    majority = max(set(train_labels), key=train_labels.count)
    return round(sum(label == majority for label in validation_labels) / len(validation_labels), 4)
