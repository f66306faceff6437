"""Run folders and their records: output folders, checkpoints, preemption records, and one run summary.

Every recipe's output folder follows the same rules: it is checked before anything is written, a checkpoint counts
only when its save finished, records are written whole or not at all, and a preempted run says so in its record.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import torch
from transformers import TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

from ..errors import UsageError
from ..hardware import hardware_summary
from . import PREEMPTED_EXIT_CODE, WallClockBudgetCallback, format_duration

logger = logging.get_logger(__name__)

RUN_ARTIFACTS = ("curve.jsonl", "run_summary.json", "eval_results.json", "loss_vs_time.png")  # what every recipe writes
RUN_RECORDS = ("run_summary.json", "eval_results.json")  # what pretraining and finetuning write last
# the stop reasons of a run that ended with a checkpoint to resume and no final model
UNFINISHED = {"preempted": "preempted", "stop_after": "stopped early by --stop_after"}


def last_complete_checkpoint(output_dir: str) -> Optional[str]:
    """The newest ``checkpoint-N`` in ``output_dir`` whose save finished: the Trainer writes ``trainer_state.json``
    last, so a folder without it (or with a cut-off one) was killed mid-save and is never resumed from."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    checkpoints = [
        path
        for path in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*")
        if re.fullmatch(rf"{PREFIX_CHECKPOINT_DIR}-\d+", path.name) and _complete_state(path / TRAINER_STATE_NAME)
    ]
    if not checkpoints:
        return None
    return str(max(checkpoints, key=lambda path: int(path.name.split("-")[-1])))


def _complete_state(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text()), dict)
    except (OSError, ValueError):
        return False


def check_writable(folder: Union[str, Path], flag: str = "--output_dir") -> None:
    """``UsageError`` unless ``folder`` exists as a writable folder or can be created; creates nothing."""
    folder = Path(folder).absolute()
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {folder}: {existing} is a file, not a folder: choose another path")
    try:
        probe = tempfile.mkdtemp(prefix=".hf-tbc-write-test-", dir=existing)
    except OSError as error:
        raise UsageError(
            f"{flag} {folder} cannot be written ({existing}: {error.strerror}): choose a folder you can write "
            "to, e.g. --output_dir runs/NAME"
        ) from None
    os.rmdir(probe)


def prepare_output_dir(args: TrainingArguments, artifacts: tuple[str, ...] = ()) -> Optional[str]:
    """Checks ``output_dir`` before anything is written; returns the checkpoint to resume from, if any.

    A folder holding another run is an error unless ``--overwrite_output_dir`` (which clears that run's
    checkpoints and records: :data:`RUN_ARTIFACTS` and the recipe's own ``artifacts``) or
    ``--resume_from_checkpoint`` (a path, or ``true`` for the newest one).
    """
    folder = Path(args.output_dir)
    check_writable(folder)
    resume = args.resume_from_checkpoint
    if resume is not None:
        if str(resume).lower() in ("true", "last", "latest"):
            checkpoint = last_complete_checkpoint(args.output_dir)
            if checkpoint is None:
                raise UsageError(f"--resume_from_checkpoint {resume}: {folder} holds no complete checkpoint to resume")
            return checkpoint
        if not _complete_state(Path(resume) / TRAINER_STATE_NAME):
            raise UsageError(
                f"--resume_from_checkpoint {resume} is not a complete checkpoint (no readable "
                f"{TRAINER_STATE_NAME}: its save was cut off): pass an earlier checkpoint, or true for the newest "
                "complete one"
            )
        return str(resume)
    if folder.is_dir() and any(folder.iterdir()):
        if not args.overwrite_output_dir:
            hint = (
                " or --resume_from_checkpoint true to continue it" if last_complete_checkpoint(args.output_dir) else ""
            )
            raise UsageError(
                f"--output_dir {folder} already holds files: pass --overwrite_output_dir to replace them{hint}"
            )
        if args.process_index == 0:
            for checkpoint in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
                shutil.rmtree(checkpoint)
            for name in (*RUN_ARTIFACTS, *artifacts):
                (folder / name).unlink(missing_ok=True)
    return None


