#!/usr/bin/env python
"""Is the size advisor right? Its forecasts from probes, against full runs at the same budgets, on this machine.

For each budget (ascending), ``recipes/advise.py`` probes every size for ``--probe_share`` of the budget on that
budget's schedule and writes its forecasts; then every size's probe is continued to the deadline
(``run_mlm.py --resume_from_checkpoint true`` in the probe's folder), which is the real run the advice is about, so
its final validation loss is the actual one. Runs go one at a time (two side by side on a few cores would time each
other's contention). A step already done (advice written, run finished) is not redone, so the benchmark resumes
where it stopped.

It scores the advisor (|forecast - actual|, whether the interval covers the actual loss, whether the recommended
size won) and two naive rules: the size with the lowest loss at the probes' end, and the size with the lowest loss
per step (the training loss at the largest step every probe reached). It writes ``results.json`` (one row per size
and budget), ``results.md`` and ``forecast_vs_actual.png`` in ``--results_dir``, with each budget's advice and
the runs' records.

    python benchmarks/bench_advisor.py --data_dir ../shared/data --budgets 4m,8m,16m
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from statistics import median

from bench_time_to_loss import corpus

from hf_tbc.advise.forecast import Forecaster
from hf_tbc.advise.probing import probe_dir, read_probe
from hf_tbc.advise.report import advice_record, write_advice
from hf_tbc.budget import format_duration, parse_duration
from hf_tbc.hardware import describe_hardware, hardware_summary
from hf_tbc.plots import _pyplot

ROOT = Path(__file__).resolve().parents[1]
AT_PROBE_END, PER_STEP = "lowest at the probes' end", "lowest per step"


def run(command: list[str], log: Path) -> None:
    print("$", " ".join(command[1:]), flush=True)
    with log.open("a") as handle:
        subprocess.run(
            command,
            check=True,
            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def common_flags(args, budget: str) -> list[str]:
    data = ["--train_file", corpus(args.data_dir), "--text_column", "sentence"] if args.data_dir else []
    return [
        "--time_budget",
        budget,
        "--max_eval_samples",
        str(args.max_eval_samples),
        "--seed",
        str(args.seed),
        "--disable_tqdm",
        "true",
        *data,
        *args.extra.split(),
    ]


def advise_and_continue(args, budget: str, folder: Path) -> dict:
    """Runs (or reads) the advice for ``budget``, then continues every size's probe to the deadline."""
    seconds = parse_duration(budget)
    advice = folder / "advice.json"
    flags = common_flags(args, budget)
    log = folder / "log.txt"
    folder.mkdir(parents=True, exist_ok=True)
    if not advice.is_file():
        probe = f"{args.probe_share * seconds:g}"
        run(
            [
                sys.executable,
                str(ROOT / "recipes" / "advise.py"),
                "--model_sizes",
                args.model_sizes,
                "--probe_budget",
                probe,
                "--output_dir",
                str(folder),
                *flags,
            ],
            log,
        )
    record = json.loads(advice.read_text())
    for size in args.model_sizes.split(","):
        run_dir = probe_dir(str(folder), size)
        summary = run_dir / "run_summary.json"
        done = summary.is_file() and json.loads(summary.read_text()).get("stop_reason") not in (
            "stop_after",
            "preempted",
        )
        if not done:
            run(
                [
                    sys.executable,
                    str(ROOT / "recipes" / "run_mlm.py"),
                    "--model_size",
                    size,
                    "--output_dir",
                    str(run_dir),
                    "--resume_from_checkpoint",
                    "true",
                    *flags,
                ],
                log,
            )
    return record


def reforecast(args, budget: str, folder: Path) -> None:
    """Rewrites the advice of ``budget`` from its probes' kept records with this checkout's forecasting code (the
    probes are what the advisor measured; only the forecast from them is redone)."""
    old = json.loads((folder / "advice.json").read_text())
    probes = [read_probe(probe_dir(str(folder), size), size) for size in args.model_sizes.split(",")]
    forecaster = Forecaster(probes)
    record = advice_record(forecaster, parse_duration(budget), old["probe_s"], old["hardware"], old.get("continue"))
    write_advice(forecaster, record, str(folder))


