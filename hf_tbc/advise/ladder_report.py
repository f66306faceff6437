"""The advice from staged probing with cool-down branches: ``advice.json`` (the recommendation, every forecast, the
stages, what the probing cost and what the naive rules would have picked), ``advice.md`` and ``advice.png`` (each
size's probe, its rungs and its forecast against the budget)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from ..budget import format_duration
from ..errors import UsageError
from ..plots import _pyplot
from .forecast import crossover_budget
from .ladder_forecast import UNRANKED, LadderForecaster
from .probe import Probe
from .report import _when, budget_grid, recommendation, write_advice_files
from .staging import Staging

AT_PROBE_END, PER_STEP = "lowest at the probes' end", "lowest per step"


def _eval_at(probe: Probe, seconds: float) -> Optional[float]:
    points = [(abs(at - seconds), loss) for _, at, loss in probe.evaluations]
    return min(points)[1] if points else None


def _losses_at(probes: list[Probe], seconds: float) -> dict[str, Optional[float]]:
    """Each probe's validation loss at its evaluation nearest ``seconds`` of training (None: it has none)."""
    return {probe.size: _eval_at(probe, seconds) for probe in probes}


def naive_picks(probes: list[Probe], first_s: float) -> dict:
    """What two rules of thumb pick from the same probes: the lowest validation loss at the first stage's end (every
    size probed as long), and the lowest training loss per step (at the largest step every probe reached)."""
    at_end = _losses_at(probes, first_s)
    common = min(max(step for step, _, _ in probe.losses) for probe in probes if probe.losses)
    per_step = {
        probe.size: min(probe.losses, key=lambda row: abs(row[0] - common))[2] for probe in probes if probe.losses
    }
    return {
        AT_PROBE_END: min((size for size in at_end if at_end[size] is not None), key=at_end.get, default=None),
        PER_STEP: min(per_step, key=per_step.get, default=None),
        "common_step": common,
    }


def measured_leader(probes: list[Probe]) -> Optional[dict]:
    """The size with the lowest validation loss at the latest time every probe reached (the same wall-clock of
    training for each, on the same schedule): what the probes measured, not a forecast of the budget. None where a
    probe has no evaluation."""
    if not probes or any(not probe.evaluations for probe in probes):
        return None
    at = min(probe.evaluations[-1][1] for probe in probes)
    losses = _losses_at(probes, at)
    return {
        "size": min(losses, key=losses.get),
        "at_s": round(at, 1),
        "losses": {size: round(loss, 4) for size, loss in losses.items()},
    }


def crossovers(forecaster: LadderForecaster, grid: list[float], sizes: set) -> list[dict]:
    ordered = sorted((probe for probe in forecaster.probes if probe.size in sizes), key=lambda p: p.parameters or 0)
    rows = []
    for i, smaller in enumerate(ordered):
        for larger in ordered[i + 1 :]:
            turn = crossover_budget(forecaster, smaller, larger, grid)
            rows.append(
                {
                    "smaller": smaller.size,
                    "larger": larger.size,
                    "budget_s": turn,
                    "scanned_from_s": grid[0],
                    "scanned_to_s": grid[-1],
                }
            )
    return rows


def _no_forecast(staging: Staging, short: list, budget_s: float, allowance_s: float) -> str:
    """The one-line refusal where fewer than two sizes have a forecast: each unranked probe and why, and, where only
    warmup stood in the way, about what allowance (and which budget, at a third of it) would let them leave it."""
    why = {"too short": "inside its warmup", "on the plateau": "on the unigram plateau"}
    probes = ", ".join(f"{row.size} ({staging.probes[row.size].steps} steps, {why[row.support]})" for row in short)
    text = f"no forecast for {format_duration(budget_s)}: the probes of {probes} ended there within the " + (
        f"{format_duration(allowance_s)} probing allowance"
    )
    warm = [staging.probes[row.size] for row in short if row.support == "too short"]
    if warm and len(warm) == len(short):
        # each size may lengthen its first probe within its share of the allowance; a branch adds its cool-down
        needed = staging.branch_factor() * max(probe.past_warmup_s() for probe in warm) * len(staging.probes)
        budget = 3 * needed if 3 * needed > budget_s else None  # where the default allowance, a third, would do
        return (
            f"{text}: leaving warmup takes about {format_duration(needed)} of probing here: pass --probe_allowance "
            f"{math.ceil(needed)}s"
            + (f", or advise for a --time_budget of {format_duration(budget)} or more" if budget else "")
            + " (fewer --model_sizes, or a smaller --warmup_steps, lower it too)"
        )
    return f"{text}: pass a larger --probe_allowance (and --probe_budget), or advise for a longer --time_budget"


