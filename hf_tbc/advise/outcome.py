"""The forecast against the outcome: once every size has run to the deadline, each one's forecast is set next to
the validation loss it reached, in a report table and in the advisor's figure with the runs drawn over it. A study
reads this for its answer to "which size wins on wall-clock"."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Mapping, Optional

from ..budget import format_duration
from ..budget.curves import read_curve
from ..errors import UsageError
from .forecast import Forecaster
from .ladder_report import AT_PROBE_END, PER_STEP, plot_ladder
from .probing import read_probe
from .report import _when, describe_crossover, plot_advice
from .staging import read_staging

ADVICE_RECORD = "advice.json"
FORECAST_FIGURE = "forecast_vs_outcome.png"


def read_advice(folder: Path) -> Optional[dict]:
    """The advisor's record in ``folder``, or None when there is none."""
    path = Path(folder) / ADVICE_RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def final_eval_loss(run_dir: Path) -> Optional[float]:
    """The last validation loss of a finished run, from its curve (the points the probe's forecast was fitted to)."""
    losses = [row["eval_loss"] for row in read_curve(run_dir) if row.get("eval_loss") is not None]
    return losses[-1] if losses else None


def pick_basis(advice: dict) -> str:
    """How sure the advisor's pick was, as a parenthesis: the probes measured it ahead but could not support a
    forecast, or its interval overlapped others', or nothing (its interval cleared every other size's)."""
    if advice.get("basis") == "measured":
        return " (not a forecast: the probes could not support one, and it was the size they measured ahead)"
    if advice["clear"]:
        return ""
    return " (its interval overlapped " + ", ".join(advice["overlapping"]) + "'s)"


def outcome_of_forecasts(advice: Optional[dict], actual: Mapping[str, Optional[float]]) -> list[dict]:
    """Per size, the advisor's forecast at the budget next to ``actual[size]``, the loss its run reached there."""
    rows = []
    for size, forecast in ((advice or {}).get("forecasts") or {}).items():
        loss = actual.get(size)
        scored = loss is not None and forecast["forecast_loss"] is not None
        rows.append(
            {
                "size": size,
                "probe_steps": forecast["probe_steps"],
                "forecast_loss": forecast["forecast_loss"],
                "forecast_low": forecast["forecast_low"],
                "forecast_high": forecast["forecast_high"],
                "support": forecast["support"],
                "actual_loss": loss,
                "error": loss - forecast["forecast_loss"] if scored else None,
                "covered": forecast["forecast_low"] <= loss <= forecast["forecast_high"] if scored else None,
            }
        )
    return rows


def forecast_lines(advice: dict, actual: Mapping[str, Optional[float]], measured_winner: Optional[str]) -> list[str]:
    """The report's forecast paragraph, table, scores and crossovers, with ``actual`` the measured losses."""
    recommended = advice["recommended_size"]
    verdict = "" if measured_winner is None else f": {'right' if recommended == measured_winner else 'wrong'}"
    rows = outcome_of_forecasts(advice, actual)
    lines = [
        f"Forecast: the advisor, from probes of {format_duration(advice['probe_s'])} per size (the first "
        f"{advice['probe_s'] / advice['time_budget_s']:.0%} of each run, on its schedule), recommended "
        f"**{recommended}**{verdict}{pick_basis(advice)}.",
        "",
        "| size | probe steps | forecast loss [interval] | basis | measured loss | measured − forecast | inside |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        loss = "not run" if row["actual_loss"] is None else f"{row['actual_loss']:.3f}"
        error = "" if row["error"] is None else f"{row['error']:+.3f}"
        inside = "" if row["covered"] is None else ("yes" if row["covered"] else "**no**")
        forecast = (
            "no forecast"
            if row["forecast_loss"] is None
            else f"{row['forecast_loss']:.3f} [{row['forecast_low']:.3f}, {row['forecast_high']:.3f}]"
        )
        lines.append(
            f"| {row['size']} | {row['probe_steps']:,} | {forecast} | {row['support']} | {loss} | {error} | {inside} |"
        )
    scored = [row for row in rows if row["error"] is not None]
    if scored:
        median = statistics.median(abs(row["error"]) for row in scored)
        covered = sum(row["covered"] for row in scored)
        lines += [
            "",
            f"Median |measured − forecast| {median:.3f} nat; the interval held the measured loss for {covered} of "
            f"{len(scored)} sizes.",
        ]
    naive = advice.get("naive")
    if naive and measured_winner is not None:
        verdicts = [
            f"{rule} picked {naive[rule]} ({'right' if naive[rule] == measured_winner else 'wrong'})"
            for rule in (AT_PROBE_END, PER_STEP)
        ]
        lines += ["", f"Rules of thumb on the same probes: {'; '.join(verdicts)}."]
    crossings = [
        describe_crossover(row)
        if "if_lead_stays_s" in row
        else f"{row['larger']} overtakes {row['smaller']} {_when(row['budget_s'], row)}"
        for row in advice.get("crossovers", [])
    ]
    if crossings:
        lines += ["", "Where the ranking turns, as forecast from the probes:", ""]
        lines += [f"- {line}." for line in crossings]
    return lines


def plot_outcome(
    advice: dict, run_dirs: Mapping[str, Path], path: Path, advice_dir: Optional[Path] = None
) -> Optional[Path]:
    """The advisor's figure redrawn with each size's run to the deadline over its forecast; None when a size's
    probe record (or, for staged probing, its ladder in ``advice_dir``) is gone (the table still reports)."""
    outcomes = {
        size: [(row["train_s"], row["eval_loss"]) for row in read_curve(folder) if row.get("eval_loss") is not None]
        for size, folder in run_dirs.items()
    }
    if advice.get("method", "").startswith("cool-down"):
        if advice_dir is None:
            return None
        staging = read_staging(
            str(advice_dir), dict(run_dirs), advice["time_budget_s"], advice["schedule"], advice["stages"]
        )
        return None if staging is None else plot_ladder(staging.forecaster(), advice, Path(path), outcomes)
    try:
        forecaster = Forecaster([read_probe(Path(folder), size) for size, folder in run_dirs.items()])
    except (TypeError, AttributeError, UsageError):
        return None
    return plot_advice(forecaster, advice, Path(path), outcomes)
