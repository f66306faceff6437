"""What the advisor writes: ``advice.json`` (the recommendation and every forecast), ``advice.md`` (the same for
people) and ``advice.png`` (each probe's measured curve, solid, and each size's forecast loss against the budget,
dashed, with its interval as a band)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..budget import format_duration
from ..budget.runs import write_json
from ..plots import _pyplot
from .forecast import BREAK_RISK_RATIO, Forecast, Forecaster, Probe, crossover_budget

SCAN_POINTS = 48


def budget_grid(probe_s: float, budget_s: float, stretch: float = 16.0) -> list[float]:
    """Budgets from the probe's length to ``stretch`` times the target, spaced evenly on a log scale."""
    return [float(value) for value in np.geomspace(max(probe_s, 1.0), budget_s * stretch, SCAN_POINTS)]


def recommendation(forecasts: Sequence[Forecast]) -> dict:
    """The size with the lowest central forecast, and whether its interval clears every other size's."""
    best = min(forecasts, key=lambda row: row.forecast_loss)
    overlapping = [row.size for row in forecasts if row is not best and row.forecast_low <= best.forecast_high]
    return {"recommended_size": best.size, "clear": not overlapping, "overlapping": overlapping}


def crossovers(forecaster: Forecaster, probes: Sequence[Probe], grid: Sequence[float]) -> list[dict]:
    """For each pair of sizes, smaller first (by parameters), the first budget on ``grid`` where the larger one's
    forecast is the lower; None if it never is on the grid."""
    ordered = sorted(probes, key=lambda probe: probe.parameters or 0)
    rows = []
    for i, smaller in enumerate(ordered):
        for larger in ordered[i + 1 :]:
            rows.append(
                {
                    "smaller": smaller.size,
                    "larger": larger.size,
                    "budget_s": crossover_budget(forecaster, smaller, larger, grid),
                    "if_lead_stays_s": crossover_budget(forecaster, smaller, larger, grid, form="lead"),
                    "if_speedup_s": crossover_budget(forecaster, smaller, larger, grid, form="speed-up"),
                    "scanned_from_s": grid[0],
                    "scanned_to_s": grid[-1],
                }
            )
    return rows


def _when(budget: Optional[float], row: dict) -> str:
    if budget is None:
        return f"not by {format_duration(row['scanned_to_s'])}"
    if budget <= row["scanned_from_s"]:
        return "already at the shortest budget scanned"
    return f"at about {format_duration(budget)}"


def describe_crossover(row: dict) -> str:
    central, lead, speedup = (_when(row[key], row) for key in ("budget_s", "if_lead_stays_s", "if_speedup_s"))
    if central == lead == speedup:
        return f"{row['larger']} overtakes {row['smaller']} {central}, under either form"
    return (
        f"{row['larger']} overtakes {row['smaller']} {central} (central forecast; {lead} if its per-step lead "
        f"stays, {speedup} if it is a per-step speed-up)"
    )


def advice_record(
    forecaster: Forecaster, budget_s: float, probe_s: float, hardware: str, continue_command: Optional[str]
) -> dict:
    forecasts = forecaster.forecast_all(budget_s)
    grid = budget_grid(probe_s, budget_s)
    choice = recommendation(forecasts)
    by_size = {probe.size: probe for probe in forecaster.probes}
    return {
        **choice,
        "time_budget_s": budget_s,
        "probe_s": probe_s,
        "probe_cost_s": round(sum(probe.train_s for probe in forecaster.probes), 1),
        "hardware": hardware,
        "reference_size": forecaster.reference.probe.size,
        "forecasts": {
            row.size: {
                **row.as_row(),
                "parameters": by_size[row.size].parameters,
                "step_seconds": round(by_size[row.size].step_seconds(), 4),
                "probe_steps": by_size[row.size].steps,
                "probe_eval_loss": by_size[row.size].final_eval(),
                "unigram_loss": by_size[row.size].unigram_loss,
                "checkpoint": by_size[row.size].checkpoint,
            }
            for row in forecasts
        },
        "crossovers": crossovers(forecaster, forecaster.probes, grid),
        "continue": continue_command,
    }


def _interval(row: dict) -> str:
    return f"{row['forecast_loss']:.3f} [{row['forecast_low']:.3f}, {row['forecast_high']:.3f}]"


