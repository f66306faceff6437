"""Running the probes and reading them back: each candidate size is trained for ``probe_s`` of the target
budget's schedule (``--stop_after``) in ``output_dir/probes/<size>`` (or ``--probes_dir/<size>``), the folder its
real run continues in."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable, Optional

from transformers.utils import logging

from ..budget import format_duration
from ..budget.curves import read_curve
from ..budget.runs import last_complete_checkpoint, preempted_record, write_json
from ..errors import UsageError
from .probe import Probe

logger = logging.get_logger(__name__)

PROBES_DIR = "probes"
PROBE_RECORD = "probe_summary.json"  # the probe's record, kept when its continuation replaces the run's records
PROBE_SETTINGS = "probe_settings.json"  # every flag the probe ran with that shapes its curve
# flags that name where a probe writes or how it shows progress, or that the advisor sets per probe: none shapes
# the curve, so a probe made with other values of them is still the same probe
_NOT_SETTINGS = {
    "output_dir",
    "logging_dir",
    "overwrite_output_dir",
    "resume_from_checkpoint",
    "stop_after",
    "model_size",
    "model_name_or_path",
    "disable_tqdm",
    "report_to",
    "run_name",
    "push_to_hub",
    "hub_model_id",
    "hub_token",
    "hub_strategy",
    "hub_private_repo",
    "dataloader_num_workers",
    "preprocessing_num_workers",
}
STOP_RECORDS = ("run_summary.json", "eval_results.json")  # where a task's probe writes its stop record


def probe_dir(output_dir: str, size: str, probes_dir: Optional[str] = None) -> Path:
    """The folder of ``size``'s probe: ``probes_dir/size``, by default ``output_dir/probes/size``."""
    return Path(probes_dir if probes_dir is not None else Path(output_dir) / PROBES_DIR) / size


def read_probe(folder: Path, size: str) -> Optional[Probe]:
    """The probe in ``folder`` (its kept record, or the run's own while it is still a probe), or None."""
    record = None
    for name in (PROBE_RECORD, *STOP_RECORDS):
        try:
            record = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("stop_reason") == "stop_after":
            break
    else:
        return None
    if not (folder / "curve.jsonl").is_file():
        return None
    rows = [row for row in read_curve(folder) if row["step"] <= record["steps"]]
    try:  # the warmup the probe ran under (older probes kept no settings: then their records, or none)
        settings = {**record, **json.loads((folder / PROBE_SETTINGS).read_text())}
    except (OSError, ValueError):
        settings = record
    return Probe(
        size=size,
        parameters=record.get("parameters"),
        steps=record["steps"],
        train_s=record["train_s"],
        budget_s=record["time_budget_s"],
        probe_s=record["stop_after_s"],
        unigram_loss=record.get("unigram_loss"),
        losses=[(row["step"], row["train_s"], row["loss"]) for row in rows if row.get("loss") is not None],
        evaluations=[
            (row["step"], row["train_s"], row["eval_loss"]) for row in rows if row.get("eval_loss") is not None
        ],
        learning_rates=[(row["step"], row["lr"]) for row in rows if row.get("lr") is not None],
        checkpoint=record.get("checkpoint"),
        warmup_steps=int(settings.get("warmup_steps") or 0),
        warmup_ratio=float(settings.get("warmup_ratio") or 0.0),
    )


def probe_settings(model_args, data_args, training_args) -> dict:
    """Every flag value a probe's curve depends on (data, recipe, batch, learning rate, budget...), as JSON values."""
    values = {**dataclasses.asdict(model_args), **dataclasses.asdict(data_args), **training_args.to_dict()}
    settings = {name: value for name, value in sorted(values.items()) if name not in _NOT_SETTINGS}
    return json.loads(json.dumps(settings, default=str))


def changed_settings(folder: Path, settings: dict) -> list[str]:
    """The flags whose values differ from those the probe in ``folder`` ran with (a probe that kept no record of them
    cannot be told apart from another's); an empty list when none does."""
    try:
        before = json.loads((folder / PROBE_SETTINGS).read_text())
    except (OSError, ValueError):
        return ["its settings were not recorded"]
    return [
        f"--{name} {before.get(name)!r} -> {settings.get(name)!r}"
        for name in sorted(set(before) | set(settings))
        if before.get(name) != settings.get(name)
    ]


