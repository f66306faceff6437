"""The registry of tasks: the one place that answers "which task is this?", for a name (the study's ``task:``, the
advisor's ``--task``), a trained model (``compress.py``) and a compressed variant (``release.py``).

Adding a task is one folder under ``tasks/`` whose ``task.py`` declares its :class:`~hf_tbc.tasks.task.Task`, and
one line in :data:`TASKS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

from ..cli import peek_flag
from ..compress.records import RECORD_FILE, read_records, task_of
from ..errors import UsageError
from ..release.plan import ReleaseArguments, ReleaseItem
from ..release.selection import read_timings, select_variants
from .classification.task import TASK as CLASSIFICATION
from .mlm.task import TASK as MLM
from .task import RECIPES, Task, as_flags
from .translation.task import TASK as TRANSLATION

TASKS: dict[str, Task] = {task.name: task for task in (MLM, CLASSIFICATION, TRANSLATION)}

# what a caller needs of a task, and what it says of the tasks that have it
ROLES = {"advisor": ("loss", "the advisor compares sizes for {}")}

__all__ = [
    "RECIPES",
    "TASKS",
    "Task",
    "advised_task",
    "as_flags",
    "get_task",
    "plan_release",
    "task_of_model",
    "task_of_variant",
]


def get_task(name: str, role: Optional[str] = None, flag: str = "--task") -> Task:
    """The task called ``name``; with a ``role`` (``advisor``), one that has it. A one-line error names the tasks
    that do otherwise."""
    attribute, says = ROLES[role] if role else (None, "hf-tbc knows the tasks {}")
    able = [task.name for task in TASKS.values() if attribute is None or getattr(task, attribute)]
    if name not in able:
        raise UsageError(f"{flag} {name}: {says.format(' or '.join(able))}")
    return TASKS[name]


def advised_task(argv: Sequence[str]) -> Task:
    """The task whose sizes the advisor compares (``--task NAME``, or ``task:`` in the YAML/JSON file of flags;
    default ``mlm``), read before the flags are parsed: the task decides which recipe's flags are accepted."""
    return get_task(peek_flag("task", argv) or "mlm", "advisor")


def task_of_model(config) -> Task:
    """The task a trained model belongs to, asked of its transformers config: the compress.py grid it goes through.
    A model no task claims (an encoder without a classification head) is the classifier's, whose loader says what
    is missing."""
    claimed = (task for task in TASKS.values() if task.compresses is not None and task.compresses(config))
    return next(claimed, TASKS["classification"])


def task_of_variant(folder: Union[str, Path]) -> Task:
    """The task of a compressed variant: the one its grid's rows name (a folder outside any grid is left to the
    classifier's loader, whose error says what is missing)."""
    records = Path(folder).resolve().parent / RECORD_FILE
    return TASKS[task_of(read_records(records)) if records.is_file() else "classification"]


def plan_release(args: ReleaseArguments, namespace: str) -> list[ReleaseItem]:
    """Every repo the flags ask for, with its repo id (checked by the Hub's rules), card and public record, each
    planned by its task: all that can fail on bad input fails here, before anything is written."""
    folders = [Path(folder) for folder in args.variants or []]
    if args.compression_dirs:
        timings = read_timings(args.latency_dir)
        folders += select_variants(args.compression_dirs, args.select_by, args.limit, timings)
    folders += [Path(directory) / "dense-fp32" for directory in args.baseline_dirs or []]
    if not folders and not args.translation_dirs:
        raise UsageError(
            "nothing to release: pass --variants, or --compression_dirs (with --select_by and a --limit "
            "some variant meets) and --baseline_dirs, or --translation_dirs"
        )
    owners = {folder: task_of_variant(folder) for folder in folders}  # each grid's record read once
    items = []
    for task in TASKS.values():
        if task.release_items is not None:
            items += task.release_items(args, [folder for folder in folders if owners[folder] is task], namespace)
    return items
