#!/usr/bin/env python
"""Does pretraining pay off downstream? One checkpoint finetuned against the same model from random weights.

For each task, ``recipes/run_classification.py`` finetunes the pretrained checkpoint and, with ``--random_init``,
a model of the same config and tokenizer with fresh weights, for the same wall-clock budget and with the same
flags, one after the other on this machine. Prints validation accuracy of both, the majority-class accuracy and the
difference, and writes ``results.json`` and ``results.md`` in ``--output_dir``.

Tasks (from ``--data_dir``): ``sst2`` (GLUE SST-2, dev = GLUE validation) and ``sick`` (SICK, three-way NLI on
sentence pairs, like the paper's MNLI); ``sst2@2000`` trains on the first 2,000 training rows only (the low-data
setting, where what pretraining knows matters most).

    python benchmarks/bench_pretraining_payoff.py --model_name_or_path runs/L4-H256 --data_dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from hf_tbc.training import hardware_summary

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tasks import task_flags  # noqa: E402

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "run_classification.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="The pretrained checkpoint (a run_mlm.py folder)")
    parser.add_argument("--data_dir", required=True, help="Folder with sst2/ and sick-nli/")
    parser.add_argument("--tasks", default="sst2,sick", help="Comma-separated; task@N keeps N training rows")
    parser.add_argument("--time_budget", default="3m", help="Finetuning budget of every run")
    parser.add_argument("--learning_rate", default="1e-4")
    parser.add_argument("--max_seq_length", default="64")
    parser.add_argument("--dropout", default="0.1", help="Finetuning dropout of both runs")
    parser.add_argument("--output_dir", default="bench_runs/pretraining_payoff")
    args = parser.parse_args()
    if not (Path(args.model_name_or_path) / "config.json").is_file():
        sys.exit(f"error: --model_name_or_path {args.model_name_or_path} holds no config.json: pass a run_mlm.py output folder")

    root = Path(args.output_dir)
    rows = []
    for task in [name.strip() for name in args.tasks.split(",") if name.strip()]:
        name, _, limit = task.partition("@")  # sst2@2000: the first 2,000 training rows only
        flags = task_flags(name, Path(args.data_dir)) + (["--max_train_samples", limit] if limit else [])
        results = {}
        for start in ("pretrained", "random init"):
            folder = root / f"{task}-{start.replace(' ', '-')}"
            command = [sys.executable, str(RECIPE), "--model_name_or_path", args.model_name_or_path, *flags,
                       "--time_budget", args.time_budget, "--learning_rate", args.learning_rate,
                       "--max_seq_length", args.max_seq_length, "--dropout", args.dropout,
                       "--output_dir", str(folder), "--overwrite_output_dir",
                       "--disable_tqdm", "true", *(["--random_init"] if start == "random init" else [])]
            print(f"[{task}, {start}] {' '.join(command[1:])}", flush=True)
            subprocess.run(command, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
                           stdout=subprocess.DEVNULL)
            results[start] = json.loads((folder / "eval_results.json").read_text())
        pretrained, random = results["pretrained"], results["random init"]
        rows.append({"task": task, "pretrained": pretrained["accuracy"], "random_init": random["accuracy"],
                     "majority_class": pretrained["majority_accuracy"], "gain": round(pretrained["accuracy"] - random["accuracy"], 4),
                     "steps": [pretrained["steps"], random["steps"]], "examples": pretrained["splits"][next(iter(pretrained["splits"]))]["examples"]})

    hardware = hardware_summary()
    header = (f"{args.model_name_or_path}, finetuned {args.time_budget} per run (lr {args.learning_rate}, dropout "
              f"{args.dropout}), {hardware['cpu']} "
              f"({hardware['cpu_count']} cores), torch {hardware['torch']}, transformers {hardware['transformers']}")
    table = ["| task | validation examples | pretrained | random init | gain | majority class |", "|---|---|---|---|---|---|"]
    table += [f"| {r['task']} | {r['examples']} | {r['pretrained']:.4f} | {r['random_init']:.4f} | {r['gain'] * 100:+.1f} points "
              f"| {r['majority_class']:.4f} |" for r in rows]
    text = "\n".join([header, "", *table])
    print("\n" + text)
    root.mkdir(parents=True, exist_ok=True)
    (root / "results.json").write_text(json.dumps({"setup": header, "rows": rows, "hardware": hardware}, indent=2) + "\n")
    (root / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
