#!/usr/bin/env python
"""Training throughput and hardware use: transformers' plain Trainer, hf-tbc's previous defaults and its current
ones (and, with --compile, the current ones under torch.compile), side by side in one run.

Every candidate trains the same model size on the same packed blocks for the same number of steps, interleaved
(the order turns every repeat) so that machine noise hits all alike:

- ``plain``: ``Trainer`` with ``DataCollatorForLanguageModeling``, the full MLM head, transformers' default
  attention (sdpa) and token counting (``include_num_input_tokens_seen="non_padding"``);
- ``before``: hf-tbc's ``BudgetTrainer`` as its defaults were: the head on the masked positions picked by a boolean
  mask (a shape that changes every batch), each token masked independently, sdpa attention, the Trainer's
  per-micro-step token gather;
- ``hf-tbc``: the defaults now: a fixed count of masked positions per block (one shape), the attention kernel of
  ``training_attention`` (eager on a CPU under bf16), tokens counted from each batch's shape;
- ``hf-tbc+compile`` (``--compile``): the same under ``torch_compile``; its compile time is printed apart.

Prints tokens/s, the ratios to ``plain`` and to ``before``, achieved FLOP/s (the model's own count: the full head
for ``plain``, the masked positions for the others) and utilisation against the matmul peak measured **at the
model's own shapes** (every matmul of one training step, forward and both backward products, timed alone), in fp32
and bf16, and the loss after the last step (the same blocks and seed for all; masking differs between kinds).

    python benchmarks/bench_training.py --model_size L4-H256 --steps 30 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling, Trainer, TrainerCallback
from transformers.trainer_callback import PrinterCallback
from transformers.utils import logging

from hf_tbc.budget.trainer import BudgetTrainer
from hf_tbc.hardware import hardware_summary, training_device
from hf_tbc.tasks.mlm.arguments import MLM_PROBABILITY, PretrainingArguments
from hf_tbc.tasks.mlm.data import load_text_datasets, pack_texts, train_tokenizer
from hf_tbc.tasks.mlm.masking import MaskedLMCollator, masked_positions_per_block
from hf_tbc.tasks.mlm.model import SparsePrediction, roberta_config, training_attention, training_flops_per_token

KINDS = ("plain", "before", "hf-tbc", "hf-tbc+compile")


class StepTimer(TrainerCallback):
    """The same instrument for every candidate: wall-clock at the end of every optimizer step, and the last loss."""

    def __init__(self):
        self.times: list[float] = []
        self.loss = None

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss = logs["loss"]


class BernoulliCollator(DataCollatorForLanguageModeling):
    """hf-tbc's previous training collator: each token masked independently (a count that changes every batch)."""


def _best_seconds(function, repeats: int = 5) -> float:
    function()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def step_matmuls(config, batch_size: int, block_size: int, head_positions: int) -> list[tuple[int, int, int, int]]:
    """The matmuls of one training step as ``(batch, m, k, n)``: every linear layer's forward ``x @ W``, and its two
    backward products (the input's gradient and the weight's), the attention's scores and context (forward and
    backward), and the MLM head's dense layer and vocabulary projection on ``head_positions`` rows."""
    tokens, hidden, ffn = batch_size * block_size, config.hidden_size, config.intermediate_size
    heads = config.num_attention_heads
    head_dim = hidden // heads

    def linear(rows: int, fan_in: int, fan_out: int) -> list[tuple[int, int, int, int]]:
        return [(1, rows, fan_in, fan_out), (1, rows, fan_out, fan_in), (1, fan_in, rows, fan_out)]

    layer = linear(tokens, hidden, 3 * hidden) + linear(tokens, hidden, hidden)
    layer += linear(tokens, hidden, ffn) + linear(tokens, ffn, hidden)
    attention = [
        (batch_size * heads, block_size, head_dim, block_size),
        (batch_size * heads, block_size, block_size, head_dim),
    ]
    layer += attention * 3  # forward, and two backward products each
    head = linear(head_positions, hidden, hidden) + linear(head_positions, hidden, config.vocab_size)
    return layer * config.num_hidden_layers + head


def matmul_peak_at_shapes(shapes: list[tuple[int, int, int, int]], dtype: torch.dtype, device: torch.device) -> float:
    """FLOP/s of ``shapes`` (as :func:`step_matmuls` lists them) run alone, each timed at its best of five: the
    speed this machine's matmul library reaches on the step's own matrices, the ceiling for the matmul work."""
    seconds, flops = 0.0, 0
    timed: dict[tuple[int, int, int, int], float] = {}
    for shape in shapes:
        batch, m, k, n = shape
        if shape not in timed:
            a = torch.randn(batch, m, k, dtype=dtype, device=device)
            b = torch.randn(batch, k, n, dtype=dtype, device=device)
            synchronize = (
                getattr(getattr(torch, device.type, None), "synchronize", None) if device.type != "cpu" else None
            )

            def product():
                torch.matmul(a, b)
                if synchronize is not None:
                    synchronize()

            timed[shape] = _best_seconds(product)
        seconds += timed[shape]
        flops += 2 * batch * m * k * n
    return flops / seconds


