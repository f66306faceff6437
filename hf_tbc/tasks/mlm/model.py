"""The masked LM: sizes ``L{layers}-H{hidden}`` with RoBERTa's shapes, their parameter and FLOP counts, the
model built from them (its position table started as sine waves), and the MLM head on masked positions only.

Heads = hidden / 64 (at least 2) and FFN = 4 x hidden, as in RoBERTa. Any depth and width is a size; the presets
name the paper's depth grid (3 to 24 layers at hidden 768) and width grid (hidden 256 to 1536), plus tiny sizes for
tests and CPUs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

import torch
from transformers import AutoModelForMaskedLM, RobertaConfig, RobertaForMaskedLM, RobertaPreLayerNormConfig

from ...errors import UsageError
from ..model_config import apply_config_overrides, load_model_config, set_dropout

PAPER_DEPTHS = (3, 6, 12, 18, 24)

# model_type -> config class. Both load with the stock Auto classes; pre-LayerNorm trains stably at the high
# learning rates short budgets need (the LayerNorm sits before each sublayer, plus one after the last layer).
ARCHITECTURES = {"roberta-prelayernorm": RobertaPreLayerNormConfig, "roberta": RobertaConfig}
PAPER_WIDTHS = (256, 512, 768, 1024, 1536)


@dataclass(frozen=True)
class ModelSize:
    """The shape of one RoBERTa size."""

    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    intermediate_size: int

    @property
    def name(self) -> str:
        return f"L{self.num_hidden_layers}-H{self.hidden_size}"


def _roberta_shape(layers: int, hidden: int) -> ModelSize:
    """RoBERTa's shape: heads of 64 (at least two, so that tiny sizes still have several), FFN 4 x hidden."""
    return ModelSize(layers, hidden, max(hidden // 64, 2), 4 * hidden)


def _presets() -> dict[str, ModelSize]:
    sizes = [_roberta_shape(layers, hidden) for layers in PAPER_DEPTHS for hidden in PAPER_WIDTHS]
    # CPU-scale and test sizes: two heads of width 16 to 64.
    sizes += [_roberta_shape(2, 32), _roberta_shape(2, 64), _roberta_shape(2, 128)]
    sizes += [_roberta_shape(layers, hidden) for layers in (2, 4, 6, 8) for hidden in (128, 256, 384, 512)]
    return {size.name: size for size in sorted(set(sizes), key=lambda s: (s.hidden_size, s.num_hidden_layers))}


MODEL_SIZES: dict[str, ModelSize] = _presets()


def get_model_size(name: str) -> ModelSize:
    """The size written ``L{layers}-H{hidden}`` (e.g. ``"L12-H768"``), presets or not; a clear error otherwise.

    Any depth of at least one layer and any hidden size of at least 32 that its heads divide (hidden / 64, at least
    two) is a size: the presets in ``MODEL_SIZES`` are the paper's grids and the CPU sizes, with the same rule.
    """
    key = name.strip().upper()
    if key in MODEL_SIZES:
        return MODEL_SIZES[key]
    match = re.fullmatch(r"L(\d+)-H(\d+)", key)
    if match is None:
        raise UsageError(
            f"unknown model size {name!r}: write sizes as L{{layers}}-H{{hidden}}, e.g. one of {', '.join(MODEL_SIZES)}"
        )
    size = _roberta_shape(*(int(part) for part in match.groups()))
    if size.num_hidden_layers < 1 or size.hidden_size < 32 or size.hidden_size % size.num_attention_heads:
        raise UsageError(
            f"model size {name!r}: needs at least one layer and a hidden size of at least 32 divisible by its "
            f"{size.num_attention_heads} heads (hidden / 64, at least 2): use a multiple of 64, e.g. L2-H192"
        )
    return size


def roberta_config(
    model_size: str,
    vocab_size: int,
    max_position_embeddings: int = 514,
    config_overrides: Optional[str] = None,
    architecture: str = "roberta",
    dropout: Optional[float] = None,
    **tokens: int,
) -> RobertaConfig:
    """A config for a preset, with ``config_overrides`` such as ``"hidden_dropout_prob=0.0"`` applied.

    ``architecture`` is ``"roberta"`` (post-LayerNorm, as released) or ``"roberta-prelayernorm"``; ``dropout``
    (hidden and attention) is applied before ``config_overrides``, so an override of either field wins.
    ``tokens`` passes special-token ids (``pad_token_id``, ``bos_token_id``, ``eos_token_id``) from the tokenizer.
    """
    size = get_model_size(model_size)
    if architecture not in ARCHITECTURES:
        raise UsageError(f"unknown architecture {architecture!r}: choose one of {', '.join(ARCHITECTURES)}")
    config = ARCHITECTURES[architecture](
        vocab_size=vocab_size,
        hidden_size=size.hidden_size,
        num_hidden_layers=size.num_hidden_layers,
        num_attention_heads=size.num_attention_heads,
        intermediate_size=size.intermediate_size,
        max_position_embeddings=max_position_embeddings,
        **tokens,
    )
    if dropout is not None:
        set_dropout(config, dropout)
    apply_config_overrides(config, config_overrides)
    check_config(config)
    return config


def check_config(config: RobertaConfig) -> None:
    """Raises ``ValueError`` when the attention heads do not divide the hidden size."""
    if config.hidden_size % config.num_attention_heads != 0:
        raise UsageError(
            f"hidden size {config.hidden_size} is not divisible by num_attention_heads "
            f"{config.num_attention_heads}: choose a head count that divides it"
        )


def count_parameters(config: RobertaConfig) -> dict[str, int]:
    """Parameters of ``RobertaForMaskedLM`` for ``config`` (LM decoder tied to the word embeddings).

    ``non_embedding`` excludes word, position and token-type embeddings, as in scaling-law papers.
    """
    hidden, ffn, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    embeddings = (config.vocab_size + config.max_position_embeddings + config.type_vocab_size) * hidden
    embedding_norm = 2 * hidden
    attention = 4 * (hidden * hidden + hidden) + 2 * hidden
    feed_forward = (hidden * ffn + ffn) + (ffn * hidden + hidden) + 2 * hidden
    encoder = layers * (attention + feed_forward)
    lm_head = (hidden * hidden + hidden) + 2 * hidden + config.vocab_size  # dense, LayerNorm, decoder bias
    final_norm = 2 * hidden if config.model_type == "roberta-prelayernorm" else 0
    non_embedding = embedding_norm + encoder + final_norm + lm_head
    return {"total": embeddings + non_embedding, "non_embedding": non_embedding}


def training_flops_per_token(config: RobertaConfig, sequence_length: int, prediction_fraction: float = 1.0) -> int:
    """FLOPs to train on one token: 3 x (forward matmuls), forward = 2 per weight + attention scores.

    Counts the encoder's weight matmuls, the MLM head (dense and the vocabulary projection) and the
    attention score and value products (2 x 2 x sequence_length x hidden per layer); backward costs
    twice the forward. ``prediction_fraction`` is the share of positions the head runs on: 1.0 for
    ``RobertaForMaskedLM`` as released, the masking probability with sparse prediction.
    """
    hidden, ffn, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    weights_per_layer = 4 * hidden * hidden + 2 * hidden * ffn
    head = prediction_fraction * (hidden * hidden + hidden * config.vocab_size)
    forward = 2 * (layers * weights_per_layer + head) + layers * 4 * sequence_length * hidden
    return int(round(3 * forward))


def training_attention(config, device_type: str, bf16: bool, requested: Optional[str] = None) -> str:
    """The attention implementation to train ``config``'s masked LM with, chosen in one place: ``requested``, else
    ``"eager"`` on a CPU under bf16 autocast and ``"sdpa"`` elsewhere; and ``"eager"`` whatever was asked where the
    model class has no SDPA path (transformers 4.57's ``RobertaPreLayerNormForMaskedLM`` refuses ``"sdpa"``; 5.x
    supports it). torch's fused CPU attention is slow backwards in bf16: at L4-H256's shape (32 x 4 heads x 128 x 64)
    its forward and backward took 51.5 ms against eager's 12.4 ms on an AMX Xeon, while in fp32 the two were equal
    (24.9 and 25.2 ms). The implementation is not saved with the model: a loaded one uses transformers' default."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING

    implementation = requested or ("eager" if device_type == "cpu" and bf16 else "sdpa")
    model_class = MODEL_FOR_MASKED_LM_MAPPING.get(type(config), None)
    if implementation == "sdpa" and model_class is not None and not getattr(model_class, "_supports_sdpa", True):
        return "eager"
    return implementation


def model_config(model_args, tokenizer=None):
    """The one config a run's model is built from, from the recipe's model arguments (``model_size``,
    ``architecture``, ``dropout``, ``config_overrides``, or the checkpoint ``model_name_or_path``: read here, not
    imported, as the arguments read this module's presets). Without a ``tokenizer`` it is the config the flags ask
    for (``--vocab_size``), built before any data is read so that bad input fails first; with one, a fresh model's
    vocabulary and special tokens are the tokenizer's."""
    if model_args.model_name_or_path is not None:
        config = load_model_config(model_args.model_name_or_path)
        if model_args.config_overrides:
            config.update_from_string(model_args.config_overrides)
        check_config(config)
        return config
    tokens = {}
    if tokenizer is not None:
        tokens = dict(
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    return roberta_config(
        model_args.model_size,
        vocab_size=len(tokenizer) if tokenizer is not None else model_args.vocab_size,
        config_overrides=model_args.config_overrides,
        architecture=model_args.architecture,
        dropout=model_args.dropout,
        **tokens,
    )


def check_block_size(config, block_size: int) -> None:
    """``UsageError`` when a block of ``block_size`` tokens does not fit the model's position table (RoBERTa's
    positions start after the padding index)."""
    offset = (config.pad_token_id or 0) + 1 if config.model_type.startswith(("roberta", "xlm-roberta")) else 0
    if block_size + offset > config.max_position_embeddings:
        fix = f"--config_overrides 'max_position_embeddings={block_size + offset}'"
        raise UsageError(
            f"--block_size {block_size} exceeds the model's {config.max_position_embeddings - offset} positions: lower "
            f"it, or raise max_position_embeddings with {fix}"
        )


def build_model(
    config,
    checkpoint: Optional[str] = None,
    attn_implementation: Optional[str] = None,
    position_init: str = "sinusoidal",
) -> RobertaForMaskedLM:
    """The masked LM of ``config`` (see :func:`model_config`): the weights of ``checkpoint`` where one is continued,
    else fresh, with ``position_init`` ``"sinusoidal"`` starting the position table as sine waves.
    ``attn_implementation`` is transformers' (``"eager"``, ``"sdpa"``, ...; ``None``: its default), as
    :func:`training_attention` chose it."""
    if checkpoint is not None:
        return AutoModelForMaskedLM.from_pretrained(checkpoint, config=config, attn_implementation=attn_implementation)
    model = AutoModelForMaskedLM.from_config(config, attn_implementation=attn_implementation)
    if position_init == "sinusoidal":
        sinusoidal_positions_(model.base_model.embeddings.position_embeddings, config.initializer_range)
    return model


def sinusoidal_positions_(embedding: torch.nn.Embedding, std: float) -> None:
    """Fills a learned position table in place with sine and cosine waves of geometric wavelengths (row ``p``,
    columns ``2i`` and ``2i+1``: sin and cos of ``p / 10000^(2i/dim)``), scaled to standard deviation ``std``;
    a padding row stays zero. A relative offset is then a fixed rotation of the table, the same at every position."""
    rows, dim = embedding.weight.shape
    position = torch.arange(rows, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(rows, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    table *= std / table.std()
    if embedding.padding_idx is not None:
        table[embedding.padding_idx] = 0.0
    with torch.no_grad():
        embedding.weight.copy_(table.to(embedding.weight.dtype))


def masked_lm_head(model: torch.nn.Module) -> Optional[torch.nn.Module]:
    """The module of a masked LM that maps hidden states to vocabulary logits (``lm_head`` in the RoBERTa family,
    ``cls`` in BERT's), or ``None`` when the model has neither."""
    for name in ("lm_head", "cls"):
        head = getattr(model, name, None)
        if isinstance(head, torch.nn.Module):
            return head
    return None


class SparsePrediction:
    """Computes a stock masked LM's head only at the masked positions, while it trains and evaluates.

    Two hooks, no change to the model's class or weights: one before the model's forward keeps the positions
    whose label is not -100 and passes only their labels on; one before the head picks those positions from
    the hidden states. The model's own loss (a mean cross-entropy over the labels it gets) is then the same
    number as with the full head, for a fraction (the masking probability) of the head's cost. Without
    labels (inference) both hooks do nothing. Use as a context manager, or call :meth:`remove`.

    ``positions_per_row``: every row has at most this many labels (:class:`~hf_tbc.tasks.mlm.masking.MaskedLMCollator`
    masks exactly that many per block). The head then runs on that many positions of every row, a shape fixed by
    the batch's, so ``torch.compile`` compiles it once (picking the labelled positions by a boolean mask gives a
    shape that changes with every batch); positions picked beyond a row's labels carry -100 and are ignored by the
    loss. A row with more labels than this would lose some: leave it ``None`` for labels of any count.
    """

    def __init__(self, model: torch.nn.Module, positions_per_row: Optional[int] = None):
        self.head = masked_lm_head(model)
        if self.head is None:
            raise UsageError(
                f"{type(model).__name__} has no lm_head or cls module to make sparse: pass --sparse_prediction false"
            )
        self.positions_per_row = positions_per_row
        self._positions: Optional[torch.Tensor] = None
        self._handles = [
            model.register_forward_pre_hook(self._select_labels, with_kwargs=True),
            self.head.register_forward_pre_hook(self._select_positions),
        ]

    def _select_labels(self, module, args, kwargs):
        labels = kwargs.get("labels")
        if labels is None:
            self._positions = None
            return None
        if self.positions_per_row is None:
            self._positions = labels != -100
            return args, {**kwargs, "labels": labels[self._positions]}
        count = min(self.positions_per_row, labels.shape[-1])
        self._positions = labels.ne(-100).to(torch.int8).topk(count, dim=-1, sorted=False).indices
        return args, {**kwargs, "labels": labels.gather(-1, self._positions).reshape(-1)}

    def _select_positions(self, module, args):
        if self._positions is None:
            return None
        hidden = args[0]
        positions, self._positions = self._positions.to(hidden.device), None
        if positions.dtype == torch.bool:
            return (hidden[positions], *args[1:])
        picked = hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        return (picked.reshape(-1, hidden.shape[-1]), *args[1:])

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> "SparsePrediction":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
