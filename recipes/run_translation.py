#!/usr/bin/env python
"""Train an encoder-decoder translation model of any width and depth for exactly a wall-clock budget.

    accelerate launch recipes/run_translation.py --model_size E3-D3-H256 --time_budget 10m \
        --train_file data/train.tsv --validation_file data/validation.tsv --test_file data/test.tsv \
        --source_lang en --target_lang fr --output_dir runs/E3-D3-H256

Local TSV/CSV/JSON(L) files hold one column per language (--source_column/--target_column to name others); a Hub
dataset works too (--dataset_name wmt14 --dataset_config_name fr-en). Validation BLEU and chrF (sacreBLEU, greedy
decoding) are recorded against wall-clock; at the end the whole splits are scored with the decoding saved in the
model's generation config (--num_beams 5 and --no_repeat_ngram_size 3 by default); the output loads with
AutoModelForSeq2SeqLM (and pipeline("translation") on transformers 4.x).
Flags may also come from one YAML or JSON file.
"""

from hf_tbc.cli import parse_args, run_recipe
from hf_tbc.tasks.translation.arguments import (
    TranslationDataArguments,
    TranslationModelArguments,
    TranslationTrainingArguments,
)
from hf_tbc.tasks.translation.train import train_translation


def main() -> dict:
    model_args, data_args, training_args = parse_args(
        (TranslationModelArguments, TranslationDataArguments, TranslationTrainingArguments)
    )
    return train_translation(model_args, data_args, training_args)


if __name__ == "__main__":
    run_recipe(main)
