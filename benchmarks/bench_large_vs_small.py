#!/usr/bin/env python
"""The paper's comparison at equal inference cost: a large model compressed hard against a small dense one.

Takes two models pretrained with the same budget (``run_mlm.py`` outputs). For each task it

1. finetunes both alike (``recipes/run_classification.py``, same budget and flags);
2. compresses the large one with structured pruning at each ``--sparsities`` (one-shot, magnitude or Taylor
   importance), each variant finetuned again for ``--recovery_budget``, then ONNX Runtime int8
   (``recipes/compress.py``);
   the small one gets the same extra finetuning, dense, and int8 too, so both sides had the same training;
3. measures every model's latency in one process, round-robin on the same batch (noise hits all alike);
   (a step whose output exists is reused, so an interrupted run picks up where it stopped: delete
   ``--output_dir`` to start afresh);
4. picks the most accurate large variant whose latency is at most the small dense model's, and prints both side by
   side, with each large variant's speed-up and accuracy loss against the large fp32 parent.

``--target_shapes L2-H128,L4-H128`` prunes the large model to those shapes as well (layers, hidden width, heads and
feed-forward neurons); every pruned variant recovers with the large dense model as teacher (the default of
``recipes/compress.py``). ``--compare_distillation`` builds every pruned variant a second time recovered without a
teacher (``--no_distill``, fp32) and reports, per variant, the accuracy with the teacher minus without, with a 95 %
paired-bootstrap interval over the validation examples.

    python benchmarks/bench_large_vs_small.py --large runs/pretrain/L4-H256 --small runs/pretrain/L2-H128 \
        --data_dir ../shared/data --tasks sst2,sick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from transformers import AutoTokenizer
from transformers.utils import logging

from hf_tbc.compress.evaluation import round_robin_latency
from hf_tbc.compress.plots import plot_compression
from hf_tbc.compress.records import read_records
from hf_tbc.compress.variants import load_variant
from hf_tbc.hardware import hardware_summary
from hf_tbc.tasks.classification.arguments import ClassificationDataArguments
from hf_tbc.tasks.classification.data import load_classification_data

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tasks import task_flags  # noqa: E402

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
ENV = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}


def run(command: list[str], what: str, done: Path) -> None:
    """Runs ``command`` unless ``done`` exists: an interrupted benchmark picks up where it stopped."""
    if done.exists():
        print(f"[{what}] reusing {done.parent}", flush=True)
        return
    print(f"[{what}] {' '.join(str(part) for part in command[1:])}", flush=True)
    subprocess.run(command, check=True, env=ENV, stdout=subprocess.DEVNULL)


def validation_texts(flags: list[str], folder: Path) -> tuple[list[str], object]:
    values = dict(zip(flags[::2], flags[1::2]))
    args = ClassificationDataArguments(
        validation_file=values["--validation_file"],
        text_column=values.get("--text_column", "sentence"),
        text_pair_column=values.get("--text_pair_column"),
    )
    labels = json.loads((folder / "eval_results.json").read_text())["labels"]
    return load_classification_data(args, label_names=labels)[0]["validation"]


def paired_accuracy_interval(first: list[int], second: list[int], labels: list[int], samples: int = 2000):
    """Accuracy of ``first`` minus ``second`` in points, and its 95 % paired-bootstrap interval (examples resampled
    together)."""
    import numpy as np

    gain = np.array([int(a == y) - int(b == y) for a, b, y in zip(first, second, labels)], dtype=float)
    picks = np.random.default_rng(0).integers(0, len(gain), size=(samples, len(gain)))
    means = np.sort(gain[picks].mean(axis=1))
    return (
        round(100 * gain.mean(), 2),
        round(100 * means[int(0.025 * samples)], 2),
        round(100 * means[int(0.975 * samples) - 1], 2),
    )


def teacher_effect(folders: dict, validation, max_length: int) -> list[dict]:
    """Each pruned fp32 variant recovered with the teacher against the same one recovered without."""
    from hf_tbc.compress.evaluation import predict

    tokenizer = AutoTokenizer.from_pretrained(folders["large"] / "dense-fp32")
    labels = list(validation["label"])
    effects = []
    for row in read_records(folders["large-no-teacher"]):
        name = row["variant"]
        if not (folders["large"] / name).is_dir():
            continue
        with_teacher = predict(load_variant(folders["large"] / name), validation, tokenizer, max_length=max_length)
        without = predict(
            load_variant(folders["large-no-teacher"] / name), validation, tokenizer, max_length=max_length
        )
        effects.append(
            {
                "variant": name,
                "with_teacher": sum(p == y for p, y in zip(with_teacher, labels)) / len(labels),
                "without": sum(p == y for p, y in zip(without, labels)) / len(labels),
                "difference": paired_accuracy_interval(with_teacher, without, labels),
            }
        )
    return effects


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--large", required=True, help="The large pretrained model (a run_mlm.py folder)")
    parser.add_argument("--small", required=True, help="The small one, pretrained with the same budget")
    parser.add_argument("--data_dir", required=True, help="Folder with sst2/ and sick-nli/")
    parser.add_argument("--tasks", default="sst2,sick")
    parser.add_argument("--finetune_budget", default="3m")
    parser.add_argument("--recovery_budget", default="1m", help="Extra finetuning of every variant, dense ones too")
    parser.add_argument("--learning_rate", default="1e-4", help="Finetuning LR of both models")
    parser.add_argument("--recovery_learning_rate", default="5e-5")
    parser.add_argument("--sparsities", default="0.3,0.5,0.7", help="Structured sparsities of the large model")
    parser.add_argument("--importance", default="magnitude", choices=["magnitude", "taylor"])
    parser.add_argument("--layer_share", default="0.5")
    parser.add_argument("--max_seq_length", default="64")
    parser.add_argument("--rounds", type=int, default=20, help="Latency rounds over all models")
    parser.add_argument("--target_shapes", default="", help="Shapes to prune the large model to, e.g. L2-H128")
    parser.add_argument(
        "--compare_distillation", action="store_true", help="Also recover every pruned variant without a teacher"
    )
    parser.add_argument("--output_dir", default="bench_runs/large_vs_small")
    args = parser.parse_args()
    for flag in ("large", "small"):
        if not (Path(getattr(args, flag)) / "config.json").is_file():
            sys.exit(f"error: --{flag} {getattr(args, flag)} holds no config.json: pass a run_mlm.py output folder")
    logging.set_verbosity_error()
    root = Path(args.output_dir)
    results = []
    for task in [name.strip() for name in args.tasks.split(",") if name.strip()]:
        flags = task_flags(task, Path(args.data_dir))
        folders = {}
        for side in ("large", "small"):
            tuned = root / task / f"{side}-finetuned"
            run(
                [
                    sys.executable,
                    str(RECIPES / "run_classification.py"),
                    "--model_name_or_path",
                    getattr(args, side),
                    *flags,
                    "--time_budget",
                    args.finetune_budget,
                    "--learning_rate",
                    args.learning_rate,
                    "--max_seq_length",
                    args.max_seq_length,
                    "--output_dir",
                    str(tuned),
                    "--overwrite_output_dir",
                    "--disable_tqdm",
                    "true",
                ],
                f"{task}, finetune {side}",
                tuned / "eval_results.json",
            )
            compressed = root / task / f"{side}-compressed"
            sparsities = f"0,{args.sparsities}" if side == "large" else "0"
            shapes = ["--target_shapes", args.target_shapes] if side == "large" and args.target_shapes else []
            common = [
                sys.executable,
                str(RECIPES / "compress.py"),
                "--model_name_or_path",
                str(tuned),
                *flags,
                "--pruning_method",
                "structured",
                "--importance",
                args.importance,
                "--layer_share",
                args.layer_share,
                "--recovery_time_budget",
                args.recovery_budget,
                "--recovery_learning_rate",
                args.recovery_learning_rate,
                "--latency_runs",
                "3",
                "--overwrite_output_dir",
            ]
            run(
                [
                    *common,
                    "--sparsities",
                    sparsities,
                    *shapes,
                    "--quantization",
                    "none,onnx-int8",
                    "--output_dir",
                    str(compressed),
                ],
                f"{task}, compress {side}",
                compressed / "compression.jsonl",
            )
            folders[side] = compressed
            if side == "large" and args.compare_distillation:
                plain = root / task / "large-no-teacher"
                command = [*common, "--sparsities", args.sparsities, *shapes, "--quantization", "none"]
                run(
                    [*command, "--no_distill", "--output_dir", str(plain)],
                    f"{task}, compress large without a teacher",
                    plain / "compression.jsonl",
                )
                folders["large-no-teacher"] = plain

        rows = {
            f"{side} {row['variant']}": dict(row, side=side, folder=str(folders[side] / row["variant"]))
            for side in ("large", "small")
            for row in read_records(folders[side])
        }
        validation = validation_texts(flags, root / task / "large-finetuned")
        tokenizer = AutoTokenizer.from_pretrained(folders["small"] / "dense-fp32")
        models = {name: load_variant(row["folder"]) for name, row in rows.items()}
        latencies = round_robin_latency(models, tokenizer, validation["text"][:32], rounds=args.rounds)
        for name, row in rows.items():
            row["latency_ms"] = round(latencies[name], 2)
            # records of dense variants before they had it
            row.setdefault("num_hidden_layers", row.get("parent_layers"))
            row.setdefault("intermediate_size", row.get("parent_intermediate_size"))
        small, parent = rows["small dense-fp32"], rows["large dense-fp32"]
        fitting = [
            row for name, row in rows.items() if row["side"] == "large" and row["latency_ms"] <= small["latency_ms"]
        ]
        best = max(fitting, key=lambda row: row["accuracy"]) if fitting else None
        majority = json.loads((root / task / "small-finetuned" / "eval_results.json").read_text())["majority_accuracy"]
        distillation = (
            teacher_effect(folders, validation, int(args.max_seq_length)) if "large-no-teacher" in folders else []
        )
        results.append(
            {
                "task": task,
                "rows": rows,
                "best": best["variant"] if best else None,
                "majority": majority,
                "distillation": distillation,
            }
        )
        sides = {
            f"{side} ({Path(getattr(args, side)).name})": [row for row in rows.values() if row["side"] == side]
            for side in ("large", "small")
        }
        for x in ("latency_ms", "nonzero_parameters"):
            plot_compression(sides, root / f"{task}_accuracy_vs_{x.removesuffix('_ms')}.png", x=x, majority=majority)

        print(f"\n{task}: latency batch 32 x 128, median of {args.rounds} round-robin rounds")
        print(f"{'model':<36}{'layers':>7}{'ffn':>6}{'accuracy':>10}{'Δ parent':>10}{'latency ms':>12}{'speed-up':>10}")
        for name, row in rows.items():
            print(
                f"{name:<36}{row['num_hidden_layers']:>7}{row['intermediate_size']:>6}{row['accuracy']:>10.4f}"
                f"{100 * (row['accuracy'] - parent['accuracy']):>+10.2f}{row['latency_ms']:>12.1f}"
                f"{parent['latency_ms'] / row['latency_ms']:>9.2f}x"
            )
        if best:
            verdict = "beats" if best["accuracy"] > small["accuracy"] else "does not beat"
            print(
                f"at the small dense model's latency ({small['latency_ms']:.1f} ms) the best large variant is "
                f"{best['variant']} ({best['accuracy']:.4f}, {best['latency_ms']:.1f} ms): it {verdict} the small "
                f"dense model ({small['accuracy']:.4f})"
            )
        else:
            print(f"no large variant is as fast as the small dense model ({small['latency_ms']:.1f} ms)")

    hardware = hardware_summary()
    setup = (
        f"large {args.large}, small {args.small}; finetuned {args.finetune_budget} (lr {args.learning_rate}), "
        f"recovery {args.recovery_budget} for every variant; structured pruning ({args.importance}, layer share "
        f"{args.layer_share}) + ONNX Runtime int8; {hardware['cpu']} ({hardware['cpu_count']} cores), torch "
        f"{hardware['torch']}, transformers {hardware['transformers']}"
    )
    lines = [setup, ""]
    lines += [
        f"![{result['task']}: accuracy against latency]({result['task']}_accuracy_vs_latency.png)" for result in results
    ]
    lines.append("")
    for result in results:
        rows, best = result["rows"], result["best"]
        parent, small = rows["large dense-fp32"], rows["small dense-fp32"]
        lines += [
            f"**{result['task']}** (majority class {result['majority']:.4f})",
            "",
            "| model | layers | FFN | accuracy | Δ vs large fp32 (points) | latency (ms) | speed-up vs large fp32 |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {name}{' **(best at small latency)**' if row['side'] == 'large' and row['variant'] == best else ''} "
            f"| {row['num_hidden_layers']} | {row['intermediate_size']} | {row['accuracy']:.4f} "
            f"| {100 * (row['accuracy'] - parent['accuracy']):+.2f} | {row['latency_ms']:.1f} "
            f"| {parent['latency_ms'] / row['latency_ms']:.2f}× |"
            for name, row in rows.items()
        ]
        lines.append("")
        if best:
            chosen = rows[f"large {best}"]
            verdict = "beats" if chosen["accuracy"] > small["accuracy"] else "does not beat"
            lines.append(
                f"At equal latency the compressed large model {verdict} the small dense one: "
                f"{chosen['accuracy']:.4f} vs {small['accuracy']:.4f}."
            )
        else:
            lines.append("No large variant reached the small dense model's latency.")
        lines.append("")
        if result["distillation"]:
            lines += [
                "Recovery with the large dense model as teacher against without one (fp32, same pruning and budget):",
                "",
                "| variant | with teacher | without | difference (points, 95 % paired bootstrap) |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {item['variant']} | {item['with_teacher']:.4f} | {item['without']:.4f} | "
                f"{item['difference'][0]:+.2f} [{item['difference'][1]:+.2f}, {item['difference'][2]:+.2f}] |"
                for item in result["distillation"]
            ]
            lines.append("")
    text = "\n".join(lines)
    print("\n" + text)
    (root / "results.md").write_text(text)
    (root / "results.json").write_text(
        json.dumps({"setup": setup, "results": results, "hardware": hardware}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
