"""The budget plan: how many steps and tokens each size gets within the budget on this machine, from a short probe
of its step time, before the study trains anything."""

from __future__ import annotations

import torch

from ...budget import parse_duration
from ...hardware import median_step_seconds, training_device
from .arguments import MLM_PROBABILITY
from .masking import masked_positions_per_block
from .model import SparsePrediction, count_parameters, roberta_config, training_attention


def probe_step_time(
    size: str,
    batch_size: int,
    block_size: int,
    vocab_size: int = 8192,
    steps: int = 3,
    architecture: str = "roberta-prelayernorm",
    sparse_prediction: bool = True,
    bf16: bool = False,
    mlm_probability: float = MLM_PROBABILITY,
) -> float:
    """Seconds per optimizer step of a fresh ``size`` model on the device the recipe would train on here (random
    tokens, AdamW), built and run as the pretraining recipe would: ``architecture``, its attention kernel, the head on
    a fixed count of masked positions per block, bf16 autocast if asked."""
    from transformers import AutoModelForMaskedLM

    torch.manual_seed(0)
    config = roberta_config(size, vocab_size=vocab_size, pad_token_id=1, architecture=architecture)
    attention = training_attention(config, training_device().type, bf16)
    model = AutoModelForMaskedLM.from_config(config, attn_implementation=attention).train()
    count = masked_positions_per_block(block_size, mlm_probability)
    sparse = SparsePrediction(model, positions_per_row=count) if sparse_prediction else None
    tokens = torch.randint(5, vocab_size, (batch_size, block_size))
    chosen = torch.rand(tokens.shape).topk(count, dim=1).indices
    labels = torch.full_like(tokens, -100).scatter_(1, chosen, tokens.gather(1, chosen))
    seconds = median_step_seconds(model, {"input_ids": tokens, "labels": labels}, bf16=bf16, steps=steps)
    if sparse is not None:
        sparse.remove()
    return seconds


def plan(
    sizes: list[str], time_budget: str, batch_size: int, block_size: int, vocab_size: int = 8192, **recipe
) -> list[dict]:
    """How many steps and tokens each size gets within the budget here, from a short probe of its step time.
    ``recipe`` passes the pretraining recipe's ``architecture``, ``sparse_prediction``, ``bf16`` and
    ``mlm_probability`` to the probe."""
    budget = parse_duration(time_budget)
    rows = []
    for size in sizes:
        seconds = probe_step_time(size, batch_size, block_size, vocab_size, **recipe)
        steps = int(budget // seconds)
        config = roberta_config(
            size, vocab_size=vocab_size, architecture=recipe.get("architecture", "roberta-prelayernorm")
        )
        rows.append(
            {
                "size": size,
                "parameters": count_parameters(config)["total"],
                "step_s": round(seconds, 3),
                "steps": steps,
                "tokens": steps * batch_size * block_size,
            }
        )
    return rows
