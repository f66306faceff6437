#!/usr/bin/env python
"""Pretrain a RoBERTa masked LM of any size for exactly a wall-clock budget.

    accelerate launch recipes/run_mlm.py --model_size L12-H768 --time_budget 2h --output_dir runs/L12-H768

With no --dataset_name or --train_file it trains on the built-in corpus (English prose from the installed
Python's documentation), so it runs offline. Flags may also come from one YAML or JSON file.
"""

from hf_tbc.cli import parse_args, run_recipe
from hf_tbc.tasks.mlm.arguments import DataTrainingArguments, ModelArguments, PretrainingArguments
from hf_tbc.tasks.mlm.train import pretrain


def main() -> dict:
    model_args, data_args, training_args = parse_args((ModelArguments, DataTrainingArguments, PretrainingArguments))
    return pretrain(model_args, data_args, training_args)


if __name__ == "__main__":
    run_recipe(main)
