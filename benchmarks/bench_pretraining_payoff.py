#!/usr/bin/env python
"""Does pretraining pay off downstream? One checkpoint finetuned against the same model from random weights.

For each task, ``recipes/run_classification.py`` finetunes the pretrained checkpoint and, with ``--random_init``,
a model of the same config and tokenizer with fresh weights, for the same wall-clock budget and with the same
flags, one after the other on this machine. Prints validation accuracy of both, the majority-class accuracy and the
difference with a 95 % paired bootstrap interval (both models' predictions on the same examples, resampled
together), and the same on SICK's labelled test split (reported, never tuned on: its 4,927 pairs give an interval
about a third as wide as validation's 500), and writes ``results.json`` and ``results.md`` in ``--output_dir``.
``--learning_rate 1e-4,3e-4`` runs both starts at each LR and also compares each at its own best.

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

import numpy as np
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hf_tbc.classification import ClassificationDataArguments, load_classification_data, majority_accuracy
from hf_tbc.evaluation import predict
from hf_tbc.training import hardware_summary

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tasks import task_flags, labelled_test_file  # noqa: E402

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "run_classification.py"


def score(folder: Path, flags: list[str], max_seq_length: int, evaluation_file: str | None):
    """Whether the finetuned model in ``folder`` gets each example of the validation file (or of ``evaluation_file``)
    right, in file order, and the accuracy of always answering the training set's majority class there."""
    options = dict(zip(flags[::2], flags[1::2]))
    data_args = ClassificationDataArguments(
        validation_file=evaluation_file or options["--validation_file"], train_file=options["--train_file"],
        text_column=options.get("--text_column"), text_pair_column=options.get("--text_pair_column"),
        max_train_samples=int(options["--max_train_samples"]) if "--max_train_samples" in options else None)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    labels = [model.config.id2label[index] for index in range(model.config.num_labels)]
    data = load_classification_data(data_args, label_names=labels)[0]
    predictions = predict(model, data["validation"], AutoTokenizer.from_pretrained(folder), max_length=max_seq_length)
    truth = np.array(data["validation"]["label"])
    return np.array(predictions) == truth, majority_accuracy(list(data["train"]["label"]), list(truth))


