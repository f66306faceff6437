"""The advisor end to end: probe every size, forecast, write the advice, and optionally continue the winner."""

from __future__ import annotations

import dataclasses
import shlex
from typing import Optional, Sequence

from transformers.utils import logging

from ..budget import format_duration
from ..cli import FLAG_FILES
from ..hardware import describe_hardware, hardware_summary
from ..launch import launcher_command
from .arguments import AdviceArguments
from .forecast import Forecaster
from .ladder_report import ladder_record, write_ladder_advice
from .probing import probe_dir, run_probes
from .report import advice_record, write_advice
from .staging import staged_probing

logger = logging.get_logger(__name__)

# the advisor's own flags, and those the continuation sets itself (a kept --overwrite_output_dir would erase the probe)
_DROPPED_FLAGS = {
    "--task",
    "--model_sizes",
    "--probe_budget",
    "--probe_allowance",
    "--method",
    "--continue_winner",
    "--probes_dir",
    "--output_dir",
    "--model_size",
    "--stop_after",
    "--overwrite_output_dir",
    "--resume_from_checkpoint",
}


def continue_command(
    argv: Optional[Sequence[str]],
    output_dir: str,
    size: str,
    probes_dir: Optional[str] = None,
    recipe: str = "run_mlm.py",
    launcher: Optional[Sequence[str]] = None,
) -> Optional[str]:
    """The ``recipe`` command that continues ``size``'s probe to the deadline: the advisor's own flags without
    the advisor's, in the probe's folder, resuming its checkpoint, under the ``launcher`` the advisor ran under (its
    flags too: the forecast assumed the probes' processes and threads), else ``accelerate launch``. None when the
    flags came from a file (it holds the advisor's own flags, which the recipe refuses)."""
    if argv is None or (argv and argv[0].endswith(FLAG_FILES)):
        return None
    kept, skip = [], False
    for index, item in enumerate(argv):
        if skip:
            skip = False
            continue
        name = item.split("=", 1)[0]
        if name in _DROPPED_FLAGS:
            has_value = "=" not in item and index + 1 < len(argv) and not argv[index + 1].startswith("--")
            skip = has_value
            continue
        kept.append(item)
    flags = [*kept, "--model_size", size, "--output_dir", str(probe_dir(output_dir, size, probes_dir))]
    prefix = list(launcher) if launcher else ["accelerate", "launch"]
    return shlex.join([*prefix, f"recipes/{recipe}", *flags, "--resume_from_checkpoint", "true"])


def forecast_table(forecasts: dict) -> str:
    """The forecasts in one line for the log: each size's loss and interval, or that it has none."""
    return "; ".join(
        f"{size} {row['forecast_loss']:.3f} [{row['forecast_low']:.3f}, {row['forecast_high']:.3f}]"
        if row.get("forecast_loss") is not None
        else f"{size} no forecast ({row.get('support', 'unranked')})"
        for size, row in forecasts.items()
    )


def advise(
    task, model_args, data_args, training_args, advice_args: AdviceArguments, argv: Optional[Sequence[str]] = None
) -> dict:
    """For ``task`` (a :class:`~hf_tbc.tasks.task.Task`: how one size trains, which recipe continues a
    probe, what its loss is called), probes ``advice_args.sizes()`` for ``--probe_budget`` each on the
    ``--time_budget`` schedule, forecasts each one's loss at the budget, and writes ``advice.json``, ``advice.md`` and
    ``advice.png`` in ``--output_dir``.
    Returns the advice record (or, if a probe was preempted, that probe's record; if the winner's continuation was,
    the advice record with its ``stop_reason``, ``checkpoint`` and ``resume``, so that the advisor exits as a
    preempted run does)."""
    sizes = advice_args.sizes()
    budget_s = training_args.time_budget_seconds
    probe_s = advice_args.probe_seconds(budget_s)
    hardware = describe_hardware(hardware_summary())
    if advice_args.method == "branches":
        allowance_s = advice_args.allowance_seconds(budget_s)
        staging = staged_probing(
            sizes, probe_s, allowance_s, model_args, data_args, training_args, task.train, advice_args.probes_dir
        )
        if isinstance(staging, dict):
            return staging
        if training_args.process_index == 0:
            forecaster = staging.forecaster()
            record = ladder_record(staging, budget_s, probe_s, allowance_s, hardware)
            write = write_ladder_advice
    else:
        probes = run_probes(sizes, probe_s, model_args, data_args, training_args, task.train, advice_args.probes_dir)
        if isinstance(probes, dict):
            return probes
        if training_args.process_index == 0:
            forecaster = Forecaster(probes)
            record = advice_record(forecaster, budget_s, probe_s, hardware, None)
            write = write_advice
    if training_args.process_index != 0:
        record = {}
    else:
        record.update(task=task.name, loss=task.loss)
        record["continue"] = continue_command(
            argv,
            training_args.output_dir,
            record["recommended_size"],
            advice_args.probes_dir,
            task.recipe,
            launcher_command(),
        )
        write(forecaster, record, training_args.output_dir)
        table = forecast_table(record["forecasts"])
        if record.get("basis") == "measured":  # the probes could not support a forecast: say so first
            logger.warning(record["no_forecast"])
            how = " (no forecast: the size the probes measured ahead)"
        else:
            how = "" if record["clear"] else " (intervals overlap)"
        logger.warning(
            f"Advice for {format_duration(budget_s)}: train {record['recommended_size']}{how}; forecast losses "
            f"{table}; {training_args.output_dir}/advice.md"
        )
    if advice_args.continue_winner:
        winner = _agreed_winner(record, training_args)
        size_args = dataclasses.replace(model_args, model_size=winner, model_name_or_path=None)
        full_args = dataclasses.replace(
            training_args,
            output_dir=str(probe_dir(training_args.output_dir, winner, advice_args.probes_dir)),
            stop_after=None,
            resume_from_checkpoint="true",
        )
        continued = task.train(size_args, data_args, full_args)
        record["continued"] = continued
        if continued.get("stop_reason") == "preempted":  # the recipe then exits 143: a scheduler requeues it
            return {**record, **{key: continued.get(key) for key in ("stop_reason", "checkpoint", "resume")}}
    return record


def _agreed_winner(record: dict, training_args) -> str:
    """The recommended size, sent from the main process to every rank, so all ranks continue the same run."""
    import torch.distributed as dist

    winner = [record.get("recommended_size")]
    if dist.is_available() and dist.is_initialized() and training_args.world_size > 1:
        dist.broadcast_object_list(winner, src=0)
    return winner[0]
