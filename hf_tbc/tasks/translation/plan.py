"""The budget plan: how many steps each encoder-decoder size gets within the budget on this machine, from a short
probe of its step time, before the study trains anything."""

from __future__ import annotations

import torch

from ...budget import parse_duration
from ...hardware import median_step_seconds
from .model import seq2seq_config


def probe_step_time(
    size: str,
    batch_size: int,
    length: int = 24,
    vocab_size: int = 4000,
    architecture: str = "m2m100",
    bf16: bool = False,
    steps: int = 3,
) -> float:
    """Seconds per optimizer step of a fresh ``size`` encoder-decoder here, on random pairs of ``length`` tokens."""
    from transformers import AutoModelForSeq2SeqLM

    torch.manual_seed(0)
    config = seq2seq_config(
        size,
        vocab_size,
        architecture=architecture,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    model = AutoModelForSeq2SeqLM.from_config(config).train()
    sources, targets = (torch.randint(4, vocab_size, (batch_size, length)) for _ in range(2))
    return median_step_seconds(model, {"input_ids": sources, "labels": targets}, bf16=bf16, steps=steps)


def plan(sizes: list[str], time_budget: str, batch_size: int, **recipe) -> list[dict]:
    """Steps each size gets within the budget here, from a short probe of its step time (``recipe`` passes
    ``vocab_size``, ``architecture`` and ``bf16`` to the probe)."""
    from transformers import AutoModelForSeq2SeqLM

    budget = parse_duration(time_budget)
    rows = []
    for size in sizes:
        seconds = probe_step_time(size, batch_size, **recipe)
        config = seq2seq_config(
            size, recipe.get("vocab_size", 4000), architecture=recipe.get("architecture", "m2m100"), pad_token_id=1
        )
        with torch.device("meta"):
            parameters = AutoModelForSeq2SeqLM.from_config(config).num_parameters()
        rows.append(
            {"size": size, "parameters": parameters, "step_s": round(seconds, 3), "steps": int(budget // seconds)}
        )
    return rows
