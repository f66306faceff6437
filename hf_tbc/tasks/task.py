"""The one interface every caller asks of a task: the study, the advisor, ``compress.py`` and ``release.py``.

A task is one folder under ``tasks/`` whose ``task.py`` declares its :class:`Task`, and one line in
:data:`hf_tbc.tasks.registry.TASKS`. What a task leaves out (no ``loss``: no advisor; no ``compress``: no grid of its
own; no ``sections``: no study of its own) its callers refuse with a one-line error naming the tasks that have it.

The stages of a study are commands: a recipe's script and the flags of a config section (:func:`as_flags`), where
a setting the section leaves out is read from the recipe's own argument dataclasses (:func:`recipe_setting`), so a
plan probes exactly what the recipe will run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from transformers.hf_argparser import string_to_bool

from ..cli import recipes_folder
from ..hardware import native_bf16

RECIPES = recipes_folder()

Stage = tuple[str, Path, list[str]]  # (stage name, output folder, command)


@dataclass(frozen=True)
class Task:
    """What a task is to its callers.

    Training: ``recipe`` is the script that trains it (in ``recipes/``), ``arguments`` that recipe's argument
    dataclasses, ``train(model_args, data_args, training_args)`` trains one model and returns its record,
    ``check_size(name)`` returns a size preset (and refuses an unknown one), ``loss`` names the validation loss the
    advisor forecasts (None: the advisor does not compare sizes of this task).

    Compression: ``compresses(config)`` says whether a trained model (its transformers config) is this task's,
    ``compression_arguments`` is the data dataclass of its grid and ``compress(compression_args, data_args)`` runs
    it. Release: ``release_items(args, variant_folders, namespace)`` plans the repos of its variants (and runs).

    Study: ``sections`` are the config sections it needs (the first holds the budget every size shares),
    ``optional_sections`` those it may have, ``stage_records`` the record each of its stages writes last (the stage
    is complete when it is there), ``example`` the bundled config to point users to, ``plan(config)`` the
    budget plan, ``stages(config, size, launcher, python)`` the stages one size goes through,
    ``closing_stages(config, python)`` those over every size together once each size's are done (run again whenever
    a size's stage ran),
    ``release_options(config)`` the flags of ``release.py`` for the whole set, ``write_report(config, plan_rows)``
    the report; ``advised_stage`` is the stage each size's probe is the start of, where the study runs the advisor
    first.
    """

    name: str
    recipe: str
    arguments: tuple[type, ...]
    train: Callable[..., dict]
    check_size: Optional[Callable[[str], Any]] = None
    loss: Optional[str] = None
    compresses: Optional[Callable[[Any], bool]] = None
    compression_arguments: Optional[type] = None
    compress: Optional[Callable[..., Any]] = None
    release_items: Optional[Callable[..., list]] = None
    sections: tuple[str, ...] = ()
    optional_sections: tuple[str, ...] = ()
    stage_records: Optional[dict[str, str]] = None
    example: Optional[str] = None
    plan: Optional[Callable[[Any], list[dict]]] = None
    stages: Optional[Callable[[Any, str, list[str], list[str]], list[Stage]]] = None
    closing_stages: Optional[Callable[[Any, list[str]], list[Stage]]] = None
    release_options: Optional[Callable[[Any], dict]] = None
    write_report: Optional[Callable[[Any, Optional[list[dict]]], Path]] = None
    advised_stage: Optional[str] = None

    def setting(self, section: dict, name: str):
        """``section[name]`` as this task's recipe would read it (see :func:`recipe_setting`)."""
        return recipe_setting(section, name, *self.arguments)

    def recipe_command(self, launcher: list[str], *flags: str) -> list[str]:
        """``launcher`` running this task's recipe with ``flags``."""
        return [*launcher, script(self.recipe), *flags]

    def advice(self, config, launcher: list[str]) -> Stage:
        """The advisor over every size of a study, with the flags of the budgeted section, its probes in the folders
        of ``advised_stage`` (so that each probe is the start of that size's run)."""
        flags = ["--task", self.name, "--model_sizes", ",".join(config.sizes)]
        flags += ["--probes_dir", str(config.root / self.advised_stage)]
        flags += [*as_flags(config.section(self.sections[0])), *as_flags(config.advisor or {})]
        return "advise", config.root / "advice", [*launcher, script("advise.py"), *flags]


def script(name: str) -> str:
    """The path of the recipe script ``name`` (e.g. ``compress.py``)."""
    return str(RECIPES / name)


def recipe_setting(section: dict, name: str, *arguments: type):
    """``section[name]`` as the recipe's parser would read it, else the default of the first of the recipe's argument
    dataclasses that declares ``name`` (``bf16``'s default, None, means: where the hardware computes it natively)."""
    declared = next((item for cls in arguments for item in dataclasses.fields(cls) if item.name == name), None)
    if declared is None:
        raise KeyError(f"no recipe argument named {name}")
    value = section.get(name, declared.default)
    if name == "bf16" and value is None:
        return native_bf16()
    if declared.type in ("bool", "Optional[bool]") and isinstance(value, str):
        return string_to_bool(value)
    return value


def as_flags(options: dict) -> list[str]:
    """Flags from a section: ``{"time_budget": "5m", "bf16": True, "variants": [a, b]}`` gives
    ``--time_budget 5m --bf16 true --variants a b``.

    A recipe's parser reads these flags as the section's keys say."""
    flags = []
    for key, value in options.items():
        if value is None:
            continue
        flags.append(f"--{key}")
        if isinstance(value, bool):
            flags.append("true" if value else "false")
        elif isinstance(value, (list, tuple)):
            flags.extend(str(item) for item in value)
        else:
            flags.append(str(value))
    return flags
