"""The compression grid of a finetuned classifier: every (pruning, sparsity, quantization) variant built, saved,
reloaded and measured, as ``recipes/compress.py`` runs it. This module only orchestrates: how one variant is pruned
and recovered is ``recovery``, each method family lives in its own module of ``hf_tbc.compress`` (``unstructured``,
``structured``, ``shape``, ``distillation``, ``schedule``, ``quantization``), measurement in
``hf_tbc.compress.evaluation``, and what every task's grid shares (staging, the output check, latency groups) in
``hf_tbc.compress.grid``."""

from __future__ import annotations

import gc
import json
import shutil
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging

from ...compress.arguments import (
    QUANTIZATION_METHODS,
    TRANSLATION_ONLY,
    CompressionArguments,
    shape_variant_name,
    variant_name,
)
from ...compress.evaluation import measure_variant, round_robin_latency
from ...compress.grid import check_output_dir, latency_groups, memory_limit, staged_output
from ...compress.importance import check_taylor_layers
from ...compress.plots import plot_compression
from ...compress.quantization import onnx_int8, quanto_weights
from ...compress.records import RECORD_FILE
from ...compress.shape import smaller_shapes
from ...compress.structured import plan_removal
from ...compress.variants import load_variant, prunable_weights
from ...errors import UsageError
from ..model_config import load_model_config
from .arguments import FINETUNING_MAX_SEQ_LENGTH, ClassificationDataArguments
from .data import load_classification_data, tokenize
from .recovery import build_pruned, build_shape

logger = logging.get_logger(__name__)

PLOTS = {
    "accuracy_vs_nonzero_parameters.png": "nonzero_parameters",
    "accuracy_vs_latency.png": "latency_ms",
    "accuracy_vs_size.png": "size_bytes",
}


def check_classifier(model_name_or_path: str):
    """The checkpoint's config; ``UsageError`` unless it is a finished sequence classifier."""
    config = load_model_config(model_name_or_path)
    if not any(name.endswith("ForSequenceClassification") for name in (config.architectures or [])):
        raise UsageError(
            f"{model_name_or_path} has no classification head (architectures: {config.architectures}): "
            "finetune it first with recipes/run_classification.py"
        )
    return config


def check_grid(args: CompressionArguments, train_dataset=None) -> None:
    """Everything about the grid that can fail on bad input, checked before anything is built or written."""
    config = check_classifier(args.model_name_or_path)
    refused = [method for method in args.methods if method in TRANSLATION_ONLY]
    if refused:
        raise UsageError(
            f"--quantization {refused[0]} is for translation models: classifiers take {', '.join(QUANTIZATION_METHODS)}"
        )
    if args.distill_beams:
        raise UsageError("--distill_beams is for translation models: a classifier distils from class distributions")
    if "structured" in args.pruning_methods:  # before anything is built: refused plans fail first
        for sparsity in (value for value in args.sparsity_grid if value > 0):
            plan = plan_removal(
                config.num_hidden_layers, config.hidden_size, config.intermediate_size, sparsity, args.layer_share
            )
            check_taylor_layers(config, plan.layers, args.importance)
    args.shape_names = smaller_shapes(args.shape_names, config)
    if args.needs_training_data and train_dataset is None:
        raise UsageError(
            "recovery finetuning, Taylor importance and --target_shapes need training data: pass --train_file or "
            "--task_name"
        )
    check_output_dir(args)


def _quantize_and_measure(
    pytorch_dir: Path,
    staging: Path,
    sparsity: float,
    method: str,
    pruning: str,
    done: dict,
    args: CompressionArguments,
    validation,
    tokenizer,
    max_length: int,
    parent_weights: int,
) -> dict:
    """Quantizes the pruned model in ``pytorch_dir`` by ``method`` into its variant folder and measures that variant:
    its row of ``compression.jsonl``."""
    name = shape_variant_name(done["shape"], method) if pruning == "shape" else variant_name(sparsity, method, pruning)
    folder = staging / name
    if method == "onnx-int8":
        quantized = onnx_int8(pytorch_dir, folder)
    elif method.startswith("quanto-int"):
        quantized = quanto_weights(pytorch_dir, folder, int(method.removeprefix("quanto-int")))
    else:
        quantized = {"method": "none", "bits": 32, "backend": "pytorch"}
    measured = measure_variant(
        folder,
        validation,
        tokenizer,
        max_length,
        args.latency_batch_size,
        args.latency_sequence_length,
        args.latency_runs,
        args.num_threads,
        args.prune_embeddings_and_head,
        parent_weights,
    )
    row = {
        "variant": name,
        "method": quantized["method"],
        "bits": quantized["bits"],
        **measured,
        **done,
        "task": "classification",
        "base_model": str(Path(args.model_name_or_path).resolve()),
        **{key: value for key, value in quantized.items() if key not in ("method", "bits")},
    }
    logger.warning(
        f"{name}: accuracy {row['accuracy']:.4f}, {row['size_bytes'] / 1e6:.2f} MB, "
        f"{row['latency_ms']:.1f} ms, sparsity {row['sparsity']:.2f}"
    )
    return row