def _choice(staging: Staging, ranked: list, short: list, budget_s: float, allowance_s: float) -> dict:
    """The recommendation: from the forecasts (``basis`` "forecast") where two or more sizes have one; otherwise the
    size the probes measured ahead (``basis`` "measured", never clear), with ``no_forecast`` saying why there is no
    forecast and what would give one; a one-line ``UsageError`` where not even that was measured."""
    if len(ranked) >= 2:
        choice = {**recommendation(ranked), "basis": "forecast"}
        if short:
            choice.update(clear=False, overlapping=[*choice["overlapping"], *(row.size for row in short)])
        return choice
    why = _no_forecast(staging, short, budget_s, allowance_s)
    leader = measured_leader(list(staging.probes.values()))
    if leader is None:
        raise UsageError(why)
    others = [size for size in staging.probes if size != leader["size"]]
    return {
        "recommended_size": leader["size"],
        "clear": False,
        "overlapping": others,
        "basis": "measured",
        "no_forecast": why,
        "measured": leader,
    }


def ladder_record(staging: Staging, budget_s: float, first_s: float, allowance_s: float, hardware: str) -> dict:
    """The advice. A size whose probe could not leave its warmup (or the unigram plateau) within the allowance gets
    no forecast (its row says so, and the recommendation is among the others, never clear); where fewer than two
    sizes have a forecast, the recommendation is the size the probes measured ahead at the latest time all reached,
    said to be no forecast (see :func:`_choice`; the probes and branches stay, for a rerun with a larger allowance
    to reuse)."""
    forecaster = staging.forecaster()
    forecasts = forecaster.forecast_all(budget_s)
    short = [row for row in forecasts if row.support in UNRANKED]
    ranked = [row for row in forecasts if row.support not in UNRANKED]
    choice = _choice(staging, ranked, short, budget_s, allowance_s)
    probes = list(staging.probes.values())
    # a crossover before the first rung would be read off a line drawn backwards: the scan starts at the last rung
    start = max(rungs[-1].end_s for rungs in staging.ladders.values())
    cost = staging.cost_s(choice["recommended_size"])
    return {
        **choice,
        "method": "cool-down branches, staged",
        "time_budget_s": budget_s,
        "probe_s": first_s,
        "probe_cost_s": round(cost, 1),
        "probe_cost_share": round(cost / budget_s, 3),
        "allowance_s": round(allowance_s, 1),
        "schedule": forecaster.schedule,
        "schedule_shift": {"central": forecaster.shift, "range": list(forecaster.shift_range)},
        "hardware": hardware,
        "stages": staging.stages,
        "forecasts": {
            row.size: {
                **row.as_row(),
                "parameters": staging.probes[row.size].parameters,
                "step_seconds": round(staging.probes[row.size].step_seconds(), 4),
                "probe_steps": staging.probes[row.size].steps,
                "probe_s": staging.probes[row.size].probe_s,
                "probe_eval_loss": staging.probes[row.size].final_eval(),
                "unigram_loss": staging.probes[row.size].unigram_loss,
                "checkpoint": staging.probes[row.size].checkpoint,
                "ladder": [
                    {"end_s": round(rung.end_s, 1), "steps": rung.steps, "loss": round(rung.loss, 4)}
                    for rung in staging.ladders[row.size]
                ],
                "probe_wall_s": round(staging.probe_wall_s[row.size], 1),
                "branch_wall_s": round(staging.branch_wall_s[row.size], 1),
            }
            for row in forecasts
        },
        "without_forecast": [row.size for row in short],
        "naive": naive_picks(probes, first_s),
        "crossovers": crossovers(forecaster, budget_grid(start, budget_s), {row.size for row in ranked}),
    }