def paired_interval(first: np.ndarray, second: np.ndarray, resamples: int = 2000, seed: int = 0) -> list[float]:
    """95 % paired bootstrap interval of accuracy(first) - accuracy(second) over the same examples."""
    generator = np.random.default_rng(seed)
    picks = generator.integers(0, len(first), size=(resamples, len(first)))
    differences = (first[picks].astype(float) - second[picks]).mean(axis=1)
    return [round(float(value), 4) for value in np.percentile(differences, [2.5, 97.5])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="The pretrained checkpoint (a run_mlm.py folder)")
    parser.add_argument("--data_dir", required=True, help="Folder with sst2/ and sick-nli/")
    parser.add_argument("--tasks", default="sst2,sick", help="Comma-separated; task@N keeps N training rows")
    parser.add_argument("--time_budget", default="3m", help="Finetuning budget of every run")
    parser.add_argument("--learning_rate", default="3e-4",
                        help="Peak finetuning LR, or several separated by commas: then every start runs at each, and "
                             "each start is also reported at its own best LR (a fair comparison when the two prefer "
                             "different LRs)")
    parser.add_argument("--max_seq_length", default="64")
    parser.add_argument("--dropout", default="0.1", help="Finetuning dropout of both runs")
    parser.add_argument("--output_dir", default="bench_runs/pretraining_payoff")
    parser.add_argument("--reuse", action="store_true",
                        help="Keep finished runs (eval_results.json with a saved model) instead of finetuning again")
    args = parser.parse_args()
    if not (Path(args.model_name_or_path) / "config.json").is_file():
        sys.exit(f"error: --model_name_or_path {args.model_name_or_path} holds no config.json: pass a run_mlm.py output folder")

    learning_rates = [value.strip() for value in args.learning_rate.split(",") if value.strip()]
    for value in learning_rates:
        try:
            float(value)
        except ValueError:
            sys.exit(f"error: --learning_rate {value!r} is not a number: pass e.g. 3e-4 or 1e-4,3e-4,1e-3")

    root = Path(args.output_dir)
    rows = []
    for task in [name.strip() for name in args.tasks.split(",") if name.strip()]:
        name, _, limit = task.partition("@")  # sst2@2000: the first 2,000 training rows only
        flags = task_flags(name, Path(args.data_dir)) + (["--max_train_samples", limit] if limit else [])
        test = labelled_test_file(name, Path(args.data_dir))
        results = {}
        for learning_rate in learning_rates:
            for start in ("pretrained", "random init"):
                lr_part = f"-lr{learning_rate}" if len(learning_rates) > 1 else ""
                folder = root / f"{task}-{start.replace(' ', '-')}{lr_part}"
                command = [sys.executable, str(RECIPE), "--model_name_or_path", args.model_name_or_path, *flags,
                           "--time_budget", args.time_budget, "--learning_rate", learning_rate,
                           "--max_seq_length", args.max_seq_length, "--dropout", args.dropout,
                           "--output_dir", str(folder), "--overwrite_output_dir",
                           "--disable_tqdm", "true", *(["--random_init"] if start == "random init" else [])]
                record = folder / "eval_results.json"
                finished = record.is_file() and json.loads(record.read_text()).get("model_saved") is True
                if not (args.reuse and finished):  # a preempted run's record claims no model: run it again
                    print(f"[{task}, {start}, lr {learning_rate}] {' '.join(command[1:])}", flush=True)
                    subprocess.run(command, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
                                   stdout=subprocess.DEVNULL)
                result = json.loads((folder / "eval_results.json").read_text())
                result["validation"] = score(folder, flags, int(args.max_seq_length), None)
                if test is not None:  # reported, never tuned on
                    result["test"] = score(folder, flags, int(args.max_seq_length), str(test))
                results[start, learning_rate] = result
        splits = ["validation"] + (["test"] if test is not None else [])
        pairs = [(learning_rate, learning_rate, learning_rate) for learning_rate in learning_rates]
        if len(learning_rates) > 1:  # each start at the LR that suited it best on validation
            best = {start: max(learning_rates, key=lambda lr: results[start, lr]["accuracy"])
                    for start in ("pretrained", "random init")}
            pairs.append((f"best each ({best['pretrained']} / {best['random init']})", best["pretrained"],
                          best["random init"]))
        for split in splits:
            for label, pretrained_lr, random_lr in pairs:
                pretrained, random = results["pretrained", pretrained_lr], results["random init", random_lr]
                (right, majority), (random_right, _) = pretrained[split], random[split]
                rows.append({"task": task, "split": split, "learning_rate": label,
                             "pretrained": round(float(right.mean()), 4),
                             "random_init": round(float(random_right.mean()), 4), "majority_class": majority,
                             "gain": round(float(right.mean() - random_right.mean()), 4),
                             "gain_interval": paired_interval(right, random_right),
                             "steps": [pretrained["steps"], random["steps"]], "examples": len(right)})

    hardware = hardware_summary()
    pretraining = Path(args.model_name_or_path) / "run_summary.json"
    learned = ""
    if pretraining.is_file():  # how far the checkpoint had got: the number that says what there was to pass on
        record = json.loads(pretraining.read_text())
        if record.get("below_unigram") is not None:
            learned = (f" (pretrained {record.get('steps')} steps, validation MLM loss {record['final_eval_loss']:.3f}, "
                       f"{record['below_unigram']:.2f} nat below unigram)")
    header = (f"{args.model_name_or_path}{learned}, finetuned {args.time_budget} per run (dropout "
              f"{args.dropout}), {hardware['cpu']} "
              f"({hardware['cpu_count']} cores), torch {hardware['torch']}, transformers {hardware['transformers']}")
    table = ["| task | scored on | learning rate | examples | pretrained | random init | gain (95 % paired bootstrap) "
             "| majority class | steps (pretrained / random) |", "|---|---|---|---|---|---|---|---|---|"]
    table += [f"| {r['task']} | {r['split']} | {r['learning_rate']} | {r['examples']} | {r['pretrained']:.4f} | {r['random_init']:.4f} "
              f"| {r['gain'] * 100:+.1f} points [{r['gain_interval'][0] * 100:+.1f}, {r['gain_interval'][1] * 100:+.1f}] "
              f"| {r['majority_class']:.4f} | {r['steps'][0]} / {r['steps'][1]} |" for r in rows]
    text = "\n".join([header, "", *table])
    print("\n" + text)
    root.mkdir(parents=True, exist_ok=True)
    (root / "results.json").write_text(json.dumps({"setup": header, "rows": rows, "hardware": hardware}, indent=2) + "\n")
    (root / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