def compress_grid(args: CompressionArguments, validation, train_dataset=None, max_length: int = 128) -> list[dict]:
    """Builds, saves, reloads and measures every variant; returns the rows written to ``compression.jsonl``.

    ``validation`` has columns ``text`` (``text_pair``) and ``label``, truncated to ``max_length`` tokens
    for accuracy (use the length the model was finetuned with); ``train_dataset`` (tokenized) is needed
    for recovery finetuning and for Taylor importance.
    """
    check_grid(args, train_dataset)
    output_dir = Path(args.output_dir)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    parent_weights = None  # the dense parent's prunable weights: what sparsity is measured against
    builds = [("unstructured", 0.0)] if 0.0 in args.sparsity_grid else []
    builds += [
        (pruning, sparsity) for pruning in args.pruning_methods for sparsity in args.sparsity_grid if sparsity > 0
    ]
    builds += [("shape", name) for name in args.shape_names]
    rows = []
    with staged_output(output_dir) as staging:
        for pruning, sparsity in builds:
            torch.manual_seed(args.seed)
            model = AutoModelForSequenceClassification.from_pretrained(args.model_name_or_path)
            if parent_weights is None:
                parent_weights = sum(
                    weight.numel() for weight in prunable_weights(model, args.prune_embeddings_and_head).values()
                )
            if pruning == "shape":
                model, done = build_shape(model, sparsity, args, train_dataset, tokenizer, staging / "recovery")
                sparsity = done["target_sparsity"]
                pytorch_dir = staging / shape_variant_name(done["shape"], "none")
            else:
                done = build_pruned(model, pruning, sparsity, args, train_dataset, tokenizer, staging / "recovery")
                pytorch_dir = staging / variant_name(sparsity, "none", pruning)
            model.save_pretrained(pytorch_dir)
            tokenizer.save_pretrained(pytorch_dir)
            del model
            for method in args.methods:
                rows.append(
                    _quantize_and_measure(
                        pytorch_dir,
                        staging,
                        sparsity,
                        method,
                        pruning,
                        done,
                        args,
                        validation,
                        tokenizer,
                        max_length,
                        parent_weights,
                    )
                )
            if "none" not in args.methods:
                shutil.rmtree(pytorch_dir)
        shutil.rmtree(staging / "recovery", ignore_errors=True)
        _remeasure_together(rows, staging, tokenizer, validation, args)
        with (staging / RECORD_FILE).open("w") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)
        majority = _majority(validation)
        label = Path(args.model_name_or_path).name
        for file, x in PLOTS.items():
            plot_compression({label: rows}, staging / file, x=x, majority=majority)
    for row in rows:
        row["path"] = str(output_dir / row["variant"])
    return rows


def _remeasure_together(rows: list[dict], staging: Path, tokenizer, validation, args: CompressionArguments) -> None:
    """Measures every variant's latency again, loaded together and visited round-robin, so that the figures that
    select a variant were taken under the same conditions (each variant's first measurement came right after its
    own build, at whatever state the machine was in); the first measurement stays as ``latency_ms_alone``. At most
    ``--latency_memory_mb`` of variants are loaded at once: a grid too large for that is measured in consecutive
    groups, each round-robin (``latency_group`` records which)."""
    texts = validation["text"][: args.latency_batch_size]
    limit = memory_limit(args)
    groups = latency_groups(rows, limit)
    for index, group in enumerate(groups):
        models = {row["variant"]: load_variant(staging / row["variant"], num_threads=args.num_threads) for row in group}
        together = round_robin_latency(
            models, tokenizer, texts, args.latency_batch_size, args.latency_sequence_length, args.latency_runs
        )
        del models
        gc.collect()
        for row in group:
            row["latency_ms_alone"] = row["latency_ms"]
            row["latency_ms"] = round(together[row["variant"]], 3)
            row["latency_rounds"] = args.latency_runs
            row["latency_group"] = index
    if len(groups) > 1:
        logger.warning(
            f"latency measured in {len(groups)} groups of variants, to stay under "
            f"{limit / 1e6:,.0f} MB of loaded models (--latency_memory_mb)"
        )


def _majority(validation) -> float:
    labels = list(validation["label"])
    return max(labels.count(label) for label in set(labels)) / max(len(labels), 1)


def classification_grid(args: CompressionArguments, data_args: ClassificationDataArguments) -> list[dict]:
    """:func:`compress_grid` on the data ``data_args`` names: validation pairs for accuracy (truncated to the length
    the classifier was finetuned with, from its ``eval_results.json``, unless ``--max_seq_length`` says otherwise), and
    the training split tokenized where recovery or Taylor importance needs it."""
    config = check_classifier(args.model_name_or_path)
    label_names = [config.id2label[index] for index in range(config.num_labels)]
    splits, _ = load_classification_data(data_args, args.seed, label_names=label_names)
    validation = splits[[name for name in splits if name != "train"][0]]
    record = Path(args.model_name_or_path) / "eval_results.json"
    finetuned_length = json.loads(record.read_text()).get("max_seq_length") if record.is_file() else None
    max_length = data_args.max_seq_length or finetuned_length or FINETUNING_MAX_SEQ_LENGTH
    train = None
    if "train" in splits and args.needs_training_data:
        train = tokenize(splits["train"], AutoTokenizer.from_pretrained(args.model_name_or_path), max_length)
    return compress_grid(args, validation, train, max_length=max_length)