def _interval(row: dict) -> str:
    if row["forecast_loss"] is None:
        return f"no forecast ({row['support']})"
    return f"{row['forecast_loss']:.3f} [{row['forecast_low']:.3f}, {row['forecast_high']:.3f}]"


def _headline(record: dict, budget: str, winner: str, forecasts: dict) -> str:
    """The recommendation in one paragraph: on the forecasts (how certain), or on what the probes measured where
    they could not support a forecast."""
    if record.get("basis") == "measured":
        measured = record["measured"]
        losses = ", ".join(f"{size} {loss:.3f}" for size, loss in measured["losses"].items())
        why = record["no_forecast"]
        return (
            f"**Train {winner}: not a forecast.** {why[:1].upper()}{why[1:]}. What the probes measured: at "
            f"{format_duration(measured['at_s'])} of training, "
            f"the latest time every probe reached, {winner} had the lowest validation loss ({losses}). That is the "
            "size ahead now; whether a slower size overtakes it by the deadline, these probes cannot say."
        )
    text = f"**Train {winner}.** Its forecast validation loss at {budget} is the lowest: {_interval(forecasts[winner])}"
    if record["clear"]:
        return text + "; its interval clears every other size's."
    if not record.get("without_forecast"):
        return (
            text + f"; the intervals of {', '.join(record['overlapping'])} overlap it, so the ranking is not certain."
        )
    return (
        text + f"; {', '.join(record['without_forecast'])} could not be forecast (its probe did not leave its warmup "
        "or the unigram plateau within the allowance), so it is not ranked."
    )


