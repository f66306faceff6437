"""The study: pretrain, finetune and compress a grid of sizes under one budget, then release and report.

Its first stage is the advisor (where the task has one): every size is probed on the budget's schedule and its loss
at the deadline forecast, so that the report sets each forecast next to the outcome; each size's run then continues
from its probe, so the forecast costs nothing extra. Each stage runs as its recipe does (a subprocess; training
stages through the configured launcher, ``accelerate launch`` by default), so one config scales from a CPU to many
GPUs. A stage whose output is complete is skipped, so a killed study resumes where it stopped.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml
from transformers.utils import logging

from ..budget import PREEMPTED_EXIT_CODE, format_duration, parse_duration
from ..budget.runs import UNFINISHED, last_complete_checkpoint, preempted_record
from ..errors import UsageError
from ..tasks.registry import RECIPES, TASKS, as_flags

logger = logging.get_logger(__name__)

CONFIGS = RECIPES / "configs"


class StageFailed(RuntimeError):
    """A stage's recipe exited non-zero; its log says why."""


class StagePreempted(RuntimeError):
    """A stage's run was preempted (SIGTERM) and left a checkpoint: rerunning the study resumes it."""


def resolve_config(path: str) -> str:
    """``path`` if it is a file, else the bundled config of that name (``cpu_demo`` or ``cpu_demo.yaml``)."""
    if Path(path).is_file():
        return path
    bundled = CONFIGS / (path if path.endswith((".yaml", ".yml")) else f"{path}.yaml")
    if Path(path).name == path and bundled.is_file():
        return str(bundled)
    names = ", ".join(sorted(config.stem for config in CONFIGS.glob("*.yaml")))
    raise UsageError(f"--config {path} does not exist: pass a YAML file, or a bundled config name ({names})")


@dataclass
class StudyConfig:
    """One study, as written in ``recipes/configs/NAME.yaml``. Stage sections hold their recipe's flags."""

    name: str
    output_dir: str
    sizes: list[str]
    task: str = "mlm"  # "mlm": pretrain, finetune, compress; "translation": train each size with run_translation.py
    sections: dict = field(default_factory=dict)  # the task's own sections (its recipes' flags), by name
    release: dict = field(default_factory=dict)
    advisor: Optional[dict] = field(default_factory=dict)  # the advisor's flags (probe_budget); false: no advisor
    launcher: list[str] = field(default_factory=lambda: ["accelerate", "launch"])
    data_dir: Optional[str] = None

    @classmethod
    def from_yaml(cls, path: str, **overrides) -> "StudyConfig":
        """Reads ``path``; ``overrides`` (e.g. ``output_dir``, ``data_dir``) replace its values when not None.

        ``{data_dir}`` inside any string is replaced by ``data_dir``, so the data location is one setting.
        """
        path = resolve_config(path)
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            mark = getattr(error, "problem_mark", None)
            where = f" near line {mark.line + 1}" if mark is not None else ""
            raise UsageError(
                f"--config {path} does not parse ({type(error).__name__}{where}): fix its YAML syntax"
            ) from None
        if not isinstance(raw, dict):
            raise UsageError(f"--config {path} must hold a mapping of settings: see {CONFIGS / 'cpu_demo.yaml'}")
        raw.update({key: value for key, value in overrides.items() if value is not None})
        studied = [name for name, task in TASKS.items() if task.sections]
        task = TASKS.get(raw.get("task", "mlm"))
        if task is None or not task.sections:
            raise UsageError(f"study config {path}: task {raw['task']!r} is unknown: use one of {', '.join(studied)}")
        missing = [key for key in ("name", "output_dir", "sizes", *task.sections) if key not in raw]
        if missing:
            raise UsageError(f"study config {path} lacks {', '.join(missing)}: see {CONFIGS / task.example}")
        own = (*task.sections, *task.optional_sections)
        unknown = set(raw) - set(cls.__dataclass_fields__) - set(own) | ({"sections"} & set(raw))
        if unknown:
            raise UsageError(f"study config {path} has unknown keys {sorted(unknown)}: remove them")
        sections = {name: raw.pop(name) or {} for name in own if name in raw}
        config = cls(**raw, sections=sections)
        config.sizes = [str(size) for size in config.sizes]
        config.advisor = _advisor_section(config.advisor, path)
        for size in config.sizes:
            task.check_size(size)
        budgeted = task.sections[0]
        if "time_budget" not in config.section(budgeted):
            raise UsageError(f"study config {path}: {budgeted} needs a time_budget, the budget every size shares")
        parse_duration(config.section(budgeted)["time_budget"])
        config.sections = {name: _substitute(section, config.data_dir) for name, section in config.sections.items()}
        config.release = _substitute(config.release, config.data_dir)
        return config

    def section(self, name: str) -> dict:
        """The task's section ``name`` (e.g. ``"pretraining"``): its recipe's flags; empty where the config leaves an
        optional section out."""
        task = self.study_task
        if name not in (*task.sections, *task.optional_sections):
            raise KeyError(f"task {self.task!r} has no section {name!r}: its sections are {', '.join(task.sections)}")
        return self.sections.get(name, {})

    def as_dict(self) -> dict:
        """The config as its YAML file lays it out: the task's sections at the top level."""
        task = self.study_task
        sections = {name: self.section(name) for name in (*task.sections, *task.optional_sections)}
        head = {key: getattr(self, key) for key in ("name", "output_dir", "sizes", "task")}
        return {
            **head,
            **sections,
            **{key: getattr(self, key) for key in ("release", "advisor", "launcher", "data_dir")},
        }

    @property
    def study_task(self):
        """The task's interface in :data:`hf_tbc.tasks.registry.TASKS`."""
        return TASKS[self.task]

    @property
    def time_budget(self) -> str:
        """The training budget every size shares."""
        return self.section(self.study_task.sections[0])["time_budget"]

    @property
    def root(self) -> Path:
        return Path(self.output_dir)

    def stage_dir(self, stage: str, size: str) -> Path:
        return self.root / stage / size


