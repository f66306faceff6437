"""Model-size presets ``L{layers}-H{hidden}`` with RoBERTa's shapes, and their parameter and FLOP counts.

Heads = hidden / 64 and FFN = 4 x hidden, as in RoBERTa. The presets cover the paper's depth grid
(3 to 24 layers at hidden 768) and width grid (hidden 256 to 1536), plus tiny sizes for tests and CPUs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from transformers import RobertaConfig, RobertaPreLayerNormConfig

from .errors import UsageError

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


def _roberta_shape(layers: int, hidden: int, heads: Optional[int] = None) -> ModelSize:
    return ModelSize(layers, hidden, heads or max(hidden // 64, 1), 4 * hidden)


def _presets() -> dict[str, ModelSize]:
    sizes = [_roberta_shape(layers, hidden) for layers in PAPER_DEPTHS for hidden in PAPER_WIDTHS]
    # CPU-scale and test sizes: heads of width 32-64 so that tiny models still have several heads.
    sizes += [_roberta_shape(2, 32, 2), _roberta_shape(2, 64, 2), _roberta_shape(2, 128, 2)]
    sizes += [_roberta_shape(layers, hidden) for layers in (2, 4, 6, 8) for hidden in (128, 256, 384, 512)]
    return {size.name: size for size in sorted(set(sizes), key=lambda s: (s.hidden_size, s.num_hidden_layers))}


MODEL_SIZES: dict[str, ModelSize] = _presets()


def get_model_size(name: str) -> ModelSize:
    """The preset called ``name`` (e.g. ``"L12-H768"``); ``ValueError`` listing the valid names otherwise."""
    key = name.strip().upper()
    if key in MODEL_SIZES:
        return MODEL_SIZES[key]
    hint = "" if re.fullmatch(r"L\d+-H\d+", key) else " (sizes are written L{layers}-H{hidden})"
    raise UsageError(f"unknown model size {name!r}{hint}: choose one of {', '.join(MODEL_SIZES)}")


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


def apply_config_overrides(config, config_overrides: Optional[str]) -> None:
    """Applies ``--config_overrides`` (``"key=value,key=value"``) to ``config``; one clear error when it is malformed."""
    if not config_overrides:
        return
    try:
        config.update_from_string(config_overrides)
    except ValueError as error:
        raise UsageError(
            f"--config_overrides {config_overrides!r} is invalid ({error}): write key=value pairs "
            "separated by commas, e.g. 'hidden_dropout_prob=0.0,num_attention_heads=4'"
        ) from None


def check_dropout(dropout: float) -> None:
    """``UsageError`` unless ``dropout`` is a probability below 1."""
    if not 0 <= dropout < 1:
        raise UsageError(f"--dropout {dropout} must be in [0, 1)")


def set_dropout(config: RobertaConfig, dropout: float) -> None:
    """Sets a RoBERTa config's hidden and attention dropout (what ``--dropout`` means in every recipe)."""
    check_dropout(dropout)
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = dropout


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
