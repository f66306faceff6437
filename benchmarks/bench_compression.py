#!/usr/bin/env python
"""Accuracy, size and latency of a finetuned classifier against its compressed variants, in one run.

Builds the variants (ONNX fp32, ONNX Runtime dynamic int8, quanto int8 and int4, 50 % magnitude pruning
alone and followed by ONNX int8, 50 % structured pruning alone and followed by ONNX int8), reloads each from disk
with its documented class, then measures accuracy on the validation set and forward latency on batch 32 x 128
tokens. Latency rounds visit the variants in turn (round-robin, same thread count), so machine noise hits all alike;
medians are printed with ratios against fp32 PyTorch.

With ``--train_file`` and ``--recovery_budget`` it compares pruning schedules instead, at ``--sparsity``: one-shot
pruning then recovery finetuning with the masks fixed, against gradual pruning (cubic schedule over the first 75 %
of the same budget), for unstructured and structured pruning, against the dense model finetuned for the same extra
budget.

    python benchmarks/bench_compression.py --model_name_or_path runs/L4-H256-sst2 \
        --validation_file ../shared/data/sst2/dev.tsv
    python benchmarks/bench_compression.py --model_name_or_path runs/L4-H256-sst2 \
        --train_file ../shared/data/sst2/train.tsv --recovery_budget 1m --sparsity 0.6
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging

from hf_tbc.compress import onnx_int8, prune_model, quanto_weights
from hf_tbc.compress.evaluation import accuracy, round_robin_latency
from hf_tbc.compress.structured import structured_prune
from hf_tbc.compress.variants import load_variant, size_on_disk
from hf_tbc.hardware import hardware_summary
from hf_tbc.tasks.classification.arguments import ClassificationDataArguments
from hf_tbc.tasks.classification.data import load_classification_data


def build_variants(model_dir: Path, scratch: Path) -> dict[str, Path]:
    from transformers import AutoConfig, AutoTokenizer

    from hf_tbc.compress.onnx_model import ONNX_FILE, export_onnx

    variants = {"fp32 PyTorch": model_dir}
    (scratch / "onnx-fp32").mkdir(parents=True)
    export_onnx(AutoModelForSequenceClassification.from_pretrained(model_dir), scratch / "onnx-fp32" / ONNX_FILE)
    AutoConfig.from_pretrained(model_dir).save_pretrained(scratch / "onnx-fp32")
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(scratch / "onnx-fp32")
    variants["ONNX fp32"] = scratch / "onnx-fp32"
    onnx_int8(model_dir, scratch / "onnx-int8")
    variants["ONNX Runtime int8"] = scratch / "onnx-int8"
    for bits in (8, 4):
        quanto_weights(model_dir, scratch / f"quanto-int{bits}", bits)
        variants[f"quanto int{bits}"] = scratch / f"quanto-int{bits}"
    for name, prune in (("pruned", prune_model), ("structured", structured_prune)):
        pruned = AutoModelForSequenceClassification.from_pretrained(model_dir)
        prune(pruned, 0.5)
        pruned.save_pretrained(scratch / f"{name}50")
        AutoTokenizer.from_pretrained(model_dir).save_pretrained(scratch / f"{name}50")
        variants[f"{name} 50% fp32"] = scratch / f"{name}50"
        onnx_int8(scratch / f"{name}50", scratch / f"{name}50-onnx-int8")
        variants[f"{name} 50% + ONNX int8"] = scratch / f"{name}50-onnx-int8"
    return variants


def build_schedules(
    model_dir: Path, scratch: Path, train_file: str, text_column: str, sparsity: float, budget: str
) -> dict[str, Path]:
    """The dense model and four pruned ones, each finetuned ``budget`` more: {unstructured, structured} x
    {one-shot then recovery, gradual}."""
    from hf_tbc.compress.arguments import CompressionArguments
    from hf_tbc.tasks.classification.compress import build_pruned
    from hf_tbc.tasks.classification.data import tokenize

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = AutoModelForSequenceClassification.from_pretrained(model_dir).config
    labels = [config.id2label[i] for i in range(config.num_labels)]
    data_args = ClassificationDataArguments(train_file=train_file, text_column=text_column)
    train = tokenize(load_classification_data(data_args, label_names=labels)[0]["train"], tokenizer, 64)
    variants = {}
    for pruning, schedule, target in [
        ("unstructured", "oneshot", 0.0),
        ("unstructured", "oneshot", sparsity),
        ("unstructured", "gradual", sparsity),
        ("structured", "oneshot", sparsity),
        ("structured", "gradual", sparsity),
    ]:
        name = "dense + recovery" if target == 0 else f"{pruning} {schedule} {target:.0%}"
        args = CompressionArguments(
            model_name_or_path=str(model_dir),
            output_dir=str(scratch / "unused"),
            pruning_method=pruning,
            pruning_schedule=schedule,
            recovery_time_budget=budget,
        )
        model = AutoModelForSequenceClassification.from_pretrained(model_dir)
        torch.manual_seed(0)
        with torch.enable_grad():
            build_pruned(model, pruning, target, args, train, tokenizer, scratch / "recovery")
        folder = scratch / name.replace(" ", "-").replace("%", "")
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        variants[name] = folder
        print(f"built {name}", flush=True)
    return variants


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="a finetuned classifier folder")
    parser.add_argument(
        "--validation_file", default=str(Path(__file__).resolve().parents[2] / "shared/data/sst2/dev.tsv")
    )
    parser.add_argument("--text_column", default="sentence")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--sequence_length", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=15, help="latency rounds over all variants")
    parser.add_argument("--train_file", default=None, help="Compare pruning schedules, finetuning on this data")
    parser.add_argument(
        "--recovery_budget", default="1m", help="Extra finetuning of every model in the schedule comparison"
    )
    parser.add_argument("--sparsity", type=float, default=0.5, help="Sparsity of the schedule comparison")
    args = parser.parse_args()
    logging.set_verbosity_error()

    model_dir = Path(args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = AutoModelForSequenceClassification.from_pretrained(model_dir).config
    labels = [config.id2label[i] for i in range(config.num_labels)]
    data_args = ClassificationDataArguments(validation_file=args.validation_file, text_column=args.text_column)
    validation = load_classification_data(data_args, label_names=labels)[0]["validation"]
    threads = torch.get_num_threads()

    with tempfile.TemporaryDirectory() as scratch:
        if args.train_file:
            variants = {
                "fp32 PyTorch": model_dir,
                **build_schedules(
                    model_dir, Path(scratch), args.train_file, args.text_column, args.sparsity, args.recovery_budget
                ),
            }
        else:
            variants = build_variants(model_dir, Path(scratch))
        models = {name: load_variant(folder, num_threads=threads) for name, folder in variants.items()}
        scores = {name: accuracy(model, validation, tokenizer) for name, model in models.items()}
        sizes = {name: size_on_disk(folder) for name, folder in variants.items()}
        latencies = round_robin_latency(
            models, tokenizer, validation["text"][: args.batch_size], args.batch_size, args.sequence_length, args.rounds
        )

    hardware = hardware_summary()
    print(
        f"hardware: {hardware['cpu']}, {hardware['cpu_count']} cores, {threads} threads for every variant, "
        f"torch {hardware['torch']}, accelerator: {hardware['accelerator'] or 'none'}"
    )
    print(
        f"model: {model_dir} ({config.num_hidden_layers} layers, hidden {config.hidden_size}); "
        f"validation: {args.validation_file} ({len(validation)} examples); latency: batch {args.batch_size} x "
        f"{args.sequence_length} tokens, median of {args.rounds} round-robin rounds"
    )
    print()
    base = "fp32 PyTorch"
    base_latency = latencies[base]
    print(f"{'variant':<30}{'accuracy':>9}{'Δ points':>10}{'size MB':>9}{'smaller':>9}{'latency ms':>12}{'faster':>8}")
    for name in models:
        median = latencies[name]
        print(
            f"{name:<30}{scores[name]:>9.4f}{100 * (scores[name] - scores[base]):>+10.2f}{sizes[name] / 1e6:>9.2f}"
            f"{sizes[base] / sizes[name]:>8.2f}x{median:>12.1f}{base_latency / median:>7.2f}x"
        )


if __name__ == "__main__":
    main()
