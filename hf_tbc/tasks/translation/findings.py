"""The paper's questions for translation, answered from a study's records: which size wins on wall-clock (in BLEU,
and in the validation loss the advisor forecast), and width against depth, with a paired-bootstrap interval."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ...advise.outcome import FORECAST_FIGURE, final_eval_loss, forecast_lines, plot_outcome, read_advice
from .bleu import TRANSLATIONS_FILE, paired_bleu_interval, read_translations
from .model import get_model_size


def bleu_difference(
    folder_a: Path, folder_b: Path, split: str = "validation", samples: int = 1000, seed: int = 0
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
    return paired_bleu_interval(hypotheses[0], hypotheses[1], references, samples, seed)


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
    shapes = {size: get_model_size(size) for size in candidates}
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
    if measured and len(measured) == len(folders) and plot_outcome(advice, folders, figure, config.root / "advice"):
        lines += [f"![forecast against outcome]({FORECAST_FIGURE})", ""]
    return lines + ["The advisor's own record: [advice/advice.md](advice/advice.md).", ""]


def equal_latency(config) -> list[str]:
    """(c) The paper's compression question for translation: at the small baseline's latency per sentence, does a
    larger size, compressed, translate better than the small size dense? From each size's compression grid (BLEU on
    the same validation pairs, decoded as each model's saved generation config says)."""
    from ...compress.plots import plot_compression
    from ...compress.records import own_dense, read_records
    from ...release.selection import best_under

    if not config.section("compression"):
        return []
    grids = {}
    for size in config.sizes:
        record = config.stage_dir("compress", size) / "compression.jsonl"
        if record.is_file():
            grids[size] = read_records(record)
    small = config.sizes[0]
    lines = ["## (c) At equal latency: a larger size compressed against the small one dense", ""]
    if small not in grids or not own_dense(grids[small]):
        return lines + [f"The small baseline {small} has no compression grid yet: nothing to compare.", ""]
    baseline = own_dense(grids[small])
    margin = _side_by_side(config, grids)
    limit = float(config.release.get("limit") or baseline["latency_ms"])
    plot_compression(grids, config.root / "bleu_vs_latency.png", x="latency_ms_per_sentence", y="bleu")
    rows, verdicts = [], []
    for size in config.sizes[1:]:
        if size not in grids:
            rows.append(f"| {size} | not compressed yet | | | | | | |")
            continue
        chosen = best_under(grids[size], "latency", limit)
        if chosen is None:
            cheapest = _fastest(grids[size])
            rows.append(
                f"| {size} | none at most {limit:.1f} ms (its fastest, {cheapest['variant']}: "
                f"{cheapest['latency_ms']:.1f} ms) | | | | | | |"
            )
            verdicts.append(f"no variant of {size} is as fast as the small model")
            continue
        gain = chosen["bleu"] - baseline["bleu"]
        rows.append(
            f"| {size} | {chosen['variant']} | {chosen['bleu']:.2f} | {chosen['chrf']:.2f} "
            f"| {chosen['latency_ms']:.1f} | {chosen['latency_ms_batched']:.2f} | {chosen['size_bytes'] / 1e6:.2f} "
            f"| {_against_small_dense(config, size, chosen, small, gain)} |"
        )
        verdicts.append(f"{size} ({chosen['variant']}) {_beats(gain)}")
    pairs = baseline["eval_pairs"]
    lines += [
        f"The small dense model {small} translates the first {pairs:,} validation pairs at "
        f"{baseline['latency_ms']:.1f} ms per sentence ({baseline['bleu']:.2f} BLEU). At most {limit:.1f} ms: "
        + "; ".join(verdicts)
        + ".",
        "",
        f"| size | best variant at most that latency | BLEU | chrF | ms / sentence | ms / sentence, batch "
        f"{baseline.get('latency_batch', [1, 32])[-1]} | MB | BLEU vs small dense [95 % paired bootstrap] |",
        "|---|---|---|---|---|---|---|---|",
        f"| {small} | dense-fp32 (the baseline) | {baseline['bleu']:.2f} | {baseline['chrf']:.2f} | "
        f"{baseline['latency_ms']:.1f} | {baseline['latency_ms_batched']:.2f} | {baseline['size_bytes'] / 1e6:.2f} | |",
        *rows,
        "",
        *_against_the_small_fastest(grids, small),
        (
            "Every variant of every size was loaded into one process and timed in turn (the study's latency stage), "
            f"two passes averaged; the passes differ by up to {100 * margin:.0f} %, the tie margin of these latencies."
            if margin is not None
            else "Each grid measures the latency of its own variants side by side (loaded together, visited in turn); "
            "grids run one after the other, so latencies of different sizes compare less tightly than those within "
            "one grid."
        ),
        "",
        "![BLEU against latency per sentence](bleu_vs_latency.png)",
        "",
        *_at_the_small_shape(config, grids, small, baseline),
    ]
    return lines


