"""Scoring a classifier of any variant kind: predictions, accuracy and forward latency.

What a variant is and what it stores (kind, loading, parameters, zeros, bytes) is ``hf_tbc.variants``.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from .metrics import load_accuracy


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
