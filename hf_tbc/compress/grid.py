"""A compression grid over a finetuned classifier: every (sparsity, quantization) variant saved, reloaded and measured."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding
from transformers.utils import logging

from ..errors import UsageError
from ..evaluation import accuracy, latency
from ..training import check_writable, hardware_summary, load_model_config
from ..variants import (
    count_variant_parameters,
    load_variant,
    prunable_sparsity,
    prunable_weights,
    size_on_disk,
    variant_kind,
)
from .pruning import PRUNING_SCOPES, FixedMaskCallback, check_sparsity, prune_model
from .quantization import onnx_int8, quanto_weights

logger = logging.get_logger(__name__)

QUANTIZATION_METHODS = ("none", "onnx-int8", "quanto-int8", "quanto-int4", "quanto-int2")
RECORD_FILE = "compression.jsonl"


@dataclass
class CompressionArguments:
    """What to compress and how; ``HfArgumentParser`` turns each field into a flag."""

    model_name_or_path: str = field(metadata={"help": "The finetuned classifier (a run_classification.py output folder)."})
    output_dir: str = field(metadata={"help": "One subfolder per variant, plus compression.jsonl and the plots."})
    sparsities: str = field(default="0,0.5,0.9", metadata={"help": "Comma-separated target sparsities in [0, 1)."})
    quantization: str = field(
        default="none,onnx-int8,quanto-int8,quanto-int4",
        metadata={"help": f"Comma-separated methods, each applied to every sparsity: {', '.join(QUANTIZATION_METHODS)}."},
    )
    pruning_scope: str = field(default="layer", metadata={"help": "layer: the same sparsity in every matrix; global: one threshold.",
                                                          "choices": list(PRUNING_SCOPES)})
    prune_embeddings_and_head: bool = field(default=False, metadata={"help": "Prune embeddings and the classifier too."})
    recovery_steps: int = field(default=0, metadata={"help": "Finetune each pruned model this many steps, masks fixed."})
    recovery_time_budget: Optional[str] = field(default=None, metadata={"help": "Or finetune each pruned model for this long."})
    latency_batch_size: int = field(default=32, metadata={"help": "Batch size of the latency measurement."})
    latency_sequence_length: int = field(default=128, metadata={"help": "Tokens per example in the latency measurement."})
    latency_runs: int = field(default=10, metadata={"help": "Timed forward passes; the median is recorded."})
    num_threads: Optional[int] = field(default=None, metadata={"help": "CPU threads for every variant (default: torch's)."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace an existing compression output."})
    seed: int = field(default=42, metadata={"help": "Seed of recovery finetuning."})

    def __post_init__(self):
        self.sparsity_grid = [check_sparsity(_number(value, "--sparsities")) for value in _split(self.sparsities)]
        self.methods = _split(self.quantization)
        unknown = [method for method in self.methods if method not in QUANTIZATION_METHODS]
        if unknown:
            raise UsageError(f"unknown quantization method {unknown[0]!r}: choose from {', '.join(QUANTIZATION_METHODS)}")
        if self.pruning_scope not in PRUNING_SCOPES:
            raise UsageError(f"--pruning_scope {self.pruning_scope} is unknown: choose layer or global")


def _split(text: str) -> list[str]:
    return [part.strip() for part in str(text).split(",") if part.strip()]


def _number(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a number: write e.g. 0,0.5,0.9") from None


def variant_name(sparsity: float, method: str) -> str:
    """``dense-fp32``, ``pruned50-onnx-int8``, ... (sparsity in percent)."""
    base = "dense" if sparsity == 0 else f"pruned{round(sparsity * 100):02d}"
    return f"{base}-{'fp32' if method == 'none' else method}"


def check_classifier(model_name_or_path: str):
    """The checkpoint's config; ``UsageError`` unless it is a finished sequence classifier."""
    config = load_model_config(model_name_or_path)
    if not any(name.endswith("ForSequenceClassification") for name in (config.architectures or [])):
        raise UsageError(
            f"{model_name_or_path} has no classification head (architectures: {config.architectures}): "
            "finetune it first with recipes/run_classification.py"
        )
    return config


def _recover(model, masks, train_dataset, tokenizer, args: CompressionArguments, scratch: Path) -> None:
    """Finetunes a pruned model with its masks fixed, for ``recovery_steps`` or ``recovery_time_budget``."""
    from ..classification import compute_accuracy
    from ..training import BudgetTrainer, BudgetTrainingArguments

    training_args = BudgetTrainingArguments(
        output_dir=str(scratch), max_steps=args.recovery_steps or -1, time_budget=args.recovery_time_budget,
        learning_rate=5e-5, per_device_train_batch_size=32, save_strategy="no", eval_strategy="no",
        disable_tqdm=True, seed=args.seed, schedule_by="steps" if args.recovery_steps else None,
    )
    trainer = BudgetTrainer(model=model, args=training_args, train_dataset=train_dataset,
                            data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_accuracy)
    trainer.add_callback(FixedMaskCallback(prunable_weights(model, args.prune_embeddings_and_head), masks))
    trainer.train()