def _against_small_dense(config, size: str, row: dict, small: str, gain: float) -> str:
    """``row``'s BLEU minus the small dense model's, with the paired-bootstrap interval where both variants saved
    their translations of the same pairs."""
    interval = bleu_difference(
        config.stage_dir("compress", size) / row["variant"], config.stage_dir("compress", small) / "dense-fp32"
    )
    return f"{gain:+.2f}" if interval is None else "{:+.2f} [{:+.2f}, {:+.2f}]".format(*interval)


def _side_by_side(config, grids: dict) -> Optional[float]:
    """Puts the latency stage's side-by-side timings in place of each grid's own, where they cover every variant;
    returns their tie margin (None: no such timing, and the grids' own latencies stay)."""
    from ...compress.records import read_latency, side_by_side_latencies

    timing = read_latency(config.root / "latency")
    latencies = {size: side_by_side_latencies(rows, size, timing) for size, rows in grids.items()}
    if timing is None or any(measured is None for measured in latencies.values()):
        return None
    for size, rows in grids.items():
        for row, measured in zip(rows, latencies[size]):
            row.update(measured)  # in place: rows read before this (the small dense baseline) see them too
    return timing["margin"]


def _at_the_small_shape(config, grids: dict, small: str, baseline: dict) -> list[str]:
    """Each larger size pruned to the small size's own shape (the same inference cost by construction) against the
    small size trained from scratch and trained on for the same recovery time (its dense variant): BLEU with a paired
    bootstrap interval from both variants' saved translations."""
    rows = []
    for size in config.sizes[1:]:
        for row in grids.get(size, []):
            if row.get("shape") != small or row["method"] != "none":
                continue
            against = _against_small_dense(config, size, row, small, row["bleu"] - baseline["bleu"])
            teacher = "no teacher" if not row.get("distilled") else "distilled"
            teacher += f", from {row['distill_beams']}-beam translations" if row.get("distill_beams") else ""
            rows.append(
                f"| {size} → {small}, {row['variant']} | {teacher} | {row['loss_before_recovery']:.3f} → "
                f"{row['validation_loss']:.3f} | {row['bleu']:.2f} | {against} | {row['latency_ms']:.1f} |"
            )
    if not rows:
        return []
    return [
        f"## (c) At the small model's own shape: larger sizes pruned to {small}",
        "",
        f"Each larger size pruned to {small} and recovered for the compression section's recovery budget, against "
        f"{small} trained from scratch and trained on for as long (its dense variant): the same inference cost by "
        "construction, and the same training time. In fp32; intervals: 95 % paired bootstrap over the validation "
        "pairs.",
        "",
        "| variant | recovery | validation loss before → after recovery | BLEU | vs small dense | ms / sentence |",
        "|---|---|---|---|---|---|",
        f"| {small}, dense-fp32 (the baseline) | trained on | | {baseline['bleu']:.2f} | | "
        f"{baseline['latency_ms']:.1f} |",
        *rows,
        "",
    ]


def _against_the_small_fastest(grids: dict, small: str) -> list[str]:
    """The same question with the small model compressed too: int8 or ONNX Runtime speed the small model up as well,
    so the bar is also set at the latency of its fastest variant, and each size's best variant under it is set against
    the small model's best there. The release keeps the dense bar; this paragraph only reports."""
    from ...release.selection import best_under

    fastest = _fastest(grids[small])
    bar = fastest["latency_ms"]
    own = best_under(grids[small], "latency", bar)
    verdicts = []
    for size in grids:
        if size == small:
            continue
        chosen = best_under(grids[size], "latency", bar)
        if chosen is None:
            verdicts.append(
                f"{size} has no variant that fast (its fastest {_fastest(grids[size])['latency_ms']:.1f} ms)"
            )
            continue
        gain = chosen["bleu"] - own["bleu"]
        verdicts.append(
            f"{size}'s best, {chosen['variant']} ({chosen['bleu']:.2f} BLEU, {chosen['latency_ms']:.1f} ms), "
            f"{_beats(gain)}"
        )
    return [
        f"With the small model compressed too: its fastest variant, {fastest['variant']}, takes {bar:.1f} ms per "
        f"sentence, and its best at most that is {own['variant']} ({own['bleu']:.2f} BLEU). At most {bar:.1f} ms: "
        + "; ".join(verdicts)
        + ".",
        "",
    ]


def _fastest(rows: list[dict]) -> dict:
    return min(rows, key=lambda row: row["latency_ms"])


def _beats(gain: float) -> str:
    return f"{'beats' if gain > 0 else 'does not beat'} it by {gain:+.2f}"
