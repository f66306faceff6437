#!/usr/bin/env python
"""Compress a finetuned classifier or a translation model over a grid of pruning methods, sparsities and quantization
methods, measuring every variant.

    # structured pruning (fewer layers and neurons: really smaller and faster) and unstructured (stored zeros), each
    # variant finetuned again for 2 minutes (the dense one too), then int8
    python recipes/compress.py --model_name_or_path runs/L4-H256-sst2 --train_file train.tsv --validation_file dev.tsv \
        --pruning_method structured,unstructured --sparsities 0,0.3,0.5,0.7 --recovery_time_budget 2m \
        --quantization none,onnx-int8 --output_dir runs/L4-H256-compressed
    # gradual pruning: sparsity rises on a cubic schedule during the recovery budget
    python recipes/compress.py ... --pruning_schedule gradual --recovery_time_budget 3m

    # a translation model (run_translation.py output): feed-forward neurons of every encoder and decoder layer
    # removed, recovery on the translation loss, then PyTorch dynamic int8; BLEU, chrF and latency per sentence
    python recipes/compress.py --model_name_or_path runs/E3-D3-H256 --train_file train.tsv \
        --validation_file validation.tsv --source_lang en --target_lang fr --pruning_method structured \
        --sparsities 0,0.5,0.75 --recovery_time_budget 1m --quantization none,torch-int8 \
        --output_dir runs/E3-D3-H256-compressed

Each variant is saved in its own folder, reloaded with its documented class and measured (accuracy, nonzero
parameters, bytes, latency; for translation BLEU and chrF as its saved generation config decodes, and latency per
sentence); one row per variant goes to compression.jsonl, with accuracy_vs_nonzero_parameters.png,
accuracy_vs_latency.png and accuracy_vs_size.png beside it (bleu_vs_*.png for translation).
"""

import json
from pathlib import Path

from hf_tbc.cli import parse_args, peek_flag, run_recipe
from hf_tbc.compress.grid import CompressionArguments, check_classifier, compress_grid
from hf_tbc.model_config import load_model_config
from hf_tbc.tasks.classification.arguments import ClassificationDataArguments
from hf_tbc.tasks.classification.data import load_classification_data, tokenize


def main() -> None:
    model = peek_flag("model_name_or_path")  # without one, the classifier's parser prints --help or the error
    if model is not None and getattr(load_model_config(model), "is_encoder_decoder", False):
        from hf_tbc.tasks.translation.arguments import TranslationDataArguments
        from hf_tbc.tasks.translation.compress import translation_grid

        translation_grid(*parse_args((CompressionArguments, TranslationDataArguments)))
        return
    args, data_args = parse_args((CompressionArguments, ClassificationDataArguments))
    config = check_classifier(args.model_name_or_path)
    label_names = [config.id2label[index] for index in range(config.num_labels)]
    splits, _ = load_classification_data(data_args, args.seed, label_names=label_names)
    validation = splits[[name for name in splits if name != "train"][0]]
    record = Path(args.model_name_or_path) / "eval_results.json"
    finetuned_length = json.loads(record.read_text()).get("max_seq_length") if record.is_file() else None
    max_length = data_args.max_seq_length or finetuned_length or 128
    train = None
    if "train" in splits and args.needs_training_data:
        from transformers import AutoTokenizer

        train = tokenize(splits["train"], AutoTokenizer.from_pretrained(args.model_name_or_path), max_length)
    compress_grid(args, validation, train, max_length=max_length)


if __name__ == "__main__":
    run_recipe(main)
