"""The tasks a study drives, each through one interface: its config sections, its sizes, its budget plan, its
stages, its release and its report. The study asks this registry and never branches on a task's name.

A setting a study config leaves out is read from the recipe's own argument dataclasses, so a plan probes exactly
what the recipe will run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from transformers.hf_argparser import string_to_bool

from .. import recipes
from ..hardware import native_bf16
from .mlm.arguments import DataTrainingArguments, ModelArguments, PretrainingArguments
from .mlm.model import get_model_size
from .mlm.plan import plan
from .mlm.report import write_report
from .translation.arguments import TranslationDataArguments, TranslationModelArguments, TranslationTrainingArguments
from .translation.model import get_translation_size
from .translation.plan import plan_translation
from .translation.report import write_translation_report

RECIPES = Path(recipes.__file__).resolve().parent

Stage = tuple[str, Path, list[str]]  # (stage name, output folder, command)


@dataclass(frozen=True)
class StudyTask:
    """What the study needs of a task.

    ``sections`` are the config sections the task needs (the first holds the budget every size shares);
    ``example`` is the bundled config to point users to; ``stages(config, size, launcher, python)`` lists the stages
    one size goes through; ``release_options(config)`` the flags of ``release.py`` for the whole set.
    ``advice(config, launcher)``, where the task has an advisor, is the stage that probes every size and forecasts
    the winner before the stages run; its probes are the start of each size's ``advised_stage`` run.
    """

    name: str
    sections: tuple[str, ...]
    example: str
    check_size: Callable[[str], Any]
    plan: Callable[[Any], list[dict]]
    stages: Callable[[Any, str, list[str], list[str]], list[Stage]]
    release_options: Callable[[Any], dict]
    write_report: Callable[[Any, list[dict]], Path]
    advice: Optional[Callable[[Any, list[str]], Stage]] = None
    advised_stage: Optional[str] = None


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


# -- masked-LM pretraining, then finetuning and compression ------------------------------------------------
MLM_ARGUMENTS = (ModelArguments, DataTrainingArguments, PretrainingArguments)


def _plan_mlm(config) -> list[dict]:
    section = config.pretraining

    def setting(name):
        return recipe_setting(section, name, *MLM_ARGUMENTS)

    return plan(
        config.sizes,
        section["time_budget"],
        int(setting("per_device_train_batch_size")),
        int(setting("block_size")),
        int(setting("vocab_size")),
        architecture=setting("architecture"),
        sparse_prediction=bool(setting("sparse_prediction")),
        bf16=bool(setting("bf16")),
        mlm_probability=float(setting("mlm_probability")),
    )


def _mlm_stages(config, size: str, launcher: list[str], python: list[str]) -> list[Stage]:
    pretrained, finetuned, compressed = (
        config.stage_dir(stage, size) for stage in ("pretrain", "finetune", "compress")
    )
    return [
        (
            "pretrain",
            pretrained,
            launcher + [str(RECIPES / "run_mlm.py"), "--model_size", size, *as_flags(config.pretraining)],
        ),
        (
            "finetune",
            finetuned,
            launcher
            + [
                str(RECIPES / "run_classification.py"),
                "--model_name_or_path",
                str(pretrained),
                *as_flags(config.finetuning),
            ],
        ),
        (
            "compress",
            compressed,
            python
            + [str(RECIPES / "compress.py"), "--model_name_or_path", str(finetuned), *as_flags(config.compression)],
        ),
    ]


def _advice_stage(task: str, stage: str, section: str) -> Callable[[Any, list[str]], Stage]:
    """The advisor over every size of a ``task`` study, with the flags of its ``section``, its probes in the folders
    of ``stage`` (so that each probe is the start of that size's run)."""

    def advice(config, launcher: list[str]) -> Stage:
        return (
            "advise",
            config.root / "advice",
            launcher
            + [
                str(RECIPES / "advise.py"),
                "--task",
                task,
                "--model_sizes",
                ",".join(config.sizes),
                "--probes_dir",
                str(config.root / stage),
                *as_flags(getattr(config, section)),
                *as_flags(config.advisor or {}),
            ],
        )

    return advice


def _mlm_release(config) -> dict:
    return {
        "compression_dirs": [str(config.stage_dir("compress", size)) for size in config.sizes],
        "baseline_dirs": [str(config.stage_dir("compress", config.sizes[0]))],
    }


# -- translation ----------------------------------------------------------------------------------------------
TRANSLATION_ARGUMENTS = (TranslationModelArguments, TranslationDataArguments, TranslationTrainingArguments)


def _plan_translation(config) -> list[dict]:
    section = config.translation

    def setting(name):
        return recipe_setting(section, name, *TRANSLATION_ARGUMENTS)

    return plan_translation(
        config.sizes,
        section["time_budget"],
        int(setting("per_device_train_batch_size")),
        vocab_size=int(setting("vocab_size")),
        architecture=setting("architecture"),
        bf16=bool(setting("bf16")),
    )


# what compress.py needs of the translation section: where the pairs are, how they were split (seed and share held
# out where there is no validation file) and cut, so that the grid scores the variants on what the run scored
TRANSLATION_DATA_FLAGS = (
    "seed",
    "validation_split_percentage",
    "max_train_samples",
    "dataset_name",
    "dataset_config_name",
    "train_file",
    "validation_file",
    "source_lang",
    "target_lang",
    "source_column",
    "target_column",
    "max_source_length",
    "max_target_length",
)


def _translation_stages(config, size: str, launcher: list[str], python: list[str]) -> list[Stage]:
    trained = config.stage_dir("translate", size)
    stages = [
        (
            "translate",
            trained,
            launcher + [str(RECIPES / "run_translation.py"), "--model_size", size, *as_flags(config.translation)],
        )
    ]
    if config.compression:  # each size compressed: feed-forward pruning with recovery, int8
        data = {key: value for key, value in config.translation.items() if key in TRANSLATION_DATA_FLAGS}
        stages.append(
            (
                "compress",
                config.stage_dir("compress", size),
                python
                + [
                    str(RECIPES / "compress.py"),
                    "--model_name_or_path",
                    str(trained),
                    *as_flags({**data, **config.compression}),
                ],
            )
        )
    return stages


def small_dense_latency(config) -> Optional[float]:
    """The small baseline's (the first size's) dense fp32 latency per sentence, from its compression grid."""
    from ..records import own_dense, read_records

    record = config.stage_dir("compress", config.sizes[0]) / "compression.jsonl"
    dense = own_dense(read_records(record)) if record.is_file() else None
    return dense["latency_ms"] if dense else None


def _translation_release(config) -> dict:
    """Without a compression section: every size's trained model, dense. With one: the small baseline dense, and the
    best variant (by BLEU) of every larger size whose latency per sentence is at most the small dense model's (the
    release section's ``limit`` overrides it)."""
    if not config.compression:
        return {"translation_dirs": [str(config.stage_dir("translate", size)) for size in config.sizes]}
    return {
        "translation_dirs": [str(config.stage_dir("translate", config.sizes[0]))],
        "compression_dirs": [str(config.stage_dir("compress", size)) for size in config.sizes[1:]],
        "select_by": "latency",
        "limit": small_dense_latency(config),
    }


TASKS: dict[str, StudyTask] = {
    "mlm": StudyTask(
        "mlm",
        ("pretraining", "finetuning", "compression"),
        "cpu_demo.yaml",
        get_model_size,
        _plan_mlm,
        _mlm_stages,
        _mlm_release,
        write_report,
        advice=_advice_stage("mlm", "pretrain", "pretraining"),
        advised_stage="pretrain",
    ),
    "translation": StudyTask(
        "translation",
        ("translation",),
        "mt_cpu_demo.yaml",
        get_translation_size,
        _plan_translation,
        _translation_stages,
        _translation_release,
        write_translation_report,
        advice=_advice_stage("translation", "translate", "translation"),
        advised_stage="translate",
    ),
}
