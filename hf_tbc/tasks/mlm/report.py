"""The study report, from the runs' own records: the paper's three questions (``findings``), the figures, the
budget plan, and the tables of every run and variant."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import yaml

from ...budget import format_duration
from ...budget.curves import plot_curves
from ...budget.runs import read_json
from ...compress.plots import plot_compression, plot_robustness
from ...compress.records import read_records
from ...hardware import describe_hardware
from ..classification.compress import PLOTS
from .findings import (
    ROBUSTNESS_FIGURE,
    draw_forecast,
    latency_section,
    read_study_advice,
    robustness_section,
    three_answers,
    wall_clock_section,
)


def _draw_figures(config, pretraining: dict, finetuning: dict, compression: dict) -> None:
    """The paper's figures in the study folder: loss against wall-clock and steps, accuracy against the costs."""
    root, budget = config.root, config.section("pretraining")["time_budget"]
    curves = {size: config.stage_dir("pretrain", size) for size in config.sizes if pretraining[size]}
    references = _unigram_references(pretraining)
    for x, file, axis in (
        ("elapsed_s", "loss_vs_time.png", "wall-clock"),
        ("step", "loss_vs_steps.png", "optimizer steps"),
    ):
        plot_curves(
            curves,
            root / file,
            x=x,
            references=references,
            title=f"Validation MLM loss against {axis} ({budget} budget)",
        )
    tuned = [record for record in finetuning.values() if record and record.get("majority_accuracy") is not None]
    majority = tuned[0]["majority_accuracy"] if tuned else None
    if compression:
        for file, x in PLOTS.items():
            plot_compression(compression, root / file, x=x, majority=majority)
        plot_robustness(compression, root / ROBUSTNESS_FIGURE)


def _plan_table(plan_rows: Optional[list[dict]]) -> list[str]:
    if not plan_rows:
        return []
    lines = [
        "## Budget plan (probe before the study)",
        "",
        "| size | parameters | s / step | steps in budget | tokens in budget |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['size']} | {r['parameters']:,} | {r['step_s']:.3f} | {r['steps']:,} | {r['tokens']:,} |"
        for r in plan_rows
    ]
    return lines + [""]


def _training_table(config, pretraining: dict, finetuning: dict) -> list[str]:
    lines = [
        f"## Pretraining and finetuning, {config.section('pretraining')['time_budget']} per size",
        "",
        "The unigram loss is what predicting masked tokens from word frequencies alone scores on the same "
        "validation blocks: a model below it has learned something beyond frequencies.",
        "",
        "| size | parameters | steps | tokens seen | training wall-clock | final MLM loss | unigram loss "
        "| below unigram | finetuned accuracy | majority class |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in config.sizes:
        run, tuned = pretraining[size], finetuning[size]
        if run is None:
            lines.append(f"| {size} | not run | | | | | | | | |")
            continue
        accuracy = f"{tuned['accuracy']:.4f}" if tuned else "not run"
        majority = f"{tuned['majority_accuracy']:.4f}" if tuned and tuned.get("majority_accuracy") is not None else "–"
        unigram = run.get("unigram_loss")
        below = f"{unigram - run['final_eval_loss']:+.3f}" if unigram is not None else "–"
        lines.append(
            f"| {size} | {run['parameters']:,} | {run['steps']:,} | {run['tokens']:,} | "
            f"{format_duration(run['train_s'])} | {run['final_eval_loss']:.4f} | "
            f"{unigram if unigram is not None else '–'} | {below} | {accuracy} | {majority} |"
        )
    return lines


def _compression_table(compression: dict, release: list[dict]) -> list[str]:
    lines = [
        "",
        "## Compression",
        "",
        "| size | variant | pruning | sparsity | nonzero parameters | bits | size (MB) | accuracy | latency (ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size, rows in compression.items():
        lines += [
            f"| {size} | {r['variant']} | {r.get('pruning_method') or '–'} | {r['sparsity']:.3f} | "
            f"{r['nonzero_parameters']:,} | {r['bits']} | {r['size_bytes'] / 1e6:.2f} | {r['accuracy']:.4f} | "
            f"{r['latency_ms']:.1f} |"
            for r in rows
        ]
    if release:
        lines += ["", "## Release set", "", "| repo | accuracy | size (MB) | status |", "|---|---|---|---|"]
        lines += [
            f"| {e['repo_id']} | {e['accuracy']:.4f} | {e['size_bytes'] / 1e6:.2f} | {e['status']} |" for e in release
        ]
    return lines


def write_report(config, plan_rows: Optional[list[dict]] = None) -> Path:
    """``report.md`` and the figures in the study folder, from ``advice.json``, ``run_summary.json``,
    ``curve.jsonl``, ``eval_results.json``, ``compression.jsonl`` and ``release.json``."""
    root = config.root
    pretraining = {size: read_json(config.stage_dir("pretrain", size) / "run_summary.json") for size in config.sizes}
    finetuning = {size: read_json(config.stage_dir("finetune", size) / "eval_results.json") for size in config.sizes}
    compression = {
        size: read_records(config.stage_dir("compress", size))
        for size in config.sizes
        if (config.stage_dir("compress", size) / "compression.jsonl").is_file()
    }
    release = read_json(root / "release" / "release.json") or []
    advice = read_study_advice(config)
    _draw_figures(config, pretraining, finetuning, compression)
    forecast_figure = draw_forecast(config, advice, pretraining)
    hardware = next((record["hardware"] for record in pretraining.values() if record), {})
    lines = [f"# Study `{config.name}`", "", three_answers(config, pretraining, compression, advice), ""]
    lines += wall_clock_section(config, pretraining, advice)
    lines += ["![validation loss against wall-clock](loss_vs_time.png)", ""]
    lines += ["![validation loss against steps](loss_vs_steps.png)", ""]
    if forecast_figure:
        lines += [f"![forecast against outcome]({forecast_figure})", ""]
    lines += robustness_section(compression)
    lines += latency_section(config, compression)
    lines += ["![accuracy against nonzero parameters](accuracy_vs_nonzero_parameters.png)", ""]
    lines += ["## Hardware", "", describe_hardware(hardware), ""]
    lines += _plan_table(plan_rows)
    lines += _training_table(config, pretraining, finetuning)
    lines += _compression_table(compression, release)
    lines += [
        "",
        "## Configuration",
        "",
        "```yaml",
        yaml.safe_dump(config.as_dict(), sort_keys=False).strip(),
        "```",
        "",
    ]
    report = root / "report.md"
    report.write_text("\n".join(lines))
    return report


def _unigram_references(pretraining: dict) -> dict[str, float]:
    """One dashed line per distinct unigram loss (the sizes share a tokenizer and validation blocks, so usually one)."""
    losses = sorted(
        {round(run["unigram_loss"], 3) for run in pretraining.values() if run and run.get("unigram_loss") is not None}
    )
    return {
        (f"unigram loss ({loss:.2f})" if len(losses) == 1 else f"unigram loss {index + 1} ({loss:.2f})"): loss
        for index, loss in enumerate(losses)
    }
