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
    # removed, recovery on the translation loss, then PyTorch dynamic int8 and ONNX Runtime (fp32, int8); BLEU, chrF
    # and latency per sentence
    python recipes/compress.py --model_name_or_path runs/E3-D3-H256 --train_file train.tsv \
        --validation_file validation.tsv --source_lang en --target_lang fr --pruning_method structured \
        --sparsities 0,0.5,0.75 --recovery_time_budget 1m --quantization none,torch-int8,onnx,onnx-int8 \
        --output_dir runs/E3-D3-H256-compressed

Each variant is saved in its own folder, reloaded with its documented class and measured (accuracy, nonzero
parameters, bytes, latency; for translation BLEU and chrF as its saved generation config decodes, and latency per
sentence); one row per variant goes to compression.jsonl, with accuracy_vs_nonzero_parameters.png,
accuracy_vs_latency.png and accuracy_vs_size.png beside it (bleu_vs_*.png for translation).
"""

from hf_tbc.cli import parse_args, peek_flag, run_recipe
from hf_tbc.compress.arguments import CompressionArguments
from hf_tbc.tasks.model_config import load_model_config
from hf_tbc.tasks.registry import TASKS, task_of_model


def main() -> None:
    model = peek_flag("model_name_or_path")  # without one, the classifier's parser prints --help or the error
    task = task_of_model(load_model_config(model)) if model is not None else TASKS["classification"]
    task.compress(*parse_args((CompressionArguments, task.compression_arguments)))


if __name__ == "__main__":
    run_recipe(main)
