#!/usr/bin/env python
"""Finetune a checkpoint on text classification: a GLUE task or local CSV/TSV/JSON files.

    accelerate launch recipes/run_classification.py --model_name_or_path runs/L12-H768 --task_name mnli \
        --time_budget 30m --output_dir runs/L12-H768-mnli
    accelerate launch recipes/run_classification.py --model_name_or_path runs/L2-H128 \
        --train_file train.tsv --validation_file dev.tsv --text_column sentence --output_dir runs/L2-H128-sst2

Writes a classifier that loads with AutoModelForSequenceClassification, and eval_results.json.
"""

from hf_tbc.cli import parse_args, run_recipe
from hf_tbc.tasks.classification.arguments import (
    ClassificationDataArguments,
    ClassificationModelArguments,
    FinetuningArguments,
)
from hf_tbc.tasks.classification.train import finetune


def main() -> dict:
    model_args, data_args, training_args = parse_args(
        (ClassificationModelArguments, ClassificationDataArguments, FinetuningArguments)
    )
    return finetune(model_args, data_args, training_args)


if __name__ == "__main__":
    run_recipe(main)
