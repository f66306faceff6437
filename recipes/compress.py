#!/usr/bin/env python
"""Compress a finetuned classifier over a grid of sparsities and quantization methods, measuring every variant.

    python recipes/compress.py --model_name_or_path runs/L2-H128-sst2 --validation_file dev.tsv \
        --sparsities 0,0.3,0.5,0.7,0.9 --quantization none,onnx-int8,quanto-int8,quanto-int4 --output_dir runs/compressed

Each variant is saved in its own folder, reloaded with its documented class and measured; one row per
variant goes to compression.jsonl, with accuracy_vs_size.png and accuracy_vs_sparsity.png beside it.
"""

import json
from pathlib import Path

from hf_tbc.classification import ClassificationDataArguments, load_classification_data, tokenize
from hf_tbc.cli import parse_args, run_recipe
from hf_tbc.compress.grid import CompressionArguments, check_classifier, compress_grid


def main() -> None:
    args, data_args = parse_args((CompressionArguments, ClassificationDataArguments))
    config = check_classifier(args.model_name_or_path)
    label_names = [config.id2label[index] for index in range(config.num_labels)]
    splits, _ = load_classification_data(data_args, args.seed, label_names=label_names)
    validation = splits[[name for name in splits if name != "train"][0]]
    record = Path(args.model_name_or_path) / "eval_results.json"
    finetuned_length = json.loads(record.read_text()).get("max_seq_length") if record.is_file() else None
    max_length = data_args.max_seq_length or finetuned_length or 128
    train = None
    if "train" in splits and (args.recovery_steps or args.recovery_time_budget):
        from transformers import AutoTokenizer

        train = tokenize(splits["train"], AutoTokenizer.from_pretrained(args.model_name_or_path), max_length)
    compress_grid(args, validation, train, max_length=max_length)


if __name__ == "__main__":
    run_recipe(main)