def compress_grid(args: CompressionArguments, validation, train_dataset=None, max_length: int = 128) -> list[dict]:
    """Builds, saves, reloads and measures every variant; returns the rows written to ``compression.jsonl``.

    ``validation`` has columns ``text`` (``text_pair``) and ``label``, truncated to ``max_length`` tokens
    for accuracy (use the length the model was finetuned with); ``train_dataset`` (tokenized) is needed
    only for recovery finetuning.
    """
    check_classifier(args.model_name_or_path)
    if (args.recovery_steps or args.recovery_time_budget) and train_dataset is None:
        raise UsageError("recovery finetuning needs training data: pass --train_file or --task_name")
    output_dir = Path(args.output_dir)
    check_writable(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        if not args.overwrite_output_dir:
            raise UsageError(f"--output_dir {output_dir} already holds files: pass --overwrite_output_dir to replace them")
        shutil.rmtree(output_dir)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    texts = validation["text"][: args.latency_batch_size]
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}-", dir=output_dir.parent))  # same filesystem: rename works
    rows = []
    try:
        for sparsity in args.sparsity_grid:
            model = AutoModelForSequenceClassification.from_pretrained(args.model_name_or_path)
            masks, report = prune_model(model, sparsity, args.pruning_scope, args.prune_embeddings_and_head)
            if sparsity > 0 and (args.recovery_steps or args.recovery_time_budget):
                _recover(model, masks, train_dataset, tokenizer, args, staging / "recovery")
            pytorch_dir = staging / variant_name(sparsity, "none")
            model.save_pretrained(pytorch_dir)
            tokenizer.save_pretrained(pytorch_dir)
            for method in args.methods:
                name = variant_name(sparsity, method)
                folder = staging / name
                if method == "onnx-int8":
                    done = onnx_int8(pytorch_dir, folder)
                elif method.startswith("quanto-int"):
                    done = quanto_weights(pytorch_dir, folder, int(method.removeprefix("quanto-int")))
                else:
                    done = {"method": "none", "bits": 32, "backend": "pytorch"}
                rows.append(measure(name, folder, sparsity, report.scope, done, validation, tokenizer, texts, args,
                                    max_length))
                logger.warning(f"{name}: accuracy {rows[-1]['accuracy']:.4f}, {rows[-1]['size_bytes'] / 1e6:.2f} MB, "
                               f"{rows[-1]['latency_ms']:.1f} ms")
            if "none" not in args.methods:
                shutil.rmtree(pytorch_dir)
        shutil.rmtree(staging / "recovery", ignore_errors=True)
        with (staging / RECORD_FILE).open("w") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)
        plot_compression({Path(args.model_name_or_path).name: rows}, staging / "accuracy_vs_size.png", x="size_bytes")
        plot_compression({Path(args.model_name_or_path).name: rows}, staging / "accuracy_vs_sparsity.png", x="sparsity")
        staging.rename(output_dir)  # all or nothing: a failed grid leaves no half-written output
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for row in rows:
        row["path"] = str(output_dir / row["variant"])
    return rows


def measure(name: str, folder: Path, target: float, scope: str, done: dict, validation, tokenizer, texts, args,
            max_length: int = 128) -> dict:
    """Reloads the saved variant with its documented class and measures it, sparsity included, on its own
    stored weights (for ONNX, the quantized initializers compared with their zero points)."""
    model = load_variant(folder, num_threads=args.num_threads or torch.get_num_threads())
    stored = None if variant_kind(folder) == "onnx" else model
    parameters, nonzero = count_variant_parameters(folder, stored)
    timing = latency(model, tokenizer, texts, args.latency_batch_size, args.latency_sequence_length, args.latency_runs)
    return {
        "variant": name,
        "method": done["method"],
        "sparsity": round(prunable_sparsity(folder, stored, args.prune_embeddings_and_head), 6),
        "target_sparsity": target,
        "pruning_scope": scope if target > 0 else None,
        "bits": done["bits"],
        "parameters": parameters,
        "nonzero_parameters": nonzero,
        "size_bytes": size_on_disk(folder),
        "accuracy": accuracy(model, validation, tokenizer, max_length=max_length),
        "max_seq_length": max_length,
        "latency_ms": round(timing.median_ms, 3),
        "latency_batch": [timing.batch_size, timing.sequence_length],
        "latency_threads": timing.threads,
        "hardware": hardware_summary()["cpu"],
        "base_model": str(Path(args.model_name_or_path).resolve()),
        **{key: value for key, value in done.items() if key not in ("method", "bits")},
    }


def read_records(path: Union[str, Path]) -> list[dict]:
    path = Path(path)
    path = path / RECORD_FILE if path.is_dir() or not path.suffix else path
    if not path.is_file():
        raise UsageError(f"missing record {path}: pass a folder written by recipes/compress.py")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_compression(runs: dict, output_file: Union[str, Path], x: str = "size_bytes") -> Path:
    """Accuracy against size on disk (log axis) or sparsity, one colour per base model and one marker per method.

    ``runs`` maps a label (e.g. ``"L12-H768"``) to a compression folder, a ``compression.jsonl`` or rows:
    overlaying several base models gives the paper's large-compressed vs small comparison.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = {"none": "o", "onnx-int8": "s", "quanto-int8": "^", "quanto-int4": "v", "quanto-int2": "D"}
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for index, (label, source) in enumerate(runs.items()):
        rows = list(source) if isinstance(source, list) else read_records(source)
        colour = f"C{index}"
        for method in sorted({row["method"] for row in rows}, key=list(markers).index):
            points = sorted((row[x] / 1e6 if x == "size_bytes" else row[x], row["accuracy"]) for row in rows if row["method"] == method)
            axes.plot(*zip(*points), marker=markers[method], color=colour, linestyle="-" if x == "sparsity" else "none",
                      label=f"{label} {method if method != 'none' else 'fp32'}")
    if x == "size_bytes":
        axes.set_xscale("log")
    axes.set_xlabel("size on disk (MB, log scale)" if x == "size_bytes" else "sparsity of the encoder's linear weights")
    axes.set_ylabel("validation accuracy")
    axes.set_title("accuracy against " + ("size" if x == "size_bytes" else "sparsity"))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(output_file, dpi=120)
    plt.close(figure)
    return Path(output_file)