ADVISOR_KEYS = ("probe_budget", "probe_allowance", "method")  # the advisor's flags a study may set; it sets the rest


def _advisor_section(section, path: str) -> Optional[dict]:
    """The ``advisor`` section as flags, or None when it is ``false`` (no advisor stage)."""
    if section is False or section is None:
        return None
    if section is True:
        return {}
    if not isinstance(section, dict):
        raise UsageError(f"study config {path}: advisor must be false or a mapping such as {{probe_budget: 1m}}")
    unknown = sorted(set(section) - set(ADVISOR_KEYS))
    if unknown:
        raise UsageError(
            f"study config {path}: advisor has unknown keys {unknown}: it takes {', '.join(ADVISOR_KEYS)} (the "
            "sizes, data and recipe come from the study)"
        )
    for key in ("probe_budget", "probe_allowance"):
        if key in section:
            parse_duration(section[key], f"advisor {key}")
    return dict(section)


def _substitute(section: dict, data_dir: Optional[str]) -> dict:
    def fill(value):
        if isinstance(value, str) and "{data_dir}" in value:
            if data_dir is None:
                raise UsageError(f"{value!r} uses {{data_dir}}: set data_dir in the config or pass --data_dir")
            return value.replace("{data_dir}", data_dir)
        return value

    return {key: fill(value) for key, value in (section or {}).items()}


# -- stages --------------------------------------------------------------------------------------------
STUDY_RECORDS = {"advise": "advice.json", "release": "release.json"}  # the stages every study has


def stage_record(stage: str) -> str:
    """The record a stage writes last: the study's own stages', else the one its task names."""
    records = dict(STUDY_RECORDS)
    for task in TASKS.values():
        records.update(task.stage_records or {})
    return records[stage]


def stage_complete(stage: str, folder: Path) -> bool:
    """Whether ``folder`` holds the finished output of ``stage``: the record each recipe writes last, and not the
    record of a run left unfinished (preempted, or a probe the study continues)."""
    record = (stage_record(stage),)
    return (folder / record[0]).is_file() and preempted_record(folder, record, reasons=tuple(UNFINISHED)) is None


