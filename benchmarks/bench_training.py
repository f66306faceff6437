#!/usr/bin/env python
"""Training throughput: a plain 🤗 Trainer against hf-tbc's BudgetTrainer, side by side in one run.

Both train the same model on the same packed blocks for the same number of steps, interleaved
(plain, ours, ours, plain, ...) so that machine noise hits both alike. Prints tokens/s of each, their
ratio (hf-tbc's overhead), and achieved FLOP/s against this machine's measured matmul peak, in fp32
and under bf16 autocast.

    python benchmarks/bench_training.py --model_size L4-H256 --steps 30 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import (
    DataCollatorForLanguageModeling,
    RobertaForMaskedLM,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_callback import PrinterCallback
from transformers.utils import logging

from hf_tbc.arguments import BudgetTrainingArguments
from hf_tbc.hardware import hardware_summary
from hf_tbc.tasks.mlm.data import load_text_datasets, pack_texts, train_tokenizer
from hf_tbc.tasks.mlm.model import roberta_config, training_flops_per_token
from hf_tbc.trainer import BudgetTrainer


class StepTimer(TrainerCallback):
    """The same instrument on both sides: wall-clock at the end of every optimizer step."""

    def __init__(self):
        self.times: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of a size^3 matmul in ``dtype`` on this CPU, with torch's current thread count."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def run_once(kind: str, blocks, tokenizer, config, steps: int, warmup: int, batch_size: int, bf16: bool) -> float:
    """Tokens per second over the steps after ``warmup``, for ``kind`` = "plain" or "hf-tbc"."""
    torch.manual_seed(0)
    model = RobertaForMaskedLM(config)
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as output_dir:
        common = dict(
            output_dir=output_dir,
            max_steps=steps,
            per_device_train_batch_size=batch_size,
            learning_rate=5e-4,
            warmup_ratio=0.06,
            logging_steps=10,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            bf16=bf16,
            use_cpu=not torch.cuda.is_available(),
            dataloader_num_workers=0,
            include_num_input_tokens_seen="non_padding",
        )
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
        if kind == "plain":
            trainer = Trainer(
                model=model, args=TrainingArguments(**common), train_dataset=blocks, data_collator=collator
            )
        else:  # the recipe's trainer: budget clock synced every step, time-based LR, curve.jsonl
            args = BudgetTrainingArguments(**common, time_budget="1h", eval_every="1h")
            trainer = BudgetTrainer(model=model, args=args, train_dataset=blocks, data_collator=collator)
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(timer)
        trainer.train()
    measured = timer.times[warmup:]
    tokens = (len(measured) - 1) * batch_size * len(blocks[0]["input_ids"])
    return tokens / (measured[-1] - measured[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_size", default="L4-H256")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup_steps", type=int, default=5, help="steps left out of the timing")
    parser.add_argument("--per_device_train_batch_size", type=int, default=16)
    parser.add_argument("--block_size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16 (autocast)")
    args = parser.parse_args()
    logging.set_verbosity_error()

    texts = load_text_datasets()
    tokenizer = train_tokenizer(texts["train"])
    blocks = pack_texts(texts["train"], tokenizer, args.block_size)
    config = roberta_config(args.model_size, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    flops_per_token = training_flops_per_token(config, args.block_size)

    hardware = hardware_summary()
    print(
        f"hardware: {hardware['cpu']}, {hardware['cpu_count']} cores, torch {hardware['torch']} "
        f"with {hardware['torch_threads']} threads, accelerator: {hardware['accelerator'] or 'none'}"
    )
    print(
        f"model {args.model_size}, batch {args.per_device_train_batch_size} x {args.block_size} tokens, "
        f"{args.steps} steps ({args.warmup_steps} untimed), {args.repeats} interleaved repeats, "
        f"{flops_per_token / 1e6:.1f} MFLOPs per training token"
    )
    print()
    print(
        f"{'precision':<10}{'plain tok/s':>13}{'hf-tbc tok/s':>14}{'hf-tbc/plain':>14}{'GFLOP/s':>10}"
        f"{'matmul peak':>13}{'utilisation':>13}"
    )
    for precision in args.precisions.split(","):
        bf16 = precision == "bf16"
        peak = matmul_peak(torch.bfloat16 if bf16 else torch.float32)
        results = {"plain": [], "hf-tbc": []}
        for repeat in range(args.repeats):
            order = ("plain", "hf-tbc") if repeat % 2 == 0 else ("hf-tbc", "plain")
            for kind in order:
                results[kind].append(
                    run_once(
                        kind,
                        blocks,
                        tokenizer,
                        config,
                        args.steps,
                        args.warmup_steps,
                        args.per_device_train_batch_size,
                        bf16,
                    )
                )
        plain, ours = statistics.median(results["plain"]), statistics.median(results["hf-tbc"])
        achieved = ours * flops_per_token
        print(
            f"{precision:<10}{plain:>13,.0f}{ours:>14,.0f}{ours / plain:>14.3f}{achieved / 1e9:>10.1f}"
            f"{peak / 1e9:>13.1f}{achieved / peak:>13.1%}"
        )
        spread = {kind: f"{min(v):,.0f}-{max(v):,.0f}" for kind, v in results.items()}
        print(f"{'':<10}range over repeats: plain {spread['plain']}, hf-tbc {spread['hf-tbc']}")


if __name__ == "__main__":
    main()