def probe_rules(folder: Path, sizes: list[str]) -> dict:
    """The two naive rules' picks, from the probes' own curves (rows up to each probe's last step)."""
    curves, finals = {}, {}
    for size in sizes:
        probe = read_probe(probe_dir(str(folder), size), size)
        curves[size] = [(step, loss) for step, _, loss in probe.losses]
        finals[size] = probe.final_eval()
    common = min(curve[-1][0] for curve in curves.values())
    per_step = {size: min(curve, key=lambda point: abs(point[0] - common))[1] for size, curve in curves.items()}
    return {AT_PROBE_END: min(finals, key=finals.get), PER_STEP: min(per_step, key=per_step.get), "common_step": common}


def score(args, budgets: list[str]) -> tuple[list[dict], list[dict]]:
    sizes = args.model_sizes.split(",")
    rows, picks = [], []
    for budget in budgets:
        folder = Path(args.output_dir) / budget
        advice = json.loads((folder / "advice.json").read_text())
        runs = {size: json.loads((probe_dir(str(folder), size) / "run_summary.json").read_text()) for size in sizes}
        actual = {size: run["final_eval_loss"] for size, run in runs.items()}
        for size in sizes:
            forecast = advice["forecasts"][size]
            rows.append(
                {
                    "size": size,
                    "budget_s": parse_duration(budget),
                    "probe_s": advice["probe_s"],
                    "forecast_loss": forecast["forecast_loss"],
                    "forecast_low": forecast["forecast_low"],
                    "forecast_high": forecast["forecast_high"],
                    "actual_loss": round(actual[size], 4),
                    "support": forecast["support"],
                    "forecast_steps": forecast["steps"],
                    "actual_steps": runs[size]["steps"],
                }
            )
        winner = min(actual, key=actual.get)
        rules = probe_rules(folder, sizes)
        picks.append(
            {
                "budget_s": parse_duration(budget),
                "winner": winner,
                "advisor": advice["recommended_size"],
                "advisor_clear": advice["clear"],
                AT_PROBE_END: rules[AT_PROBE_END],
                PER_STEP: rules[PER_STEP],
                "probe_cost_share": round(advice["probe_cost_s"] / parse_duration(budget), 3),
                "crossovers": advice["crossovers"],
            }
        )
    return rows, picks


def summarize(rows: list[dict], picks: list[dict]) -> dict:
    errors = [abs(row["forecast_loss"] - row["actual_loss"]) for row in rows]
    covered = [row["forecast_low"] <= row["actual_loss"] <= row["forecast_high"] for row in rows]
    rules = ("advisor", AT_PROBE_END, PER_STEP)
    return {
        "median_abs_error": round(median(errors), 4),
        "coverage": round(sum(covered) / len(covered), 3),
        "right": {rule: sum(pick[rule] == pick["winner"] for pick in picks) for rule in rules},
        "budgets": len(picks),
        "max_probe_cost_share": max(pick["probe_cost_share"] for pick in picks),
    }