def write_json(path: Path, record: dict) -> None:
    """Writes ``record`` as indented JSON through a temporary file, so a reader never sees half of it."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(temporary, path)


def read_json(path: Path, what: Optional[str] = None) -> Optional[dict]:
    """The JSON record at ``path``; where there is none, None, or with ``what`` (what the record is) a one-line
    ``UsageError`` naming it."""
    if not path.is_file():
        if what is None:
            return None
        raise UsageError(f"missing record {path} ({what}): run the step that writes it first")
    return json.loads(path.read_text())


def record_unfinished(trainer, record_name: str, **fields) -> dict:
    """Writes ``record_name`` for a run that ended with a checkpoint and no final model: stopped by SIGTERM
    (``stop_reason: preempted``) or by ``--stop_after`` (a probe). It names the checkpoint to resume from and claims
    no model, so nothing downstream mistakes the folder for a finished run."""
    output_dir, budget = trainer.args.output_dir, trainer.budget
    probe = budget.stop_reason == "stop_after"
    evaluations = [row for row in trainer.state.log_history if "eval_loss" in row]
    record = {
        "stop_reason": budget.stop_reason,
        "model_saved": False,
        "checkpoint": last_complete_checkpoint(output_dir),
        "steps": trainer.state.global_step,
        "train_s": round(budget.train_seconds(), 3),
        "time_budget_s": budget.time_budget,
        **(
            {"stop_after_s": budget.stop_after, "last_eval_loss": evaluations[-1]["eval_loss"] if evaluations else None}
            if probe
            else {}
        ),
        "resume": "continue it with --resume_from_checkpoint true, without --stop_after"
        if probe
        else "rerun the same command with --resume_from_checkpoint true",
        **fields,
    }
    if trainer.is_world_process_zero():
        write_json(Path(output_dir) / record_name, record)
        if probe:
            logger.warning(
                f"Stopped after {format_duration(budget.budget_seconds())} of "
                f"{format_duration(budget.time_budget)} at step {record['steps']}: checkpoint "
                f"{record['checkpoint']}; {record['resume']}"
            )
        else:
            logger.warning(
                f"Preempted at step {record['steps']}: checkpoint {record['checkpoint']}; {record['resume']} "
                f"(exit code {PREEMPTED_EXIT_CODE})"
            )
    return record


def preempted_record(
    folder: Union[str, Path], names: tuple[str, ...] = RUN_RECORDS, reasons: tuple[str, ...] = ("preempted",)
) -> Optional[dict]:
    """The record in ``folder`` of a run preempted (or, with ``reasons``, otherwise left unfinished) before its final
    model, if there is one."""
    for name in names:
        try:
            record = json.loads((Path(folder) / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("stop_reason") in reasons:
            return record
    return None


def check_finished_run(folder: str) -> None:
    """``UsageError`` if ``folder`` holds a run that ended before its final model (preempted, or a probe)."""
    record = preempted_record(folder, reasons=tuple(UNFINISHED))
    if record is not None:
        raise UsageError(
            f"{folder} holds a run {UNFINISHED[record['stop_reason']]} at step {record.get('steps')} with no final "
            "model: resume it with --resume_from_checkpoint true first"
        )


def describe_stop(budget: Optional[WallClockBudgetCallback]) -> str:
    if budget is None:
        return "max_steps"
    spent, budgeted = format_duration(budget.budget_seconds()), format_duration(budget.time_budget)
    return f"{budget.stop_reason} after {spent} of {budgeted}"


# -- one run skeleton ----------------------------------------------------------------------------------
@dataclass
class TrainingOutcome:
    """What :func:`train_under_budget` leaves: the evaluations logged (the last one at the final step), the two
    clocks, and, for a run preempted or stopped early, the record written in place of its summary."""

    evaluations: list[dict] = field(default_factory=list)
    train_s: float = 0.0
    total_s: float = 0.0
    unfinished: Optional[dict] = None


def train_under_budget(
    trainer,
    resume_from: Optional[str],
    record_name: str,
    final_metric: Optional[str] = "eval_loss",
    **unfinished_fields,
) -> TrainingOutcome:
    """Trains ``trainer`` (resuming ``resume_from``), then makes sure the last evaluation is of the final step.

    A run preempted or stopped by ``--stop_after`` writes ``record_name`` (its stop reason, the checkpoint,
    ``unfinished_fields``) and returns with ``unfinished`` set; the caller returns that record instead of saving a
    model.
    """
    started = time.monotonic()
    trainer.train(resume_from_checkpoint=resume_from)
    budget = trainer.budget
    if budget is not None and budget.stop_reason in UNFINISHED:
        return TrainingOutcome(unfinished=record_unfinished(trainer, record_name, **unfinished_fields))
    evaluations = []
    if final_metric is not None:
        evaluations = [row for row in trainer.state.log_history if final_metric in row]
        if not evaluations or evaluations[-1]["step"] != trainer.state.global_step:
            trainer.evaluate()
            evaluations = [row for row in trainer.state.log_history if final_metric in row]
    elapsed = time.monotonic() - started
    return TrainingOutcome(
        evaluations, budget.train_seconds() if budget else elapsed, budget.total_seconds() if budget else elapsed
    )


def budget_fields(trainer, outcome: TrainingOutcome, unbudgeted_stop: str = "max_steps") -> dict:
    """The fields every record of a finished run has: the budget, why and when it stopped, the clocks, the steps."""
    budget = trainer.budget
    return {
        "time_budget_s": budget.time_budget if budget else None,
        "budget_includes_eval": trainer.args.budget_includes_eval,
        "stop_reason": budget.stop_reason if budget else unbudgeted_stop,
        "deadline_overshoot_s": round(budget.overshoot, 3) if budget and budget.overshoot is not None else None,
        "model_saved": True,
        "train_s": round(outcome.train_s, 3),
        "total_s": round(outcome.total_s, 3),
        "steps": trainer.state.global_step,
        "tokens": trainer.state.num_input_tokens_seen,
    }


def run_summary(trainer, outcome: TrainingOutcome, resumed_from: Optional[str], task: dict, results: dict) -> dict:
    """``run_summary.json`` of a pretraining or translation run: the ``task``'s description (size, parameters, data),
    the budget and clocks, its ``results``, then how it ran (ranks, precision, optimizer, schedule, hardware).

    Every rank must call it: the step each rank stopped at is gathered from all of them.
    """
    args = trainer.args
    stop_steps = trainer.accelerator.gather(torch.tensor([trainer.state.global_step], device=args.device))
    return {
        **task,
        **budget_fields(trainer, outcome),
        **results,
        "world_size": args.world_size,
        "stop_step_per_rank": stop_steps.tolist(),
        "parallel_mode": args.parallel_mode.value,
        "ddp": type(trainer.model_wrapped).__name__ == "DistributedDataParallel",
        "fsdp": bool(getattr(trainer, "is_fsdp_enabled", False)),
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "learning_rate": args.learning_rate,
        "warmup_ratio": args.warmup_ratio,
        "warmup_steps": args.warmup_steps,
        "adam_betas": [args.adam_beta1, args.adam_beta2],
        "max_grad_norm": args.max_grad_norm,
        "schedule": f"{args.lr_scheduler_type.value} by {args.schedule_by}",
        "resumed_from": resumed_from,
        "hardware": hardware_summary(),
    }
