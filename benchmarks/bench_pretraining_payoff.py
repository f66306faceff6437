#!/usr/bin/env python
"""Does pretraining pay off downstream? One checkpoint finetuned against the same model from random weights.

For each task, ``recipes/run_classification.py`` finetunes the pretrained checkpoint and, with ``--random_init``,
a model of the same config and tokenizer with fresh weights, for the same wall-clock budget and with the same
flags, one after the other on this machine. Prints validation accuracy of both, the majority-class accuracy and the
difference with a 95 % paired bootstrap interval (both models' predictions on the same examples, resampled
together), and the same on SICK's labelled test split (reported, never tuned on: its 4,927 pairs give an interval
about a third as wide as validation's 500), and writes ``results.json`` and ``results.md`` in ``--output_dir``.
Next to the majority class, each row shows a second reference line that needs no transformer at all: a
bag-of-words logistic regression on the same training rows (``bag_of_words.py``; for pairs, the words the hypothesis
adds, drops and shares), so a finetuned model can be read against what word lists alone reach.
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
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from hf_tbc.compress.evaluation import predict
from hf_tbc.hardware import hardware_summary
from hf_tbc.tasks.classification.arguments import ClassificationDataArguments
from hf_tbc.tasks.classification.data import load_classification_data, majority_accuracy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bag_of_words import bag_of_words_predictions  # noqa: E402
from tasks import labelled_test_file, task_flags  # noqa: E402

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "run_classification.py"


def load_split(flags: list[str], label_names: list[str], evaluation_file: str | None):
    """The task's training rows and the rows it is scored on (the validation file, or ``evaluation_file``), with
    labels numbered as the finetuned models number them."""
    options = dict(zip(flags[::2], flags[1::2]))
    data_args = ClassificationDataArguments(
        validation_file=evaluation_file or options["--validation_file"],
        train_file=options["--train_file"],
        text_column=options.get("--text_column"),
        text_pair_column=options.get("--text_pair_column"),
        max_train_samples=int(options["--max_train_samples"]) if "--max_train_samples" in options else None,
    )
    return load_classification_data(data_args, label_names=label_names)[0]


def reference_lines(data) -> tuple[float, np.ndarray]:
    """What no pretraining at all scores: the majority class's accuracy, and whether a bag-of-words logistic
    regression fitted to the same training rows gets each scored example right."""
    train, scored = data["train"], data["validation"]
    pair = "text_pair" in train.column_names
    predictions = bag_of_words_predictions(
        train["text"],
        train["label"],
        scored["text"],
        train_pairs=train["text_pair"] if pair else None,
        pairs=scored["text_pair"] if pair else None,
    )
    return majority_accuracy(list(train["label"]), list(scored["label"])), predictions == np.array(scored["label"])


def score(folder: Path, data, max_seq_length: int) -> np.ndarray:
    """Whether the finetuned model in ``folder`` gets each scored example of ``data`` right, in file order."""
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    predictions = predict(model, data["validation"], AutoTokenizer.from_pretrained(folder), max_length=max_seq_length)
    return np.array(predictions) == np.array(data["validation"]["label"])


def _kept(record: dict) -> dict | None:
    selection = record.get("checkpoint_selection")
    if not selection:
        return None
    return {key: selection[key] for key in ("best_step", "best", "last_step", "last")}


def _describe_kept(kept: dict | None) -> str:
    if kept is None:
        return "last step"
    return f"{kept['best_step']}: {kept['best']:.4f} vs {kept['last']:.4f}"


def paired_interval(first: np.ndarray, second: np.ndarray, resamples: int = 2000, seed: int = 0) -> list[float]:
    """95 % paired bootstrap interval of accuracy(first) - accuracy(second) over the same examples."""
    generator = np.random.default_rng(seed)
    picks = generator.integers(0, len(first), size=(resamples, len(first)))
    differences = (first[picks].astype(float) - second[picks]).mean(axis=1)
    return [round(float(value), 4) for value in np.percentile(differences, [2.5, 97.5])]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_name_or_path", required=True, help="The pretrained checkpoint (a run_mlm.py folder)")
    parser.add_argument("--data_dir", required=True, help="Folder with sst2/ and sick-nli/")
    parser.add_argument("--tasks", default="sst2,sick", help="Comma-separated; task@N keeps N training rows")
    parser.add_argument("--time_budget", default="3m", help="Finetuning budget of every run")
    parser.add_argument(
        "--learning_rate",
        default="3e-4",
        help="Peak finetuning LR, or several separated by commas: then every start runs at each, and "
        "each start is also reported at its own best LR (a fair comparison when the two prefer "
        "different LRs)",
    )
    parser.add_argument("--max_seq_length", default="64")
    parser.add_argument("--dropout", default="0.1", help="Finetuning dropout of both runs")
    parser.add_argument("--output_dir", default="bench_runs/pretraining_payoff")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Keep finished runs (eval_results.json with a saved model) instead of finetuning again",
    )
    args = parser.parse_args()
    if not (Path(args.model_name_or_path) / "config.json").is_file():
        sys.exit(
            f"error: --model_name_or_path {args.model_name_or_path} holds no config.json: pass a run_mlm.py output "
            "folder"
        )

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
                command = [
                    sys.executable,
                    str(RECIPE),
                    "--model_name_or_path",
                    args.model_name_or_path,
                    *flags,
                    "--time_budget",
                    args.time_budget,
                    "--learning_rate",
                    learning_rate,
                    "--max_seq_length",
                    args.max_seq_length,
                    "--dropout",
                    args.dropout,
                    "--output_dir",
                    str(folder),
                    "--overwrite_output_dir",
                    "--disable_tqdm",
                    "true",
                    *(["--random_init"] if start == "random init" else []),
                ]
                record = folder / "eval_results.json"
                finished = record.is_file() and json.loads(record.read_text()).get("model_saved") is True
                if not (args.reuse and finished):  # a preempted run's record claims no model: run it again
                    print(f"[{task}, {start}, lr {learning_rate}] {' '.join(command[1:])}", flush=True)
                    subprocess.run(
                        command,
                        check=True,
                        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
                        stdout=subprocess.DEVNULL,
                    )
                results[start, learning_rate] = {
                    **json.loads((folder / "eval_results.json").read_text()),
                    "folder": folder,
                }
        splits = ["validation"] + (["test"] if test is not None else [])  # test: reported, never tuned on
        config = AutoConfig.from_pretrained(next(iter(results.values()))["folder"])
        label_names = [config.id2label[index] for index in range(config.num_labels)]
        references = {}
        for split in splits:
            data = load_split(flags, label_names, str(test) if split == "test" else None)
            references[split] = reference_lines(data)
            for result in results.values():
                result[split] = score(result["folder"], data, int(args.max_seq_length))
        pairs = [(learning_rate, learning_rate, learning_rate) for learning_rate in learning_rates]
        if len(learning_rates) > 1:  # each start at the LR that suited it best on validation
            best = {
                start: max(learning_rates, key=lambda lr: results[start, lr]["accuracy"])
                for start in ("pretrained", "random init")
            }
            pairs.append(
                (f"best each ({best['pretrained']} / {best['random init']})", best["pretrained"], best["random init"])
            )
        for split in splits:
            for label, pretrained_lr, random_lr in pairs:
                pretrained, random = results["pretrained", pretrained_lr], results["random init", random_lr]
                right, random_right = pretrained[split], random[split]
                majority, bag_of_words_right = references[split]
                rows.append(
                    {
                        "task": task,
                        "split": split,
                        "learning_rate": label,
                        "pretrained": round(float(right.mean()), 4),
                        "random_init": round(float(random_right.mean()), 4),
                        "majority_class": majority,
                        "bag_of_words": round(float(bag_of_words_right.mean()), 4),
                        "gain": round(float(right.mean() - random_right.mean()), 4),
                        "gain_interval": paired_interval(right, random_right),
                        "steps": [pretrained["steps"], random["steps"]],
                        # the step whose checkpoint finetuning kept (its best validation accuracy), and that
                        # accuracy against the last evaluation's
                        "kept": [_kept(pretrained), _kept(random)],
                        "examples": len(right),
                    }
                )

    hardware = hardware_summary()
    pretraining = Path(args.model_name_or_path) / "run_summary.json"
    learned = ""
    if pretraining.is_file():  # how far the checkpoint had got: the number that says what there was to pass on
        record = json.loads(pretraining.read_text())
        if record.get("below_unigram") is not None:
            learned = (
                f" (pretrained {record.get('steps')} steps, validation MLM loss {record['final_eval_loss']:.3f}, "
                f"{record['below_unigram']:.2f} nat below unigram)"
            )
    header = (
        f"{args.model_name_or_path}{learned}, finetuned {args.time_budget} per run (dropout "
        f"{args.dropout}), {hardware['cpu']} "
        f"({hardware['cpu_count']} cores), torch {hardware['torch']}, transformers {hardware['transformers']}"
    )
    table = [
        "| task | scored on | learning rate | examples | pretrained | random init | gain (95 % paired bootstrap) "
        "| majority class | bag of words | steps (pretrained / random) | kept step: best vs last validation accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    table += [
        f"| {r['task']} | {r['split']} | {r['learning_rate']} | {r['examples']} | {r['pretrained']:.4f} | "
        f"{r['random_init']:.4f} "
        f"| {r['gain'] * 100:+.1f} points [{r['gain_interval'][0] * 100:+.1f}, {r['gain_interval'][1] * 100:+.1f}] "
        f"| {r['majority_class']:.4f} | {r['bag_of_words']:.4f} | {r['steps'][0]} / {r['steps'][1]} "
        f"| {' / '.join(_describe_kept(kept) for kept in r['kept'])} |"
        for r in rows
    ]
    text = "\n".join([header, "", *table])
    print("\n" + text)
    root.mkdir(parents=True, exist_ok=True)
    (root / "results.json").write_text(
        json.dumps({"setup": header, "rows": rows, "hardware": hardware}, indent=2) + "\n"
    )
    (root / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