def run_probes(
    sizes: list[str],
    probe_s: float,
    model_args,
    data_args,
    training_args,
    train: Callable,
    probes_dir: Optional[str] = None,
) -> list[Probe] | dict:
    """Probes each size in turn (one at a time: probes side by side would share the cores and time each other's
    contention). A folder already holding a probe of the same budget and length is read, not rerun. A preempted
    probe ends the round (its record is returned instead of the probes); the next round resumes it from its
    checkpoint when the budget is the same."""
    probes = []
    for index, size in enumerate(sizes, 1):
        probe = probe_to(
            f"[{index}/{len(sizes)}] {size}", size, probe_s, model_args, data_args, training_args, train, probes_dir
        )
        if isinstance(probe, dict):
            return probe
        if probe is not None:
            probes.append(probe)
    return probes


def probe_to(
    label: str,
    size: str,
    probe_s: float,
    model_args,
    data_args,
    training_args,
    train: Callable,
    probes_dir: Optional[str] = None,
) -> Optional[Probe] | dict:
    """Brings ``size``'s probe to ``probe_s`` of the budget: read back when its folder already holds that probe,
    continued from its checkpoint when the folder holds a shorter probe of the same budget and settings (staged
    probing lengthens the contenders' probes), else probed from the start. Returns the probe (None on processes
    other than the main one), or the record of a preempted probe."""
    folder = probe_dir(training_args.output_dir, size, probes_dir)
    settings = probe_settings(model_args, data_args, training_args)
    probe = read_probe(folder, size)
    resume = None
    if probe is not None and probe.budget_s == training_args.time_budget_seconds and probe.probe_s <= probe_s:
        changed = changed_settings(folder, settings)
        if not changed and probe.probe_s == probe_s:
            logger.warning(f"{label}: reusing the probe in {folder} ({probe.steps} steps)")
            return probe
        if not changed and probe.checkpoint and Path(probe.checkpoint).is_dir():
            resume = probe.checkpoint
        elif changed and not training_args.overwrite_output_dir:
            raise UsageError(
                f"the {size} probe in {folder} ran with other settings ({'; '.join(changed[:3])}"
                f"{'; ...' if len(changed) > 3 else ''}): pass --overwrite_output_dir to probe again, or another "
                "--output_dir"
            )
        elif changed:
            logger.warning(f"{label}: the probe in {folder} ran with other settings: probing again")
            if training_args.process_index == 0:  # the old probe's records go with it
                for name in (PROBE_RECORD, PROBE_SETTINGS):
                    (folder / name).unlink(missing_ok=True)
    if resume is None:
        preempted = preempted_record(folder)
        resume = (
            "true"
            if preempted is not None
            and preempted.get("time_budget_s") == training_args.time_budget_seconds
            and last_complete_checkpoint(str(folder))
            else None
        )
    logger.warning(
        f"{label}: {'continuing the probe of' if resume else 'probing'} "
        f"{format_duration(probe_s)} of a {format_duration(training_args.time_budget_seconds)} run in {folder}"
    )
    size_args = dataclasses.replace(model_args, model_size=size, model_name_or_path=None)
    probe_args = dataclasses.replace(
        training_args, output_dir=str(folder), stop_after=f"{probe_s}", resume_from_checkpoint=resume
    )
    record = train(size_args, data_args, probe_args)
    if record.get("stop_reason") == "preempted":
        return record  # the recipe exits with the preemption code; rerunning the advisor resumes the probe
    if record.get("stop_reason") != "stop_after":
        raise UsageError(
            f"the {size} probe ended with stop_reason {record.get('stop_reason')!r}, not at --probe_budget: "
            "rerun the advisor to probe it again"
        )
    if training_args.process_index != 0:
        return None
    write_json(folder / PROBE_SETTINGS, settings)
    write_json(folder / PROBE_RECORD, record)
    return read_probe(folder, size)
