"""Encoder-decoder size presets ``E{encoder layers}-D{decoder layers}-H{hidden}`` and their configs.

Heads = hidden / 64 (at least 2) and FFN = 4 x hidden, the base Transformer's ratios (Vaswani et al. 2017), so
the paper's translation grid (width against encoder and decoder depth) is one string per point: ``E6-D6-H512``
is the base Transformer. Three stock architectures, all loaded by ``AutoModelForSeq2SeqLM``: ``m2m100`` (LayerNorm
before each sublayer, fixed sinusoidal positions), ``mbart`` (LayerNorm before each sublayer, learned positions)
and ``marian`` (LayerNorm after each sublayer, sinusoidal positions: the original Transformer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from transformers import AutoModelForSeq2SeqLM, M2M100Config, MarianConfig, MBartConfig, PretrainedConfig

from ...errors import UsageError
from ..model_config import apply_config_overrides, check_dropout, load_model_config

SEQ2SEQ_ARCHITECTURES = {"m2m100": M2M100Config, "mbart": MBartConfig, "marian": MarianConfig}
_NAME = re.compile(r"^E(\d+)-D(\d+)-H(\d+)$")


@dataclass(frozen=True)
class TranslationSize:
    """The shape of one encoder-decoder size."""

    encoder_layers: int
    decoder_layers: int
    hidden_size: int

    @property
    def name(self) -> str:
        return f"E{self.encoder_layers}-D{self.decoder_layers}-H{self.hidden_size}"

    @property
    def attention_heads(self) -> int:
        return max(self.hidden_size // 64, 2)

    @property
    def ffn_dim(self) -> int:
        return 4 * self.hidden_size


def get_model_size(name: str) -> TranslationSize:
    """The size written ``E{e}-D{d}-H{h}`` (e.g. ``"E3-D3-H256"``); a clear error for anything else."""
    match = _NAME.match(name.strip().upper())
    if match is None:
        raise UsageError(
            f"unknown model size {name!r}: write translation sizes as E{{encoder layers}}-D{{decoder layers}}"
            "-H{hidden}, e.g. E3-D3-H256 or E6-D6-H512"
        )
    encoder, decoder, hidden = (int(part) for part in match.groups())
    if encoder < 1 or decoder < 1:
        raise UsageError(f"model size {name!r} needs at least one encoder and one decoder layer")
    size = TranslationSize(encoder, decoder, hidden)
    if hidden < 32 or hidden % size.attention_heads:
        raise UsageError(
            f"model size {name!r}: hidden size {hidden} must be at least 32 and divisible by its "
            f"{size.attention_heads} heads (hidden / 64): use a multiple of 64, e.g. H256"
        )
    return size


def seq2seq_config(
    model_size: str,
    vocab_size: int,
    architecture: str = "m2m100",
    dropout: float = 0.1,
    max_position_embeddings: int = 256,
    config_overrides: Optional[str] = None,
    **tokens: int,
) -> PretrainedConfig:
    """The config of a fresh encoder-decoder of ``model_size``: source and target share one vocabulary and one
    embedding matrix, tied to the output layer. ``tokens`` passes ``pad_token_id``, ``bos_token_id``,
    ``eos_token_id`` and ``decoder_start_token_id`` from the tokenizer."""
    size = get_model_size(model_size)
    if architecture not in SEQ2SEQ_ARCHITECTURES:
        raise UsageError(f"unknown architecture {architecture!r}: choose one of {', '.join(SEQ2SEQ_ARCHITECTURES)}")
    check_dropout(dropout)
    config = SEQ2SEQ_ARCHITECTURES[architecture](
        vocab_size=vocab_size,
        d_model=size.hidden_size,
        encoder_layers=size.encoder_layers,
        decoder_layers=size.decoder_layers,
        encoder_attention_heads=size.attention_heads,
        decoder_attention_heads=size.attention_heads,
        encoder_ffn_dim=size.ffn_dim,
        decoder_ffn_dim=size.ffn_dim,
        max_position_embeddings=max_position_embeddings,
        dropout=dropout,
        encoder_layerdrop=0.0,  # M2M100's default drops 5 % of the layers at random: not for a from-scratch budget
        decoder_layerdrop=0.0,
        scale_embedding=True,  # embeddings x sqrt(d_model), as in the base Transformer: tied embeddings stay small
        tie_word_embeddings=True,
        forced_eos_token_id=None,  # decoding settings live in the generation config (Marian's default here is 0)
        **tokens,
    )
    apply_config_overrides(config, config_overrides)
    return config


def model_config(model_args, tokenizer, max_length: int) -> PretrainedConfig:
    """The one config a run's model is built from, from the recipe's model arguments (``model_size``,
    ``architecture``, ``dropout``, ``config_overrides``, or the checkpoint ``model_name_or_path``: read here, not
    imported, as the arguments read this module's presets): a fresh model sized for ``tokenizer`` with positions for
    ``max_length`` tokens, or the checkpoint's own config."""
    if model_args.model_name_or_path is not None:
        return load_model_config(model_args.model_name_or_path)
    return seq2seq_config(
        model_args.model_size,
        vocab_size=len(tokenizer),
        architecture=model_args.architecture,
        dropout=model_args.dropout,
        max_position_embeddings=max_length + 2,
        config_overrides=model_args.config_overrides,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        # the decoder starts from </s>, as in BART and mBART: mBART's own label shifting moves each target's final
        # token (</s> here) to the front whatever the config says, so generation must start from the same token
        decoder_start_token_id=tokenizer.eos_token_id,
    )


def build_model(config: PretrainedConfig, checkpoint: Optional[str] = None):
    """The encoder-decoder of ``config`` (see :func:`model_config`): the weights of ``checkpoint`` where one is
    continued, else fresh."""
    if checkpoint is not None:
        return AutoModelForSeq2SeqLM.from_pretrained(checkpoint, config=config)
    return AutoModelForSeq2SeqLM.from_config(config)


def set_generation(model, max_target_length: int, num_beams: int, no_repeat_ngram_size: int = 0) -> None:
    """What ``generate`` and ``pipeline("translation")`` use: the evaluated decoding, saved with the model."""
    generation = model.generation_config
    generation.max_length = max_target_length
    generation.num_beams = num_beams
    generation.no_repeat_ngram_size = no_repeat_ngram_size or None
    generation.decoder_start_token_id = model.config.decoder_start_token_id
    generation.bos_token_id = model.config.bos_token_id
    generation.eos_token_id = model.config.eos_token_id
    generation.forced_eos_token_id = model.config.eos_token_id
    generation.pad_token_id = model.config.pad_token_id
