"""Magnitude pruning of a Transformer's linear layers, saved with real zeros so plain ``from_pretrained`` loads it.

Following the paper, the prunable weights are each layer's attention query, key, value and output
projections and both feed-forward matrices. Embeddings, LayerNorms and the classifier stay dense unless
``include_embeddings_and_head`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from transformers import PreTrainedModel, TrainerCallback

from ..errors import UsageError
from .variants import prunable_weights

PRUNING_SCOPES = ("layer", "global")


@dataclass
class PruningReport:
    """What a pruning pass did, measured on the weights after it."""

    target_sparsity: float
    scope: str
    pruned_tensors: int
    prunable_parameters: int
    zero_prunable_parameters: int
    parameters: int
    nonzero_parameters: int

    @property
    def sparsity(self) -> float:
        """Measured fraction of zeros among the prunable weights."""
        return self.zero_prunable_parameters / max(self.prunable_parameters, 1)


def check_sparsity(sparsity: float) -> float:
    """``sparsity`` if it is in [0, 1); ``ValueError`` naming it otherwise."""
    if not isinstance(sparsity, (int, float)) or not 0.0 <= float(sparsity) < 1.0:
        raise UsageError(f"sparsity {sparsity!r} must be in [0, 1): e.g. 0.5 removes half of the prunable weights")
    return float(sparsity)


def count_nonzero(model: torch.nn.Module) -> tuple[int, int]:
    """(parameters, nonzero parameters), counting tied parameters once."""
    total = nonzero = 0
    for parameter in model.parameters():
        total += parameter.numel()
        nonzero += int(torch.count_nonzero(parameter).item())
    return total, nonzero


@torch.no_grad()
def magnitude_masks(
    weights: dict[str, torch.nn.Parameter], sparsity: float, scope: Literal["layer", "global"] = "layer"
) -> dict[str, torch.Tensor]:
    """Boolean keep-masks that drop the ``sparsity`` fraction of smallest-magnitude weights.

    ``layer``: that fraction of every matrix; ``global``: of all prunable weights together, so layers
    whose weights are small lose more.
    """
    check_sparsity(sparsity)
    if scope not in PRUNING_SCOPES:
        raise UsageError(f"pruning scope {scope!r} is unknown: choose one of {', '.join(PRUNING_SCOPES)}")
    if scope == "layer":
        thresholds = {}
        for name, weight in weights.items():
            count = int(sparsity * weight.numel())
            thresholds[name] = weight.abs().flatten().kthvalue(count).values if count else None
    else:
        magnitudes = torch.cat([weight.abs().flatten() for weight in weights.values()])
        count = int(sparsity * magnitudes.numel())
        threshold = magnitudes.kthvalue(count).values if count else None
        thresholds = {name: threshold for name in weights}
    masks = {}
    for name, weight in weights.items():
        threshold = thresholds[name]
        masks[name] = torch.ones_like(weight, dtype=torch.bool) if threshold is None else weight.abs() > threshold
    return masks


@torch.no_grad()
def apply_masks(weights: dict[str, torch.nn.Parameter], masks: dict[str, torch.Tensor]) -> None:
    for name, weight in weights.items():
        weight.mul_(masks[name])


def prune_model(
    model: PreTrainedModel,
    sparsity: float,
    scope: Literal["layer", "global"] = "layer",
    include_embeddings_and_head: bool = False,
) -> tuple[dict[str, torch.Tensor], PruningReport]:
    """Zeroes the smallest weights of ``model`` in place; returns the masks (for recovery finetuning) and a report."""
    weights = prunable_weights(model, include_embeddings_and_head)
    masks = magnitude_masks(weights, sparsity, scope)
    apply_masks(weights, masks)
    return masks, pruning_report(model, weights, sparsity, scope)


def pruning_report(
    model: PreTrainedModel, weights: dict[str, torch.nn.Parameter], sparsity: float, scope: str
) -> PruningReport:
    parameters, nonzero = count_nonzero(model)
    prunable = sum(weight.numel() for weight in weights.values())
    zeros = sum(int((weight == 0).sum().item()) for weight in weights.values())
    return PruningReport(sparsity, scope, len(weights), prunable, zeros, parameters, nonzero)


class FixedMaskCallback(TrainerCallback):
    """Keeps pruned weights at zero during recovery finetuning by re-applying the masks after every optimizer step."""

    def __init__(self, weights: dict[str, torch.nn.Parameter], masks: dict[str, torch.Tensor]):
        self.weights, self.masks = weights, masks

    def on_optimizer_step(self, args, state, control, **kwargs):
        apply_masks(self.weights, self.masks)


class UnstructuredPruner:
    """Magnitude pruning in steps, for :class:`~hf_tbc.compress.schedule.GradualPruningCallback`.

    Each :meth:`prune_to` recomputes magnitude masks at the new sparsity; weights already zero are the smallest,
    so what was pruned stays pruned. :meth:`enforce` re-applies the masks after every optimizer step.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        scope: Literal["layer", "global"] = "layer",
        include_embeddings_and_head: bool = False,
    ):
        self.model, self.scope = model, scope
        self.weights = prunable_weights(model, include_embeddings_and_head)
        self.masks: dict[str, torch.Tensor] = {}
        self.sparsity = 0.0

    def observe(self) -> None:
        """Magnitude needs no gradients."""

    def prune_to(self, sparsity: float) -> None:
        if sparsity <= self.sparsity:
            return
        self.masks = magnitude_masks(self.weights, sparsity, self.scope)
        self.sparsity = sparsity
        self.enforce()

    def enforce(self) -> None:
        if self.masks:
            apply_masks(self.weights, self.masks)

    def finish(self) -> PruningReport:
        self.enforce()
        return pruning_report(self.model, self.weights, self.sparsity, self.scope)