def plot(rows: list[dict], path: Path) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    sizes = list(dict.fromkeys(row["size"] for row in rows))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, size in enumerate(sizes):
        mine = [row for row in rows if row["size"] == size]
        minutes = [row["budget_s"] / 60 * (1 + 0.03 * (index - 1)) for row in mine]
        color = colors[index % len(colors)]
        axes.errorbar(
            minutes,
            [row["forecast_loss"] for row in mine],
            yerr=[
                [row["forecast_loss"] - row["forecast_low"] for row in mine],
                [row["forecast_high"] - row["forecast_loss"] for row in mine],
            ],
            fmt="o--",
            color=color,
            capsize=3,
            mfc="none",
            label=f"{size} forecast",
        )
        axes.plot(minutes, [row["actual_loss"] for row in mine], "s-", color=color, label=f"{size} actual")
    axes.set_xscale("log")
    axes.set_xticks([row["budget_s"] / 60 for row in rows if row["size"] == sizes[0]])
    axes.get_xaxis().set_major_formatter(plt.FuncFormatter(lambda value, _: f"{value:g}"))
    axes.get_xaxis().set_minor_formatter(plt.NullFormatter())
    axes.set_xlabel("training budget (minutes)")
    axes.set_ylabel("validation MLM loss at the deadline")
    axes.set_title("Advisor: forecast from probes (open, with interval) against the full run (filled)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_results(args, rows: list[dict], picks: list[dict], budgets: list[str]) -> None:
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows, picks)
    (results / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    (results / "summary.json").write_text(json.dumps({"summary": summary, "picks": picks}, indent=2) + "\n")
    plot(rows, results / "forecast_vs_actual.png")
    lines = [
        f"Sizes {args.model_sizes}; budgets {', '.join(budgets)}; probes {args.probe_share:.0%} of each budget; "
        f"{describe_hardware(hardware_summary())}",
        "",
        "| budget | size | forecast [interval] | actual | error | covered | basis | steps forecast / actual |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        covered = row["forecast_low"] <= row["actual_loss"] <= row["forecast_high"]
        lines.append(
            f"| {format_duration(row['budget_s'])} | {row['size']} | {row['forecast_loss']:.3f} "
            f"[{row['forecast_low']:.3f}, {row['forecast_high']:.3f}] | {row['actual_loss']:.3f} | "
            f"{row['forecast_loss'] - row['actual_loss']:+.3f} | {'yes' if covered else 'no'} | {row['support']} | "
            f"{row['forecast_steps']:,} / {row['actual_steps']:,} |"
        )
    lines += [
        "",
        "| budget | measured winner | advisor | lowest at the probes' end | lowest per step | probes' cost / budget |",
        "|---|---|---|---|---|---|",
    ]
    for pick in picks:
        lines.append(
            f"| {format_duration(pick['budget_s'])} | {pick['winner']} | {pick['advisor']}"
            f"{'' if pick['advisor_clear'] else ' (overlap)'} | {pick[AT_PROBE_END]} "
            f"| {pick[PER_STEP]} | {pick['probe_cost_share']:.2f} |"
        )
    right = summary["right"]
    lines += [
        "",
        f"Median |forecast - actual| {summary['median_abs_error']:.3f} nat over {len(rows)} rows; the interval covers "
        f"the actual loss in {summary['coverage']:.0%} of them. Right about the winner at {right['advisor']} of "
        f"{summary['budgets']} budgets (lowest at the probes' end: {right[AT_PROBE_END]}; "
        f"lowest per step: {right[PER_STEP]}). All probes of one budget cost at most "
        f"{summary['max_probe_cost_share']:.2f} of that budget.",
    ]
    (results / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    for budget in budgets:
        source, target = Path(args.output_dir) / budget, results / "runs" / budget
        target.mkdir(parents=True, exist_ok=True)
        for name in ("advice.json", "advice.md", "advice.png"):
            shutil.copy(source / name, target / name)
        for size in args.model_sizes.split(","):
            (target / size).mkdir(exist_ok=True)
            for name in ("probe_summary.json", "run_summary.json", "curve.jsonl"):
                shutil.copy(source / "probes" / size / name, target / size / name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_dir", default=None, help="Folder with reviews/ and sst2/ (default: built-in corpus)")
    parser.add_argument("--model_sizes", default="L2-H128,L4-H256,L6-H384")
    parser.add_argument("--budgets", default="4m,8m,16m", help="Target budgets, comma separated, ascending")
    parser.add_argument("--probe_share", type=float, default=0.1, help="Each probe's share of its budget")
    parser.add_argument("--max_eval_samples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--extra", default="", help="More run_mlm.py flags for every run, in one string")
    parser.add_argument("--output_dir", default="bench_runs/advisor", help="Where the runs go")
    parser.add_argument("--results_dir", default="docs/benchmarks/advisor", help="Where the results go")
    parser.add_argument("--score_only", action="store_true", help="Score the runs already in --output_dir")
    parser.add_argument("--only", default=None, help="Run only this budget (then score what exists)")
    parser.add_argument(
        "--reforecast", action="store_true", help="Redo every budget's forecast from its probes with this code"
    )
    args = parser.parse_args()
    budgets = [item.strip() for item in args.budgets.split(",") if item.strip()]
    for budget in budgets:
        parse_duration(budget)
    if not args.score_only:
        for budget in budgets if args.only is None else [args.only]:
            advise_and_continue(args, budget, Path(args.output_dir) / budget)
    done = [budget for budget in budgets if (Path(args.output_dir) / budget / "advice.json").is_file()]
    if args.reforecast:
        for budget in done:
            reforecast(args, budget, Path(args.output_dir) / budget)
    rows, picks = score(args, done)
    write_results(args, rows, picks, done)


if __name__ == "__main__":
    main()
