"""Cool-down branches: what loss a size's run would end at, measured at points of its probe.

A probe trains on the whole budget's schedule, so at any point its LR is still near the peak and its loss is a
mid-schedule loss, not the end of a run. A branch resumes a copy of the probe's checkpoint at ``at_s`` and trains on
for a quarter of that time again while the LR falls linearly to zero (``--stop_after``, ``--cooldown``), then
evaluates: the loss of a run that ended there. The probe itself is untouched and stays the start of the real run.
Branches at two or more points of a probe (its *rungs*) give that size's end-of-run loss against training time,
which :mod:`.ladder_forecast` extrapolates to the budget.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from transformers.utils import logging

from ..budget import format_duration
from ..budget.runs import write_json
from ..errors import UsageError

logger = logging.get_logger(__name__)

COOL_SHARE = 0.25  # a branch from ``at_s`` cools over this share of ``at_s`` more: it ends at 1.25 * at_s
WSD = "warmup_stable_decay"


def schedule_of(training_args) -> str:
    return getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type)


def cool_share(training_args) -> float:
    """How much longer than ``at_s`` a branch cools: under warmup_stable_decay, so that the branch decays over the
    same last share of its whole length as a run of that length does (``d / (1 - d)``: a quarter for the default
    fifth), which makes the branch that run exactly; under other schedules a quarter."""
    if schedule_of(training_args) == WSD:
        decay = training_args.decay_ratio
        return min(decay / (1.0 - decay), 1.0) if decay < 1.0 else 1.0
    return COOL_SHARE


BRANCHES_DIR = "branches"
LADDER_RECORD = "ladder.json"


@dataclass
class Rung:
    """One branch: it left ``size``'s probe at ``at_s`` of the budget clock, ended at ``end_s`` after ``steps``
    optimizer steps with validation loss ``loss``, and cost ``cost_s`` of wall-clock (start, training, evaluation);
    the probe's segment that led to it cost ``probe_cost_s``."""

    size: str
    at_s: float
    end_s: float
    steps: int
    loss: float
    cost_s: float
    probe_cost_s: float = 0.0


def branch_dir(output_dir: str, size: str, at_s: float) -> Path:
    return Path(output_dir) / BRANCHES_DIR / size / f"at-{at_s:.1f}s"


def read_ladder(output_dir: str, size: str, budget_s: float) -> list[Rung]:
    """The rungs already measured for ``size`` at this budget (none when the record is missing or for another)."""
    path = Path(output_dir) / BRANCHES_DIR / size / LADDER_RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if record.get("time_budget_s") != budget_s:
        return []
    return [Rung(**row) for row in record.get("rungs", [])]


def _write_ladder(output_dir: str, size: str, budget_s: float, rungs: list[Rung]) -> None:
    path = Path(output_dir) / BRANCHES_DIR / size / LADDER_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [dataclasses.asdict(rung) for rung in sorted(rungs, key=lambda rung: rung.at_s)]
    write_json(path, {"size": size, "time_budget_s": budget_s, "rungs": rows})


def branch_arguments(training_args, folder: Path, checkpoint: str, at_s: float):
    """The probe's arguments for a branch from ``checkpoint`` (taken at ``at_s``): its own folder, the same budget and
    schedule, a linear cool-down to zero over ``cool_share * at_s``, no checkpoints on the way, and one evaluation,
    of the loss only, at its end (a translation branch decodes nothing)."""
    cool = cool_share(training_args) * at_s
    end = at_s + cool
    if end >= training_args.time_budget_seconds:
        raise UsageError(
            f"a cool-down branch from {format_duration(at_s)} would end past the "
            f"{format_duration(training_args.time_budget_seconds)} budget: probe a smaller share of it"
        )
    return dataclasses.replace(
        training_args,
        output_dir=str(folder),
        overwrite_output_dir=False,
        resume_from_checkpoint=checkpoint,
        stop_after=f"{end:.3f}",
        cooldown=f"{cool:.3f}",
        save_every=None,
        eval_every=f"{training_args.time_budget_seconds:g}s",
        prediction_loss_only=True,
    )


def run_branch(
    size: str,
    checkpoint: str,
    at_s: float,
    model_args,
    data_args,
    training_args,
    train: Callable,
    probe_cost_s: float = 0.0,
) -> Rung:
    """Runs one cool-down branch of ``size`` from ``checkpoint`` and adds it to the size's ladder; a rung already
    measured from the same point of the same budget is read back instead. The branch's checkpoint is deleted (its
    records stay, beside the ladder)."""
    budget_s = training_args.time_budget_seconds
    done = {round(rung.at_s, 1): rung for rung in read_ladder(training_args.output_dir, size, budget_s)}
    if round(at_s, 1) in done:
        return done[round(at_s, 1)]
    folder = branch_dir(training_args.output_dir, size, at_s)
    if training_args.process_index == 0 and folder.exists():
        shutil.rmtree(folder)  # a branch cut off before its record: nothing in it is kept
    started = time.monotonic()
    size_args = dataclasses.replace(model_args, model_size=size, model_name_or_path=None)
    record = train(size_args, data_args, branch_arguments(training_args, folder, checkpoint, at_s))
    if record.get("stop_reason") != "stop_after" or record.get("last_eval_loss") is None:
        raise UsageError(
            f"the {size} cool-down branch from {format_duration(at_s)} ended with stop_reason "
            f"{record.get('stop_reason')!r} and no evaluation: rerun the advisor to branch it again"
        )
    rung = Rung(
        size=size,
        at_s=at_s,
        end_s=record["stop_after_s"],
        steps=record["steps"],
        loss=record["last_eval_loss"],
        cost_s=round(time.monotonic() - started, 3),
        probe_cost_s=round(probe_cost_s, 3),
    )
    if training_args.process_index == 0:
        for kept in folder.glob("checkpoint-*"):
            shutil.rmtree(kept, ignore_errors=True)
        _write_ladder(training_args.output_dir, size, budget_s, [*done.values(), rung])
    logger.warning(
        f"{size}: a run ending at {format_duration(rung.end_s)} would reach loss {rung.loss:.3f} ({rung.steps} steps; "
        f"branch from {format_duration(at_s)} of the probe, {rung.cost_s:.0f}s)"
    )
    return rung
