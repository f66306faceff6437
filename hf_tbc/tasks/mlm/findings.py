"""The paper's three questions, each answered from a study's records in its own report section.

(a) Which size wins on wall-clock: measured, next to the advisor's forecast from its probes and the crossover budget.
(b) Are larger models more robust to compression: each size's accuracy against its own dense model, per variant.
(c) At equal latency (or size), does a compressed large model beat the small dense one.
"""

from __future__ import annotations

from typing import Optional

from ...advise.outcome import FORECAST_FIGURE, forecast_lines, plot_outcome, read_advice
from ...budget import format_duration
from ...compress.records import own_dense
from ...release.selection import best_under, cost, format_cost, resolve_selection

ROBUSTNESS_FIGURE = "accuracy_drop_vs_sparsity.png"


def robustness(compression: dict) -> dict[str, dict[str, float]]:
    """Per size, each variant's accuracy minus that size's own dense fp32 accuracy."""
    drops = {}
    for size, rows in compression.items():
        dense = own_dense(rows)
        if dense is not None:
            drops[size] = {row["variant"]: row["accuracy"] - dense["accuracy"] for row in rows if row is not dense}
    return drops


def mean_changes(drops: dict[str, dict[str, float]]) -> tuple[list[str], dict[str, float]]:
    """The variants every size has, and each size's mean accuracy change over them."""
    sizes = list(drops)
    first = drops[sizes[0]] if sizes else {}
    variants = [variant for variant in first if all(variant in drops[size] for size in sizes)]
    mean = {size: sum(drops[size][v] for v in variants) / len(variants) for size in sizes} if variants else {}
    return variants, mean


def read_study_advice(config) -> Optional[dict]:
    """The advisor's record of the study (``advice/advice.json``), or None when the study ran without it."""
    return read_advice(config.root / "advice")


def draw_forecast(config, advice: Optional[dict], pretraining: dict) -> Optional[str]:
    """The advisor's figure again, with each size's run to the deadline drawn over its forecast."""
    if not advice or not all(pretraining.get(size) for size in advice["forecasts"]):
        return None
    folders = {size: config.stage_dir("pretrain", size) for size in advice["forecasts"]}
    return (
        FORECAST_FIGURE
        if plot_outcome(advice, folders, config.root / FORECAST_FIGURE, config.root / "advice")
        else None
    )


def wall_clock_section(config, pretraining: dict, advice: Optional[dict]) -> list[str]:
    budget = config.section("pretraining")["time_budget"]
    lines = [f"## (a) Which size wins on wall-clock: {budget} of pretraining each", ""]
    runs = {size: run for size, run in pretraining.items() if run}
    if not runs:
        return lines + ["No pretraining run has finished yet.", ""]
    measured = min(runs, key=lambda size: runs[size]["final_eval_loss"])
    lines.append(
        f"Measured: **{measured}** reached the lowest validation MLM loss, {runs[measured]['final_eval_loss']:.3f}."
    )
    if not advice:
        lines += ["", "The study ran without the advisor (`advisor: false`), so there is no forecast to compare.", ""]
        return lines
    actual = {size: run["final_eval_loss"] for size, run in runs.items()}
    lines += ["", *forecast_lines(advice, actual, measured)]
    lines += ["", "The advisor's own record: [advice/advice.md](advice/advice.md).", ""]
    return lines


