"""Pruning to a smaller shape along every axis a standard config expresses: fewer layers (encoder and decoder
counted apart), a narrower hidden size with whole attention heads removed, and fewer feed-forward neurons. The
result is a stock model of the smaller config (RoBERTa, RoBERTa-PreLayerNorm or M2M100), which ``from_pretrained``
loads like any other.

What goes is what mattered least on data, measured once on the dense model (Minitron, Muralidharan et al. 2024):

- a hidden channel: the mean magnitude of that channel at the output of every LayerNorm, summed over them;
- an attention head: the mean L2 norm of its output (its slice of the input of the attention's output projection);
- a feed-forward neuron: the mean magnitude of its activation (its entry of the input of the projection out);
- a layer: how much it changes the residual stream, one minus the mean cosine similarity of its input and output
  hidden states (the block importance of ShortGPT, Men et al. 2024); the least changing layers go.

Kept channels, heads and neurons keep their order, so a kept weight is a slice of the dense one. Heads keep their
width (a config's ``hidden / heads``): the target hidden size must be a whole number of them.

Where the architecture derives something from the hidden size:

- M2M100 multiplies its token embeddings by ``sqrt(d_model)``: the narrowed model multiplies by ``sqrt(d')``, so
  the kept embedding columns are scaled by ``sqrt(d / d')`` and each token enters the encoder and decoder as before.
  The embeddings are tied to the output layer, which then sees that scale too: the decoder's final LayerNorm (whose
  output feeds only the output layer) is divided by it, and the logits are the dense model's over the kept channels.
- M2M100's sinusoidal positions are computed from ``d_model``, not stored: the narrowed model adds the sinusoids of
  width ``d'``, whose frequencies are not a subset of the dense ones. Channels kept by magnitude alone would each
  receive some other channel's sinusoid. So for M2M100 each new channel ``j`` takes the most important dense channel
  whose frequency is nearest the new ``w_j`` (:func:`_sinusoid_channels`). On a 16-minute E1-D1-H256 (loss 1.54;
  scored when padding still counted) that lowered the loss before recovery from 2.95 to 2.61 narrowed to H192 and
  from 5.65 to 5.43 narrowed to H128; halving the feed-forward neurons alone gave 2.11. What remains (frequencies up
  to 7 % off, every LayerNorm normalising over fewer channels, and above all the information in the channels that go:
  at H128, random channels did no worse, 5.29) is what recovery has to train back; the compression grid measures it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Iterable

import torch
from transformers import PreTrainedModel
from transformers.utils import logging

from ..errors import UsageError

logger = logging.get_logger(__name__)

# config fields of each family: hidden size, heads, feed-forward width, layers (per stack)
FAMILIES = {
    "roberta": ("hidden_size", ("num_attention_heads",), ("intermediate_size",), {"encoder": "num_hidden_layers"}),
    "m2m_100": (
        "d_model",
        ("encoder_attention_heads", "decoder_attention_heads"),
        ("encoder_ffn_dim", "decoder_ffn_dim"),
        {"encoder": "encoder_layers", "decoder": "decoder_layers"},
    ),
}
FAMILY_OF = {"roberta": "roberta", "roberta-prelayernorm": "roberta", "bert": "roberta", "m2m_100": "m2m_100"}
QKV = re.compile(r"(.*\.(?:attention|self_attn|encoder_attn))\.(?:self\.)?(?:query|key|value|q_proj|k_proj|v_proj)$")
ATTENTION_OUT = re.compile(r"(.*\.(?:attention|self_attn|encoder_attn))\.(?:output\.dense|out_proj)$")
FFN_UP = re.compile(r"(.*\.(?:layer|layers)\.\d+)\.(?:intermediate\.dense|fc1)$")
FFN_DOWN = re.compile(r"(.*\.(?:layer|layers)\.\d+)\.(?:output\.dense|fc2)$")


@dataclass(frozen=True)
class Shape:
    """What a standard config says of a model's size: hidden width, attention heads, feed-forward neurons (the same
    in every layer) and layers per stack (``{"encoder": n}``, or encoder and decoder)."""

    hidden: int
    heads: int
    ffn: int
    layers: dict = field(hash=False)

    def describe(self) -> str:
        stacks = ", ".join(f"{count} {stack} layers" for stack, count in self.layers.items())
        return f"{stacks}, hidden {self.hidden}, {self.heads} heads, {self.ffn} feed-forward neurons"


def _family(config) -> tuple:
    family = FAMILY_OF.get(getattr(config, "model_type", None))
    if family is None:
        raise UsageError(
            f"pruning to a shape knows RoBERTa, BERT and M2M100 models, not {config.model_type!r}: prune this model's "
            "feed-forward neurons or layers instead"
        )
    return FAMILIES[family]


def shape_of(config) -> Shape:
    """The :class:`Shape` of ``config``; an error where its stacks differ in heads or feed-forward width."""
    hidden, heads, ffn, layers = _family(config)
    for names in (heads, ffn):
        if len({getattr(config, name) for name in names}) != 1:
            raise UsageError(f"{', '.join(names)} differ in this config: pruning to a shape needs them equal")
    return Shape(
        hidden=getattr(config, hidden),
        heads=getattr(config, heads[0]),
        ffn=getattr(config, ffn[0]),
        layers={stack: getattr(config, name) for stack, name in layers.items()},
    )


def check_target(source: Shape, target: Shape) -> None:
    """An error naming the axis where ``target`` is not a smaller (or equal) shape with heads of the source's width."""
    head_width = source.hidden // source.heads
    if set(target.layers) != set(source.layers):
        raise UsageError(f"the target has {', '.join(target.layers)} layers, the model {', '.join(source.layers)}")
    for axis, before, after in (("hidden", source.hidden, target.hidden), ("ffn", source.ffn, target.ffn)):
        if not 0 < after <= before:
            raise UsageError(f"target {axis} width {after} must be between 1 and the model's {before}")
    for stack, count in target.layers.items():
        if not 0 < count <= source.layers[stack]:
            raise UsageError(f"target {stack} layers {count} must be between 1 and the model's {source.layers[stack]}")
    if target.heads * head_width != target.hidden:
        whole = max(target.hidden // head_width, 1)
        raise UsageError(
            f"target hidden {target.hidden} with {target.heads} heads would need heads "
            f"{target.hidden / target.heads:.4g} wide; the model's are {head_width} wide and stay whole: choose "
            f"{whole} heads (hidden {whole * head_width})"
        )


SHAPE_NAMES = {
    "encoder": re.compile(r"^L(\d+)-H(\d+)$"),  # RoBERTa-like: L{layers}-H{hidden}
    "encoder-decoder": re.compile(r"^E(\d+)-D(\d+)-H(\d+)$"),  # E{encoder layers}-D{decoder layers}-H{hidden}
}


def parse_shape(name: str, source: Shape) -> Shape:
    """The target shape ``name``, written like the task's sizes (``L2-H128``; ``E2-D1-H128`` for encoder-decoders),
    for a model of shape ``source``: heads as wide as the source's, feed-forward width 4 x hidden (the presets'
    ratio), so that ``E2-D2-H128`` pruned from ``E2-D2-H384`` has the config of ``E2-D2-H128`` trained from scratch.
    A one-line error for a name of the wrong form or a shape the source cannot be pruned to."""
    kind = "encoder-decoder" if "decoder" in source.layers else "encoder"
    match = SHAPE_NAMES[kind].match(name.strip().upper())
    if match is None:
        example = "E2-D1-H128" if kind == "encoder-decoder" else "L2-H128"
        raise UsageError(f"--target_shapes {name!r}: write this model's shapes like its sizes, e.g. {example}")
    numbers = [int(part) for part in match.groups()]
    hidden, head_width = numbers[-1], source.hidden // source.heads
    if hidden % head_width:
        raise UsageError(
            f"--target_shapes {name}: hidden {hidden} is not a whole number of this model's {head_width}-wide heads: "
            f"choose a multiple of {head_width}"
        )
    target = Shape(hidden=hidden, heads=hidden // head_width, ffn=4 * hidden, layers=dict(zip(source.layers, numbers)))
    check_target(source, target)
    return target


def smaller_shapes(names: list[str], config) -> list[str]:
    """``names`` (``--target_shapes``) checked against the model of ``config``, less any that is the model's own shape
    (nothing to prune: a study's shapes apply to every size, its smallest included), each left out with a warning."""
    source = shape_of(config) if names else None
    kept = []
    for name in names:
        if parse_shape(name, source) == source:
            logger.warning(f"--target_shapes {name} is this model's own shape: left out (nothing to prune)")
        else:
            kept.append(name)
    return kept


def config_for(config, target: Shape):
    """A copy of ``config`` with the fields of ``target``."""
    hidden, heads, ffn, layers = _family(config)
    new = config.__class__.from_dict(config.to_dict())
    setattr(new, hidden, target.hidden)
    for name in heads:
        setattr(new, name, target.heads)
    for name in ffn:
        setattr(new, name, target.ffn)
    for stack, name in layers.items():
        setattr(new, name, target.layers[stack])
    return new


def layer_stacks(model: PreTrainedModel) -> dict[str, tuple[str, torch.nn.ModuleList]]:
    """Each stack's qualified name and its layers: ``encoder`` (and ``decoder``)."""
    stacks = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and re.search(r"(?:^|\.)(encoder|decoder)\.(?:layer|layers)$", name):
            stacks[re.search(r"(encoder|decoder)\.(?:layer|layers)$", name).group(1)] = (name, module)
    return stacks


@dataclass
class ShapeScores:
    """What each part of the dense model did on the calibration batches (higher: more important)."""

    channels: torch.Tensor  # [hidden]
    heads: dict[str, torch.Tensor]  # attention module name -> [heads]
    neurons: dict[str, torch.Tensor]  # layer name -> [ffn]
    layers: dict[str, torch.Tensor]  # stack -> [layers]


def _hidden_of(value):
    return value[0] if isinstance(value, (tuple, list)) else value


def _token_mean(values: torch.Tensor, mask) -> torch.Tensor:
    """The mean of ``values`` (batch, positions, ...) over the positions ``mask`` (batch, positions) marks as tokens;
    over every position where there is no mask of that shape."""
    values = values.detach().float()
    if mask is None or tuple(mask.shape) != tuple(values.shape[:2]):
        return values.reshape(-1, *values.shape[2:]).mean(0).cpu()
    weights = mask.to(values.device, torch.float32).reshape(*mask.shape, *([1] * (values.dim() - 2)))
    return ((values * weights).sum((0, 1)) / weights.sum().clamp(min=1)).cpu()


def _token_masks(batch: dict) -> dict:
    """Which positions of each stack hold tokens: the encoder's from ``attention_mask``, the decoder's (whose input at
    position ``t`` is the label before ``t``) from ``decoder_attention_mask`` or the labels that count."""
    masks = {"encoder": batch.get("attention_mask")}
    decoder = batch.get("decoder_attention_mask")
    if decoder is None and batch.get("labels") is not None:
        decoder = batch["labels"] != -100
    masks["decoder"] = decoder
    return masks


@torch.no_grad()
def measure_importance(model: PreTrainedModel, batches: Iterable[dict]) -> ShapeScores:
    """Runs ``batches`` through ``model`` (evaluation mode) and scores every channel, head, neuron and layer, averaged
    over the positions that hold tokens (padding left out, by the batch's attention mask and labels)."""
    shape = shape_of(model.config)
    head_width = shape.hidden // shape.heads
    channels = torch.zeros(shape.hidden)
    heads, neurons, layers, hooks = {}, {}, {}, []
    masks = {}

    def add(store: dict, key, value: torch.Tensor) -> None:
        store[key] = store.get(key, 0) + value

    def on_norm(module, inputs, output, stack):
        nonlocal channels
        channels += _token_mean(output.abs(), masks.get(stack) if output.dim() == 3 else None)

    def on_heads(module, inputs, key, stack):
        per_head = inputs[0].reshape(*inputs[0].shape[:-1], shape.heads, head_width).norm(dim=-1)
        add(heads, key, _token_mean(per_head, masks.get(stack)))

    def on_neurons(module, inputs, key, stack):
        add(neurons, key, _token_mean(inputs[0].abs(), masks.get(stack)))

    for name, module in model.named_modules():
        stack = "decoder" if ".decoder." in f".{name}." else "encoder"
        if isinstance(module, torch.nn.LayerNorm) and tuple(module.normalized_shape) == (shape.hidden,):
            hooks.append(module.register_forward_hook(lambda m, i, o, stack=stack: on_norm(m, i, o, stack)))
        elif isinstance(module, torch.nn.Linear) and ATTENTION_OUT.match(name):
            key = ATTENTION_OUT.match(name).group(1)
            hooks.append(
                module.register_forward_pre_hook(lambda m, i, key=key, stack=stack: on_heads(m, i, key, stack))
            )
        elif isinstance(module, torch.nn.Linear) and FFN_DOWN.match(name):
            key = FFN_DOWN.match(name).group(1)
            hooks.append(
                module.register_forward_pre_hook(lambda m, i, key=key, stack=stack: on_neurons(m, i, key, stack))
            )
    for stack, (_, modules) in layer_stacks(model).items():
        for index, layer in enumerate(modules):

            def on_layer(module, args, kwargs, output, stack=stack, index=index):
                before = args[0] if args else kwargs["hidden_states"]
                after = _hidden_of(output)
                similarity = torch.nn.functional.cosine_similarity(before.float(), after.float(), dim=-1)
                change = 1 - _token_mean(similarity, masks.get(stack))
                layers.setdefault(stack, torch.zeros(len(modules)))[index] += change

            hooks.append(layer.register_forward_hook(on_layer, with_kwargs=True))
    was_training = model.training
    model.eval()
    try:
        seen = 0
        for batch in batches:
            masks.update(_token_masks(batch))
            model(**{key: value.to(model.device) for key, value in batch.items()})
            seen += 1
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    if not seen:
        raise UsageError("importance for pruning to a shape needs calibration batches: none were given")
    return ShapeScores(channels=channels, heads=heads, neurons=neurons, layers=layers)


def _top(scores: torch.Tensor, count: int) -> torch.Tensor:
    return scores.argsort(descending=True)[:count].sort().values


def _sinusoid_channels(scores: torch.Tensor, target: int) -> torch.Tensor:
    """Hidden channels to keep where the positions are sinusoids computed from the width (M2M100): channel ``i`` of
    the first half carries ``sin(position * w_i)``, of the second half the cosine, ``w_i = 10000 ** (-i / (d/2 - 1))``.
    The narrowed model adds the sinusoids of its own width, so the channel kept at new index ``j`` should be one whose
    dense frequency is nearest to the new ``w_j``: each new index takes the most important dense channel of its
    frequency bucket (sines and cosines apart). Halving the width keeps one of every two neighbouring frequencies, whose
    sinusoids differ from the new ones by at most 7 % in frequency, and the positions a layer learnt to read survive."""
    dense_half, half = scores.numel() // 2, target // 2
    ratio = (half - 1) / max(dense_half - 1, 1)
    buckets = torch.round(torch.arange(dense_half, dtype=torch.float64) * ratio).long()
    kept = []
    for offset in (0, dense_half):  # sines, then cosines
        for index in range(half):
            members = torch.nonzero(buckets == index).flatten() + offset
            kept.append(int(members[scores[members].argmax()]))
    return torch.tensor(kept)


@dataclass
class ShapeReport:
    """What pruning to a shape kept: the shapes, the layers kept per stack (dense indices), the parameters."""

    before: Shape
    after: Shape
    kept_layers: dict[str, list[int]]
    parameters_before: int
    parameters_after: int


@torch.no_grad()
def prune_to_shape(model: PreTrainedModel, target: Shape, scores: ShapeScores) -> tuple[PreTrainedModel, ShapeReport]:
    """A new model of ``target``'s shape holding the dense ``model``'s most important layers, channels, heads and
    neurons by ``scores`` (:func:`measure_importance`); ``model`` is left unchanged."""
    source = shape_of(model.config)
    check_target(source, target)
    head_width = source.hidden // source.heads
    kept_layers = {stack: sorted(_top(scores.layers[stack], target.layers[stack]).tolist()) for stack in target.layers}
    stack_paths = {stack: path for stack, (path, _) in layer_stacks(model).items()}
    sinusoids = getattr(model.config, "model_type", None) == "m2m_100" and source.hidden % 2 == 0 == target.hidden % 2
    channels = _sinusoid_channels(scores.channels, target.hidden) if sinusoids else _top(scores.channels, target.hidden)
    heads = {
        key: (_top(value, target.heads)[:, None] * head_width + torch.arange(head_width)).flatten()
        for key, value in scores.heads.items()
    }
    neurons = {key: _top(value, target.ffn) for key, value in scores.neurons.items()}

    def dense_name(name: str) -> str:
        for stack, path in stack_paths.items():
            prefix = f"{path}."
            if name.startswith(prefix):
                index, rest = name[len(prefix) :].split(".", 1)
                return f"{prefix}{kept_layers[stack][int(index)]}.{rest}"
        return name

    def index_for(module: str, axis: int, size: int) -> torch.Tensor:
        for pattern, role_axis, table in ((QKV, 0, heads), (ATTENTION_OUT, 1, heads)):
            if pattern.match(module) and axis == role_axis:
                return table[pattern.match(module).group(1)]
        for pattern, role_axis in ((FFN_UP, 0), (FFN_DOWN, 1)):
            if pattern.match(module) and axis == role_axis:
                return neurons[pattern.match(module).group(1)]
        if size == source.hidden:
            return channels
        raise UsageError(f"cannot tell which part of the model axis {axis} of {module} ({size} wide) belongs to")

    config = config_for(model.config, target)
    pruned = model.__class__(config).to(device=model.device, dtype=model.dtype)
    dense = model.state_dict()
    state = {}
    for name, tensor in pruned.state_dict().items():
        old = dense[dense_name(name)]
        module = dense_name(name).rsplit(".", 1)[0]
        for axis, (before, after) in enumerate(zip(old.shape, tensor.shape)):
            if before != after:
                mapped = index_for(module, axis, before)
                # an index measured on a layer that was dropped is not needed: kept layers are looked up by dense name
                old = old.index_select(axis, mapped.to(old.device))
        state[name] = old.clone()
    _keep_embedding_scale(model.config, config, state)
    pruned.load_state_dict(state)
    pruned.train(model.training)
    if getattr(model, "generation_config", None) is not None and getattr(pruned, "generation_config", None):
        pruned.generation_config = model.generation_config.__class__.from_dict(model.generation_config.to_dict())
    report = ShapeReport(
        before=source,
        after=target,
        kept_layers=kept_layers,
        parameters_before=sum(parameter.numel() for parameter in model.parameters()),
        parameters_after=sum(parameter.numel() for parameter in pruned.parameters()),
    )
    return pruned, report


def _keep_embedding_scale(dense_config, config, state: dict) -> None:
    """M2M100 scales token embeddings by ``sqrt(d_model)``: the kept columns are scaled so each token enters as
    before, and the decoder's final LayerNorm (feeding only the tied output layer) undoes that scale on the logits."""
    if not getattr(config, "scale_embedding", False) or getattr(config, "model_type", None) != "m2m_100":
        return
    factor = math.sqrt(dense_config.d_model / config.d_model)
    if factor == 1.0:
        return
    for name in list(state):
        if name.endswith("embed_tokens.weight") or name in ("model.shared.weight", "lm_head.weight"):
            state[name] = state[name] * factor
    for name in ("model.decoder.layer_norm.weight", "model.decoder.layer_norm.bias"):
        state[name] = state[name] / factor
