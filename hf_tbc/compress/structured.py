"""Structured pruning: remove whole encoder layers and feed-forward neurons, leaving a smaller dense model.

The result is a stock RoBERTa (or RoBERTa-PreLayerNorm) with fewer ``num_hidden_layers`` and a smaller
``intermediate_size``. It saves as a standard config, loads with ``AutoModelForSequenceClassification`` and
exports and quantizes like any other model; its dense kernels are smaller, so it is faster and lighter.

A standard config has one ``intermediate_size`` for every layer, so every remaining layer keeps the same number of
neurons (each layer keeps its own most important ones). Attention heads are not removed: with ``hidden_size``
fixed, a config can only express fewer heads by changing their width, which changes the model.

Which neurons and layers go is ranked by :mod:`hf_tbc.compress.importance` (magnitude or Taylor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Optional

import torch
from transformers import PreTrainedModel

from ..errors import UsageError
from .importance import (
    IMPORTANCE,
    TaylorScores,
    check_taylor_layers,
    encoder_layers,
    feed_forward,
    magnitude_scores,
    taylor_scores,
)
from .unstructured import check_sparsity

NEURON_MULTIPLE = 8  # kept neurons are rounded to a multiple of this: ragged sizes waste vector lanes


def _layer_weights(hidden: int, intermediate: int) -> int:
    """Linear weights of one encoder layer: four attention projections and the two feed-forward matrices."""
    return 4 * hidden * hidden + 2 * hidden * intermediate


@dataclass
class StructuredPlan:
    """How much structure to remove: ``layers`` whole layers, then every remaining layer keeps ``neurons``."""

    layers: int
    neurons: int


def plan_removal(
    num_layers: int, hidden: int, intermediate: int, sparsity: float, layer_share: float = 0.5
) -> StructuredPlan:
    """The layers and neurons to remove so that about ``sparsity`` of the encoder's linear weights go.

    ``layer_share`` of the removed weights come from whole layers (rounded to whole layers, at least one layer
    stays), the rest from feed-forward neurons; if that would leave fewer than 10 % of a layer's neurons, more
    layers go instead.
    """
    check_sparsity(sparsity)
    if not 0.0 <= layer_share <= 1.0:
        raise UsageError(
            f"layer share {layer_share} must be in [0, 1]: the fraction of removed weights taken as whole layers"
        )
    per_layer = _layer_weights(hidden, intermediate)
    target = sparsity * num_layers * per_layer
    layers = min(num_layers - 1, int(sparsity * layer_share * num_layers + 0.5))
    while True:
        left = max(target - layers * per_layer, 0.0)
        fraction = left / ((num_layers - layers) * 2 * hidden * intermediate)
        if fraction <= 0.9 or layers == num_layers - 1:
            break
        layers += 1
    keep = intermediate * (1.0 - min(fraction, 0.9 if layers < num_layers - 1 else 0.99))
    neurons = max(NEURON_MULTIPLE, int(round(keep / NEURON_MULTIPLE)) * NEURON_MULTIPLE)
    return StructuredPlan(layers=layers, neurons=min(neurons, intermediate))


@torch.no_grad()
def shrink_feed_forward(model: PreTrainedModel, keep: list[torch.Tensor]) -> None:
    """Keeps, in layer ``i``, only the feed-forward neurons ``keep[i]`` (the same count in every layer)."""
    layers = encoder_layers(model)
    counts = {int(indices.numel()) for indices in keep}
    if len(keep) != len(layers) or len(counts) != 1:
        raise UsageError("shrink_feed_forward needs one index set per layer, all of the same size")
    for layer, indices in zip(layers, keep):
        indices = indices.sort().values
        up, down = feed_forward(layer)
        new_up = torch.nn.Linear(
            up.in_features, indices.numel(), bias=up.bias is not None, device=up.weight.device, dtype=up.weight.dtype
        )
        new_up.weight.copy_(up.weight[indices])
        if up.bias is not None:
            new_up.bias.copy_(up.bias[indices])
        new_down = torch.nn.Linear(
            indices.numel(),
            down.out_features,
            bias=down.bias is not None,
            device=down.weight.device,
            dtype=down.weight.dtype,
        )
        new_down.weight.copy_(down.weight[:, indices])
        if down.bias is not None:
            new_down.bias.copy_(down.bias)
        layer.intermediate.dense, layer.output.dense = new_up, new_down
    model.config.intermediate_size = counts.pop()


def remove_layers(model: PreTrainedModel, indices: Iterable[int]) -> None:
    """Deletes the encoder layers at ``indices``; at least one must stay."""
    layers = encoder_layers(model)
    drop = set(int(index) for index in indices)
    if len(drop) >= len(layers) or any(not 0 <= index < len(layers) for index in drop):
        raise UsageError(f"cannot remove layers {sorted(drop)} of {len(layers)}: at least one layer must stay")
    kept = [layer for index, layer in enumerate(layers) if index not in drop]
    model.base_model.encoder.layer = torch.nn.ModuleList(kept)
    model.config.num_hidden_layers = len(kept)
    for index, layer in enumerate(kept):  # some versions number attention modules for caching
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = index


@dataclass
class StructuredReport:
    """What structured pruning removed, and the encoder's linear weights before and after."""

    target_sparsity: float
    importance: str
    removed_layers: list[int]
    layers: int
    intermediate_size: int
    linear_weights_before: int
    linear_weights_after: int

    @property
    def sparsity(self) -> float:
        """Fraction of the encoder's linear weights removed (they are gone, not zero)."""
        return 1.0 - self.linear_weights_after / max(self.linear_weights_before, 1)


def _encoder_weights(config) -> int:
    return config.num_hidden_layers * _layer_weights(config.hidden_size, config.intermediate_size)