def robustness_section(compression: dict) -> list[str]:
    lines = ["## (b) Are larger models more robust to compression?", ""]
    drops = robustness(compression)
    if not drops:
        return lines + ["No compression grid has finished yet.", ""]
    sizes = list(drops)
    dense = {size: own_dense(compression[size])["accuracy"] for size in sizes}
    variants, mean = mean_changes(drops)
    lines += [
        "Each variant's accuracy minus its own size's dense fp32 accuracy (same recovery finetuning for every "
        "variant, the dense one too): a smaller drop is a more robust size. A size that learned little has little "
        "to lose, so read the drops next to the dense accuracies.",
        "",
        "| variant | " + " | ".join(f"{size} (dense {dense[size]:.4f})" for size in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for variant in variants:
        cells = [drops[size][variant] for size in sizes]
        best = max(cells)
        lines.append(
            f"| {variant} | "
            + " | ".join(f"**{cell:+.4f}**" if cell == best and len(sizes) > 1 else f"{cell:+.4f}" for cell in cells)
            + " |"
        )
    if len(sizes) > 1 and variants:
        least, ties = {size: 0 for size in sizes}, 0
        for variant in variants:
            cells = {size: drops[size][variant] for size in sizes}
            best = [size for size in sizes if cells[size] == max(cells.values())]
            if len(best) > 1:
                ties += 1
            else:
                least[best[0]] += 1
        lines += [
            "",
            f"Smallest drop, of {len(variants)} variants: "
            + ", ".join(f"{size} {least[size]}" for size in sizes)
            + (f", tied {ties}" if ties else "")
            + "; mean change "
            + ", ".join(f"{size} {mean[size]:+.4f}" for size in sizes)
            + ".",
        ]
    lines += ["", f"![accuracy against each size's own dense model]({ROBUSTNESS_FIGURE})", ""]
    return lines


def latency_section(config, compression: dict) -> list[str]:
    select_by, limit = selection(config.release)
    what = {"latency": "latency", "size": "size"}.get(select_by, select_by)
    lines = [f"## (c) At equal {what}, does a compressed large model beat the small one?", ""]
    rows = [dict(row, base=size) for size, records in compression.items() for row in records]
    if not rows:
        return lines + ["No compression grid has finished yet.", ""]
    small = config.sizes[0]
    dense = own_dense(compression.get(small, []))
    where = f"≤ {format_cost(limit, select_by)}" if limit is not None else "any cost"
    lines += [
        f"The most accurate variant of each size at {where} (the release section's `select_by: {select_by}`"
        + (f", `limit: {limit:g}`" if limit is not None else "")
        + f"), against the small dense baseline {small}"
        + (f" ({dense['accuracy']:.4f}, {format_cost(cost(dense, select_by), select_by)})" if dense else "")
        + ".",
        "",
        f"| size | best variant at {where} | accuracy | {select_by} | against {small} dense |",
        "|---|---|---|---|---|",
    ]
    for size, records in compression.items():
        row = best_under([dict(r, base=size) for r in records], select_by, limit)
        if row is None:
            lines.append(f"| {size} | none within the limit | | | |")
            continue
        against = f"{row['accuracy'] - dense['accuracy']:+.4f}" if dense else "–"
        lines.append(
            f"| {size} | `{row['variant']}` | {row['accuracy']:.4f} | {format_cost(cost(row, select_by), select_by)} "
            f"| {against} |"
        )
    lines += ["", "![accuracy against latency](accuracy_vs_latency.png)", ""]
    return lines


def selection(release: dict) -> tuple[str, Optional[float]]:
    """(select_by, limit) of a study's release section, read as release.py reads its flags."""
    return resolve_selection(release.get("select_by", "latency"), release.get("limit"), release.get("max_size_mb"))


def three_answers(config, pretraining: dict, compression: dict, advice: Optional[dict]) -> str:
    """The study's answer to the paper's three questions in plain words, computed from the records."""
    runs = {size: run for size, run in pretraining.items() if run}
    if not runs:
        return "No pretraining run has finished yet."
    budget = config.section("pretraining")["time_budget"]
    best_loss = min(runs, key=lambda size: runs[size]["final_eval_loss"])
    ordered = sorted(runs, key=lambda size: runs[size]["parameters"])
    text = (
        f"**(a)** At a {budget} pretraining budget on this hardware, **{best_loss}** reached the lowest validation "
        f"MLM loss ({runs[best_loss]['final_eval_loss']:.3f} after {runs[best_loss]['steps']:,} steps"
        + "".join(
            f"; {size} {runs[size]['final_eval_loss']:.3f} after {runs[size]['steps']:,} steps"
            for size in ordered
            if size != best_loss
        )
        + ")."
    )
    if best_loss == ordered[-1] and len(ordered) > 1:
        text += " The largest size won, as the paper predicts."
    elif len(ordered) > 1:
        text += (
            f" The largest size, {ordered[-1]}, did not win here: at this budget it got too few steps to overtake, "
            "contrary to the paper's finding at GPU scale."
        )
    if advice:
        recommended = advice["recommended_size"]
        text += f" The advisor, from {format_duration(advice['probe_s'])} probes, had recommended {recommended}" + (
            " (right)." if recommended == best_loss else f" (wrong: {best_loss} won)."
        )
        if advice.get("basis") == "measured":
            text += " That pick was not a forecast: the probes could not support one; it was the size they had ahead."
    drops = robustness(compression)
    if len(drops) > 1:
        sizes = sorted(drops, key=lambda size: runs[size]["parameters"] if size in runs else 0)
        variants, mean = mean_changes(drops)
        if variants:
            kept = max(sizes, key=lambda size: mean[size])
            text += (
                f"\n\n**(b)** Against its own dense model, the mean change in accuracy over {len(variants)} "
                "compressed variants was "
                + ", ".join(f"{size} {mean[size]:+.4f}" for size in sizes)
                + (
                    ": the largest size kept the most, as the paper finds."
                    if kept == sizes[-1] and mean[kept] > mean[sizes[0]]
                    else f": the largest size did not keep the most here ({kept} did)."
                    if kept != sizes[-1]
                    else ": no size kept more than the others."
                )
            )
    select_by, limit = selection(config.release)
    rows = [dict(row, base=size) for size, records in compression.items() for row in records]
    if rows:
        row = best_under(rows, select_by, limit)
        if row is not None:
            size = row["base"]
            where = f"At ≤ {format_cost(limit, select_by)}" if limit is not None else "Over all variants"
            text += (
                f"\n\n**(c)** {where}, the most accurate model is **{size} `{row['variant']}`** "
                f"({row['accuracy']:.4f} accuracy, {format_cost(cost(row, select_by), select_by)})."
            )
            small = ordered[0]
            dense = own_dense(compression.get(small, []))
            if dense is not None and size != small:
                verdict = "beats" if row["accuracy"] > dense["accuracy"] else "does not beat"
                text += (
                    f" It {verdict} the small dense baseline {small} ({dense['accuracy']:.4f}, "
                    f"{format_cost(cost(dense, select_by), select_by)})."
                )
        else:
            text += f"\n\n**(c)** No variant costs at most {format_cost(limit, select_by)} by {select_by}."
    return text
