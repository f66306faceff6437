#!/usr/bin/env python
"""How far ahead can any probe see? The full runs of the advisor benchmarks, cut short, extrapolated.

A probe of ``f`` of the budget sees the start of the run the advisor forecasts. This benchmark gives each full run's
own evaluation curve (its validation loss, measured on the run's own schedule) to three extrapolations as if the run
had been a probe of ``f`` of its budget, and compares each with the loss the run then measured at the end of its
stable phase (the last evaluation before the LR decays: the part of the forecast that extrapolates; the decay's gain
is what a cool-down branch measures, and is printed beside). Nothing is trained: it reads the ``runs/`` folders that
``bench_advisor.py`` commits.

- *log-linear*: the loss a straight line in log time, fitted to the evaluations from ``f/4`` to ``f`` of the budget
  (what the advisor's slope per doubling assumes);
- *power law*: ``E + A t^-alpha`` (a floor, and a fall that slows), fitted by least squares over the same points;
- *across sizes*: one law for every size of the budget together, ``E + A N^-a + B S^-b`` (N the size's parameters,
  S its steps; Hoffmann et al. 2022's form with steps for tokens), fitted to all the sizes' cut curves at once, so
  that the curvature a fast size's longer curve shows is lent to the slower ones, and evaluated at each run's own
  step count there (given exactly).

This is the best a probe of that length could do with these curves and a perfect decay estimate: where it misses by
more than the advisor's 0.1-nat target, no probe of that length reaches the target with these curves. The staged
advisor shares a third of the budget among the sizes: with three sizes each one's probe is at most about a ninth.

    python benchmarks/bench_forecast_horizon.py docs/benchmarks/advisor_turn_translation_16m \
        docs/benchmarks/advisor --output_dir docs/benchmarks/forecast_horizon
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Optional

import numpy as np

SHARES = (0.05, 0.1, 0.2, 1 / 3)
METHODS = ("log-linear", "power law", "across sizes")
TARGET = 0.1  # nat: the advisor's target for the median error


def evaluations(folder: Path) -> list[tuple[float, float, int]]:
    """(training seconds, validation loss, step) of every evaluation of the run in ``folder``."""
    rows = [json.loads(line) for line in (folder / "curve.jsonl").read_text().splitlines() if line.strip()]
    return [(row["train_s"], row["eval_loss"], row["step"]) for row in rows if row.get("eval_loss") is not None]


def full_runs(grid: Path):
    """(budget name, size, budget seconds, decay ratio, evaluations, parameters) of every run of ``grid`` that
    reached its end."""
    for budget_dir in sorted((grid / "runs").iterdir()):
        for folder in sorted(budget_dir.iterdir()):
            summary = folder / "run_summary.json"
            if not (folder / "curve.jsonl").is_file() or not summary.is_file():
                continue
            record = json.loads(summary.read_text())
            if record.get("stop_reason") != "time_budget":
                continue
            decay = float(record.get("decay_ratio") or 0.2) if "decay" in str(record.get("schedule")) else 0.0
            budget_s = float(record["time_budget_s"])
            yield budget_dir.name, folder.name, budget_s, decay, evaluations(folder), record.get("parameters")


def log_linear(points: list[tuple[float, float]], at: float) -> float:
    slope, intercept = np.polyfit([math.log2(t) for t, _ in points], [loss for _, loss in points], 1)
    return float(intercept + slope * math.log2(at))


def best_fit(losses: np.ndarray, exponents, design, valid) -> Optional[tuple]:
    """Least squares of a law whose terms are linear once its exponents are fixed: for each exponent tuple in
    ``exponents``, ``design(exponents)`` gives the columns and the coefficients are solved; the best fit whose
    coefficients ``valid`` accepts wins. ``(exponents, coefficients)``, or None where none is valid."""
    best = None
    for values in exponents:
        columns = design(values)
        coefficients, *_ = np.linalg.lstsq(columns, losses, rcond=None)
        if not valid(coefficients):
            continue
        error = float(np.sum((columns @ coefficients - losses) ** 2))
        if best is None or error < best[0]:
            best = (error, values, coefficients)
    return None if best is None else best[1:]


def power_law(points: list[tuple[float, float]], at: float) -> float:
    """``E + A t^-alpha`` by least squares over a grid of alpha (the floor kept at or above zero); the straight line
    where no fit keeps it there."""
    times = np.array([t for t, _ in points])
    fit = best_fit(
        np.array([loss for _, loss in points]),
        [(alpha,) for alpha in np.linspace(0.02, 3.0, 150)],
        lambda values: np.stack([np.ones_like(times), times ** -values[0]], axis=1),
        lambda coefficients: coefficients[0] >= 0,
    )
    if fit is None:
        return log_linear(points, at)
    (alpha,), (floor, scale) = fit
    return float(floor + scale * at**-alpha)


def across_sizes(cuts: list[tuple[float, list[tuple[float, float, int]]]]):
    """``E + A N^-a + B S^-b`` fitted to every size's cut curve together (``cuts``: parameters, evaluations); for each
    ``(a, b)`` on a grid the rest is linear, the best fit with non-negative terms wins. A function of (parameters,
    steps), or None where fewer than two sizes are cut."""
    points = [(size, step, loss) for size, curve in cuts for _, loss, step in curve]
    if len({size for size, _ in cuts}) < 2:
        return None
    sizes = np.array([size / 1e6 for size, _, _ in points])
    steps = np.array([step / 1e3 for _, step, _ in points])
    grid = np.linspace(0.05, 1.5, 30)
    fit = best_fit(
        np.array([loss for _, _, loss in points]),
        [(a, b) for a in grid for b in grid],
        lambda values: np.stack([np.ones_like(sizes), sizes ** -values[0], steps ** -values[1]], axis=1),
        lambda coefficients: min(coefficients) >= 0,
    )
    if fit is None:
        return None
    (a, b), (floor, size_term, step_term) = fit
    return lambda size, step: float(floor + size_term * (size / 1e6) ** -a + step_term * (step / 1e3) ** -b)


def cut(curve, budget_s: float, share: float) -> list[tuple[float, float, int]]:
    """The evaluations a probe of ``share`` of the budget would have, from a quarter of its length on (earlier ones
    are the warmup's fall); None where fewer than three, or less than one doubling, are left."""
    end = share * budget_s * 1.001
    points = [point for point in curve if end / 4 <= point[0] <= end]
    if len(points) < 3 or points[-1][0] < 2 * points[0][0]:
        return None
    return points


def analyse(grids: list[Path]) -> list[dict]:
    rows = []
    for grid in grids:
        runs = list(full_runs(grid))
        laws = {}  # (budget, share) -> the law across that budget's sizes
        for budget in dict.fromkeys(run[0] for run in runs):
            for share in SHARES:
                cuts = [(run[5], cut(run[4], run[2], share)) for run in runs if run[0] == budget and run[5]]
                laws[budget, share] = across_sizes([(size, points) for size, points in cuts if points])
        for budget, size, budget_s, decay, curve, parameters in runs:
            stable = [point for point in curve if point[0] <= (1 - decay) * budget_s + 1.0]
            at, target, step = stable[-1]
            row = {
                "grid": grid.name,
                "budget": budget,
                "size": size,
                "stable_end_s": round(at, 1),
                "stable_loss": round(target, 4),
                "final_loss": round(curve[-1][1], 4),
                "errors": {},
            }
            for share in SHARES:
                points = cut(curve, budget_s, share)
                pairs = None if points is None else [(t, loss) for t, loss, _ in points]
                for method, extrapolate in zip(METHODS, (log_linear, power_law)):
                    error = None if pairs is None else round(extrapolate(pairs, at) - target, 4)
                    row["errors"][f"{method} {share:.2f}"] = error
                law = laws[budget, share]
                error = None if law is None or pairs is None else round(law(parameters, step) - target, 4)
                row["errors"][f"across sizes {share:.2f}"] = error
            rows.append(row)
    return rows


def summary(rows: list[dict]) -> list[dict]:
    table = []
    for grid in dict.fromkeys(row["grid"] for row in rows):
        for method in METHODS:
            for share in SHARES:
                key = f"{method} {share:.2f}"
                errors = [
                    abs(row["errors"][key]) for row in rows if row["grid"] == grid and row["errors"][key] is not None
                ]
                table.append(
                    {
                        "grid": grid,
                        "method": method,
                        "share": round(share, 3),
                        "runs": len(errors),
                        "median_abs_error": round(statistics.median(errors), 3) if errors else None,
                        "within_target": sum(error <= TARGET for error in errors),
                    }
                )
    return table


def write(rows: list[dict], table: list[dict], output_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "results.json").write_text(json.dumps({"runs": rows, "summary": table}, indent=2) + "\n")
    lines = [
        "Each full run's own validation curve, cut at a share of its budget, extrapolated to the end of its stable "
        "phase (the last evaluation before the LR decays), against the loss the run measured there. Runs read from "
        f"{', '.join(sorted({row['grid'] for row in rows}))}; nothing trained.",
        "",
        "| grid | extrapolation | probe share of the budget | runs | median abs error (nat) | within 0.1 nat |",
        "|---|---|---|---|---|---|",
    ]
    for entry in table:
        median = "" if entry["median_abs_error"] is None else f"{entry['median_abs_error']:.3f}"
        lines.append(
            f"| {entry['grid']} | {entry['method']} | {entry['share']:.2f} | {entry['runs']} | {median} | "
            f"{entry['within_target']} of {entry['runs']} |"
        )
    lines += [
        "",
        "| grid | budget | size | stable end: loss | final (after decay) | errors at 0.05 / 0.10 / 0.20 / 0.33 |",
    ]
    lines.append("|---|---|---|---|---|---|")
    for row in rows:
        errors = " · ".join(
            " / ".join(
                "-"
                if row["errors"][f"{method} {share:.2f}"] is None
                else f"{row['errors'][f'{method} {share:.2f}']:+.2f}"
                for share in SHARES
            )
            for method in METHODS
        )
        lines.append(
            f"| {row['grid']} | {row['budget']} | {row['size']} | {row['stable_end_s']:.0f}s: "
            f"{row['stable_loss']:.3f} | {row['final_loss']:.3f} | {errors} ({' · '.join(METHODS)}) |"
        )
    (output_dir / "results.md").write_text("\n".join(lines) + "\n")
    figure, axes = plt.subplots(1, len(METHODS), figsize=(15, 4), sharey=True)
    for axis, method in zip(axes, METHODS):
        for grid in dict.fromkeys(row["grid"] for row in rows):
            entries = [e for e in table if e["grid"] == grid and e["method"] == method and e["median_abs_error"]]
            axis.plot([e["share"] for e in entries], [e["median_abs_error"] for e in entries], marker="o", label=grid)
        axis.axhline(TARGET, color="grey", linestyle="--", linewidth=1)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("probe length / budget")
        axis.set_title(method)
    axes[0].set_ylabel("median |extrapolated - measured| (nat)")
    axes[-1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(output_dir / "horizon.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grids", nargs="+", help="Folders written by bench_advisor.py --results_dir (with runs/)")
    parser.add_argument("--output_dir", required=True, help="Where results.md, results.json and horizon.png go")
    args = parser.parse_args()
    rows = analyse([Path(grid) for grid in args.grids])
    table = summary(rows)
    write(rows, table, Path(args.output_dir))
    print((Path(args.output_dir) / "results.md").read_text())


if __name__ == "__main__":
    main()