def _run_forwarding_signals(command: list[str], log) -> int:
    """Runs ``command`` in its own process group and passes SIGTERM and SIGINT on to that whole group.

    A scheduler that preempts the study signals the study; the stage's launcher may not forward signals to
    the training processes it starts, so the study signals all of them, and each saves a checkpoint.
    """
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    forwarded = []

    def forward(signum, frame):
        forwarded.append(signum)
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = (
        {signum: signal.signal(signum, forward) for signum in (signal.SIGTERM, signal.SIGINT)} if in_main_thread else {}
    )
    try:
        returncode = process.wait()
        while forwarded and _group_alive(process.pid):  # a launcher can exit before its workers finish saving
            time.sleep(0.2)
        return returncode
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _reason(log_file: Path) -> str:
    """The line of a stage's log that says why it failed: the recipe's ``error:`` line, else the first
    exception line (a launcher's own traceback follows the recipe's), else the last line."""
    lines = [line.strip() for line in log_file.read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("error: "):
            return line.removeprefix("error: ")
    exceptions = [line for line in lines if re.match(r"^[A-Za-z_.]+(Error|Exception|Interrupt):", line)]
    return exceptions[0] if exceptions else (lines[-1] if lines else "no output")


def _group_alive(group: int) -> bool:
    """Whether a live (not zombie) process is left in process group ``group``."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
            return True
        except ProcessLookupError:
            return False
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":  # fields after the name: state, ppid, pgrp, ...
            return True
    return False


def _run(command: list[str], log_file: Path, what: str) -> float:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    logger.warning(f"{what}: running ({log_file})")
    with log_file.open("w") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        returncode = _run_forwarding_signals(command, log)
    elapsed = time.monotonic() - started
    if returncode != 0:
        raise StageFailed(f"{what} failed (exit {returncode}): {_reason(log_file)} -- full log in {log_file}")
    logger.warning(f"{what}: done in {format_duration(elapsed)}")
    return elapsed


def _run_stage(stage: str, size: str, folder: Path, command: list[str], logs: Path, runs: list[Path]) -> None:
    """Runs one stage; ``runs`` are the run folders it trains in, whose records say whether it was preempted."""
    what = f"{stage} {size}".strip()
    try:
        _run(command, logs / f"{stage}{'-' + size if size else ''}.log", what)
    except StageFailed:
        # the launcher may report its own code: the run's record says whether it was preempted
        if any(preempted_record(run) is not None for run in runs):
            raise StagePreempted(
                f"{what} was preempted with a checkpoint saved: rerun the study to resume it "
                f"(exit {PREEMPTED_EXIT_CODE})"
            ) from None
        raise


def run_stages(config: StudyConfig) -> dict:
    """Runs every missing stage (the advisor first, where the task has one); returns which ran and which were
    skipped."""
    python = [sys.executable]
    launcher = (
        [sys.executable, "-m", "accelerate.commands.launch", *config.launcher[2:]]
        if config.launcher[:2] == ["accelerate", "launch"]
        else list(config.launcher)
    )
    logs = config.root / "logs"
    done = {"ran": [], "skipped": []}
    task = config.study_task
    if config.advisor is not None and task.advised_stage is not None:
        stage, folder, command = task.advice(config, launcher)
        probes = [config.stage_dir(task.advised_stage, size) for size in config.sizes]
        if stage_complete(stage, folder):
            done["skipped"].append(stage)
        else:
            _run_stage(stage, "", folder, command + ["--output_dir", str(folder)], logs, probes)
            done["ran"].append(stage)
    for size in config.sizes:
        for stage, folder, command in task.stages(config, size, launcher, python):
            if stage_complete(stage, folder):
                done["skipped"].append(f"{stage} {size}")
                continue
            command += ["--output_dir", str(folder)]
            checkpoint = last_complete_checkpoint(str(folder)) if stage != "compress" else None
            if checkpoint:  # a preempted run, or the size's probe: either continues to the deadline
                command += ["--resume_from_checkpoint", "true"]
            elif folder.exists() and any(folder.iterdir()):
                command += ["--overwrite_output_dir", "true"]
            _run_stage(stage, size, folder, command, logs, [folder])
            done["ran"].append(f"{stage} {size}")
    for stage, folder, command in task.closing_stages(config, python) if task.closing_stages else []:
        if done["ran"] or not stage_complete(stage, folder):  # a size's output changed: measure all again
            _run_stage(stage, "", folder, command + ["--output_dir", str(folder)], logs, [])
            done["ran"].append(stage)
        else:
            done["skipped"].append(stage)
    release_dir = config.root / "release"
    if config.release and (done["ran"] or not stage_complete("release", release_dir)):
        options = {**config.study_task.release_options(config), "dry_run": True, **config.release}
        _run(
            python + [str(RECIPES / "release.py"), *as_flags(options), "--output_dir", str(release_dir)],
            logs / "release.log",
            "release",
        )
        done["ran"].append("release")
    elif config.release:
        done["skipped"].append("release")
    return done
