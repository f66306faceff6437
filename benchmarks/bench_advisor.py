#!/usr/bin/env python
"""Is the size advisor right? Its forecasts from probes, against full runs at the same budgets, on this machine.

For each budget (ascending), ``recipes/advise.py`` probes every size for ``--probe_share`` of the budget on that
budget's schedule and writes its forecasts; then every size's probe is continued to the deadline
(``run_mlm.py --resume_from_checkpoint true`` in the probe's folder), which is the real run the advice is about, so
its final validation loss is the actual one. Runs go one at a time (two side by side on a few cores would time each
other's contention). A step already done (advice written, run finished) is not redone, so the benchmark resumes
where it stopped.

``--task translation`` does the same with ``run_translation.py`` on Multi30k En-Fr (``--data_dir`` holds
``multi30k-en-fr/``): the loss is the validation cross-entropy the advisor forecasts.

``--seeds 43,44`` runs every size again at ``--spread_budget`` with each further seed (plain runs from scratch, in
``seeds/``): the largest range of one size's final loss over the seeds is the grid's tie margin, and a budget whose
best two sizes end within it is a tie, at which either pick counts as right. ``--keep_checkpoints`` saves every
twentieth of each budget and keeps the checkpoints, so that forecasting methods which branch from a probe's
checkpoint can be studied on the same runs afterwards.

It scores the advisor (|forecast - actual|, whether the interval covers the actual loss, whether the recommended
size won) and two naive rules: the size with the lowest loss at the probes' end, and the size with the lowest loss
per step (the training loss at the largest step every probe reached); and where the measured winner changes between
two budgets, the budget at which it turns (the loss gap interpolated in log budget). It writes ``results.json`` (one
row per size and budget, with its ``task``), ``summary.json``, ``results.md`` and ``forecast_vs_actual.png`` in
``--results_dir``, with each budget's advice and the runs' records.

    python benchmarks/bench_advisor.py --data_dir ../shared/data --budgets 4m,8m,16m
    python benchmarks/bench_advisor.py --task translation --data_dir ../shared/data \
        --model_sizes E1-D1-H64,E2-D2-H128,E2-D2-H256 --budgets 2m,4m,8m,16m --seeds 43,44 --spread_budget 4m
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from statistics import median
from typing import Optional

from bench_time_to_loss import corpus

from hf_tbc.advise.arguments import ALLOWANCE_SHARE
from hf_tbc.advise.forecast import Forecaster
from hf_tbc.advise.ladder_report import ladder_record, write_ladder_advice
from hf_tbc.advise.probing import PROBE_SETTINGS, probe_dir, read_probe
from hf_tbc.advise.report import advice_record, write_advice
from hf_tbc.advise.staging import read_staging
from hf_tbc.budget import format_duration, parse_duration
from hf_tbc.errors import UsageError
from hf_tbc.hardware import describe_hardware, hardware_summary
from hf_tbc.plots import _pyplot
from hf_tbc.tasks.registry import TASKS

ROOT = Path(__file__).resolve().parents[1]
AT_PROBE_END, PER_STEP = "lowest at the probes' end", "lowest per step"
RECIPES = {"mlm": "run_mlm.py", "translation": "run_translation.py"}
NO_ADVICE = "no_advice.json"  # where the advisor ran its probes but could not forecast from them
LOSS_LABEL = {"mlm": "validation MLM loss", "translation": "validation loss (label-smoothed)"}


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


def data_flags(args) -> list[str]:
    """The task's data: MLM on the reviews and SST-2 text (or the built-in corpus), translation on Multi30k En-Fr."""
    if args.task == "mlm":
        return ["--train_file", corpus(args.data_dir), "--text_column", "sentence"] if args.data_dir else []
    folder = Path(args.data_dir or ".") / "multi30k-en-fr"
    if not (folder / "train.tsv").is_file():
        sys.exit(
            f"error: --task translation needs --data_dir holding multi30k-en-fr/train.tsv (not in {folder.parent})"
        )
    files = ["--train_file", str(folder / "train.tsv"), "--validation_file", str(folder / "validation.tsv")]
    return [*files, "--source_lang", "en", "--target_lang", "fr"]


