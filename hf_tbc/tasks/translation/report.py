"""The translation study's report, from the runs' own records (``run_summary.json``, ``eval_results.json``,
``curve.jsonl``, the saved translations and the advice): the questions (``findings``), the figures, the plan, the
table of every run and example translations."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import yaml

from ...budget import format_duration
from ...budget.curves import plot_curves
from ...budget.runs import read_json
from ...hardware import describe_hardware
from .findings import equal_latency, forecast_section, width_versus_depth


def _draw_figures(config, curves: dict, references: Optional[dict]) -> None:
    if not curves:
        return
    root, budget = config.root, config.time_budget
    for x, file, axis in (
        ("elapsed_s", "bleu_vs_time.png", "wall-clock"),
        ("step", "bleu_vs_steps.png", "optimizer steps"),
    ):
        plot_curves(
            curves,
            root / file,
            x=x,
            y="eval_bleu",
            references=references,
            title=f"Validation BLEU (greedy) against {axis} ({budget} budget)",
        )
    plot_curves(
        curves,
        root / "loss_vs_time.png",
        ylabel="validation cross-entropy (label-smoothed)",
        title=f"Validation loss against wall-clock ({budget} budget)",
    )


def _training_table(config, summaries: dict, results: dict, copy: Optional[float]) -> list[str]:
    decodings = sorted({record.get("decoding", "greedy") for record in results.values() if record})
    lines = [
        f"## Training, {config.time_budget} per size",
        "",
        f"BLEU and chrF from sacreBLEU on detokenized output ({'; '.join(decodings) or 'greedy'}: the decoding saved "
        "with each model; the curves decode greedily). Copying the source sentence unchanged scores "
        f"{copy if copy is not None else '–'} BLEU on validation: a model must beat it to show it translates. "
        "Decoding for the curve runs off the budget clock; its cost is the last column.",
        "",
        "| size | parameters | steps | training wall-clock | validation BLEU | validation chrF | test BLEU | test chrF "
        "| distinct outputs | decoding off the budget |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in config.sizes:
        run, record = summaries[size], results[size]
        if not run or not record:
            lines.append(f"| {size} | not run | | | | | | | | |")
            continue
        validation, test = record["splits"]["validation"], record["splits"].get("test")
        lines.append(
            f"| {size} | {run['parameters']:,} | {run['steps']:,} | {format_duration(run['train_s'])} "
            f"| {validation['bleu']:.1f} | {validation['chrf']:.1f} | {test['bleu'] if test else '–'} "
            f"| {test['chrf'] if test else '–'} | {validation['distinct']:.0%} "
            f"| {format_duration(run['eval_s'])} ({run['eval_share_of_budget']:.0%} of the budget) |"
        )
    return lines


def _examples(results: dict) -> list[str]:
    scored = [size for size in results if results[size]]
    if not scored or not results[scored[0]]["splits"]["validation"]["samples"]:
        return []
    best = max(scored, key=lambda size: results[size]["splits"]["validation"]["bleu"])
    lines = [
        "",
        f"## Example translations ({best}, validation)",
        "",
        "| source | reference | translation |",
        "|---|---|---|",
    ]
    return lines + [
        f"| {s['source']} | {s['reference']} | {s['translation']} |"
        for s in results[best]["splits"]["validation"]["samples"]
    ]


def write_report(config, plan_rows: Optional[list[dict]] = None) -> Path:
    """``report.md``, ``bleu_vs_time.png``, ``bleu_vs_steps.png`` and ``loss_vs_time.png`` in the study folder."""
    folders = {size: config.stage_dir("translate", size) for size in config.sizes}
    summaries = {size: read_json(folder / "run_summary.json") for size, folder in folders.items()}
    loaded = {size: read_json(folder / "eval_results.json") for size, folder in folders.items()}
    results = {size: record if record and "splits" in record else None for size, record in loaded.items()}  # finished
    copy = next((record["copy_source"]["validation"]["bleu"] for record in results.values() if record), None)
    references = {f"copy the source ({copy:.1f}, full validation)": copy} if copy is not None else None
    _draw_figures(config, {size: folders[size] for size in config.sizes if results[size]}, references)
    hardware = next((record["hardware"] for record in summaries.values() if record), {})
    lines = [
        f"# Study `{config.name}`: translation, width against depth",
        "",
        width_versus_depth(config, results),
        "",
        "![BLEU against wall-clock](bleu_vs_time.png)",
        "",
        "![BLEU against steps](bleu_vs_steps.png)",
        "",
        "![validation loss against wall-clock](loss_vs_time.png)",
        "",
        *forecast_section(config, folders, results),
        *equal_latency(config),
        "## Hardware",
        "",
        describe_hardware(hardware),
        "",
    ]
    if plan_rows:
        lines += [
            "## Budget plan (probe before the study)",
            "",
            "| size | parameters | s / step | steps in budget |",
            "|---|---|---|---|",
        ]
        lines += [f"| {r['size']} | {r['parameters']:,} | {r['step_s']:.3f} | {r['steps']:,} |" for r in plan_rows]
        lines.append("")
    lines += _training_table(config, summaries, results, copy) + _examples(results)
    settings = {key: getattr(config, key) for key in ("name", "task", "sizes")}
    settings.update({key: config.section(key) for key in ("translation", "compression")}, release=config.release)
    lines += ["", "## Configuration", "", "```yaml", yaml.safe_dump(settings, sort_keys=False).strip(), "```", ""]
    report = config.root / "report.md"
    report.write_text("\n".join(lines))
    return report