def write_markdown(record: dict, path: Path) -> Path:
    budget, winner = format_duration(record["time_budget_s"]), record["recommended_size"]
    forecasts = record["forecasts"]
    lines = [
        f"# Which size to train for {budget}",
        "",
        f"**Train {winner}.** Its forecast validation loss at {budget} is the lowest: {_interval(forecasts[winner])}"
        + (
            "; its interval clears every other size's."
            if record["clear"]
            else f"; the intervals of {', '.join(record['overlapping'])} overlap it, so the ranking is not certain."
        ),
        "",
        f"Hardware: {record['hardware'].rstrip('.')}. Probes of {format_duration(record['probe_s'])} each, on the "
        f"schedule of the {budget} run ({format_duration(record['probe_cost_s'])} of training in all). The "
        f"reference curve is {record['reference_size']}'s, the probe with the most steps.",
        "",
        "| size | parameters | s / step | steps at the budget | forecast loss [interval] | "
        "per-step speed-up [range] | per-step lead, nat [range] | follows | basis |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size, row in forecasts.items():
        parameters = f"{row['parameters']:,}" if row["parameters"] else "?"
        speed = f"{row['speedup']:.2f} [{row['speedup_low']:.2f}, {row['speedup_high']:.2f}]"
        lead = f"{row['lead']:+.3f} [{row['lead_low']:+.3f}, {row['lead_high']:+.3f}]"
        lines.append(
            f"| {size} | {parameters} | {row['step_seconds']:.3f} | {row['steps']:,} | {_interval(row)} | {speed} | "
            f"{lead} | {row['form']} | {row['support']} |"
        )
    lines.append("")
    for size, row in forecasts.items():
        for note in row["notes"]:
            lines.append(f"- {size}: {note}.")
    lines.append("")
    lines.extend(f"- {describe_crossover(row)}." for row in record["crossovers"])
    lines += [
        "",
        "How to read it: each size is matched against the reference curve in two forms, a per-step speed-up (its "
        "lead shrinks as both learn) and a per-step lead that stays; the interval holds every forecast either form "
        "allows, with refits of the reference curve. A forecast more than "
        f"{BREAK_RISK_RATIO:.0f}× beyond the steps the probes saw is marked: a break in the curve after the probes "
        "would make the loss lower than forecast.",
    ]
    if record["continue"]:
        lines += ["", f"Continue {winner}'s probe to the deadline (its probe is the start of that run):", ""]
        lines += ["```", record["continue"], "```"]
    path.write_text("\n".join(lines) + "\n")
    return path


def plot_advice(
    forecaster: Forecaster, record: dict, path: Path, outcomes: Optional[dict[str, list[tuple[float, float]]]] = None
) -> Path:
    """The probes (solid), each size's forecast at every budget (dashed, with its band) and, given ``outcomes``
    (per size, the full run's ``(train_s, eval_loss)`` points), each run to the deadline, its end marked: the
    forecast at the target budget is to be read against that mark."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    # from twice the probe's length: at budgets near it a forecast is the probe itself, extrapolated backwards
    grid = budget_grid(2 * record["probe_s"], record["time_budget_s"], stretch=2.0)
    lowest = min(forecaster.forecast(probe, grid[-1]).forecast_low for probe in forecaster.probes)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, probe in enumerate(forecaster.probes):
        color = colors[index % len(colors)]
        axes.plot(
            [seconds / 60 for _, seconds, _ in probe.losses],
            [loss for _, _, loss in probe.losses],
            color=color,
            linewidth=1.2,
            label=f"{probe.size} probe (training loss)",
        )
        if probe.evaluations:
            axes.plot(
                [seconds / 60 for _, seconds, _ in probe.evaluations],
                [loss for _, _, loss in probe.evaluations],
                "o",
                color=color,
                markersize=4,
            )
        rows = [forecaster.forecast(probe, budget) for budget in grid]
        minutes = [budget / 60 for budget in grid]
        axes.plot(minutes, [row.forecast_loss for row in rows], "--", color=color, label=f"{probe.size} forecast")
        axes.fill_between(
            minutes, [row.forecast_low for row in rows], [row.forecast_high for row in rows], color=color, alpha=0.15
        )
        measured = (outcomes or {}).get(probe.size)
        if measured:
            axes.plot(
                [seconds / 60 for seconds, _ in measured],
                [loss for _, loss in measured],
                color=color,
                linewidth=0.8,
                alpha=0.7,
                label=f"{probe.size} run (validation, on its schedule)",
            )
            axes.plot(measured[-1][0] / 60, measured[-1][1], "*", color=color, markersize=11, markeredgecolor="k")
            lowest = min(lowest, measured[-1][1])
    axes.axvline(record["time_budget_s"] / 60, color="0.3", linestyle=":", linewidth=1.2, label="target budget")
    unigram = forecaster.reference.probe.unigram_loss
    if unigram:
        axes.axhline(unigram, color="0.5", linestyle="-.", linewidth=1.0, label=f"unigram loss ({unigram:.2f})")
    unigram_or_top = unigram if unigram else max(probe.losses[-1][2] for probe in forecaster.probes)
    axes.set_ylim(max(lowest - 0.2, 0.0), unigram_or_top + 1.0)  # the first steps' losses (ln vocab) run off the top
    axes.set_xscale("log")
    axes.set_xlabel("wall-clock minutes (probes) / training budget in minutes (forecasts)")
    axes.set_ylabel(record.get("loss", "MLM loss"))
    axes.set_title(
        f"Forecast loss at the deadline, from {format_duration(record['probe_s'])} probes"
        + (" (stars: measured at the deadline)" if outcomes else "")
    )
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_advice_files(record: dict, output_dir: str, markdown: Callable, figure: Callable) -> dict:
    """``advice.md`` (``markdown(record, path)``), ``advice.png`` (``figure(path)``) and, last and whole (through a
    temporary file), ``advice.json``: the record a study takes for a finished advisor stage is never there without
    the other two, nor half written."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    markdown(record, folder / "advice.md")
    figure(folder / "advice.png")
    write_json(folder / "advice.json", record)
    return record


def write_advice(forecaster: Forecaster, record: dict, output_dir: str) -> dict:
    return write_advice_files(record, output_dir, write_markdown, lambda path: plot_advice(forecaster, record, path))
