"""Measuring a classifier variant: accuracy, parameters and nonzeros, bytes on disk, latency.

A variant folder is one of three kinds, told apart by its files, each loaded with its documented class:
PyTorch weights (``AutoModelForSequenceClassification``), ONNX (``ORTModelForSequenceClassification``)
or quanto (``hf_tbc.compress.QuantizedModelForSequenceClassification``).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerBase

from .metrics import load_accuracy

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".onnx_data", ".pt")
QUANTO_MAP = "quanto_qmap.json"


def variant_kind(folder: Union[str, Path]) -> str:
    """``"onnx"``, ``"quanto"`` or ``"pytorch"``, from the files in ``folder``."""
    folder = Path(folder)
    if any(folder.glob("*.onnx")):
        return "onnx"
    if (folder / QUANTO_MAP).exists():
        return "quanto"
    if (folder / "model.safetensors").exists() or (folder / "pytorch_model.bin").exists():
        return "pytorch"
    raise ValueError(f"{folder} holds no model weights (model.safetensors, *.onnx): is it a model folder?")


def load_variant(folder: Union[str, Path], num_threads: Optional[int] = None):
    """The model in ``folder``, loaded with the class its kind documents."""
    kind = variant_kind(folder)
    if kind == "onnx":
        import onnxruntime
        from optimum.onnxruntime import ORTModelForSequenceClassification

        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        return ORTModelForSequenceClassification.from_pretrained(folder, session_options=options)
    if kind == "quanto":
        from .compress.quantization import QuantizedModelForSequenceClassification

        return QuantizedModelForSequenceClassification.from_pretrained(str(folder))
    return AutoModelForSequenceClassification.from_pretrained(folder).eval()


def size_on_disk(folder: Union[str, Path]) -> int:
    """Bytes of the weight files in ``folder`` (configs and tokenizer files are the same for every variant)."""
    return sum(path.stat().st_size for path in Path(folder).iterdir() if path.suffix in WEIGHT_SUFFIXES)


def _stored_weights(model, kind: str):
    """(name, tensor) of each distinct parameter as stored; quanto weights dequantized."""
    module = getattr(model, "_wrapped", model)
    seen = set()
    for name, parameter in module.named_parameters():
        if id(parameter) in seen:
            continue
        seen.add(id(parameter))
        yield name, parameter.dequantize() if kind == "quanto" and hasattr(parameter, "dequantize") else parameter


def count_variant_parameters(folder: Union[str, Path], model=None) -> tuple[int, int]:
    """(parameters, nonzero parameters) of the weights as stored: ONNX initializers, dequantized quanto
    weights, or the PyTorch tensors. ``model``: the variant already loaded from ``folder``, if at hand."""
    kind = variant_kind(folder)
    if kind == "onnx":
        import onnx
        from onnx import numpy_helper

        total = nonzero = 0
        for path in Path(folder).glob("*.onnx"):
            for initializer in onnx.load(str(path)).graph.initializer:
                values = numpy_helper.to_array(initializer)
                if values.ndim >= 1 and values.size > 1:  # skip scalar scales and zero points
                    total += values.size
                    nonzero += int(np.count_nonzero(values))
        return total, nonzero
    values = [tensor for _, tensor in _stored_weights(model if model is not None else load_variant(folder), kind)]
    return sum(v.numel() for v in values), sum(int(torch.count_nonzero(v).item()) for v in values)


def prunable_sparsity(model, kind: str, include_embeddings_and_head: bool = False) -> float:
    """Fraction of zeros among the weights magnitude pruning targets, as stored in a PyTorch or quanto variant."""
    from .compress.pruning import prunable_weights

    names = set(prunable_weights(getattr(model, "_wrapped", model), include_embeddings_and_head))
    values = [tensor for name, tensor in _stored_weights(model, kind) if name in names]
    zeros = sum(int((v == 0).sum().item()) for v in values)
    return zeros / max(sum(v.numel() for v in values), 1)


def _batches(dataset: Dataset, tokenizer: PreTrainedTokenizerBase, batch_size: int, max_length: int):
    text_columns = [column for column in ("text", "text_pair") if column in dataset.column_names]
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        texts = [rows[column] for column in text_columns]
        encoded = tokenizer(*texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        yield encoded, rows["label"]


@torch.no_grad()
def predict(model, dataset: Dataset, tokenizer: PreTrainedTokenizerBase, batch_size: int = 64, max_length: int = 128) -> list[int]:
    """Predicted label ids for ``dataset`` (columns ``text``, optional ``text_pair``) with any variant kind."""
    predictions: list[int] = []
    for encoded, _ in _batches(dataset, tokenizer, batch_size, max_length):
        logits = model(**encoded).logits
        predictions.extend(torch.as_tensor(logits).argmax(-1).tolist())
    return predictions


def accuracy(model, dataset: Dataset, tokenizer: PreTrainedTokenizerBase, batch_size: int = 64, max_length: int = 128) -> float:
    """Accuracy of ``model`` on ``dataset``, computed with hf-tbc's bundled ``evaluate`` accuracy metric."""
    predictions = predict(model, dataset, tokenizer, batch_size, max_length)
    return load_accuracy().compute(predictions=predictions, references=dataset["label"])["accuracy"]


@dataclass
class Latency:
    median_ms: float
    runs: int
    batch_size: int
    sequence_length: int
    threads: int


@torch.no_grad()
def latency(
    model,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    batch_size: int = 32,
    sequence_length: int = 128,
    runs: int = 10,
    warmup: int = 2,
) -> Latency:
    """Median wall-clock of one forward pass on ``batch_size`` texts padded to ``sequence_length`` tokens."""
    batch = (texts * (batch_size // max(len(texts), 1) + 1))[:batch_size]
    encoded = tokenizer(batch, truncation=True, max_length=sequence_length, padding="max_length", return_tensors="pt")
    timings = []
    for index in range(warmup + runs):
        start = time.perf_counter()
        model(**encoded)
        if index >= warmup:
            timings.append((time.perf_counter() - start) * 1000)
    return Latency(statistics.median(timings), runs, batch_size, sequence_length, torch.get_num_threads())