def run_once(kind: str, blocks, tokenizer, size: str, args, bf16: bool, output_dir: str) -> dict:
    """One candidate's tokens per second over the steps after ``args.warmup_steps``, its last loss and, under
    compile, its first step's seconds."""
    device = training_device()
    config = roberta_config(
        size,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        dropout=0.0,
        architecture="roberta-prelayernorm",
    )
    attention = "sdpa" if kind in ("plain", "before") else training_attention(config, device.type, bf16)
    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_config(config, attn_implementation=attention)
    timer = StepTimer()
    common = dict(
        output_dir=output_dir,
        max_steps=args.steps,
        per_device_train_batch_size=args.per_device_train_batch_size,
        learning_rate=1e-3,
        warmup_steps=5,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        bf16=bf16,
        dataloader_num_workers=0,
        seed=0,
    )
    if kind == "plain":
        from transformers import TrainingArguments

        trainer = Trainer(
            model=model,
            args=TrainingArguments(**common, include_num_input_tokens_seen="non_padding", use_cpu=device.type == "cpu"),
            train_dataset=blocks,
            data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=MLM_PROBABILITY),
        )
    else:
        training_args = PretrainingArguments(
            **common,
            time_budget="1h",
            eval_every="1h",
            torch_compile=kind == "hf-tbc+compile",
            include_num_input_tokens_seen="non_padding",
            count_tokens_by_shape=kind != "before",
        )
        if kind == "before":
            SparsePrediction(model)
            collator = BernoulliCollator(tokenizer, mlm_probability=MLM_PROBABILITY)
        else:
            SparsePrediction(model, positions_per_row=masked_positions_per_block(args.block_size, MLM_PROBABILITY))
            collator = MaskedLMCollator(tokenizer, mlm_probability=MLM_PROBABILITY)
        trainer = BudgetTrainer(model=model, args=training_args, train_dataset=blocks, data_collator=collator)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(timer)
    start = time.perf_counter()
    trainer.train()
    measured = timer.times[args.warmup_steps :]
    tokens = (len(measured) - 1) * args.per_device_train_batch_size * args.block_size
    return {
        "tokens_per_s": tokens / (measured[-1] - measured[0]),
        "loss": timer.loss,
        "first_step_s": timer.times[0] - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_size", default="L4-H256")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup_steps", type=int, default=5, help="steps left out of the timing")
    parser.add_argument("--per_device_train_batch_size", type=int, default=32)
    parser.add_argument("--block_size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16 (autocast)")
    parser.add_argument("--compile", action="store_true", help="also run the current defaults under torch.compile")
    args = parser.parse_args()
    logging.set_verbosity_error()

    texts = load_text_datasets()
    tokenizer = train_tokenizer(texts["train"])
    blocks = pack_texts(texts["train"], tokenizer, args.block_size)
    config = roberta_config(args.model_size, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    batch = args.per_device_train_batch_size
    sparse_rows = batch * masked_positions_per_block(args.block_size, MLM_PROBABILITY)
    flops = {
        "plain": training_flops_per_token(config, args.block_size),
        "sparse": training_flops_per_token(config, args.block_size, sparse_rows / (batch * args.block_size)),
    }
    kinds = [kind for kind in KINDS if args.compile or kind != "hf-tbc+compile"]

    hardware = hardware_summary()
    device = training_device()
    print(
        f"hardware: {hardware['accelerator'] or hardware['cpu']}, {hardware['cpu_count']} cores, torch "
        f"{hardware['torch']} with {hardware['torch_threads']} threads, transformers {hardware['transformers']}"
    )
    print(
        f"model {args.model_size}, batch {batch} x {args.block_size} tokens, {args.steps} steps "
        f"({args.warmup_steps} untimed), {args.repeats} interleaved repeats; MFLOPs per training token: "
        f"{flops['plain'] / 1e6:.1f} (full head), {flops['sparse'] / 1e6:.1f} (masked positions only)"
    )
    for precision in args.precisions.split(","):
        bf16 = precision == "bf16"
        dtype = torch.bfloat16 if bf16 else torch.float32
        peak = matmul_peak_at_shapes(step_matmuls(config, batch, args.block_size, sparse_rows), dtype, device)
        results: dict[str, list[dict]] = {kind: [] for kind in kinds}
        with tempfile.TemporaryDirectory() as output_dir:
            for repeat in range(args.repeats):
                order = kinds[repeat % len(kinds) :] + kinds[: repeat % len(kinds)]
                for kind in order:
                    results[kind].append(run_once(kind, blocks, tokenizer, args.model_size, args, bf16, output_dir))
        print()
        print(f"{precision}: matmul peak at the model's own shapes {peak / 1e9:,.1f} GFLOP/s")
        print(
            f"{'':<16}{'tok/s':>9}{'range':>16}{'/plain':>8}{'/before':>9}{'GFLOP/s':>9}{'of peak':>9}"
            f"{'loss':>8}{'1st step s':>12}"
        )
        median = {kind: statistics.median(row["tokens_per_s"] for row in rows) for kind, rows in results.items()}
        for kind, rows in results.items():
            speeds = [row["tokens_per_s"] for row in rows]
            achieved = median[kind] * flops["plain" if kind == "plain" else "sparse"]
            print(
                f"{kind:<16}{median[kind]:>9,.0f}{f'{min(speeds):,.0f}-{max(speeds):,.0f}':>16}"
                f"{median[kind] / median['plain']:>8.2f}{median[kind] / median['before']:>9.2f}"
                f"{achieved / 1e9:>9.1f}{achieved / peak:>9.1%}{rows[-1]['loss']:>8.3f}"
                f"{statistics.median(row['first_step_s'] for row in rows):>12.1f}"
            )


if __name__ == "__main__":
    main()
