#!/usr/bin/env python
"""Time to quality: hf-tbc's pretraining defaults against the recipe of transformers' own ``run_mlm.py``.

Both pretrain the same size on the same corpus with the same tokenizer (trained the same way on the same text),
for the same wall-clock budget, on this machine with the same thread count, one after the other. "plain" is what a
user of transformers' example gets: ``RobertaForMaskedLM`` with its config defaults (post-LayerNorm, dropout 0.1,
the MLM head over every position), AdamW with TrainingArguments' defaults (betas (0.9, 0.999), weight decay 0,
clipping at 1.0), fp32, LR 5e-4 with 6 % warmup and linear decay. The plain run gets the budget clock's linear
decay to the deadline, which a step-based schedule could only guess: that favours it. "hf-tbc" is ``run_mlm.py``
with no flag. Further variants switch one part of hf-tbc's recipe off (an ablation).

Prints, for each: validation loss at the budget, the unigram loss, steps, tokens/s, and the time at which it first
reached the first variant's final loss (plain's, by default; interpolated between evaluations), with the ratio.
Writes ``results.json``,
``results.md`` and ``loss_vs_time.png`` in ``--output_dir``.

    python benchmarks/bench_time_to_loss.py --data_dir ../shared/data --model_size L4-H256 --time_budget 10m
    python benchmarks/bench_time_to_loss.py --data_dir ../shared/data --time_budget 3m \
        --variants "hf-tbc;hf-tbc, post-LN;hf-tbc, full head;hf-tbc, fp32;hf-tbc, dropout 0.1;hf-tbc, plain optimizer"
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from hf_tbc.budget import parse_duration
from hf_tbc.budget.curves import plot_curves, read_curve
from hf_tbc.hardware import hardware_summary

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "run_mlm.py"

PLAIN = (
    "--architecture roberta --dropout 0.1 --sparse_prediction false --learning_rate 5e-4 --warmup_ratio 0.06 "
    "--warmup_steps 0 "
    "--weight_decay 0.0 --adam_beta2 0.999 --max_grad_norm 1.0 --bf16 false --position_init random"
).split()
VARIANTS = {
    "plain": PLAIN,
    "hf-tbc": [],
    # ablations: hf-tbc with one part switched back to plain's
    "hf-tbc, post-LN": ["--architecture", "roberta"],
    "hf-tbc, full head": ["--sparse_prediction", "false"],
    "hf-tbc, fp32": ["--bf16", "false"],
    "hf-tbc, dropout 0.1": ["--dropout", "0.1"],
    # other settings to try
    "hf-tbc, lr 2e-3": ["--learning_rate", "2e-3"],
    "hf-tbc, lr 1e-3": ["--learning_rate", "1e-3"],  # the peak LR of every size before it scaled with width
    "hf-tbc, lr 7e-4": ["--learning_rate", "7e-4"],
    "hf-tbc, lr 5e-4": ["--learning_rate", "5e-4"],
    # a lower peak and a longer warmup: what a large size with few steps in the budget may need
    "hf-tbc, lr 5e-4, warmup 10%": ["--learning_rate", "5e-4", "--warmup_ratio", "0.1", "--warmup_steps", "0"],
    # a floor on warmup in steps (the default since it was measured): a size that makes few steps still warms up
    "hf-tbc, warmup 50 steps": ["--warmup_steps", "50"],
    "hf-tbc, warmup 2% only": ["--warmup_steps", "0"],
    "hf-tbc, lr 7e-4, warmup 50 steps": ["--learning_rate", "7e-4", "--warmup_steps", "50"],
    "hf-tbc, lr 5e-4, warmup 50 steps": ["--learning_rate", "5e-4", "--warmup_steps", "50"],
    "hf-tbc, batch 16": ["--per_device_train_batch_size", "16"],
    "hf-tbc, noise positions": ["--position_init", "random"],
    "hf-tbc, mask 40%, noise positions": ["--mlm_probability", "0.4", "--position_init", "random"],
    # more masked positions per block: more predictions per encoded token (validation stays masked at 15 %)
    "hf-tbc, mask 15%": ["--mlm_probability", "0.15"],
    "hf-tbc, mask 30%": ["--mlm_probability", "0.3"],
    "hf-tbc, mask 40%": ["--mlm_probability", "0.4"],
    "hf-tbc, plain optimizer": (
        "--learning_rate 5e-4 --warmup_ratio 0.06 --warmup_steps 0 --weight_decay 0.0 --adam_beta2 0.999 "
        "--max_grad_norm 1.0"
    ).split(),
}


def corpus(data_dir: str) -> str:
    """The reviews' train and dev text (not their test.tsv, which repeats them) and SST-2's training sentences."""
    root = Path(data_dir)
    files = [
        root / "reviews" / domain / f"{split}.tsv"
        for domain in ("books", "dvd", "electronics", "kitchen")
        for split in ("train", "dev")
    ] + [root / "sst2" / "train.tsv"]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        sys.exit(f"error: --data_dir {data_dir} lacks {missing[0]}: pass the folder holding reviews/ and sst2/")
    return ",".join(str(path) for path in files)


def slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name).strip("-").replace("--", "-")


def time_to_reach(curve: list[dict], target: float) -> float | None:
    """Training seconds at which the validation loss first reached ``target``, linearly interpolated."""
    points = [(row["elapsed_s"], row["eval_loss"]) for row in curve if row.get("eval_loss") is not None]
    previous = None
    for seconds, loss in points:
        if loss <= target:
            if previous is None or previous[1] == loss:
                return seconds
            (s0, l0) = previous
            return s0 + (seconds - s0) * (l0 - target) / (l0 - loss)
        previous = (seconds, loss)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data_dir", default=None, help="Folder with reviews/ and sst2/ (default: the built-in corpus)"
    )
    parser.add_argument("--model_size", default="L4-H256")
    parser.add_argument("--time_budget", default="10m")
    # argparse %-formats help
    parser.add_argument(
        "--variants",
        default="plain,hf-tbc",
        help="Separated by ';' (or ',' when no name has one), the first is the reference: "
        + "; ".join(VARIANTS).replace("%", "%%"),
    )
    parser.add_argument("--eval_every", default="30s", help="Evaluation interval (budget time; not counted in it)")
    parser.add_argument("--max_eval_samples", type=int, default=500, help="Validation blocks per evaluation")
    parser.add_argument("--output_dir", default="bench_runs/time_to_loss")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    parse_duration(args.time_budget)
    separator = ";" if ";" in args.variants or args.variants.strip() in VARIANTS else ","  # one name may hold a comma
    names = [name.strip() for name in args.variants.split(separator) if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown or not names:
        sys.exit(f"error: --variants names unknown variants {unknown}: choose from {'; '.join(VARIANTS)}")
    data = ["--train_file", corpus(args.data_dir), "--text_column", "sentence"] if args.data_dir else []

    root = Path(args.output_dir)
    runs = {}
    for name in names:
        folder = root / slug(name)
        command = [
            sys.executable,
            str(RECIPE),
            "--model_size",
            args.model_size,
            "--time_budget",
            args.time_budget,
            "--eval_every",
            args.eval_every,
            "--max_eval_samples",
            str(args.max_eval_samples),
            "--seed",
            str(args.seed),
            "--output_dir",
            str(folder),
            "--overwrite_output_dir",
            "--disable_tqdm",
            "true",
            *data,
            *VARIANTS[name],
        ]
        print(f"[{name}] {' '.join(command[1:])}", flush=True)
        subprocess.run(
            command, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}, stdout=subprocess.DEVNULL
        )
        runs[name] = folder

    summaries = {name: json.loads((folder / "run_summary.json").read_text()) for name, folder in runs.items()}
    curves = {name: read_curve(folder / "curve.jsonl") for name, folder in runs.items()}
    reference = names[0]
    target = summaries[reference]["final_eval_loss"]
    reference_seconds = summaries[reference]["train_s"]
    rows = []
    for name in names:
        summary = summaries[name]
        reached = time_to_reach(curves[name], target)
        rows.append(
            {
                "variant": name,
                "final_eval_loss": round(summary["final_eval_loss"], 4),
                "unigram_loss": summary["unigram_loss"],
                "below_unigram": summary["below_unigram"],
                "steps": summary["steps"],
                "train_tokens_per_s": summary["train_tokens_per_s"],
                "precision": summary["precision"],
                "train_s": summary["train_s"],
                "time_to_reference_final_s": round(reached, 1) if reached is not None else None,
                "fraction_of_reference_time": round(reached / reference_seconds, 3) if reached is not None else None,
            }
        )
    hardware = hardware_summary()
    header = (
        f"{args.model_size}, {args.time_budget} each, {hardware['cpu']} ({hardware['cpu_count']} cores, "
        f"{hardware['torch_threads']} torch threads), torch {hardware['torch']}, transformers "
        f"{hardware['transformers']}"
    )
    table = [
        f"| variant | val. loss at budget | below unigram | steps | tokens/s | time to {reference}'s final loss "
        f"| × {reference}'s time |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        reached = (
            f"{row['time_to_reference_final_s'] / 60:.1f} min"
            if row["time_to_reference_final_s"] is not None
            else "not reached"
        )
        fraction = f"{row['fraction_of_reference_time']:.2f}" if row["fraction_of_reference_time"] is not None else "–"
        table.append(
            f"| {row['variant']} | {row['final_eval_loss']:.3f} | {row['below_unigram']:+.3f} | {row['steps']:,} | "
            f"{row['train_tokens_per_s']:,.0f} | {reached} | {fraction} |"
        )
    text = "\n".join([header, f"unigram loss {rows[0]['unigram_loss']:.3f}", "", *table])
    print("\n" + text)
    root.mkdir(parents=True, exist_ok=True)
    (root / "results.json").write_text(
        json.dumps({"setup": header, "reference": reference, "rows": rows, "hardware": hardware}, indent=2) + "\n"
    )
    (root / "results.md").write_text(text + "\n")
    plot_curves(
        runs,
        root / "loss_vs_time.png",
        x="elapsed_s",
        title=f"{args.model_size}: validation MLM loss, {args.time_budget} budget",
        references={"unigram": rows[0]["unigram_loss"]},
    )
    print(f"\nwrote {root / 'results.md'} and {root / 'loss_vs_time.png'}")


if __name__ == "__main__":
    main()
