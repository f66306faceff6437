"""A reference line for finetuned classifiers: a linear model on which words a text holds.

For one text, the features are its words (lower-cased, each counted once). For a pair (NLI), they are the words
only the second text holds, the words only the first holds, and the words both hold, each set its own features:
what "the hypothesis adds a word the premise lacks" needs, plus the share of the hypothesis that is new and the
share of the premise that is dropped. A multinomial logistic regression on them, fitted with a
fixed recipe (never tuned on the split it is scored on), says how far word lists alone get on a task, so a
transformer's accuracy can be read against it as pretraining's validation loss is read against the unigram loss.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

import numpy as np
import torch

WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def _features(text: str, pair: Optional[str], vocabulary: dict[str, int]) -> list[tuple[int, float]]:
    """(feature id, value) pairs: word features are 1; for a pair, two more say which share of the second text's
    words is new and which share of the first's is dropped (so a word never seen in training still counts)."""
    size = len(vocabulary)
    if pair is None:
        return [(vocabulary[word], 1.0) for word in words(text) if word in vocabulary]
    first, second = words(text), words(pair)
    groups = (second - first, first - second, first & second)  # added, dropped, shared
    features = [
        (offset * size + vocabulary[word], 1.0)
        for offset, group in enumerate(groups)
        for word in group
        if word in vocabulary
    ]
    return features + [
        (3 * size, len(groups[0]) / max(1, len(second))),
        (3 * size + 1, len(groups[1]) / max(1, len(first))),
    ]


def _batch(texts: Sequence[str], pairs: Optional[Sequence[str]], vocabulary: dict[str, int]):
    rows = [
        _features(text, pairs[index] if pairs is not None else None, vocabulary) for index, text in enumerate(texts)
    ]
    offsets = torch.tensor([0] + [len(row) for row in rows[:-1]]).cumsum(0)
    ids = torch.tensor([index for row in rows for index, _ in row], dtype=torch.long)
    values = torch.tensor([value for row in rows for _, value in row], dtype=torch.float32)
    return ids, offsets, values


def bag_of_words_predictions(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    texts: Sequence[str],
    train_pairs: Optional[Sequence[str]] = None,
    pairs: Optional[Sequence[str]] = None,
    min_count: int = 2,
    steps: int = 300,
    weight_decay: float = 1e-3,
    seed: int = 0,
) -> np.ndarray:
    """Label ids predicted for ``texts`` (with ``pairs``, for pair tasks) by logistic regression on word features
    fitted to the training rows: words seen at least ``min_count`` times in training, full-batch Adam."""
    counts: dict[str, int] = {}
    for index, text in enumerate(train_texts):
        for word in words(text) | (words(train_pairs[index]) if train_pairs is not None else set()):
            counts[word] = counts.get(word, 0) + 1
    vocabulary = {word: index for index, word in enumerate(sorted(w for w, c in counts.items() if c >= min_count))}
    features = len(vocabulary) if train_pairs is None else 3 * len(vocabulary) + 2
    labels = torch.tensor(list(train_labels), dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    weights = torch.nn.EmbeddingBag(max(1, features), int(labels.max()) + 1, mode="sum")
    torch.nn.init.normal_(weights.weight, std=0.01, generator=generator)
    bias = torch.nn.Parameter(torch.zeros(int(labels.max()) + 1))
    optimizer = torch.optim.Adam([weights.weight, bias], lr=0.05, weight_decay=weight_decay)
    ids, offsets, values = _batch(train_texts, train_pairs, vocabulary)
    for _ in range(steps):
        optimizer.zero_grad()
        logits = weights(ids, offsets, per_sample_weights=values) + bias
        torch.nn.functional.cross_entropy(logits, labels).backward()
        optimizer.step()
    ids, offsets, values = _batch(texts, pairs, vocabulary)
    with torch.no_grad():
        return (weights(ids, offsets, per_sample_weights=values) + bias).argmax(-1).numpy()