def _report(
    model: PreTrainedModel, target: float, importance: str, removed: list[int], before: int
) -> StructuredReport:
    config = model.config
    return StructuredReport(
        target,
        importance,
        removed,
        config.num_hidden_layers,
        config.intermediate_size,
        before,
        _encoder_weights(config),
    )


def structured_prune(
    model: PreTrainedModel,
    sparsity: float,
    importance: Literal["magnitude", "taylor"] = "magnitude",
    batches: Optional[Iterable[dict]] = None,
    layer_share: float = 0.5,
    scores: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
) -> StructuredReport:
    """Removes layers and feed-forward neurons from ``model`` in place so that about ``sparsity`` of the encoder's
    linear weights go; ``batches`` (labelled) are needed for ``taylor`` importance unless ``scores`` are given."""
    if importance not in IMPORTANCE:
        raise UsageError(f"importance {importance!r} is unknown: choose {' or '.join(IMPORTANCE)}")
    config = model.config
    hidden, intermediate, count = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    before = _encoder_weights(config)
    plan = plan_removal(count, hidden, intermediate, sparsity, layer_share)
    check_taylor_layers(config, plan.layers, importance)
    if scores is None:
        if importance == "taylor":
            if batches is None:
                raise UsageError("Taylor importance needs labelled batches of the task: pass training data")
            scores = taylor_scores(model, batches)
        else:
            scores = magnitude_scores(model)
    neuron_scores, layer_scores = scores
    drop = sorted(layer_scores.argsort()[: plan.layers].tolist()) if plan.layers else []
    if plan.neurons < intermediate:
        keep = [neuron_scores[index].argsort(descending=True)[: plan.neurons] for index in range(count)]
        shrink_feed_forward(model, keep)
    if drop:
        remove_layers(model, drop)
    return _report(model, sparsity, importance, drop, before)


class StructuredPruner:
    """Structured pruning in steps, for :class:`~hf_tbc.compress.schedule.GradualPruningCallback`.

    The final amount (``final_sparsity`` through :func:`plan_removal`) is reached in proportion to the schedule's
    sparsity: whole layers are removed when their turn comes (the optimizer simply stops updating them), and
    feed-forward neurons are masked (their weights held at zero, which is exactly their removal), then sliced out
    by :meth:`finish`. Importance is recomputed at every step of the schedule; with ``taylor`` it is accumulated
    from the gradients of every training step (:meth:`observe`). Single-process training only.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        final_sparsity: float,
        importance: Literal["magnitude", "taylor"] = "magnitude",
        layer_share: float = 0.5,
    ):
        if importance not in IMPORTANCE:
            raise UsageError(f"importance {importance!r} is unknown: choose {' or '.join(IMPORTANCE)}")
        config = model.config
        self.model, self.final, self.importance = model, final_sparsity, importance
        self.hidden, self.intermediate, self.count = (
            config.hidden_size,
            config.intermediate_size,
            config.num_hidden_layers,
        )
        self.plan = plan_removal(self.count, self.hidden, self.intermediate, final_sparsity, layer_share)
        check_taylor_layers(config, self.plan.layers, importance)
        self.taylor = TaylorScores(model) if importance == "taylor" else None
        layers = encoder_layers(model)
        self.original_index = {id(layer): index for index, layer in enumerate(layers)}
        self.masks = {id(layer): torch.ones(self.intermediate, dtype=torch.bool) for layer in layers}
        self.removed: list[int] = []
        self.neurons = self.intermediate

    def observe(self) -> None:
        if self.taylor is not None:
            self.taylor.accumulate()

    def _scores(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.taylor is not None and self.taylor.batches:
            return self.taylor.scores()
        return magnitude_scores(self.model)

    def prune_to(self, sparsity: float) -> None:
        share = min(sparsity / self.final, 1.0) if self.final else 1.0
        layers = int(share * self.plan.layers + 1e-9)
        if layers > len(self.removed):
            _, layer_scores = self._scores()
            current = encoder_layers(self.model)
            drop = layer_scores.argsort()[: layers - len(self.removed)].tolist()
            self.removed += [self.original_index[id(current[index])] for index in drop]
            remove_layers(self.model, drop)
        cut = share * (self.intermediate - self.plan.neurons)
        neurons = max(self.plan.neurons, self.intermediate - int(round(cut / NEURON_MULTIPLE)) * NEURON_MULTIPLE)
        if neurons < self.neurons:
            neuron_scores, _ = self._scores()
            for layer, scores in zip(encoder_layers(self.model), neuron_scores):
                mask = self.masks[id(layer)]
                scores = scores.masked_fill(~mask, float("-inf"))  # pruned neurons stay pruned
                kept = torch.zeros_like(mask)
                kept[scores.argsort(descending=True)[:neurons]] = True
                self.masks[id(layer)] = kept
            self.neurons = neurons
        self.enforce()

    @torch.no_grad()
    def enforce(self) -> None:
        for layer in encoder_layers(self.model):
            mask = self.masks[id(layer)]
            if bool(mask.all()):
                continue
            up, down = feed_forward(layer)
            up.weight[~mask] = 0
            if up.bias is not None:
                up.bias[~mask] = 0
            down.weight[:, ~mask] = 0

    def finish(self) -> StructuredReport:
        """Slices the masked neurons out; the model is then a smaller dense model."""
        layers = encoder_layers(self.model)
        if self.neurons < self.intermediate:
            shrink_feed_forward(self.model, [self.masks[id(layer)].nonzero().flatten() for layer in layers])
        before = self.count * _layer_weights(self.hidden, self.intermediate)
        return _report(self.model, self.final, self.importance, sorted(self.removed), before)