def common_flags(args, budget: str, seed: int | None = None) -> list[str]:
    keep = ["--save_every", f"{parse_duration(budget) / 20:g}s"] if args.keep_checkpoints else []
    return [
        "--time_budget",
        budget,
        "--max_eval_samples",
        str(args.max_eval_samples),
        "--seed",
        str(args.seed if seed is None else seed),
        "--disable_tqdm",
        "true",
        *keep,
        *data_flags(args),
        *args.extra.split(),
    ]


def recipe(args) -> str:
    return str(ROOT / "recipes" / RECIPES[args.task])


def full_run(args, budget: str, size: str) -> Path:
    """The folder of ``size``'s full run at ``budget``: its probe continued, here or in ``--actuals_from``."""
    return probe_dir(str(Path(args.actuals_from or args.output_dir) / budget), size)


def finished(run_dir: Path) -> bool:
    summary = run_dir / "run_summary.json"
    return summary.is_file() and json.loads(summary.read_text()).get("stop_reason") not in ("stop_after", "preempted")


def advise_and_continue(args, budget: str, folder: Path) -> None:
    """Runs (or reads) the advice for ``budget``, then continues every size's probe to the deadline."""
    seconds = parse_duration(budget)
    advice = folder / "advice.json"
    flags = common_flags(args, budget)
    log = folder / "log.txt"
    folder.mkdir(parents=True, exist_ok=True)
    if not advice.is_file() and not (folder / NO_ADVICE).is_file():
        probe = f"{args.probe_share * seconds:g}"
        command = [sys.executable, str(ROOT / "recipes" / "advise.py"), "--task", args.task]
        command += ["--model_sizes", args.model_sizes, "--probe_budget", probe, "--method", args.method]
        command += ["--output_dir", str(folder), *flags]
        try:
            run(command, log)
        except subprocess.CalledProcessError:
            probes = [read_probe(probe_dir(str(folder), size), size) for size in args.model_sizes.split(",")]
            if any(probe is None for probe in probes):
                raise
            # every probe ran but no forecast came of them: the runs still go on, and the budget counts as a miss
            errors = [line for line in log.read_text().splitlines() if line.startswith("error:")]
            (folder / NO_ADVICE).write_text(json.dumps({"error": errors[-1] if errors else "no advice"}) + "\n")
    if args.actuals_from:
        return  # the full runs are those of --actuals_from
    for size in args.model_sizes.split(","):
        run_dir = probe_dir(str(folder), size)
        if not finished(run_dir):
            run(
                [
                    sys.executable,
                    recipe(args),
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


def seed_runs(args, train: bool = True) -> dict[str, list[float]]:
    """Every size trained again at ``--spread_budget`` with each of ``--seeds`` (plain runs from scratch; with
    ``train`` False, only those already run are read); per size, the final losses of every seed, the grid's own run
    first."""
    losses = {}
    base = Path(args.actuals_from or args.output_dir)
    for size in args.model_sizes.split(","):
        losses[size] = [final_loss(full_run(args, args.spread_budget, size))]
        for seed in args.seeds:
            run_dir = base / "seeds" / args.spread_budget / f"seed{seed}" / size
            if not finished(run_dir):
                if not train:
                    raise SystemExit(f"error: no finished seed run in {run_dir}: run without --score_only first")
                flags = common_flags(args, args.spread_budget, seed)
                command = [sys.executable, recipe(args), "--model_size", size, "--output_dir", str(run_dir), *flags]
                run_dir.parent.mkdir(parents=True, exist_ok=True)
                run(command, base / "seeds" / "log.txt")
            losses[size].append(final_loss(run_dir))
    return losses


def final_loss(run_dir: Path) -> float:
    return json.loads((run_dir / "run_summary.json").read_text())["final_eval_loss"]


def grid_hardware(args) -> str:
    """The machine the grid's probes ran on, as its first budget's advice names it (a grid may be scored again
    elsewhere); this machine where no budget has advice yet."""
    advice = sorted(Path(args.output_dir).glob("*/advice.json"))
    recorded = json.loads(advice[0].read_text()).get("hardware") if advice else None
    return recorded or describe_hardware(hardware_summary())


def unadvised_record(args, budget: str, folder: Path) -> Optional[dict]:
    """What a budget the advisor gave no advice for (staged probing) was run with, for :func:`reforecast`: the
    probes' schedule from their settings, the default allowance (a third of the budget), no stage recorded, and the
    hardware the grid's advice names (else this machine's). None where the probes' settings are not kept."""
    settings = probe_dir(str(folder), args.model_sizes.split(",")[0]) / PROBE_SETTINGS
    if not settings.is_file():
        return None
    return {
        "method": "cool-down branches, staged",
        "schedule": json.loads(settings.read_text())["lr_scheduler_type"],
        "stages": [],
        "probe_s": args.probe_share * parse_duration(budget),
        "allowance_s": ALLOWANCE_SHARE * parse_duration(budget),
        "hardware": grid_hardware(args),
        "task": args.task,
        "loss": TASKS[args.task].loss,
    }


def reforecast(args, budget: str, folder: Path) -> None:
    """Rewrites the advice of ``budget`` from its probes' kept records with this checkout's forecasting code (the
    probes are what the advisor measured; only the forecast from them is redone). A budget the advisor gave no
    advice for is advised again where this code gives advice from the same probes (staged probing only)."""
    if (folder / "advice.json").is_file():
        old = json.loads((folder / "advice.json").read_text())
    else:
        old = unadvised_record(args, budget, folder) if args.method == "branches" else None
    if old is None:
        return  # no advice then, and none can be made again here: kept as a miss
    if old.get("method", "").startswith("cool-down"):  # staged probing: its probes and ladders, forecast again
        sizes = args.model_sizes.split(",")
        folders = {size: probe_dir(str(folder), size) for size in sizes}
        staging = read_staging(str(folder), folders, parse_duration(budget), old["schedule"], old["stages"])
        try:
            record = ladder_record(staging, parse_duration(budget), old["probe_s"], old["allowance_s"], old["hardware"])
        except UsageError as error:  # this checkout gives no advice from these probes: a miss, as the advisor says
            (folder / NO_ADVICE).write_text(json.dumps({"error": f"error: {error}"}) + "\n")
            (folder / "advice.json").unlink(missing_ok=True)
            return
        record.update({key: old.get(key) for key in ("task", "loss", "continue")})
        write_ladder_advice(staging.forecaster(), record, str(folder))
        (folder / NO_ADVICE).unlink(missing_ok=True)
        return
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


def read_advice(folder: Path, sizes: list[str]) -> dict:
    """The advice of one budget; where the advisor could not forecast from its probes, a record saying so with no
    forecasts and no pick."""
    if (folder / "advice.json").is_file():
        return json.loads((folder / "advice.json").read_text())
    probes = [read_probe(probe_dir(str(folder), size), size) for size in sizes]
    error = json.loads((folder / NO_ADVICE).read_text())["error"]
    return {
        "error": error,
        "forecasts": {},
        "recommended_size": None,
        "clear": False,
        "probe_s": probes[0].probe_s,
        "probe_cost_s": sum(probe.train_s for probe in probes),
        "crossovers": [],
    }


def score(args, budgets: list[str], margin: float) -> tuple[list[dict], list[dict]]:
    """One row per size and budget (forecast against the actual final loss) and one pick per budget: the measured
    winner, whether it is a tie (the best two within ``margin``, the seed spread), and each rule's pick."""
    sizes = args.model_sizes.split(",")
    rows, picks = [], []
    for budget in budgets:
        folder = Path(args.output_dir) / budget
        advice = read_advice(folder, sizes)
        runs = {size: json.loads((full_run(args, budget, size) / "run_summary.json").read_text()) for size in sizes}
        actual = {size: run["final_eval_loss"] for size, run in runs.items()}
        for size in sizes:
            forecast = advice["forecasts"].get(size, {})
            rows.append(
                {
                    "task": args.task,
                    "size": size,
                    "budget_s": parse_duration(budget),
                    "probe_s": advice["probe_s"],
                    "forecast_loss": forecast.get("forecast_loss"),
                    "forecast_low": forecast.get("forecast_low"),
                    "forecast_high": forecast.get("forecast_high"),
                    "actual_loss": round(actual[size], 4),
                    "support": forecast.get("support", advice.get("error")),
                    "forecast_steps": forecast.get("steps"),
                    "actual_steps": runs[size]["steps"],
                }
            )
        ranked = sorted(actual, key=actual.get)
        rules = advice.get("naive") or probe_rules(folder, sizes)
        picks.append(
            {
                "task": args.task,
                "budget_s": parse_duration(budget),
                "winner": ranked[0],
                "tied": [size for size in ranked if actual[size] - actual[ranked[0]] <= margin],
                "advisor": advice["recommended_size"],
                "advisor_clear": advice["clear"],
                "advisor_basis": advice.get("basis", "forecast") if advice["recommended_size"] else None,
                AT_PROBE_END: rules[AT_PROBE_END],
                PER_STEP: rules[PER_STEP],
                "probe_cost_share": advice.get(
                    "probe_cost_share", round(advice["probe_cost_s"] / parse_duration(budget), 3)
                ),
                "crossovers": advice["crossovers"],
            }
        )
    return rows, picks


def measured_turns(rows: list[dict], margin: float) -> list[dict]:
    """Where the measured winner (the lowest final loss) changes between two consecutive budgets: the budget at which
    the new winner's loss meets the old one's, the gap between them interpolated linearly in log budget. ``clear``
    where the new winner was behind by more than ``margin`` (the seed spread) before and leads by more than it at
    some later budget; otherwise the turn passes through ties."""
    budgets = sorted({row["budget_s"] for row in rows})
    loss = {(row["size"], row["budget_s"]): row["actual_loss"] for row in rows}
    sizes = list(dict.fromkeys(row["size"] for row in rows))
    winners = [min(sizes, key=lambda size: loss[size, budget]) for budget in budgets]
    turns = []
    for index, ((low, high), (before, after)) in enumerate(zip(zip(budgets, budgets[1:]), zip(winners, winners[1:]))):
        if before == after:
            continue
        gap_low = loss[after, low] - loss[before, low]  # >= 0: the new winner still behind
        gap_high = loss[after, high] - loss[before, high]  # < 0: ahead
        lead = max(loss[before, budget] - loss[after, budget] for budget in budgets[index + 1 :])
        share = gap_low / (gap_low - gap_high)
        turn = math.exp(math.log(low) + share * (math.log(high) - math.log(low)))
        turns.append(
            {
                "from": before,
                "to": after,
                "between_s": [low, high],
                "turn_s": round(turn, 1),
                "behind_by": round(gap_low, 4),
                "lead_by": round(lead, 4),
                "clear": gap_low > margin and lead > margin,
            }
        )
    return turns


def forecast_turns(turns: list[dict], picks: list[dict]) -> list[dict]:
    """Each measured turn next to the crossover the advisor forecast for that pair of sizes at every budget (None:
    not within the budgets it scanned), and the ratio of forecast to measured where there is one."""
    rows = []
    for turn in turns:
        pair = {turn["from"], turn["to"]}
        for pick in picks:
            for crossing in pick["crossovers"]:
                if {crossing["smaller"], crossing["larger"]} == pair:
                    forecast = crossing["budget_s"]
                    rows.append(
                        {
                            "pair": f"{turn['from']} to {turn['to']}",
                            "advised_at_s": pick["budget_s"],
                            "forecast_turn_s": forecast,
                            "measured_turn_s": turn["turn_s"],
                            "ratio": round(forecast / turn["turn_s"], 2) if forecast else None,
                        }
                    )
    return rows


def right(pick: dict, rule: str) -> bool:
    return pick[rule] in pick["tied"]


def summarize(rows: list[dict], picks: list[dict], margin: float, spread: dict) -> dict:
    forecast = [row for row in rows if row["forecast_loss"] is not None]  # all rows count as misses otherwise
    errors = [abs(row["forecast_loss"] - row["actual_loss"]) for row in forecast]
    covered = [row["forecast_low"] <= row["actual_loss"] <= row["forecast_high"] for row in forecast]
    widths = [row["forecast_high"] - row["forecast_low"] for row in forecast]
    rules = ("advisor", AT_PROBE_END, PER_STEP)
    return {
        "task": rows[0]["task"],
        "median_abs_error": round(median(errors), 4) if errors else None,  # None: no row had a forecast
        "coverage": round(sum(covered) / len(rows), 3),
        "rows_without_forecast": len(rows) - len(forecast),
        "median_interval_width": round(median(widths), 4) if widths else None,
        "right": {rule: sum(right(pick, rule) for pick in picks) for rule in rules},
        "advisor_without_forecast": {  # picks made on the probes' measured lead, where no forecast was supported
            "picks": sum(pick.get("advisor_basis") == "measured" for pick in picks),
            "right": sum(pick.get("advisor_basis") == "measured" and right(pick, "advisor") for pick in picks),
        },
        "budgets": len(picks),
        "ties": sum(len(pick["tied"]) > 1 for pick in picks),
        "tie_margin": margin,
        "seed_losses": spread,
        "measured_turns": measured_turns(rows, margin),
        "forecast_turns": forecast_turns(measured_turns(rows, margin), picks),
        "max_probe_cost_share": max(pick["probe_cost_share"] for pick in picks),
    }


def plot(rows: list[dict], path: Path, task: str) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    sizes = list(dict.fromkeys(row["size"] for row in rows))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, size in enumerate(sizes):
        every = [row for row in rows if row["size"] == size]
        mine = [row for row in every if row["forecast_loss"] is not None]  # budgets where the advisor forecast
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
        axes.plot(
            [row["budget_s"] / 60 * (1 + 0.03 * (index - 1)) for row in every],
            [row["actual_loss"] for row in every],
            "s-",
            color=color,
            label=f"{size} actual",
        )
    axes.set_xscale("log")
    axes.set_xticks([row["budget_s"] / 60 for row in rows if row["size"] == sizes[0]])
    axes.get_xaxis().set_major_formatter(plt.FuncFormatter(lambda value, _: f"{value:g}"))
    axes.get_xaxis().set_minor_formatter(plt.NullFormatter())
    axes.set_xlabel("training budget (minutes)")
    axes.set_ylabel(f"{LOSS_LABEL[task]} at the deadline")
    axes.set_title("Advisor: forecast from probes (open, with interval) against the full run (filled)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def without_forecast(summary: dict) -> str:
    """How many of the advisor's picks were made without a forecast and how many of those were right, as a clause
    ("" where there were none)."""
    counts = summary["advisor_without_forecast"]
    if not counts["picks"]:
        return ""
    return (
        f"; {counts['picks']} of its picks were made without a forecast (the size the probes measured ahead), "
        f"{counts['right']} of them right"
    )


def pick_note(pick: dict) -> str:
    """How the advisor's pick was made, for the picks table: on a forecast whose interval overlapped another's, or
    with no forecast (the size the probes measured ahead); nothing for a clear forecast or no pick."""
    if not pick["advisor"] or pick["advisor_clear"]:
        return ""
    return " (measured, no forecast)" if pick.get("advisor_basis") == "measured" else " (overlap)"


def result_lines(args, rows: list[dict], picks: list[dict], summary: dict, budgets: list[str]) -> list[str]:
    lines = [
        f"Task {args.task}; sizes {args.model_sizes}; budgets {', '.join(budgets)}; advisor --method {args.method}, "
        f"probes of {args.probe_share:.0%} of each budget"
        + (" first, the contenders continued within a third of it" if args.method == "branches" else "")
        + f"; {grid_hardware(args)}",
        "",
        "| budget | size | forecast [interval] | actual | error | covered | basis | steps forecast / actual |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["forecast_loss"] is None:
            why = str(row["support"]).split(": the probes")[0].removeprefix("error: ")
            lines.append(
                f"| {format_duration(row['budget_s'])} | {row['size']} | no forecast | {row['actual_loss']:.3f} | | no "
                f"| {why} | / {row['actual_steps']:,} |"
            )
            continue
        covered = row["forecast_low"] <= row["actual_loss"] <= row["forecast_high"]
        lines.append(
            f"| {format_duration(row['budget_s'])} | {row['size']} | {row['forecast_loss']:.3f} "
            f"[{row['forecast_low']:.3f}, {row['forecast_high']:.3f}] | {row['actual_loss']:.3f} | "
            f"{row['forecast_loss'] - row['actual_loss']:+.3f} | {'yes' if covered else 'no'} | {row['support']} | "
            f"{row['forecast_steps']:,} / {row['actual_steps']:,} |"
        )
    lines += [
        "",
        "| budget | measured winner | within the tie margin | advisor | lowest at the probes' end | lowest per step "
        "| probes' cost / budget |",
        "|---|---|---|---|---|---|---|",
    ]
    for pick in picks:
        lines.append(
            f"| {format_duration(pick['budget_s'])} | {pick['winner']} | {', '.join(pick['tied'])} "
            f"| {pick['advisor'] or 'none'}{pick_note(pick)} | {pick[AT_PROBE_END]} "
            f"| {pick[PER_STEP]} | {pick['probe_cost_share']:.2f} |"
        )
    correct = summary["right"]
    turns = "; ".join(
        f"{turn['from']} to {turn['to']} at about {format_duration(turn['turn_s'])} (behind by {turn['behind_by']:.3f} "
        f"before, ahead by up to {turn['lead_by']:.3f} after: "
        + ("clear of the tie margin)" if turn["clear"] else "through the tie margin)")
        for turn in summary["measured_turns"]
    )
    spread = (
        f"Tie margin {summary['tie_margin']:.3f} nat: the largest seed-to-seed range of one size's final loss at "
        f"{args.spread_budget} ({len(args.seeds) + 1} seeds)"
        if args.seeds and summary["seed_losses"]
        else f"No seed spread measured yet at {args.spread_budget} (tie margin 0)"
        if args.seeds
        else "No seed spread measured (tie margin 0)"
    )
    forecasts = "; ".join(
        f"advised at {format_duration(row['advised_at_s'])}: "
        + (
            f"{format_duration(row['forecast_turn_s'])} ({row['ratio']:.2f}x the measured)"
            if row["forecast_turn_s"]
            else "no turn within the budgets it scanned"
        )
        for row in summary["forecast_turns"]
    )
    lines += [
        "",
        f"{spread}. Measured turns of the winner: {turns or 'none'}."
        + (f" The advisor's forecast of that turn, {forecasts}." if forecasts else ""),
        "",
        (
            f"Median |forecast - actual| {summary['median_abs_error']:.3f} nat over the "
            f"{len(rows) - summary['rows_without_forecast']} rows with a forecast; the interval covers the actual "
            f"loss in {summary['coverage']:.0%} of all {len(rows)} rows (median width "
            f"{summary['median_interval_width']:.3f}). "
            if summary["median_abs_error"] is not None
            else f"No forecast in any of the {len(rows)} rows. "
        )
        + f"Right about the winner at {correct['advisor']} of {summary['budgets']} budgets, ties counted for either "
        f"pick{without_forecast(summary)} (lowest at the probes' end: {correct[AT_PROBE_END]}; lowest per step: "
        f"{correct[PER_STEP]}). All probes "
        f"of one budget cost at most {summary['max_probe_cost_share']:.2f} of that budget.",
    ]
    return lines


def shareable_copy(source: Path, target: Path, args) -> None:
    """Copies a record into the results, with this machine's absolute paths of the data and the runs written
    relative to the repository (``../shared/data/...``), as the commands in the docs name them."""
    if source.suffix not in (".json", ".jsonl", ".md"):
        shutil.copy(source, target)  # a figure
        return
    text = source.read_text()
    for folder in (args.data_dir, args.output_dir, args.actuals_from):
        if folder:
            absolute = str(Path(folder).resolve())
            text = text.replace(absolute, os.path.relpath(absolute, ROOT))
    target.write_text(text)


def write_results(args, rows: list[dict], picks: list[dict], budgets: list[str], spread: dict, margin: float) -> None:
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows, picks, round(margin, 4), spread)
    (results / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    (results / "summary.json").write_text(json.dumps({"summary": summary, "picks": picks}, indent=2) + "\n")
    plot(rows, results / "forecast_vs_actual.png", args.task)
    lines = result_lines(args, rows, picks, summary, budgets)
    (results / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    for budget in budgets:
        source, target = Path(args.output_dir) / budget, results / "runs" / budget
        target.mkdir(parents=True, exist_ok=True)
        for name in ("advice.json", "advice.md", "advice.png", NO_ADVICE):
            if (source / name).is_file():
                shareable_copy(source / name, target / name, args)
        for size in args.model_sizes.split(","):
            (target / size).mkdir(exist_ok=True)
            shareable_copy(source / "probes" / size / "probe_summary.json", target / size / "probe_summary.json", args)
            for name in ("run_summary.json", "curve.jsonl"):
                shareable_copy(full_run(args, budget, size) / name, target / size / name, args)
            ladder = source / "branches" / size / "ladder.json"
            if ladder.is_file():
                shareable_copy(ladder, target / size / "ladder.json", args)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="mlm", choices=sorted(RECIPES), help="What the sizes are trained for")
    parser.add_argument(
        "--data_dir",
        default=None,
        help="Folder with reviews/ and sst2/ (MLM; default: built-in corpus) or multi30k-en-fr/ (translation)",
    )
    parser.add_argument("--model_sizes", default="L2-H128,L4-H256,L6-H384")
    parser.add_argument("--budgets", default="4m,8m,16m", help="Target budgets, comma separated, ascending")
    parser.add_argument("--probe_share", type=float, default=0.1, help="Each probe's share of its budget")
    parser.add_argument("--max_eval_samples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--seeds",
        default="",
        type=lambda text: [int(item) for item in text.split(",") if item.strip()],
        help="Further seeds to run every size with at --spread_budget, for the tie margin (e.g. 43,44)",
    )
    parser.add_argument("--spread_budget", default=None, help="The budget the seeds run at (default: the first)")
    parser.add_argument(
        "--keep_checkpoints", action="store_true", help="Save and keep a checkpoint every twentieth of each budget"
    )
    parser.add_argument("--extra", default="", help="More recipe flags for every run, in one string")
    parser.add_argument(
        "--method", default="branches", choices=("branches", "curve"), help="The advisor's method (advise.py --method)"
    )
    parser.add_argument(
        "--actuals_from",
        default=None,
        help="Score against the full runs (and seed runs) of an earlier run of this benchmark in that folder, made "
        "with the same sizes, budgets and flags on the same machine: only the advisor runs here",
    )
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
    done = [
        budget
        for budget in budgets
        if all(finished(full_run(args, budget, size)) for size in args.model_sizes.split(","))
        and any((Path(args.output_dir) / budget / name).is_file() for name in ("advice.json", NO_ADVICE))
    ]
    if args.reforecast:
        for budget in done:
            reforecast(args, budget, Path(args.output_dir) / budget)
    args.spread_budget = args.spread_budget or budgets[0]
    spread = seed_runs(args, train=not args.score_only) if args.seeds and args.spread_budget in done else {}
    margin = max((max(losses) - min(losses) for losses in spread.values()), default=0.0)
    rows, picks = score(args, done, margin)
    write_results(args, rows, picks, done, spread, margin)


if __name__ == "__main__":
    main()
