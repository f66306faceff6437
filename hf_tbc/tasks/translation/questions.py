"""The paper's questions for translation, answered from a study's records: which size wins on wall-clock (in BLEU,
and in the validation loss the advisor forecast), and width against depth, with a paired-bootstrap interval."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Optional

from ...advise.outcome import FORECAST_FIGURE, final_eval_loss, forecast_lines, plot_outcome, read_advice
from .bleu import TRANSLATIONS_FILE, read_translations
from .model import get_translation_size


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


def forecast_section(config, folders: dict, results: dict) -> list[str]:
    """(a) against the advisor: its forecast of each size's validation loss next to the loss the run reached."""
    advice = read_advice(config.root / "advice")
    lines = ["## (a) Which size wins on wall-clock: the advisor's forecast against the outcome", ""]
    if not advice:
        return lines + ["The study ran without the advisor (`advisor: false`), so there is no forecast to compare.", ""]
    actual = {size: final_eval_loss(folder) if results[size] else None for size, folder in folders.items()}
    measured = [size for size in actual if actual[size] is not None]
    winner = min(measured, key=lambda size: actual[size]) if measured else None
    best_bleu = max(measured, key=lambda size: results[size]["splits"]["validation"]["bleu"]) if measured else None
    lines += [
        "The advisor forecasts the validation loss (label-smoothed cross-entropy on the curve's validation pairs), "
        "not BLEU: "
        + (
            f"by that loss **{winner}** won ({actual[winner]:.3f}), "
            + ("the same size as by BLEU." if winner == best_bleu else f"while {best_bleu} won by BLEU.")
            if winner
            else "no run has finished yet."
        ),
        "",
        *forecast_lines(advice, actual, winner),
        "",
    ]
    figure = config.root / FORECAST_FIGURE
    if measured and len(measured) == len(folders) and plot_outcome(advice, folders, figure):
        lines += [f"![forecast against outcome]({FORECAST_FIGURE})", ""]
    return lines + ["The advisor's own record: [advice/advice.md](advice/advice.md).", ""]
