"""Loss against wall-clock: ``curve.jsonl`` logging during training, and the plots drawn from it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ..plots import draw_lines
from . import WallClockBudgetCallback

CURVE_FILE = "curve.jsonl"
CURVE_KEYS = ("step", "elapsed_s", "train_s", "total_s", "tokens", "loss", "lr", "eval_loss")


class CurveCallback(TrainerCallback):
    """Appends one JSON row per log or evaluation to ``output_dir/curve.jsonl``.

    Every row has ``step``, ``elapsed_s`` (the budget clock), ``train_s``, ``total_s``, ``tokens``
    (non-padding input tokens seen, all ranks), ``loss``, ``lr`` and ``eval_loss``, then one column per
    name in ``metrics`` (evaluation metrics such as ``eval_bleu``); a value not measured at that row is ``null``.
    With a :class:`WallClockBudgetCallback` the times are the
    budget's clock, which survives resumes; without one, seconds since ``train()`` began.
    """

    def __init__(
        self,
        output_dir: Union[str, Path],
        budget: Optional[WallClockBudgetCallback] = None,
        metrics: Sequence[str] = (),
    ):
        self.path = Path(output_dir) / CURVE_FILE
        self.budget = budget
        self.metrics = tuple(metrics)
        self._start = time.monotonic()

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._start = time.monotonic()
        if state.is_world_process_zero and self.path.exists():
            # a resumed run redoes the steps after its checkpoint: drop the rows the killed run wrote for them
            rows = [row for row in read_curve(self.path) if row["step"] <= state.global_step]
            self.path.write_text("".join(json.dumps(row) + "\n" for row in rows))

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs=None, **kwargs):
        logs = logs or {}
        if not state.is_world_process_zero or not ("loss" in logs or "eval_loss" in logs):
            return
        if self.budget is not None:
            budget_clock, train_s, total_s = (
                self.budget.elapsed,
                self.budget.train_seconds(),
                self.budget.total_seconds(),
            )
        else:
            budget_clock = train_s = total_s = time.monotonic() - self._start
        row = {
            "step": state.global_step,
            "elapsed_s": round(budget_clock, 3),
            "train_s": round(train_s, 3),
            "total_s": round(total_s, 3),
            "tokens": state.num_input_tokens_seen,
            "loss": logs.get("loss"),
            "lr": logs.get("learning_rate"),
            "eval_loss": logs.get("eval_loss"),
            **{name: logs.get(name) for name in self.metrics},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


def read_curve(path: Union[str, Path]) -> list[dict]:
    """The rows of a ``curve.jsonl`` file (or of ``curve.jsonl`` inside a run folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / CURVE_FILE
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


_AXIS_LABELS = {
    "elapsed_s": "wall-clock (minutes)",
    "step": "optimizer steps",
    "tokens": "tokens seen",
    "eval_loss": "validation MLM loss",
    "loss": "training MLM loss",
    "eval_bleu": "validation BLEU",
    "eval_chrf": "validation chrF",
}


def _draw(
    series: list[tuple[str, list, list, bool]],
    output_file: Union[str, Path],
    xlabel: str,
    ylabel: str,
    title: str,
    references: Optional[Mapping[str, float]] = None,
) -> Path:
    lines = [
        {"label": label, "x": xs, "y": ys, "marker": "o" if markers else None} for label, xs, ys, markers in series
    ]
    return draw_lines(lines, output_file, xlabel, ylabel, title, references)


def _points(rows: Sequence[dict], x: str, y: str) -> tuple[list, list]:
    points = [(row[x] / 60 if x == "elapsed_s" else row[x], row[y]) for row in rows if row.get(y) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def plot_curves(
    runs: Mapping[str, Union[str, Path, Sequence[dict]]],
    output_file: Union[str, Path],
    x: str = "elapsed_s",
    y: str = "eval_loss",
    title: Optional[str] = None,
    references: Optional[Mapping[str, float]] = None,
    ylabel: Optional[str] = None,
) -> Path:
    """Overlays several runs in one PNG.

    ``runs`` maps a label (e.g. ``"L12-H768"``) to a run folder, a ``curve.jsonl`` path or rows already
    read; ``x`` is ``elapsed_s`` (drawn in minutes), ``step`` or ``tokens``; ``y`` any column (``eval_loss``,
    ``eval_bleu``, ...). ``references`` are drawn as horizontal lines (e.g. ``{"unigram loss": 6.73}``).
    """
    series = []
    for label, source in runs.items():
        rows = read_curve(source) if isinstance(source, (str, Path)) else list(source)
        series.append((label, *_points(rows, x, y), y.startswith("eval_")))
    xlabel, ylabel = _AXIS_LABELS.get(x, x), ylabel or _AXIS_LABELS.get(y, y)
    return _draw(series, output_file, xlabel, ylabel, title or f"{ylabel} against {xlabel}", references)


def plot_run(
    run_dir: Union[str, Path],
    label: Optional[str] = None,
    unigram_loss: Optional[float] = None,
    loss_name: str = "MLM loss",
) -> Path:
    """``run_dir/loss_vs_time.png``: one run's training and validation loss against wall-clock, with the loss of
    predicting word frequencies alone as a dashed line when ``unigram_loss`` is given."""
    rows = read_curve(run_dir)
    label = label or Path(run_dir).name
    series = [
        ("training loss", *_points(rows, "elapsed_s", "loss"), False),
        ("validation loss", *_points(rows, "elapsed_s", "eval_loss"), True),
    ]
    references = {f"unigram loss ({unigram_loss:.2f})": unigram_loss} if unigram_loss is not None else None
    return _draw(
        series,
        Path(run_dir) / "loss_vs_time.png",
        _AXIS_LABELS["elapsed_s"],
        loss_name,
        f"{label}: {loss_name} against wall-clock",
        references,
    )
