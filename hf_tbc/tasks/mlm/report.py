"""The study report: the paper's two figures and a Markdown report computed from the runs' own records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
import yaml

from ...budget import format_duration, parse_duration
from ...compress.grid import PLOTS
from ...curves import plot_curves
from ...hardware import describe_hardware, median_step_seconds
from ...plots import plot_compression
from ...records import read_records
from ...selection import best_under, cost, format_cost, resolve_selection
from .arguments import MLM_PROBABILITY
from .model import SparsePrediction, count_parameters, roberta_config


def probe_step_time(
    size: str,
    batch_size: int,
    block_size: int,
    vocab_size: int = 8192,
    steps: int = 3,
    architecture: str = "roberta-prelayernorm",
    sparse_prediction: bool = True,
    bf16: bool = False,
    mlm_probability: float = MLM_PROBABILITY,
) -> float:
    """Seconds per optimizer step of a fresh ``size`` model on this machine (random tokens, AdamW), built and run
    as the pretraining recipe would: ``architecture``, the head on masked positions only, bf16 autocast if asked."""
    from transformers import AutoModelForMaskedLM

    torch.manual_seed(0)
    config = roberta_config(size, vocab_size=vocab_size, pad_token_id=1, architecture=architecture)
    model = AutoModelForMaskedLM.from_config(config).train()
    sparse = SparsePrediction(model) if sparse_prediction else None
    tokens = torch.randint(5, vocab_size, (batch_size, block_size))
    labels = tokens.masked_fill(torch.rand(tokens.shape) >= mlm_probability, -100)
    seconds = median_step_seconds(model, {"input_ids": tokens, "labels": labels}, bf16=bf16, steps=steps)
    if sparse is not None:
        sparse.remove()
    return seconds


def plan(
    sizes: list[str], time_budget: str, batch_size: int, block_size: int, vocab_size: int = 8192, **recipe
) -> list[dict]:
    """How many steps and tokens each size gets within the budget here, from a short probe of its step time.
    ``recipe`` passes the pretraining recipe's ``architecture``, ``sparse_prediction``, ``bf16`` and
    ``mlm_probability`` to the probe."""
    budget = parse_duration(time_budget)
    rows = []
    for size in sizes:
        seconds = probe_step_time(size, batch_size, block_size, vocab_size, **recipe)
        steps = int(budget // seconds)
        config = roberta_config(
            size, vocab_size=vocab_size, architecture=recipe.get("architecture", "roberta-prelayernorm")
        )
        rows.append(
            {
                "size": size,
                "parameters": count_parameters(config)["total"],
                "step_s": round(seconds, 3),
                "steps": steps,
                "tokens": steps * batch_size * block_size,
            }
        )
    return rows


def _load(path: Path) -> Optional[dict]:
    return json.loads(path.read_text()) if path.is_file() else None


def _draw_figures(config, pretraining: dict, finetuning: dict, compression: dict) -> None:
    """The paper's figures in the study folder: loss against wall-clock and steps, accuracy against the costs."""
    root, budget = config.root, config.pretraining["time_budget"]
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
        f"## Pretraining and finetuning, {config.pretraining['time_budget']} per size",
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
    """``report.md`` and the figures in the study folder, from ``run_summary.json``, ``curve.jsonl``,
    ``eval_results.json``, ``compression.jsonl`` and ``release.json``."""
    root = config.root
    pretraining = {size: _load(config.stage_dir("pretrain", size) / "run_summary.json") for size in config.sizes}
    finetuning = {size: _load(config.stage_dir("finetune", size) / "eval_results.json") for size in config.sizes}
    compression = {
        size: read_records(config.stage_dir("compress", size))
        for size in config.sizes
        if (config.stage_dir("compress", size) / "compression.jsonl").is_file()
    }
    release = _load(root / "release" / "release.json") or []
    _draw_figures(config, pretraining, finetuning, compression)
    hardware = next((record["hardware"] for record in pretraining.values() if record), {})
    figures = ["loss_vs_time.png", "loss_vs_steps.png", "accuracy_vs_nonzero_parameters.png", "accuracy_vs_latency.png"]
    captions = [
        "validation loss against wall-clock",
        "validation loss against steps",
        "accuracy against nonzero parameters",
        "accuracy against latency",
    ]
    lines = [f"# Study `{config.name}`", "", _answer(config, pretraining, finetuning, compression), ""]
    for caption, figure in zip(captions, figures):
        lines += [f"![{caption}]({figure})", ""]
    lines += ["## Hardware", "", describe_hardware(hardware), ""]
    lines += _plan_table(plan_rows)
    lines += _training_table(config, pretraining, finetuning)
    lines += _compression_table(compression, release)
    lines += [
        "",
        "## Configuration",
        "",
        "```yaml",
        yaml.safe_dump(_config_dict(config), sort_keys=False).strip(),
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


def _config_dict(config) -> dict:
    return {key: getattr(config, key) for key in config.__dataclass_fields__}


def selection(release: dict) -> tuple[str, Optional[float]]:
    """(select_by, limit) of a study's release section, read as release.py reads its flags."""
    return resolve_selection(release.get("select_by", "latency"), release.get("limit"), release.get("max_size_mb"))


def _answer(config, pretraining: dict, finetuning: dict, compression: dict) -> str:
    """The study's answer in plain words, computed from the records."""
    runs = {size: run for size, run in pretraining.items() if run}
    if not runs:
        return "No pretraining run has finished yet."
    budget = config.pretraining["time_budget"]
    best_loss = min(runs, key=lambda size: runs[size]["final_eval_loss"])
    ordered = sorted(runs, key=lambda size: runs[size]["parameters"])
    text = (
        f"At a {budget} pretraining budget on this hardware, **{best_loss}** reached the lowest validation MLM loss "
        f"({runs[best_loss]['final_eval_loss']:.3f} after {runs[best_loss]['steps']:,} steps"
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
    select_by, limit = selection(config.release)
    rows = [dict(row, base=size) for size, records in compression.items() for row in records]
    if rows:
        row = best_under(rows, select_by, limit)
        if row is not None:
            size = row["base"]
            where = f"At ≤ {format_cost(limit, select_by)}" if limit is not None else "Over all variants"
            text += (
                f" {where}, the most accurate model is **{size} `{row['variant']}`** "
                f"({row['accuracy']:.4f} accuracy, {format_cost(cost(row, select_by), select_by)})."
            )
            small = ordered[0]
            dense = next((r for r in compression.get(small, []) if r["variant"] == "dense-fp32"), None)
            if dense is not None and size != small:
                verdict = "beats" if row["accuracy"] > dense["accuracy"] else "does not beat"
                text += (
                    f" It {verdict} the small dense baseline {small} ({dense['accuracy']:.4f}, "
                    f"{format_cost(cost(dense, select_by), select_by)})."
                )
        else:
            text += f" No variant costs at most {format_cost(limit, select_by)} by {select_by}."
    return text
