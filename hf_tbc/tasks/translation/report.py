"""The translation study's report: it answers the paper's "width before depth" question from the runs' own
records (``run_summary.json``, ``eval_results.json``, ``curve.jsonl`` and the saved translations)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Optional

import yaml

from ...budget import format_duration
from ...curves import plot_curves
from ...hardware import describe_hardware
from .bleu import TRANSLATIONS_FILE, read_translations
from .model import get_translation_size


def _load(path: Path) -> Optional[dict]:
    return json.loads(path.read_text()) if path.is_file() else None


def bleu_difference(
    folder_a: Path, folder_b: Path, split: str = "validation", samples: int = 300, seed: int = 0
) -> Optional[tuple[float, float, float]]:
    """BLEU of run A minus run B on ``split`` and a 95 % paired-bootstrap interval (sentences resampled together,
    Koehn 2004), from each run's saved translations; ``None`` when either has none."""
    files = [Path(folder) / TRANSLATIONS_FILE.format(split=split) for folder in (folder_a, folder_b)]
    if not all(file.is_file() for file in files):
        return None
    rows = [read_translations(file) for file in files]
    references = [row["reference"] for row in rows[0]]
    if [row["reference"] for row in rows[1]] != references or not references:
        return None  # not the same pairs: nothing to compare sentence by sentence
    hypotheses = [[row["translation"] for row in run] for run in rows]
    import sacrebleu

    def bleu(system: list[str], picked) -> float:  # BLEU alone: chrF would triple the cost of each resample
        return sacrebleu.corpus_bleu([system[i] for i in picked], [[references[i] for i in picked]]).score

    rng = random.Random(seed)
    indices = range(len(references))
    differences = []
    for _ in range(samples):
        picked = [rng.choice(indices) for _ in indices]
        differences.append(bleu(hypotheses[0], picked) - bleu(hypotheses[1], picked))
    differences.sort()
    observed = bleu(hypotheses[0], indices) - bleu(hypotheses[1], indices)
    return (
        round(observed, 2),
        round(differences[int(0.025 * samples)], 2),
        round(differences[int(0.975 * samples) - 1], 2),
    )


def width_versus_depth(config, results: dict) -> str:
    """The paper's question in plain words: of the sizes beyond the first (the small baseline), does the widest beat
    the deepest at equal wall-clock? Computed from the records, with a bootstrap interval on the difference."""
    finished = {size: record for size, record in results.items() if record}
    if not finished:
        return "No translation run has finished yet."
    budget = config.time_budget
    best = max(finished, key=lambda size: finished[size]["splits"]["validation"]["bleu"])
    text = (
        f"At a {budget} budget on this hardware, **{best}** reached the highest validation BLEU ("
        + ", ".join(
            f"{size} {record['splits']['validation']['bleu']:.1f} after {record['steps']:,} steps"
            for size, record in finished.items()
        )
        + ")."
    )
    candidates = [size for size in finished if size != config.sizes[0]] or list(finished)
    shapes = {size: get_translation_size(size) for size in candidates}
    wide = max(
        candidates,
        key=lambda size: (shapes[size].hidden_size, -shapes[size].encoder_layers - shapes[size].decoder_layers),
    )
    deep = max(
        candidates,
        key=lambda size: (shapes[size].encoder_layers + shapes[size].decoder_layers, -shapes[size].hidden_size),
    )
    if wide == deep:
        return (
            text + " No pair of sizes differs in width against depth, so the width-before-depth question is not asked."
        )
    difference = bleu_difference(config.stage_dir("translate", wide), config.stage_dir("translate", deep))
    a, b = finished[wide]["splits"]["validation"]["bleu"], finished[deep]["splits"]["validation"]["bleu"]
    text += f" Wide-and-shallow **{wide}** {a:.1f} against narrow-and-deep **{deep}** {b:.1f}"
    if difference is None:
        return text + " (no saved translations to test the difference)."
    observed, low, high = difference
    text += f": {observed:+.1f} BLEU, 95 % bootstrap interval [{low:+.1f}, {high:+.1f}]."
    if low > 0:
        text += " Width first held here, as the paper advises."
    elif high < 0:
        text += " Depth won here: width first did not hold at this budget."
    else:
        text += " The interval spans zero: at this budget the two are not told apart."
    return text


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
    lines = [
        f"## Training, {config.time_budget} per size",
        "",
        "BLEU and chrF from sacreBLEU on detokenized greedy output. Copying the source sentence unchanged scores "
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


def write_translation_report(config, plan_rows: Optional[list[dict]] = None) -> Path:
    """``report.md``, ``bleu_vs_time.png``, ``bleu_vs_steps.png`` and ``loss_vs_time.png`` in the study folder."""
    folders = {size: config.stage_dir("translate", size) for size in config.sizes}
    summaries = {size: _load(folder / "run_summary.json") for size, folder in folders.items()}
    results = {size: _load(folder / "eval_results.json") for size, folder in folders.items()}
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
    settings = {key: getattr(config, key) for key in ("name", "task", "sizes", "translation", "release")}
    lines += ["", "## Configuration", "", "```yaml", yaml.safe_dump(settings, sort_keys=False).strip(), "```", ""]
    report = config.root / "report.md"
    report.write_text("\n".join(lines))
    return report
