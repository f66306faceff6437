"""Scoring a classifier of any variant kind: predictions, accuracy and forward latency.

What a variant is and what it stores (kind, loading, parameters, zeros, bytes) is ``hf_tbc.compress.variants``; the
grids of the tasks make variants and call :func:`measure_variant`.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from ..hardware import hardware_summary
from ..metrics import load_accuracy
from .variants import count_variant_parameters, load_variant, prunable_sparsity, size_on_disk, variant_kind


def _batches(dataset: Dataset, tokenizer: PreTrainedTokenizerBase, batch_size: int, max_length: int):
    text_columns = [column for column in ("text", "text_pair") if column in dataset.column_names]
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        texts = [rows[column] for column in text_columns]
        encoded = tokenizer(*texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        yield encoded, rows["label"]


@torch.no_grad()
def predict(
    model, dataset: Dataset, tokenizer: PreTrainedTokenizerBase, batch_size: int = 64, max_length: int = 128
) -> list[int]:
    """Predicted label ids for ``dataset`` (columns ``text``, optional ``text_pair``) with any variant kind."""
    predictions: list[int] = []
    for encoded, _ in _batches(dataset, tokenizer, batch_size, max_length):
        logits = model(**encoded).logits
        predictions.extend(torch.as_tensor(logits).argmax(-1).tolist())
    return predictions


def accuracy(
    model, dataset: Dataset, tokenizer: PreTrainedTokenizerBase, batch_size: int = 64, max_length: int = 128
) -> float:
    """Accuracy of ``model`` on ``dataset``, computed with hf-tbc's bundled ``evaluate`` accuracy metric."""
    predictions = predict(model, dataset, tokenizer, batch_size, max_length)
    return load_accuracy().compute(predictions=predictions, references=dataset["label"])["accuracy"]


def _timing_batch(tokenizer: PreTrainedTokenizerBase, texts: list[str], batch_size: int, sequence_length: int):
    """``batch_size`` texts (repeated if fewer), padded to exactly ``sequence_length`` tokens: a fixed-cost input."""
    batch = (texts * (batch_size // max(len(texts), 1) + 1))[:batch_size]
    return tokenizer(batch, truncation=True, max_length=sequence_length, padding="max_length", return_tensors="pt")


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
    encoded = _timing_batch(tokenizer, texts, batch_size, sequence_length)
    timings = []
    for index in range(warmup + runs):
        start = time.perf_counter()
        model(**encoded)
        if index >= warmup:
            timings.append((time.perf_counter() - start) * 1000)
    return Latency(statistics.median(timings), runs, batch_size, sequence_length, torch.get_num_threads())


def measure_variant(
    folder: Union[str, Path],
    validation: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int = 128,
    latency_batch_size: int = 32,
    latency_sequence_length: int = 128,
    latency_runs: int = 10,
    num_threads: Optional[int] = None,
    include_embeddings_and_head: bool = False,
    parent_weights: Optional[int] = None,
) -> dict:
    """Reloads the saved variant in ``folder`` with its documented class and measures it on its own stored weights:
    accuracy, parameters and nonzero parameters, sparsity of the prunable weights (against ``parent_weights``, the
    dense parent's count, so that removed structure counts), bytes on disk and median forward latency."""
    model = load_variant(folder, num_threads=num_threads or torch.get_num_threads())
    stored = None if variant_kind(folder) == "onnx" else model
    parameters, nonzero = count_variant_parameters(folder, stored)
    timing = latency(
        model,
        tokenizer,
        validation["text"][:latency_batch_size],
        latency_batch_size,
        latency_sequence_length,
        latency_runs,
    )
    return {
        "sparsity": round(prunable_sparsity(folder, stored, include_embeddings_and_head, parent_weights), 6),
        "parameters": parameters,
        "nonzero_parameters": nonzero,
        "size_bytes": size_on_disk(folder),
        "accuracy": accuracy(model, validation, tokenizer, max_length=max_length),
        "max_seq_length": max_length,
        "latency_ms": round(timing.median_ms, 3),
        "latency_batch": [timing.batch_size, timing.sequence_length],
        "latency_threads": timing.threads,
        "hardware": hardware_summary()["cpu"],
    }


@torch.no_grad()
def round_robin_latency(
    models: dict,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    batch_size: int = 32,
    sequence_length: int = 128,
    rounds: int = 15,
) -> dict[str, float]:
    """Median forward latency (ms) of each model on the same batch, the models visited in turn every round so that
    machine noise hits all of them alike: the way to compare variants side by side on a noisy machine."""
    encoded = _timing_batch(tokenizer, texts, batch_size, sequence_length)
    timings: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():  # warm-up
        model(**encoded)
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model(**encoded)
            timings[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in timings.items()}
