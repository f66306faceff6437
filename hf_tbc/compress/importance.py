"""How much each feed-forward neuron and each encoder layer matters, for structured pruning to remove the least.

- ``magnitude``: a neuron's weight norm (its row of ``intermediate.dense`` and its column of ``output.dense``,
  each divided by the layer's mean). Layers are dropped from the top, which for BERT-like classifiers loses the
  least accuracy among data-free orders (Sajjad et al., 2020, "Poor Man's BERT").
- ``taylor``: first-order estimate of the loss change when a neuron or layer is removed (Molchanov et al., 2019),
  ``|sum of weight * gradient|`` over the parameters whose zeroing removes it, summed over batches of the task. A
  neuron goes when its row of ``intermediate.dense`` and its column of ``output.dense`` are zero (its output is
  ``output column * act(...)``, zero whatever the activation). A layer of a pre-LayerNorm model is skipped when
  its two residual branches' output projections (``attention.output.dense`` and ``output.dense``, weights and
  biases) are zero: the residual stream then passes through unchanged. In a post-LayerNorm model (``roberta``,
  BERT) a LayerNorm sits on the residual stream after each sublayer, so no set of zeroed parameters skips a layer
  and nothing first-order estimates its removal: Taylor importance there ranks neurons only, and removing layers
  with it is refused (use ``magnitude`` or ``layer_share=0``).
"""

from __future__ import annotations

from typing import Iterable

import torch
from transformers import PreTrainedModel

from ..errors import UsageError

IMPORTANCE = ("magnitude", "taylor")


def encoder_layers(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The encoder's ``ModuleList`` of layers (RoBERTa, RoBERTa-PreLayerNorm, BERT naming)."""
    encoder = getattr(model.base_model, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, torch.nn.ModuleList) or not hasattr(layers[0], "intermediate"):
        raise UsageError(
            f"{type(model).__name__} has no BERT-style encoder layers: structured pruning needs "
            "a RoBERTa or BERT classifier"
        )
    return layers


def feed_forward(layer) -> tuple[torch.nn.Linear, torch.nn.Linear]:
    """An encoder layer's two feed-forward projections: into the neurons and out of them."""
    return layer.intermediate.dense, layer.output.dense


PRE_LAYER_NORM_TYPES = ("roberta-prelayernorm",)


def is_pre_layer_norm(config) -> bool:
    """Whether each sublayer's LayerNorm sits on its input branch (pre-LN), so the residual stream runs free."""
    return getattr(config, "model_type", None) in PRE_LAYER_NORM_TYPES


def check_taylor_layers(config, layers: int, importance: str) -> None:
    """``UsageError`` when Taylor importance would choose layers to remove in a post-LayerNorm model."""
    if importance == "taylor" and layers > 0 and not is_pre_layer_norm(config):
        raise UsageError(
            f"--importance taylor estimates a layer's removal only for pre-LayerNorm models (zeroing a layer's two "
            f"output projections skips it there); this {config.model_type} model puts a LayerNorm after each sublayer, "
            "where nothing estimates it: use --importance magnitude, or --layer_share 0 to remove neurons only"
        )


def _branch_outputs(layer) -> list[torch.nn.Parameter]:
    """The parameters whose zeroing skips a pre-LayerNorm layer: both residual branches' output projections."""
    return [
        parameter
        for linear in (layer.attention.output.dense, layer.output.dense)
        for parameter in (linear.weight, linear.bias)
        if parameter is not None
    ]


@torch.no_grad()
def magnitude_scores(model: PreTrainedModel) -> tuple[torch.Tensor, torch.Tensor]:
    """(neuron scores [layers, intermediate], layer scores [layers]); layer scores rank the top layers lowest."""
    neuron_scores = []
    for layer in encoder_layers(model):
        up, down = feed_forward(layer)
        into = up.weight.norm(dim=1)
        out = down.weight.norm(dim=0)
        neuron_scores.append(into / into.mean() + out / out.mean())
    count = len(neuron_scores)
    return torch.stack(neuron_scores), torch.arange(count, 0, -1, dtype=torch.float)


class TaylorScores:
    """Accumulates first-order Taylor importance of every feed-forward neuron and every layer from gradients.

    Call :meth:`accumulate` after each backward pass (it reads ``.grad``); scores are summed over calls and follow
    each layer object, so they stay right when layers are removed between calls.
    """

    def __init__(self, model: PreTrainedModel):
        self.model = model
        self.neurons: dict[int, torch.Tensor] = {}
        self.layer: dict[int, float] = {}
        self.batches = 0

    @torch.no_grad()
    def accumulate(self) -> None:
        for layer in encoder_layers(self.model):
            up, down = feed_forward(layer)
            if up.weight.grad is None or down.weight.grad is None:
                continue
            neuron = (up.weight * up.weight.grad).sum(1) + (down.weight * down.weight.grad).sum(0)
            if up.bias is not None and up.bias.grad is not None:
                neuron = neuron + up.bias * up.bias.grad
            key = id(layer)
            self.neurons[key] = self.neurons.get(key, 0) + neuron.abs().float().cpu()
            total = sum((p * p.grad).sum() for p in _branch_outputs(layer) if p.grad is not None)
            self.layer[key] = self.layer.get(key, 0.0) + float(abs(total))
        self.batches += 1

    def scores(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(neuron scores [layers, intermediate], layer scores [layers]) of the model's current layers."""
        layers = encoder_layers(self.model)
        if not self.batches or any(id(layer) not in self.neurons for layer in layers):
            raise UsageError("Taylor importance needs gradients: run some training batches first")
        neurons = torch.stack([self.neurons[id(layer)] for layer in layers]) / self.batches
        return neurons, torch.tensor([self.layer[id(layer)] for layer in layers]) / self.batches


def taylor_scores(model: PreTrainedModel, batches: Iterable[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Taylor importance from labelled ``batches`` (dicts of tensors with ``labels``); weights are left unchanged."""
    scores = TaylorScores(model)
    was_training = model.training
    model.eval()  # no dropout: the scores describe the model that will be pruned
    for batch in batches:
        model.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        scores.accumulate()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return scores.scores()
