#!/usr/bin/env python
"""A larger translation model pruned to the small model's shape, with and without distillation, against the small
model trained from scratch: the same inference cost by construction, and the same training time.

Takes two ``run_translation.py`` outputs trained on the same pairs for the same budget, ``--large`` and ``--small``.

1. ``recipes/compress.py`` on the large model: its dense variant, and the large model pruned to the small model's
   shape (and to any ``--extra_shapes``), each recovered for ``--recovery_time_budget`` with the dense large model as
   teacher (the default); fp32 and ONNX Runtime int8.
2. The same pruning recovered without a teacher (``--no_distill``), for the effect of distillation alone; with
   ``--distill_beams N``, also recovered from the dense model's own beam-search translations (sequence-level
   distillation, Kim & Rush 2016) on top of its logits.
3. The small model's grid: its dense variant trained on for the same ``--recovery_time_budget`` (so that it, too,
   trained for the large model's budget plus the recovery), fp32 and int8.
4. Every variant of the three grids loaded in one process: each translates the first ``--max_eval_samples``
   validation pairs again (its BLEU must be the one its record says), BLEU differences against the small dense model
   with 95 % paired-bootstrap intervals; then latency per sentence, one sentence at a time and in batches of 32,
   every variant visited in turn, measured twice: the larger disagreement of the two passes is the latency tie
   margin.

A step whose output exists is reused (delete ``--output_dir`` to start afresh).

    python benchmarks/bench_translation_shapes.py --large runs/E1-D1-H256 --small runs/E1-D1-H128 \
        --data_dir ../shared/data --recovery_time_budget 2m --extra_shapes E1-D1-H192
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from transformers import AutoTokenizer

from hf_tbc.compress.records import read_records
from hf_tbc.hardware import hardware_summary
from hf_tbc.tasks.translation.bleu import corpus_scores, paired_bleu_interval
from hf_tbc.tasks.translation.compress import latency_per_sentence, load_translation_variant, translate
from hf_tbc.tasks.translation.data import load_pairs

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
ENV = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
GRIDS = ("large", "large, no teacher", "small", "large, sequence-level")  # the first: its pruned variants distilled


def compress(model: Path, output: Path, flags: list[str], log: Path) -> None:
    if (output / "compression.jsonl").is_file():
        print(f"reusing {output}", flush=True)
        return
    command = [sys.executable, str(RECIPES / "compress.py"), "--model_name_or_path", str(model)]
    command += ["--output_dir", str(output), *flags]
    print("$", " ".join(command[1:]), flush=True)
    with log.open("a") as handle:
        subprocess.run(command, check=True, env=ENV, stdout=handle, stderr=subprocess.STDOUT)


def shape_name(run: Path) -> str:
    summary = json.loads((run / "run_summary.json").read_text())
    return summary["model_size"]


def plot(rows: list[dict], path: Path, small_latency: float) -> None:
    """BLEU against latency per sentence (one sentence at a time) of every variant, one colour per grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5))
    for grid, colour in zip(GRIDS, ("tab:blue", "tab:orange", "tab:green", "tab:purple")):
        members = [row for row in rows if row["grid"] == grid]
        if not members:
            continue
        axis.scatter([row["latency_ms"] for row in members], [row["bleu"] for row in members], color=colour, label=grid)
        for row in members:
            axis.annotate(
                row["variant"], (row["latency_ms"], row["bleu"]), fontsize=7, xytext=(4, 2), textcoords="offset points"
            )
    axis.axvline(small_latency, color="grey", linestyle=":", label="small dense fp32's latency")
    axis.set_xlabel("ms per sentence, one sentence at a time")
    axis.set_ylabel("BLEU (validation)")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--large", required=True, type=Path, help="The larger size's run_translation.py output")
    parser.add_argument("--small", required=True, type=Path, help="The small size's, same pairs and budget")
    parser.add_argument("--data_dir", required=True, type=Path, help="Folder with multi30k-en-fr/")
    parser.add_argument("--recovery_time_budget", default="2m", help="Recovery of every variant (and the small one)")
    parser.add_argument(
        "--recovery_learning_rate", default=None, help="Peak LR of every recovery (default: compress.py's, 2e-4)"
    )
    parser.add_argument("--extra_shapes", default="", help="More shapes to prune the large model to, e.g. E1-D1-H192")
    parser.add_argument(
        "--distill_beams",
        type=int,
        default=0,
        help="Add a grid recovered from the dense model's beam-search translations with this many beams (0: none)",
    )
    parser.add_argument("--max_eval_samples", type=int, default=500, help="Validation pairs scored")
    parser.add_argument("--latency_sentences", type=int, default=60, help="Sentences timed one at a time")
    parser.add_argument("--quantization", default="none,onnx-int8", help="Each variant's quantizations")
    parser.add_argument("--output_dir", type=Path, default=Path("bench_runs/translation_shapes"))
    parser.add_argument("--results_dir", type=Path, default=None, help="Where results.json and .md go")
    args = parser.parse_args()
    for run in (args.large, args.small):
        if not (run / "run_summary.json").is_file():
            sys.exit(f"error: {run} holds no run_summary.json: pass run_translation.py output folders")
    pairs_dir = args.data_dir / "multi30k-en-fr"
    if not (pairs_dir / "train.tsv").is_file():
        sys.exit(f"error: --data_dir {args.data_dir} holds no multi30k-en-fr/train.tsv")
    small_shape = shape_name(args.small)
    shapes = ",".join([small_shape, *[name for name in args.extra_shapes.split(",") if name.strip()]])
    data = ["--train_file", str(pairs_dir / "train.tsv"), "--validation_file", str(pairs_dir / "validation.tsv")]
    data += ["--source_lang", "en", "--target_lang", "fr", "--max_eval_samples", str(args.max_eval_samples)]
    common = [*data, "--quantization", args.quantization, "--recovery_time_budget", args.recovery_time_budget]
    if args.recovery_learning_rate:
        common += ["--recovery_learning_rate", args.recovery_learning_rate]
    common += ["--latency_sentences", "5"]  # the grids' own latency is not used: step 4 measures all together
    root = args.output_dir
    root.mkdir(parents=True, exist_ok=True)
    log = root / "log.txt"
    folders = dict(zip(GRIDS, (root / "large_distilled", root / "large_no_teacher", root / "small")))
    if args.distill_beams:
        folders[GRIDS[3]] = root / "large_sequence_level"
    compress(args.large, folders[GRIDS[0]], [*common, "--sparsities", "0", "--target_shapes", shapes], log)
    compress(
        args.large,
        folders[GRIDS[1]],
        [*common, "--sparsities", "", "--target_shapes", small_shape, "--no_distill"],
        log,
    )
    compress(args.small, folders[GRIDS[2]], [*common, "--sparsities", "0"], log)
    if args.distill_beams:
        beams = ["--target_shapes", small_shape, "--distill_beams", str(args.distill_beams)]
        compress(args.large, folders[GRIDS[3]], [*common, "--sparsities", "", *beams], log)

    pairs = load_pairs(
        train_file=str(pairs_dir / "train.tsv"),
        validation_file=str(pairs_dir / "validation.tsv"),
        source_lang="en",
        target_lang="fr",
    )["validation"]
    pairs = pairs.select(range(min(args.max_eval_samples, len(pairs))))
    sources, references = list(pairs["source"]), list(pairs["target"])
    tokenizer = AutoTokenizer.from_pretrained(args.small)
    rows, models, outputs = [], {}, {}
    for grid, folder in folders.items():
        for row in read_records(folder):
            name = f"{grid}: {row['variant']}"
            model = load_translation_variant(folder / row["variant"])
            hypotheses = translate(model, tokenizer, sources, max_source_length=128)
            scores = corpus_scores(hypotheses, references)
            models[name], outputs[name] = (model, {}), hypotheses
            rows.append(
                {
                    "name": name,
                    "grid": grid,
                    **{key: row.get(key) for key in ("variant", "shape", "parameters", "size_bytes", "distilled")},
                    "distill_beams": row.get("distill_beams"),
                    **{key: row.get(key) for key in ("loss_before_recovery", "validation_loss", "recovery_s")},
                    "recovery_steps": row.get("recovery_steps_run"),
                    "bleu": scores["bleu"],
                    "chrf": scores["chrf"],
                    "bleu_recorded": row["bleu"],
                }
            )
            print(f"{name}: BLEU {scores['bleu']:.2f} (recorded {row['bleu']:.2f})", flush=True)
    baseline = f"{GRIDS[2]}: dense-fp32"
    for row in rows:
        row["bleu_vs_small_dense"] = paired_bleu_interval(outputs[row["name"]], outputs[baseline], references)
    passes = []
    for _ in range(2):
        alone = latency_per_sentence(models, tokenizer, sources[: args.latency_sentences + 1], max_source_length=128)
        batched = latency_per_sentence(models, tokenizer, sources, 32, 10, max_source_length=128)
        passes.append((alone, batched))
    (alone_a, batched_a), (alone_b, batched_b) = passes
    margin = max(
        abs(first[name] - second[name]) / min(first[name], second[name])
        for first, second in ((alone_a, alone_b), (batched_a, batched_b))
        for name in models
    )
    for row in rows:
        row["latency_ms"] = round(sum(done[0][row["name"]] for done in passes) / 2, 2)
        row["latency_ms_batched"] = round(sum(done[1][row["name"]] for done in passes) / 2, 2)
    small = next(row for row in rows if row["name"] == baseline)
    hardware = hardware_summary()
    sequence_note = f" (sequence-level: {args.distill_beams} beams)" if args.distill_beams else ""
    header = (
        f"{args.large.name} ({shape_name(args.large)}) pruned to {shapes} against {small_shape} trained from scratch; "
        f"recovery {args.recovery_time_budget} each{sequence_note} at peak LR "
        f"{args.recovery_learning_rate or '2e-4'} (the small dense model trained on as long); BLEU on the first "
        f"{len(sources)} validation pairs, greedy as the runs saved; latency one sentence at a time over "
        f"{args.latency_sentences} sentences and 10 rounds of a batch of 32, all variants in one process visited in "
        f"turn, two passes averaged (they differ by up to {100 * margin:.0f} %: the latency tie margin); "
        f"{hardware['cpu']} ({hardware['cpu_count']} cores), torch {hardware['torch']}"
    )
    table = [
        "| variant | parameters | loss before → after recovery | recovery (s, steps) | BLEU | BLEU vs small dense "
        "(95 % paired bootstrap) | ms / sentence, alone | × small dense | ms / sentence, batch 32 | × small dense |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        low, high = row["bleu_vs_small_dense"][1:]
        loss = (
            f"{row['loss_before_recovery']:.3f} → {row['validation_loss']:.3f}"
            if row.get("loss_before_recovery") is not None
            else "—"
        )
        table.append(
            f"| {row['name']} | {row['parameters']:,} | {loss} | {row['recovery_s'] or 0:.0f}, "
            f"{row['recovery_steps'] or 0} | {row['bleu']:.2f} | "
            f"{row['bleu_vs_small_dense'][0]:+.2f} [{low:+.2f}, {high:+.2f}] | {row['latency_ms']:.1f} | "
            f"{row['latency_ms'] / small['latency_ms']:.2f} | {row['latency_ms_batched']:.2f} | "
            f"{row['latency_ms_batched'] / small['latency_ms_batched']:.2f} |"
        )
    text = "\n".join([header, "", *table])
    print("\n" + text)
    results = args.results_dir or root
    results.mkdir(parents=True, exist_ok=True)
    record = {"setup": header, "latency_margin": round(margin, 4), "rows": rows, "hardware": hardware}
    (results / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    (results / "results.md").write_text(text + "\n")
    plot(rows, results / "bleu_vs_latency.png", small["latency_ms"])


if __name__ == "__main__":
    main()