def ladder_markdown(record: dict, path: Path) -> Path:
    budget, winner = format_duration(record["time_budget_s"]), record["recommended_size"]
    forecasts = record["forecasts"]
    lines = [f"# Which size to train for {budget}", "", _headline(record, budget, winner, forecasts), ""]
    lines += [
        f"Hardware: {record['hardware'].rstrip('.')}. Every size was probed for {format_duration(record['probe_s'])} "
        f"on the schedule of the {budget} run and branched at the probe's end (the LR cooled to zero over a quarter "
        "of the time again: the loss a run ending there reaches)"
        + (
            "; the sizes still in contention were continued and branched again"
            if len(record.get("stages") or []) > 1
            else ""
        )
        + f". Probing cost {format_duration(record['probe_cost_s'])} of wall-clock "
        f"({record['probe_cost_share']:.0%} of the budget; the recommended size's probe is the start of its run and "
        "not counted).",
        "",
    ]
    lines += [
        "| size | parameters | s / step | steps at the budget | rungs: end, loss | slope / doubling | "
        "forecast loss [interval] | basis |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, row in forecasts.items():
        parameters = f"{row['parameters']:,}" if row["parameters"] else "?"
        rungs = "; ".join(f"{format_duration(rung['end_s'])}: {rung['loss']:.3f}" for rung in row["ladder"])
        lines.append(
            f"| {size} | {parameters} | {row['step_seconds']:.3f} | {row['steps']:,} | {rungs} | "
            f"{row['slope_per_doubling']:+.3f} | {_interval(row)} | {row['support']} |"
        )
    lines.append("")
    for size, row in forecasts.items():
        lines.extend(f"- {size}: {note}." for note in row["notes"])
    lines.extend(
        f"- {row['larger']} overtakes {row['smaller']} {_when(row['budget_s'], row)} (central forecasts)."
        for row in record["crossovers"]
    )
    for number, stage in enumerate(record["stages"], 1):
        lengths = ", ".join(f"{size} {format_duration(seconds)}" for size, seconds in stage["probe_s"].items())
        lines.append(
            f"- Stage {number}: probes to {lengths}; in contention after it: {', '.join(stage['contenders'])}"
            + (f" ({stage['stopped']})" if stage.get("stopped") else "")
            + "."
        )
    naive = record["naive"]
    lines += [
        f"- Rules of thumb on the same probes: lowest loss at the probes' end picks {naive[AT_PROBE_END]}, lowest "
        f"loss per step (step {naive['common_step']}) picks {naive[PER_STEP]}.",
        "",
        "How to read it: a rung is the validation loss of a run that ended at that point. The forecast carries the "
        "last rung forward at the slope per doubling of time the probe measured, to the budget"
        + (
            ""
            if record["schedule_shift"]["central"] == 1.0
            else f" divided by {record['schedule_shift']['central']} (under {record['schedule']} a run ends where a "
            f"branch of {1 / record['schedule_shift']['central']:.0%} of its length does)"
        )
        + f"; the interval takes schedule shifts of {record['schedule_shift']['range'][0]} to "
        f"{record['schedule_shift']['range'][1]}, the change of slope the probe showed, and a bend of the curve it "
        "did not.",
    ]
    if record.get("continue"):
        lines += ["", f"Continue {winner}'s probe to the deadline (its probe is the start of that run):", ""]
        lines += ["```", record["continue"], "```"]
    path.write_text("\n".join(lines) + "\n")
    return path


def plot_ladder(
    forecaster: LadderForecaster, record: dict, path: Path, outcomes: Optional[dict[str, list[tuple]]] = None
) -> Path:
    """Each size's probe (validation losses, thin), its rungs (squares) and its forecast against the budget (dashed,
    with its band), the target budget marked; given ``outcomes`` (per size, the full run's ``(train_s, eval_loss)``
    points), each run to the deadline, its end starred."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    start = max(rungs[-1].end_s for rungs in forecaster.ladders.values())
    grid = budget_grid(start, record["time_budget_s"], stretch=2.0)
    for index, probe in enumerate(forecaster.probes):
        color = colors[index % len(colors)]
        points = probe.evaluations
        axes.plot(
            [at / 60 for _, at, _ in points], [loss for _, _, loss in points], color=color, linewidth=1.0, alpha=0.8
        )
        rungs = forecaster.ladders[probe.size]
        axes.plot(
            [rung.end_s / 60 for rung in rungs], [rung.loss for rung in rungs], "s", color=color, label=f"{probe.size}"
        )
        if probe.size in record.get("without_forecast", []):
            continue
        rows = [forecaster.forecast(probe, budget) for budget in grid]
        minutes = [budget / 60 for budget in grid]
        axes.plot(minutes, [row.forecast_loss for row in rows], "--", color=color)
        axes.fill_between(
            minutes, [row.forecast_low for row in rows], [row.forecast_high for row in rows], color=color, alpha=0.12
        )
        measured = (outcomes or {}).get(probe.size)
        if measured:
            axes.plot([at / 60 for at, _ in measured], [loss for _, loss in measured], color=color, linewidth=0.6)
            axes.plot(measured[-1][0] / 60, measured[-1][1], "*", color=color, markersize=11, markeredgecolor="k")
    axes.axvline(record["time_budget_s"] / 60, color="0.3", linestyle=":", linewidth=1.2, label="target budget")
    if record.get("basis") == "measured":  # no forecast: the pick is the lowest loss where every probe reached
        measured = record["measured"]
        axes.axvline(measured["at_s"] / 60, color="0.5", linestyle="--", linewidth=1.0)
        axes.plot(
            measured["at_s"] / 60,
            measured["losses"][measured["size"]],
            "o",
            color="0.2",
            fillstyle="none",
            markersize=10,
            label=f"no forecast: {measured['size']} ahead where every probe reached",
        )
    axes.set_xscale("log")
    axes.set_xlabel("wall-clock minutes (probes, rungs) / training budget in minutes (forecasts)")
    axes.set_ylabel(record.get("loss", "validation loss"))
    axes.set_title("Probes (lines), cool-down rungs (squares), forecast at each budget (dashed, band)")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_ladder_advice(forecaster: LadderForecaster, record: dict, output_dir: str) -> dict:
    return write_advice_files(record, output_dir, ladder_markdown, lambda path: plot_ladder(forecaster, record, path))
